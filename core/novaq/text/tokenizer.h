#pragma once
// Tokenizers: text to token ids and back, exactly as the reference implementation of each
// format does it (the ids are held to reference perplexities, so "close" is wrong).
//
//   kind()                  source                                reference
//   "sentencepiece-bpe"     tokenizer.model (ModelProto, BPE)     SentencePiece's Encode
//   "sentencepiece-unigram" tokenizer.model (ModelProto, UNIGRAM) SentencePiece's Encode (Viterbi)
//   "gguf-llama"            GGUF tokenizer.ggml.model "llama"     llama.cpp's llm_tokenizer_spm
//   "gguf-gpt2"             GGUF tokenizer.ggml.model "gpt2"      llama.cpp's llm_tokenizer_bpe, GPT-2 split
//   "bpe-byte-level"        tokenizer.json, ByteLevel BPE         HF tokenizers
//   "bpe-byte-fallback"     tokenizer.json, Metaspace BPE         HF tokenizers
//   "bpe"                   tokenizer.json, other BPE             HF tokenizers
//   "llama2c"               llama2.c tok*.bin                     llama2.c run.c encode()
//
// Every loader rejects malformed input with Error(InvalidInput) (or Unsupported for a valid
// file of a kind we do not implement) naming the file and the field.

#include "novaq/formats/model_reader.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace novaq {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Token ids of `text`, exactly as the reference implementation gives them (SentencePiece's
    // encode / llama.cpp's llama_tokenize without special tokens / HF tokenizers' encode without
    // special tokens). A BOS is prepended only when addBos is true (and the vocabulary has one).
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos) const = 0;

    // Text of the ids: '▁' -> ' ' (SentencePiece), byte tokens <0xNN> -> bytes, control tokens
    // -> nothing, the leading space of the first piece dropped as SentencePiece does. Ids out of
    // range throw Error(InvalidArgument).
    virtual std::string decode(std::span<const int32_t> ids) const = 0;

    // The raw vocabulary entry of `id` ("▁the", "<0x0A>", "Ġthe"); throws for ids out of range.
    virtual std::string piece(int32_t id) const = 0;

    virtual int32_t vocabSize() const noexcept = 0;
    virtual int32_t bos() const noexcept = 0; // -1 when none
    virtual int32_t eos() const noexcept = 0; // -1 when none
    virtual std::string_view kind() const noexcept = 0;
};

// SentencePiece ModelProto (tokenizer.model), from a file or from bytes (the .novaq container
// may embed it). `label` names the bytes in error messages.
std::unique_ptr<Tokenizer> loadSentencePiece(const std::filesystem::path& path);
std::unique_ptr<Tokenizer> loadSentencePieceBytes(std::span<const std::byte> bytes, const std::string& label);

// The tokenizer stored in GGUF metadata (tokenizer.ggml.model == "llama" -> SentencePiece-style
// as llama.cpp tokenizes; "gpt2" -> byte-level BPE with merges). `meta` is the JSON object of
// all GGUF key/values (reader.metadata()["format_metadata"]); `label` names it in errors.
std::unique_ptr<Tokenizer> tokenizerFromGguf(const nlohmann::json& meta, const std::string& label);

// Hugging Face tokenizer.json with model.type "BPE": byte-level (GPT-2 style ByteLevel
// pre-tokenizer) and the byte-fallback Llama style (Metaspace / Prepend+Replace "▁"
// normalizer, byte_fallback true).
std::unique_ptr<Tokenizer> loadHfTokenizerJson(const std::filesystem::path& path);

// llama2.c's tokenizer .bin (tok512.bin): int32 max_token_length, then per token float score,
// int32 len, bytes. Encodes the way llama2.c run.c does (BPE merging the best-scoring pair,
// byte fallback with +3 offset, dummy prefix).
std::unique_ptr<Tokenizer> loadLlama2cTokenizer(const std::filesystem::path& path);

// Finds a model's tokenizer: GGUF metadata first; then, in the model's folder (modelPath is a
// file or folder): tokenizer.json, tokenizer.model, then tok*.bin / tok*.model for llama2.c
// checkpoints. Throws Error(InvalidInput) naming what was looked for and where when none is
// found (ErrorKind has no NotFound), and the loader's own error when a file found is broken.
std::unique_ptr<Tokenizer> findTokenizer(const ModelReader& reader, const std::filesystem::path& modelPath);

// The tokenizer files beside a model (the one findTokenizer would load, with
// tokenizer_config.json and chat_template.jinja when they go with a tokenizer.json): what a .novaq file carries
// along so that it runs without its source folder. Empty when there are none.
std::vector<std::filesystem::path> tokenizerFilesBeside(const std::filesystem::path& modelPath);

} // namespace novaq
