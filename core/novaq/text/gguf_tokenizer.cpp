// The tokenizer in a GGUF file's metadata, tokenized as llama.cpp tokenizes it (llama_tokenize
// with parse_special = false): tokenizer.ggml.model "llama" -> llm_tokenizer_spm, "gpt2" ->
// llm_tokenizer_bpe with the pre-tokenizer regex tokenizer.ggml.pre names: "gpt-2"; "llama-bpe"
// (and its aliases "llama3", "llama-v3": Llama 3's regex, a word that is a token is taken whole
// as llama.cpp's ignore_merges does); "qwen2" (and "deepseek-r1-qwen"). Like llama.cpp, no NFC
// for Qwen (its tokenizer.json asks for one): identical ids for text already in NFC.
//
// llama.cpp's SPM path is not SentencePiece's: no normalization and no whitespace cleanup, a
// space is prepended to non-empty text (tokenizer.ggml.add_space_prefix, default true) only
// at the start and after a user-defined token, every space becomes '▁', and any vocabulary
// entry (control and byte tokens included) can be the result of a merge.
//
// Keys read: tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, bos_token_id,
// eos_token_id, unknown_token_id, add_space_prefix}.

#include "novaq/io/error.h"
#include "novaq/text/tokenizer_detail.h"

#include <algorithm>
#include <array>

