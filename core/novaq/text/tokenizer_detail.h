#pragma once
// Internals shared by the tokenizers of core/novaq/text: UTF-8 and Unicode classes, the
// vocabulary every tokenizer carries (pieces, types, specials) with its decoders, and the
// pair-merging engine every BPE flavour runs (SentencePiece, llama.cpp, llama2.c, GPT-2, HF).

#include "novaq/io/utf8.h"
#include "novaq/text/tokenizer.h"

#include <queue>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace novaq::text {

// ---------------------------------------------------------------------------------------
// UTF-8 and Unicode classes (unicode.cpp)

// Bytes of the UTF-8 sequence a lead byte starts, by its high nibble (1 for ASCII and for
// stray continuation bytes), as SentencePiece's OneCharLen and llama.cpp's unicode_len_utf8.
size_t utf8SequenceLength(uint8_t lead) noexcept;

// decodeUtf8, appendUtf8: novaq/io/utf8.h (one UTF-8 module for readers and tokenizers).
using novaq::appendUtf8;
using novaq::decodeUtf8;

// Code points of `text`; each malformed byte becomes U+FFFD (as llama.cpp does).
std::u32string toCodePoints(std::string_view text);

// Unicode general categories L* and N* (tables generated from the Unicode database by
// gen_unicode_tables.py) and the White_Space property: the classes of the GPT-2 regex.
bool isLetter(char32_t cp) noexcept;
bool isNumber(char32_t cp) noexcept;
bool isWhitespace(char32_t cp) noexcept;

// GPT-2's pre-tokenizer: the matches of
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// over `text` as [begin, end) code point ranges covering it.
std::vector<std::pair<size_t, size_t>> gpt2Split(const std::u32string& text);

// The pre-tokenizer regexes we match by hand (std::regex has no Unicode classes): GPT-2's
// above; Llama 3's (tokenizer.json of Llama 3.x, llama.cpp's "llama-bpe")
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// and Qwen2's (Qwen 2, 2.5, 3; llama.cpp's "qwen2"): the same with \p{N} for \p{N}{1,3}.
enum class SplitRegex { Gpt2, Llama3, Qwen2 };
// Which of them a tokenizer.json Split pattern is, by its exact text; nullopt for any other.
std::optional<SplitRegex> knownSplitRegex(std::string_view pattern) noexcept;
// The matches of the regex over `text`, as [begin, end) code point ranges covering it.
std::vector<std::pair<size_t, size_t>> regexSplit(const std::u32string& text, SplitRegex regex);

// Unicode Normalization Form C of UTF-8 text (malformed bytes become U+FFFD first).
std::string nfc(std::string_view text);

// GPT-2's bytes_to_unicode(): byte -> the printable character that stands for it.
const std::string& byteLevelChar(uint8_t byte) noexcept;
// The byte a byte-level character stands for, or -1.
int byteLevelByte(char32_t cp) noexcept;

// "<0x0A>" pieces.
std::string bytePieceName(uint8_t byte);
int parseBytePiece(std::string_view piece) noexcept; // the byte, or -1

inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81"; // U+2581 '▁'

std::string replaceAll(std::string_view text, std::string_view from, std::string_view to);

// ---------------------------------------------------------------------------------------
// Vocabulary

// Token types as SentencePiece's ModelProto and GGUF's tokenizer.ggml.token_type number them.
enum class PieceType : uint8_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// How ids become text.
enum class DecodeStyle {
    Metaspace, // '▁' -> ' ', <0xNN> -> byte, leading space of the first piece dropped
    Llama2c,   // pieces carry ' ' already; <0xNN> -> byte; leading space of the first piece dropped
    ByteLevel, // each character -> the byte it stands for (GPT-2)
};

struct Vocabulary {
    std::vector<std::string> pieces;
    std::vector<PieceType> types;
    std::vector<float> scores; // may be empty
    int32_t bos = -1;
    int32_t eos = -1;
    int32_t unk = -1;
};