namespace novaq {

namespace {

using nlohmann::json;
using text::failInput;
using text::MergeCandidate;
using text::MergeSymbol;
using text::PieceIndex;
using text::PieceType;
using text::StringTable;

// ---------------------------------------------------------------------------------------
// Reading the keys

const json* findKey(const json& meta, const char* key)
{
    const auto it = meta.find(key);
    return it == meta.end() ? nullptr : &*it;
}

std::string typeName(const json& v) { return v.type_name(); }

std::optional<int32_t> specialId(const json& meta, const char* key, size_t vocabSize, const std::string& label)
{
    const json* v = findKey(meta, key);
    if (v == nullptr)
        return std::nullopt;
    if (!v->is_number_integer())
        failInput(label, std::string(key) + " is a " + typeName(*v) + "; it must be an integer token id");
    // Ids past the vocabulary (llama.cpp writes 0xFFFFFFFF for "none") mean no such token.
    if (v->is_number_unsigned()) {
        const auto id = v->get<uint64_t>();
        return id < vocabSize ? static_cast<int32_t>(id) : -1;
    }
    const auto id = v->get<int64_t>();
    return id >= 0 && static_cast<uint64_t>(id) < vocabSize ? static_cast<int32_t>(id) : -1;
}

struct GgufVocab {
    text::Vocabulary vocab;
    PieceIndex tokenToId;                      // every token; a later duplicate wins, as in llama.cpp
    std::vector<std::string> userDefinedTexts; // matched in the text before tokenizing
};

GgufVocab readVocab(const json& meta, const std::string& label)
{
    GgufVocab out;
    const json* tokens = findKey(meta, "tokenizer.ggml.tokens");
    if (tokens == nullptr)
        failInput(label, "tokenizer.ggml.tokens is missing; the GGUF metadata has no vocabulary");
    if (!tokens->is_array() || tokens->empty())
        failInput(label, "tokenizer.ggml.tokens must be a non-empty array of strings, found a " + typeName(*tokens));
    const size_t n = tokens->size();
    size_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
        const json& t = (*tokens)[i];
        if (!t.is_string())
            failInput(label, "tokenizer.ggml.tokens[" + std::to_string(i) + "] is a " + typeName(t) +
                                 "; every token must be a string");
        bytes += t.get_ref<const std::string&>().size();
    }
    out.vocab.pieces.reserve(n, bytes);
    for (size_t i = 0; i < n; ++i)
        out.vocab.pieces.push_back((*tokens)[i].get_ref<const std::string&>());
    out.vocab.types.assign(n, PieceType::Normal);
    if (const json* types = findKey(meta, "tokenizer.ggml.token_type")) {
        if (!types->is_array() || types->size() != n)
            failInput(label,
                      "tokenizer.ggml.token_type must be an array of " + std::to_string(n) +
                          " integers (one per token), found " +
                          (types->is_array() ? std::to_string(types->size()) + " entries" : "a " + typeName(*types)));
        for (size_t i = 0; i < n; ++i) {
            const json& t = (*types)[i];
            if (!t.is_number_integer() || t.get<int64_t>() < 1 || t.get<int64_t>() > 6)
                failInput(label, "tokenizer.ggml.token_type[" + std::to_string(i) + "] is " + t.dump() +
                                     "; token types are 1 (normal) to 6 (byte)");
            out.vocab.types[i] = static_cast<PieceType>(t.get<int>());
        }
    }
    out.vocab.scores.assign(n, 0.0f);
    if (const json* scores = findKey(meta, "tokenizer.ggml.scores")) {
        if (!scores->is_array() || scores->size() != n)
            failInput(
                label,
                "tokenizer.ggml.scores must be an array of " + std::to_string(n) + " numbers (one per token), found " +
                    (scores->is_array() ? std::to_string(scores->size()) + " entries" : "a " + typeName(*scores)));
        for (size_t i = 0; i < n; ++i) {
            const json& s = (*scores)[i];
            if (!s.is_number())
                failInput(label, "tokenizer.ggml.scores[" + std::to_string(i) + "] is a " + typeName(s) +
                                     "; scores must be numbers");
            out.vocab.scores[i] = s.get<float>();
        }
    }
    out.tokenToId.reset(n);
    for (size_t i = 0; i < n; ++i) {
        out.tokenToId.insert(out.vocab.pieces, static_cast<int32_t>(i), true);
        if (out.vocab.types[i] == PieceType::UserDefined)
            out.userDefinedTexts.emplace_back(out.vocab.pieces[i]);
    }
    // llama.cpp tries longer special tokens first.
    std::stable_sort(out.userDefinedTexts.begin(), out.userDefinedTexts.end(),
                     [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    return out;
}

// A piece of the text: raw text to tokenize, or a user-defined token found in it.
struct Fragment {
    std::string_view text;
    int32_t token = -1;
};

// llama.cpp's tokenizer_st_partition with parse_special = false: user-defined tokens (never
// control ones) are cut out of the raw text, longest tokens first.
std::vector<Fragment> partition(std::string_view text, const std::vector<std::string>& userDefined,
                                const StringTable& pieces, const PieceIndex& tokenToId)
{
    std::vector<Fragment> fragments{{text, -1}};
    for (const std::string& special : userDefined) {
        if (special.empty())
            continue;
        const int32_t id = tokenToId.find(pieces, special);
        std::vector<Fragment> next;
        for (const Fragment& f : fragments) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            std::string_view rest = f.text;
            while (true) {
                const size_t hit = rest.find(special);
                if (hit == std::string_view::npos)
                    break;
                if (hit > 0)
                    next.push_back({rest.substr(0, hit), -1});
                next.push_back({{}, id});
                rest.remove_prefix(hit + special.size());
            }
            if (!rest.empty())
                next.push_back({rest, -1});
        }
        fragments = std::move(next);
    }
    return fragments;
}

// ---------------------------------------------------------------------------------------

class GgufLlamaTokenizer final : public text::VocabTokenizer {
public:
    GgufLlamaTokenizer(GgufVocab v, bool addSpacePrefix, const std::string& label)
        : VocabTokenizer(std::move(v.vocab), text::DecodeStyle::Metaspace, "gguf-llama", label),
          m_tokenToId(std::move(v.tokenToId)), m_userDefined(std::move(v.userDefinedTexts)),
          m_addSpacePrefix(addSpacePrefix)
    {
        for (int b = 0; b < 256; ++b) {
            int32_t id = tokenId(text::bytePieceName(static_cast<uint8_t>(b)));
            if (id < 0)
                id = tokenId(std::string(1, static_cast<char>(b)));
            m_byteIds[static_cast<size_t>(b)] = id < 0 ? vocab().unk : id;
        }
    }

    std::vector<int32_t> encode(std::string_view input, bool addBos) const override
    {
        std::vector<int32_t> ids;
        if (addBos && bos() >= 0)
            ids.push_back(bos());
        if (input.empty())
            return ids;          // no fragment at all, so no space prefix either
        bool prevSpecial = true; // the text start counts as after a special token
        for (const Fragment& f : partition(input, m_userDefined, vocab().pieces, m_tokenToId)) {
            if (f.token >= 0) {
                ids.push_back(f.token);
                prevSpecial = true;
                continue;
            }
            std::string raw = m_addSpacePrefix && prevSpecial ? " " + std::string(f.text) : std::string(f.text);
            tokenize(text::replaceAll(raw, " ", text::kSpaceSymbol), ids);
            prevSpecial = false;
        }
        return ids;
    }

private:
    int32_t tokenId(std::string_view token) const noexcept { return m_tokenToId.find(vocab().pieces, token); }

    void tokenize(const std::string& t, std::vector<int32_t>& out) const
    {
        std::vector<MergeSymbol> symbols;
        for (size_t pos = 0; pos < t.size();) {
            MergeSymbol s;
            s.begin = static_cast<uint32_t>(pos);
            s.length =
                static_cast<uint32_t>(std::min(text::utf8SequenceLength(static_cast<uint8_t>(t[pos])), t.size() - pos));
            s.id = tokenId(std::string_view(t).substr(pos, s.length));
            pos += s.length;
            symbols.push_back(s);
        }
        text::linkSymbols(symbols);
        const auto& scores = vocab().scores;
        text::PairMerger merger;
        merger.run(symbols,
                   [&](const std::vector<MergeSymbol>& sym, int32_t l, int32_t r) -> std::optional<MergeCandidate> {
                       const MergeSymbol& a = sym[static_cast<size_t>(l)];
                       const MergeSymbol& b = sym[static_cast<size_t>(r)];
                       const int32_t id = tokenId(std::string_view(t).substr(a.begin, a.length + b.length));
                       if (id < 0)
                           return std::nullopt;
                       return MergeCandidate{scores[static_cast<size_t>(id)], id};
                   });
        for (int32_t i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
            const MergeSymbol& s = symbols[static_cast<size_t>(i)];
            if (s.id >= 0) {
                out.push_back(s.id);
                continue;
            }
            for (uint32_t k = 0; k < s.length; ++k) { // a character outside the vocabulary: its bytes
                const auto byte = static_cast<uint8_t>(t[s.begin + k]);
                // No byte token and no unknown token (an unknown_token_id past the vocabulary):
                // llama.cpp fails here too; never hand out id -1.
                if (m_byteIds[byte] < 0)
                    failInput(label(), "the text holds the byte " + text::bytePieceName(byte) +
                                           ", which this vocabulary cannot encode: it has no " +
                                           text::bytePieceName(byte) +
                                           " byte token, the byte itself as a token or an unknown token");
                out.push_back(m_byteIds[byte]);
            }
        }
    }