// A tokenizer over a Vocabulary: piece(), decode() and the specials; encode() is the flavour's.
class VocabTokenizer : public Tokenizer {
public:
    VocabTokenizer(Vocabulary vocab, DecodeStyle style, std::string kind, std::string label);

    std::string decode(std::span<const int32_t> ids) const override;
    std::string piece(int32_t id) const override;
    std::string pieceBytes(int32_t id) const override;
    int32_t vocabSize() const noexcept override { return static_cast<int32_t>(m_vocab.pieces.size()); }
    int32_t bos() const noexcept override { return m_vocab.bos; }
    int32_t eos() const noexcept override { return m_vocab.eos; }
    std::string_view kind() const noexcept override { return m_kind; }

protected:
    void checkId(int32_t id) const;
    const Vocabulary& vocab() const noexcept { return m_vocab; }
    Vocabulary& mutableVocab() noexcept { return m_vocab; }
    // SentencePiece drops the first piece's leading '▁' only with add_dummy_prefix or
    // remove_extra_whitespaces; the other flavours always do.
    void setStripLeadingSpace(bool strip) noexcept { m_stripLeadingSpace = strip; }
    const std::string& label() const noexcept { return m_label; }

private:
    Vocabulary m_vocab;
    DecodeStyle m_style;
    std::string m_kind;
    std::string m_label;
    bool m_stripLeadingSpace = true;
};

// ---------------------------------------------------------------------------------------
// Pair merging

// A symbol of a word being merged: a span [begin, begin + length) of the word's text, linked
// to its neighbours; length 0 once merged into its left neighbour.
struct MergeSymbol {
    int32_t prev = -1;
    int32_t next = -1;
    uint32_t begin = 0;
    uint32_t length = 0;
    int32_t id = -1; // the symbol's token, -1 when it is not (yet) a vocabulary entry
    bool frozen = false;
};

// A pair the vocabulary can merge: higher priority merges first (a SentencePiece score, or
// minus a merge rank); ties go to the leftmost pair.
struct MergeCandidate {
    double priority = 0;
    int32_t id = -1;
};

// Repeatedly merges the adjacent pair of highest priority (leftmost on ties) until no pair
// merges, with a priority queue of candidate pairs; a popped pair whose symbols changed since
// it was queued is skipped. `lookup(left, right)` tells whether symbols[left] + symbols[right]
// merge. This is the loop of SentencePiece's bpe_model.cc, llama.cpp's llm_tokenizer_spm and
// llm_tokenizer_bpe, llama2.c's encode() (which rescans for the best pair: same order) and HF
// tokenizers' Word::merge_all.
class PairMerger {
public:
    using Lookup = std::function<std::optional<MergeCandidate>(const std::vector<MergeSymbol>&, int32_t, int32_t)>;

    // `symbols` must be linked in order (prev/next) and contiguous.
    void run(std::vector<MergeSymbol>& symbols, const Lookup& lookup);

private:
    struct Entry {
        double priority;
        int32_t left;
        int32_t right;
        uint32_t length;
        int32_t id;
    };
    struct Lower {
        bool operator()(const Entry& a, const Entry& b) const noexcept
        {
            return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
        }
    };
};

// Links symbols[i] to its neighbours (prev = i - 1, next = i + 1, -1 at the ends).
void linkSymbols(std::vector<MergeSymbol>& symbols);

// ---------------------------------------------------------------------------------------
// Hashing std::string keys by string_view without copies.

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// ---------------------------------------------------------------------------------------
// Files

// The whole file; Error(Io) naming it when it cannot be read.
std::vector<std::byte> readFileBytes(const std::filesystem::path& path);

// Error(InvalidInput) "<label>: <what>".
[[noreturn]] void failInput(const std::string& label, const std::string& what);

} // namespace novaq::text