    PieceIndex m_tokenToId; // over vocab().pieces
    std::vector<std::string> m_userDefined;
    bool m_addSpacePrefix;
    std::array<int32_t, 256> m_byteIds{};
};

// ---------------------------------------------------------------------------------------

class GgufGpt2Tokenizer final : public text::VocabTokenizer {
public:
    GgufGpt2Tokenizer(GgufVocab v, const json& merges, text::SplitRegex regex, bool ignoreMerges,
                      const std::string& label)
        : VocabTokenizer(std::move(v.vocab), text::DecodeStyle::ByteLevel, "gguf-gpt2", label),
          m_tokenToId(std::move(v.tokenToId)), m_userDefined(std::move(v.userDefinedTexts)), m_regex(regex),
          m_ignoreMerges(ignoreMerges)
    {
        size_t bytes = 0;
        for (const json& m : merges)
            bytes += m.is_string() ? m.get_ref<const std::string&>().size() : 0;
        m_mergeLines.reserve(merges.size(), bytes);
        m_ranks.reset(merges.size());
        for (size_t i = 0; i < merges.size(); ++i) {
            const json& m = merges[i];
            if (!m.is_string())
                failInput(label, "tokenizer.ggml.merges[" + std::to_string(i) + "] is a " + m.type_name() +
                                     "; merges are strings \"left right\"");
            const std::string& line = m.get_ref<const std::string&>();
            const size_t space = line.find(' ', 1);
            if (space == std::string::npos || space + 1 >= line.size())
                failInput(label, "tokenizer.ggml.merges[" + std::to_string(i) + "] \"" + line +
                                     "\" is not two tokens separated by a space");
            m_mergeLines.push_back(line);
            m_ranks.insert(m_mergeLines, static_cast<int32_t>(i), false); // the first rank of a repeated line wins
        }
    }

    std::vector<int32_t> encode(std::string_view input, bool addBos) const override
    {
        std::vector<int32_t> ids;
        if (addBos && bos() >= 0)
            ids.push_back(bos());
        for (const Fragment& f : partition(input, m_userDefined, vocab().pieces, m_tokenToId)) {
            if (f.token >= 0) {
                ids.push_back(f.token);
                continue;
            }
            const std::u32string cps = text::toCodePoints(f.text);
            for (const auto& [begin, end] : text::regexSplit(cps, m_regex)) {
                std::string utf8;
                for (size_t k = begin; k < end; ++k)
                    text::appendUtf8(utf8, cps[k]);
                std::string word;
                for (const char c : utf8)
                    word += text::byteLevelChar(static_cast<uint8_t>(c));
                tokenizeWord(word, ids);
            }
        }
        return ids;
    }

private:
    int32_t tokenId(std::string_view token) const noexcept { return m_tokenToId.find(vocab().pieces, token); }

    void tokenizeWord(const std::string& w, std::vector<int32_t>& out) const
    {
        if (m_ignoreMerges) {
            if (const int32_t id = tokenId(w); id >= 0) {
                out.push_back(id);
                return;
            }
        }
        std::vector<MergeSymbol> symbols;
        for (size_t pos = 0; pos < w.size();) {
            MergeSymbol s;
            s.begin = static_cast<uint32_t>(pos);
            s.length =
                static_cast<uint32_t>(std::min(text::utf8SequenceLength(static_cast<uint8_t>(w[pos])), w.size() - pos));
            pos += s.length;
            symbols.push_back(s);
        }
        text::linkSymbols(symbols);
        std::string key;
        text::PairMerger merger;
        merger.run(symbols,
                   [&](const std::vector<MergeSymbol>& sym, int32_t l, int32_t r) -> std::optional<MergeCandidate> {
                       const MergeSymbol& a = sym[static_cast<size_t>(l)];
                       const MergeSymbol& b = sym[static_cast<size_t>(r)];
                       key.assign(w, a.begin, a.length);
                       key += ' ';
                       key.append(w, b.begin, b.length);
                       const int32_t rank = m_ranks.find(m_mergeLines, key);
                       if (rank < 0)
                           return std::nullopt;
                       return MergeCandidate{-static_cast<double>(rank), -1};
                   });
        for (int32_t i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
            const MergeSymbol& s = symbols[static_cast<size_t>(i)];
            const std::string_view piece = std::string_view(w).substr(s.begin, s.length);
            if (const int32_t id = tokenId(piece); id >= 0) {
                out.push_back(id);
                continue;
            }
            // Not a token (a merge whose result is missing from the vocabulary): its characters.
            for (size_t pos = 0; pos < piece.size();) {
                const size_t n =
                    std::min(text::utf8SequenceLength(static_cast<uint8_t>(piece[pos])), piece.size() - pos);
                if (const int32_t id = tokenId(piece.substr(pos, n)); id >= 0)
                    out.push_back(id);
                pos += n;
            }
        }
    }

    PieceIndex m_tokenToId; // over vocab().pieces
    std::vector<std::string> m_userDefined;
    StringTable m_mergeLines; // "left right" by rank
    PieceIndex m_ranks;       // "left right" -> rank, over m_mergeLines
    text::SplitRegex m_regex;
    bool m_ignoreMerges;
};

} // namespace

std::unique_ptr<Tokenizer> tokenizerFromGguf(const json& meta, const std::string& label)
{
    if (!meta.is_object())
        failInput(label, "the GGUF metadata is not a key/value object");
    const json* model = findKey(meta, "tokenizer.ggml.model");
    if (model == nullptr)
        failInput(label, "tokenizer.ggml.model is missing: the GGUF file carries no tokenizer. Put the model's "
                         "tokenizer.model or tokenizer.json beside it, or convert it with a current llama.cpp");
    if (!model->is_string())
        failInput(label, "tokenizer.ggml.model is a " + typeName(*model) + "; it must be a string");
    const std::string kind = model->get<std::string>();
    if (kind != "llama" && kind != "gpt2")
        throw Error(ErrorKind::Unsupported, label + ": tokenizer.ggml.model is \"" + kind +
                                                "\"; the GGUF tokenizers supported are \"llama\" (SentencePiece) and "
                                                "\"gpt2\" (byte-level BPE)");
    GgufVocab v = readVocab(meta, label);
    const size_t n = v.vocab.pieces.size();
    const bool llama = kind == "llama";
    v.vocab.bos = specialId(meta, "tokenizer.ggml.bos_token_id", n, label).value_or(llama && n > 1 ? 1 : -1);
    v.vocab.eos = specialId(meta, "tokenizer.ggml.eos_token_id", n, label).value_or(llama && n > 2 ? 2 : -1);
    v.vocab.unk = specialId(meta, "tokenizer.ggml.unknown_token_id", n, label).value_or(llama ? 0 : -1);
    if (llama) {
        bool addSpacePrefix = true;
        if (const json* a = findKey(meta, "tokenizer.ggml.add_space_prefix")) {
            if (!a->is_boolean())
                failInput(label, "tokenizer.ggml.add_space_prefix is a " + typeName(*a) + "; it must be a bool");
            addSpacePrefix = a->get<bool>();
        }
        return std::make_unique<GgufLlamaTokenizer>(std::move(v), addSpacePrefix, label);
    }
    const json* pre = findKey(meta, "tokenizer.ggml.pre");
    const std::string preName = pre != nullptr && pre->is_string() ? pre->get<std::string>() : "(missing)";
    text::SplitRegex regex = text::SplitRegex::Gpt2;
    bool ignoreMerges = false;
    if (preName == "llama-bpe" || preName == "llama3" || preName == "llama-v3") {
        regex = text::SplitRegex::Llama3;
        ignoreMerges = true;
    } else if (preName == "qwen2" || preName == "deepseek-r1-qwen") {
        regex = text::SplitRegex::Qwen2;
    } else if (preName != "gpt-2") {
        throw Error(ErrorKind::Unsupported,
                    label + ": tokenizer.ggml.pre is \"" + preName +
                        "\"; the byte-level BPE pre-tokenizers supported are \"gpt-2\", \"llama-bpe\" (Llama 3) and "
                        "\"qwen2\" (Qwen 2, 2.5, 3); use the model's tokenizer.json instead (--tokenizer)");
    }
    const json* merges = findKey(meta, "tokenizer.ggml.merges");
    if (merges == nullptr || !merges->is_array())
        failInput(label, "tokenizer.ggml.merges is missing or not an array; a \"gpt2\" tokenizer needs its merges");
    return std::make_unique<GgufGpt2Tokenizer>(std::move(v), *merges, regex, ignoreMerges, label);
}

} // namespace novaq
