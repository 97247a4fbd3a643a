// Hugging Face tokenizer.json with a BPE model, encoded as HF tokenizers' encode(text,
// add_special_tokens=False) does:
//   1. added tokens (added_tokens[]) are cut out of the raw text, leftmost-longest first,
//      with the whitespace before (lstrip) or after (rstrip) them when they say so; their
//      single_word and normalized flags are not applied (false for every added token of the
//      Llama 3.1, Qwen3, Gemma 3 and Mistral tokenizers tests/data/tokenizers checks);
//   2. each remaining segment is normalized (Sequence / Prepend / Replace with a String pattern /
//      NFC);
//   3. pre-tokenized: ByteLevel (optional prefix space, the GPT-2 split, bytes -> the byte
//      alphabet), Metaspace (' ' -> '▁', prepend_scheme always/first/never, optional split
//      before each '▁'), Split on a String or on one of the regexes we know by heart (GPT-2's,
//      Llama 3's, Qwen2's: see text::knownSplitRegex), or a Sequence of those; none leaves the
//      segment one word;
//   4. each word goes through BPE::merge_word: characters become their tokens (or <0xNN> byte
//      tokens with byte_fallback, or <unk>, fused when fuse_unk), then merges apply by rank
//      (lowest first, leftmost on ties); ignore_merges takes a word that is a token whole.
// Anything else (WordPiece, Unigram, a Split regex we do not know, NFKC, ...) is refused with Error(Unsupported)
// naming the field, rather than tokenized approximately.
//
// BOS/EOS: tokenizer.json does not name them; the post_processor's template (a special token
// before/after $A) is used, then tokenizer_config.json's bos_token/eos_token beside the file,
// then special added tokens of the usual names (<s>, </s>, <|endoftext|>, ...).

#include "novaq/io/error.h"
#include "novaq/io/json.h"
#include "novaq/text/tokenizer_detail.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <initializer_list>

namespace novaq {

namespace {

using nlohmann::json;
using text::failInput;
using text::MergeCandidate;
using text::MergeSymbol;
using text::MergeTable;
using text::PieceType;
using text::StringIndex;
using text::StringTable;

[[noreturn]] void unsupported(const std::string& label, const std::string& what)
{
    throw Error(ErrorKind::Unsupported, label + ": " + what);
}

enum class PrependScheme { Always, First, Never };

// HF tokenizers' SplitDelimiterBehavior: what becomes of the matches of a Split.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct PreTokenizer {
    enum class Type { ByteLevel, Metaspace, Split } type = Type::ByteLevel;
    bool addPrefixSpace = false; // ByteLevel
    bool useRegex = true;        // ByteLevel
    std::string replacement = std::string(text::kSpaceSymbol);
    PrependScheme prepend = PrependScheme::Always;
    bool split = true; // Metaspace
    // Split: a literal pattern, or one of the regexes we match by hand.
    std::string literal;
    std::optional<text::SplitRegex> regex;
    SplitBehavior behavior = SplitBehavior::Isolated;
};

struct Normalizer {
    enum class Type { Prepend, Replace, Nfc } type = Type::Prepend;
    std::string a; // prepend text, or the pattern replaced
    std::string b; // the replacement
};

// An added token: matched in the raw text before anything else; lstrip / rstrip take the
// whitespace before / after it along (HF's AddedToken flags; Phi-3's chat tokens rstrip).
struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool lstrip = false;
    bool rstrip = false;
};

// A word of the pre-tokenized text with the offset of its segment (Metaspace "first").
struct Word {
    std::string text;
    bool atTextStart = false;
};

// token -> id of model.vocab and added_tokens, over the pieces by id (text::StringIndex). A
// token whose id an added token of other content took (byId[id] is that token's content) is
// an alias: it keeps its id for lookups, as it did when this was a std::unordered_map.
struct VocabLookup {
    StringIndex index; // values: ids below pieces.size(), then pieces.size() + alias number
    StringTable aliasKeys;
    std::vector<int32_t> aliasIds;

    int32_t find(const StringTable& pieces, std::string_view key) const noexcept
    {
        const size_t n = pieces.size();
        const int32_t v = index.find(key, [&](int32_t id) {
            const auto i = static_cast<size_t>(id);
            return i < n ? pieces[i] : aliasKeys[i - n];
        });
        return v < 0 || static_cast<size_t>(v) < n ? v : aliasIds[static_cast<size_t>(v) - n];
    }
};

class HfBpeTokenizer final : public text::VocabTokenizer {
public:
    struct Config {
        VocabLookup vocab;
        MergeTable merges;
        std::vector<AddedToken> added;
        std::vector<Normalizer> normalizers;
        std::vector<PreTokenizer> preTokenizers;
        bool byteFallback = false;
        bool fuseUnk = false;
        bool ignoreMerges = false;
        bool stripLeadingSpace = true; // decode: the decoder drops the first piece's leading space
        int32_t unk = -1;
    };

    HfBpeTokenizer(text::Vocabulary v, Config c, text::DecodeStyle style, std::string kind, const std::string& label)
        : VocabTokenizer(std::move(v), style, std::move(kind), label), m_c(std::move(c))
    {
        setStripLeadingSpace(m_c.stripLeadingSpace);
        for (int b = 0; b < 256; ++b)
            m_byteIds[static_cast<size_t>(b)] = vocabId(text::bytePieceName(static_cast<uint8_t>(b)));
        // Leftmost-longest matching: longer contents first at each position, bucketed by their
        // first byte (Gemma 3 has 6415 added tokens).
        std::stable_sort(m_c.added.begin(), m_c.added.end(),
                         [](const auto& x, const auto& y) { return x.content.size() > y.content.size(); });
        for (AddedToken& entry : m_c.added)
            if (!entry.content.empty())
                m_addedByFirstByte[static_cast<uint8_t>(entry.content.front())].push_back(std::move(entry));
        m_c.added = {}; // the buckets hold them now
        for (auto& bucket : m_addedByFirstByte)
            bucket.shrink_to_fit();
    }

    std::vector<int32_t> encode(std::string_view input, bool addBos) const override
    {
        std::vector<int32_t> ids;
        if (addBos && bos() >= 0)
            ids.push_back(bos());
        size_t segmentStart = 0;
        size_t pos = 0;
        auto flush = [&](size_t end) {
            if (end > segmentStart)
                encodeSegment(input.substr(segmentStart, end - segmentStart), segmentStart == 0, ids);
        };
        while (pos < input.size()) {
            const AddedToken* hit = nullptr;
            for (const AddedToken& token : m_addedByFirstByte[static_cast<uint8_t>(input[pos])]) {
                if (input.compare(pos, token.content.size(), token.content) == 0) {
                    hit = &token;
                    break;
                }
            }
            if (hit == nullptr) {
                ++pos;
                continue;
            }
            size_t segmentEnd = pos;
            if (hit->lstrip) { // the whitespace at the end of the text before goes with the token
                size_t lastKept = segmentStart;
                for (size_t at = segmentStart; at < pos;) {
                    char32_t cp = 0; // stays 0, not whitespace, for a malformed byte
                    at += std::max<size_t>(text::decodeUtf8(input, at, cp), 1);
                    if (!text::isWhitespace(cp))
                        lastKept = at;
                }
                segmentEnd = lastKept;
            }
            flush(segmentEnd);
            ids.push_back(hit->id);
            pos += hit->content.size();
            if (hit->rstrip) { // and so does the whitespace after it
                char32_t cp = 0;
                for (size_t n = text::decodeUtf8(input, pos, cp); n > 0 && text::isWhitespace(cp);
                     n = text::decodeUtf8(input, pos, cp))
                    pos += n;
            }
            segmentStart = pos;
        }
        flush(input.size());
        return ids;
    }

private:
    int32_t vocabId(std::string_view token) const noexcept { return m_c.vocab.find(vocab().pieces, token); }

    void encodeSegment(std::string_view segment, bool atTextStart, std::vector<int32_t>& ids) const
    {
        std::string normalized(segment);
        for (const Normalizer& n : m_c.normalizers) {
            if (n.type == Normalizer::Type::Prepend) {
                if (!normalized.empty())
                    normalized = n.a + normalized;
            } else if (n.type == Normalizer::Type::Nfc) {
                normalized = text::nfc(normalized);
            } else {
                normalized = text::replaceAll(normalized, n.a, n.b);
            }
        }
        std::vector<Word> words{{std::move(normalized), atTextStart}};
        for (const PreTokenizer& p : m_c.preTokenizers)
            words = preTokenize(p, std::move(words));
        for (const Word& w : words)
            if (!w.text.empty())
                encodeWord(w.text, ids);
    }

    static std::vector<Word> preTokenize(const PreTokenizer& p, std::vector<Word> words)
    {
        std::vector<Word> out;
        for (Word& w : words) {
            if (p.type == PreTokenizer::Type::Split) {
                splitWord(p, std::move(w), out);
                continue;
            }
            if (p.type == PreTokenizer::Type::ByteLevel) {
                if (p.addPrefixSpace && (w.text.empty() || w.text.front() != ' '))
                    w.text.insert(w.text.begin(), ' ');
                auto toByteLevel = [](std::string_view s) {
                    std::string mapped;
                    for (const char c : s)
                        mapped += text::byteLevelChar(static_cast<uint8_t>(c));
                    return mapped;
                };
                if (!p.useRegex) {
                    out.push_back({toByteLevel(w.text), w.atTextStart});
                    continue;
                }
                const std::u32string cps = text::toCodePoints(w.text);
                for (const auto& [begin, end] : text::gpt2Split(cps)) {
                    std::string utf8;
                    for (size_t k = begin; k < end; ++k)
                        text::appendUtf8(utf8, cps[k]);
                    out.push_back({toByteLevel(utf8), w.atTextStart});
                }
                continue;
            }
            std::string t = text::replaceAll(w.text, " ", p.replacement);
            const bool prepend =
                p.prepend == PrependScheme::Always || (p.prepend == PrependScheme::First && w.atTextStart);
            if (prepend && !t.starts_with(p.replacement))
                t = p.replacement + t;
            if (!p.split) {
                out.push_back({std::move(t), w.atTextStart});
                continue;
            }
            // SplitDelimiterBehavior::MergedWithNext: each '▁' starts a new word.
            size_t start = 0;
            for (size_t at = t.find(p.replacement, 1); at != std::string::npos; at = t.find(p.replacement, at + 1)) {
                out.push_back({t.substr(start, at - start), w.atTextStart});
                start = at;
            }
            out.push_back({t.substr(start), w.atTextStart});
        }
        return out;
    }

    void encodeWord(const std::string& w, std::vector<int32_t>& ids) const
    {
        if (m_c.ignoreMerges) {
            if (const int32_t id = vocabId(w); id >= 0) {
                ids.push_back(id);
                return;
            }
        }
        // merge_word(): the symbols' ids; spans are only used by the merger's bookkeeping.
        std::vector<MergeSymbol> symbols;
        int32_t pendingUnk = -1;
        uint32_t pendingUnkLength = 0;
        uint32_t position = 0;
        auto add = [&](int32_t id, uint32_t length) {
            MergeSymbol s;
            s.id = id;
            s.begin = position;
            s.length = length;
            position += length;
            symbols.push_back(s);
        };
        auto flushUnk = [&] {
            if (pendingUnk >= 0)
                add(pendingUnk, pendingUnkLength);
            pendingUnk = -1;
        };
        for (size_t pos = 0; pos < w.size();) {
            char32_t cp = 0;
            size_t n = text::decodeUtf8(w, pos, cp);
            if (n == 0)
                n = 1;
            const std::string_view ch = std::string_view(w).substr(pos, n);
            pos += n;
            if (const int32_t id = vocabId(ch); id >= 0) {
                flushUnk();
                add(id, static_cast<uint32_t>(n));
                continue;
            }
            if (m_c.byteFallback) {
                bool all = true;
                for (const char c : ch)
                    all = all && m_byteIds[static_cast<uint8_t>(c)] >= 0;
                if (all) {
                    // Like the reference, a fused <unk> waiting is not flushed here.
                    for (const char c : ch)
                        add(m_byteIds[static_cast<uint8_t>(c)], 1);
                    continue;
                }
            }
            if (m_c.unk >= 0) {
                if (pendingUnk >= 0 && m_c.fuseUnk) {
                    pendingUnkLength += static_cast<uint32_t>(n);
                } else {
                    flushUnk();
                    pendingUnk = m_c.unk;
                    pendingUnkLength = static_cast<uint32_t>(n);
                }
            }
            // No unk token: the character is dropped, as the reference does.
        }
        flushUnk();
        text::linkSymbols(symbols);
        text::PairMerger merger;
        merger.run(symbols,
                   [&](const std::vector<MergeSymbol>& sym, int32_t l, int32_t r) -> std::optional<MergeCandidate> {
                       const MergeTable::Merge m =
                           m_c.merges.find(sym[static_cast<size_t>(l)].id, sym[static_cast<size_t>(r)].id);
                       if (m.rank < 0)
                           return std::nullopt;
                       return MergeCandidate{-static_cast<double>(m.rank), m.merged};
                   });
        for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<size_t>(i)].next)
            ids.push_back(symbols[static_cast<size_t>(i)].id);
    }

    // Split: the matches of the pattern as byte ranges of the word, then the pieces its
    // behavior makes of matches and the text between them (empty pieces are dropped).
    static void splitWord(const PreTokenizer& p, Word w, std::vector<Word>& out)
    {
        std::vector<std::pair<size_t, size_t>> matches;
        if (p.regex) {
            const std::u32string cps = text::toCodePoints(w.text);
            std::string utf8; // re-encoded, so that malformed bytes (now U+FFFD) keep offsets right
            std::vector<size_t> offset;
            offset.reserve(cps.size() + 1);
            for (const char32_t cp : cps) {
                offset.push_back(utf8.size());
                text::appendUtf8(utf8, cp);
            }
            offset.push_back(utf8.size());
            w.text = std::move(utf8);
            for (const auto& [begin, end] : text::regexSplit(cps, *p.regex))
                matches.emplace_back(offset[begin], offset[end]);
        } else {
            for (size_t at = w.text.find(p.literal); at != std::string::npos && !p.literal.empty();
                 at = w.text.find(p.literal, at + p.literal.size()))
                matches.emplace_back(at, at + p.literal.size());
        }
        std::vector<std::pair<size_t, size_t>> pieces;
        size_t pos = 0;
        size_t lastMatchEnd = std::string::npos;
        for (const auto& [begin, end] : matches) {
            switch (p.behavior) {
            case SplitBehavior::Removed:
                pieces.emplace_back(pos, begin);
                break;
            case SplitBehavior::Isolated:
                pieces.emplace_back(pos, begin);
                pieces.emplace_back(begin, end);
                break;
            case SplitBehavior::MergedWithPrevious:
                pieces.emplace_back(pos, end);
                break;
            case SplitBehavior::MergedWithNext:
                pieces.emplace_back(pos, begin);
                pos = begin;
                continue;
            case SplitBehavior::Contiguous:
                if (begin == lastMatchEnd) {
                    pieces.back().second = end; // a match right after a match extends it
                } else {
                    pieces.emplace_back(pos, begin);
                    pieces.emplace_back(begin, end);
                }
                lastMatchEnd = end;
                break;
            }
            pos = end;
        }
        pieces.emplace_back(pos, w.text.size());
        for (const auto& [begin, end] : pieces)
            if (end > begin)
                out.push_back({w.text.substr(begin, end - begin), w.atTextStart});
    }

    Config m_c;
    std::array<int32_t, 256> m_byteIds{};
    std::array<std::vector<AddedToken>, 256> m_addedByFirstByte;
};

// ---------------------------------------------------------------------------------------
// Parsing

const json& member(const json& object, const char* key, const std::string& label, const std::string& path)
{
    const auto it = object.find(key);
    if (it == object.end())
        failInput(label, path + "." + key + " is missing");
    return *it;
}

bool boolOr(const json& object, const char* key, bool fallback, const std::string& label, const std::string& path)
{
    const auto it = object.find(key);
    if (it == object.end() || it->is_null())
        return fallback;
    if (!it->is_boolean())
        failInput(label, path + "." + key + " is a " + it->type_name() + "; it must be true or false");
    return it->get<bool>();
}

std::string stringOr(const json& object, const char* key, const std::string& fallback, const std::string& label,
                     const std::string& path)
{
    const auto it = object.find(key);
    if (it == object.end() || it->is_null())
        return fallback;
    if (!it->is_string())
        failInput(label, path + "." + key + " is a " + it->type_name() + "; it must be a string");
    return it->get<std::string>();
}

void parseNormalizer(const json& n, const std::string& label, const std::string& path, std::vector<Normalizer>& out)
{
    if (n.is_null())
        return;
    if (!n.is_object())
        failInput(label, path + " is a " + std::string(n.type_name()) + "; it must be an object or null");
    const std::string type = stringOr(n, "type", "", label, path);
    if (type == "Sequence") {
        const json& list = member(n, "normalizers", label, path);
        if (!list.is_array())
            failInput(label, path + ".normalizers must be an array");
        for (size_t i = 0; i < list.size(); ++i)
            parseNormalizer(list[i], label, path + ".normalizers[" + std::to_string(i) + "]", out);
    } else if (type == "NFC") {
        out.push_back({Normalizer::Type::Nfc, {}, {}});
    } else if (type == "Prepend") {
        out.push_back({Normalizer::Type::Prepend, stringOr(n, "prepend", "", label, path), {}});
    } else if (type == "Replace") {
        const json& pattern = member(n, "pattern", label, path);
        if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string())
            unsupported(label, path + ".pattern is " + pattern.dump() +
                                   "; only {\"String\": ...} patterns are supported (not Regex)");
        out.push_back(
            {Normalizer::Type::Replace, pattern["String"].get<std::string>(), stringOr(n, "content", "", label, path)});
    } else {
        unsupported(label, path + ".type is \"" + type +
                               "\"; the normalizers supported are Sequence, Prepend, Replace (with a String "
                               "pattern) and NFC");
    }
}

void parsePreTokenizer(const json& p, const std::string& label, const std::string& path, std::vector<PreTokenizer>& out)
{
    if (p.is_null())
        return;
    if (!p.is_object())
        failInput(label, path + " is a " + std::string(p.type_name()) + "; it must be an object or null");
    const std::string type = stringOr(p, "type", "", label, path);
    PreTokenizer t;
    if (type == "Sequence") {
        const json& list = member(p, "pretokenizers", label, path);
        if (!list.is_array())
            failInput(label, path + ".pretokenizers must be an array");
        for (size_t i = 0; i < list.size(); ++i)
            parsePreTokenizer(list[i], label, path + ".pretokenizers[" + std::to_string(i) + "]", out);
        return;
    }
    if (type == "ByteLevel") {
        t.type = PreTokenizer::Type::ByteLevel;
        t.addPrefixSpace = boolOr(p, "add_prefix_space", true, label, path);
        t.useRegex = boolOr(p, "use_regex", true, label, path);
    } else if (type == "Metaspace") {
        t.type = PreTokenizer::Type::Metaspace;
        t.replacement = stringOr(p, "replacement", std::string(text::kSpaceSymbol), label, path);
        if (t.replacement.empty())
            failInput(label, path + ".replacement is empty");
        t.split = boolOr(p, "split", true, label, path);
        if (p.contains("prepend_scheme") && !p["prepend_scheme"].is_null()) {
            const std::string scheme = stringOr(p, "prepend_scheme", "always", label, path);
            if (scheme == "always")
                t.prepend = PrependScheme::Always;
            else if (scheme == "first")
                t.prepend = PrependScheme::First;
            else if (scheme == "never")
                t.prepend = PrependScheme::Never;
            else
                failInput(label, path + ".prepend_scheme is \"" + scheme + "\"; expected always, first or never");
        } else {
            // Files older than prepend_scheme say add_prefix_space.
            t.prepend = boolOr(p, "add_prefix_space", true, label, path) ? PrependScheme::Always : PrependScheme::Never;
        }
    } else if (type == "Split") {
        t.type = PreTokenizer::Type::Split;
        const json& pattern = member(p, "pattern", label, path);
        if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
            t.literal = pattern["String"].get<std::string>();
        } else if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
            const std::string regex = pattern["Regex"].get<std::string>();
            t.regex = text::knownSplitRegex(regex);
            if (!t.regex)
                unsupported(label, path + ".pattern.Regex is " + json(regex).dump() +
                                       "; the Split regexes supported are GPT-2's, Llama 3's and Qwen2's, exactly as "
                                       "their tokenizer.json files spell them");
        } else {
            failInput(label,
                      path + ".pattern is " + pattern.dump() + "; expected {\"String\": ...} or {\"Regex\": ...}");
        }
        if (boolOr(p, "invert", false, label, path))
            unsupported(label, path + ".invert is true; only Split without invert is supported");
        const std::string behavior = stringOr(p, "behavior", "", label, path);
        static const std::pair<const char*, SplitBehavior> kBehaviors[] = {
            {"Removed", SplitBehavior::Removed},
            {"Isolated", SplitBehavior::Isolated},
            {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
            {"MergedWithNext", SplitBehavior::MergedWithNext},
            {"Contiguous", SplitBehavior::Contiguous}};
        bool known = false;
        for (const auto& [name, value] : kBehaviors) {
            if (behavior == name) {
                t.behavior = value;
                known = true;
            }
        }
        if (!known)
            failInput(label, path + ".behavior is \"" + behavior +
                                 "\"; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
    } else {
        unsupported(label, path + ".type is \"" + type +
                               "\"; the pre-tokenizers supported are ByteLevel, Metaspace, Split and a Sequence of "
                               "them");
    }
    out.push_back(t);
}

// obj["type"] when it is a string, else "": these parts (post_processor, decoder) are only
// looked at, never required, and json::value("type", "") throws for a type that is not a string.
std::string optionalType(const json& obj)
{
    const auto it = obj.find("type");
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Whether a decoder drops the leading space of the text: a Strip step with start >= 1, or a
// Metaspace decoder that prepends (Llama 2's has the first, Gemma's neither: its decode keeps
// the space).
bool decoderStripsLeadingSpace(const json& decoder)
{
    if (!decoder.is_object())
        return false;
    const std::string type = optionalType(decoder);
    if (type == "Sequence") {
        const auto it = decoder.find("decoders");
        if (it == decoder.end() || !it->is_array())
            return false;
        return std::any_of(it->begin(), it->end(), [](const json& d) { return decoderStripsLeadingSpace(d); });
    }
    if (type == "Strip") {
        const auto it = decoder.find("start");
        return it != decoder.end() && it->is_number_integer() && it->get<int64_t>() >= 1;
    }
    if (type == "Metaspace") {
        const auto scheme = decoder.find("prepend_scheme");
        if (scheme != decoder.end() && scheme->is_string())
            return scheme->get<std::string>() != "never";
        const auto prefix = decoder.find("add_prefix_space");
        return prefix == decoder.end() || !prefix->is_boolean() || prefix->get<bool>();
    }
    return false;
}

// The token a TemplateProcessing post-processor puts before (front) or after (back) $A.
std::optional<std::string> templateSpecial(const json& post, bool front)
{
    if (!post.is_object() || optionalType(post) != "TemplateProcessing")
        return std::nullopt;
    const auto it = post.find("single");
    if (it == post.end() || !it->is_array() || it->empty())
        return std::nullopt;
    const json& item = front ? it->front() : it->back();
    if (item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object() &&
        item["SpecialToken"].contains("id") && item["SpecialToken"]["id"].is_string())
        return item["SpecialToken"]["id"].get<std::string>();
    return std::nullopt;
}

// bos_token / eos_token of tokenizer_config.json beside the file (a string or {"content": ...}).
std::optional<std::string> configToken(const std::filesystem::path& dir, const char* key)
{
    const std::filesystem::path path = dir / "tokenizer_config.json";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return std::nullopt;
    json config; // a malformed tokenizer_config.json is ignored, as a missing one
    try {
        const std::vector<std::byte> bytes = text::readFileBytes(path);
        config = parseJsonStrict({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, path, 0,
                                 "tokenizer_config.json");
    } catch (const Error&) {
    }
    if (!config.is_object() || !config.contains(key))
        return std::nullopt;
    const json& v = config[key];
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
        return v["content"].get<std::string>();
    return std::nullopt;
}

// The BPE model of a tokenizer.json root (other model types and subword affixes are not supported).
const json& bpeModel(const json& root, const std::string& label)
{
    if (!root.is_object())
        failInput(label, "the top level is not a JSON object; this is not a tokenizer.json");
    const json& model = member(root, "model", label, "tokenizer");
    if (!model.is_object())
        failInput(label, "tokenizer.model is a " + std::string(model.type_name()) + "; it must be an object");
    const std::string type = stringOr(model, "type", "", label, "model");
    if (type != "BPE")
        unsupported(label, "model.type is \"" + type +
                               "\"; only BPE tokenizer.json files are supported (WordPiece, WordLevel and Unigram are "
                               "not)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (!stringOr(model, key, "", label, "model").empty())
            unsupported(label, std::string("model.") + key + " is set; BPE with subword affixes is not supported");
    return model;
}

// The tokens of model.vocab, then those of added_tokens, in file order: each the JSON tree's
// string and its id. Loading only; the tables kept are made from them.
struct TokenEntry {
    const std::string* token;
    int32_t id;
};

struct Tokens {
    std::vector<TokenEntry> entries;
    std::vector<std::pair<int32_t, bool>> special; // (id, special) of each added token, in order
    std::vector<int8_t> specialById;               // by id: 1 special added token, 0 not, -1 no added token
};

// model.vocab into t.entries.
void readVocab(const json& model, const std::string& label, Tokens& t)
{
    const json& vocab = member(model, "vocab", label, "model");
    if (!vocab.is_object() || vocab.empty())
        failInput(label, "model.vocab must be a non-empty object of token -> id");
    t.entries.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const json& id = it.value();
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (int64_t{1} << 30))
            failInput(label, "model.vocab[\"" + it.key() + "\"] is " + id.dump() + "; ids must be integers >= 0");
        t.entries.push_back({&it.key(), static_cast<int32_t>(id.get<int64_t>())});
    }
}

// added_tokens into t.entries, t.special and `added`.
void readAddedTokens(const json& root, const std::string& label, Tokens& t, std::vector<AddedToken>& added)
{
    if (const auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
        if (!it->is_array())
            failInput(label, "added_tokens must be an array");
        for (size_t i = 0; i < it->size(); ++i) {
            const json& a = (*it)[i];
            const std::string where = "added_tokens[" + std::to_string(i) + "]";
            if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
                !a.contains("content") || !a["content"].is_string())
                failInput(label, where + " must be an object with an integer id and a string content");
            // The same bound as model.vocab's ids (the vocabulary size is the largest id + 1).
            if (a["id"].get<int64_t>() > (int64_t{1} << 30))
                failInput(label, where + ".id is " + a["id"].dump() + "; ids must be at most 2^30");
            const auto id = static_cast<int32_t>(a["id"].get<int64_t>());
            const std::string& content = a["content"].get_ref<const std::string&>();
            t.entries.push_back({&content, id});
            added.push_back(
                {content, id, boolOr(a, "lstrip", false, label, where), boolOr(a, "rstrip", false, label, where)});
            t.special.emplace_back(id, boolOr(a, "special", false, label, where));
        }
    }
}

// The pieces by id (the last token given an id; no holes allowed), their types and c.vocab;
// sets c's byte fallback, fuse_unk, ignore_merges and unknown token from the model.
text::Vocabulary pieceTable(const json& model, const std::string& label, Tokens& t, HfBpeTokenizer::Config& c)
{
    const std::vector<TokenEntry>& entries = t.entries;
    int32_t maxId = 0;
    for (const TokenEntry& e : entries)
        maxId = std::max(maxId, e.id);
    const size_t size = static_cast<size_t>(maxId) + 1;
    auto holes = [&](size_t distinct) {
        failInput(label, "model.vocab and added_tokens use ids up to " + std::to_string(maxId) + " but only " +
                             std::to_string(distinct) + " distinct ids; the vocabulary has holes");
    };
    if (size > entries.size()) { // holes for sure; count the distinct ids without a table of them all
        std::vector<int32_t> ids;
        ids.reserve(entries.size());
        for (const TokenEntry& e : entries)
            ids.push_back(e.id);
        std::sort(ids.begin(), ids.end());
        holes(static_cast<size_t>(std::unique(ids.begin(), ids.end()) - ids.begin()));
    }
    std::vector<int32_t> lastEntry(size, -1); // as byId[id] = token: the last token of an id wins
    for (size_t i = 0; i < entries.size(); ++i)
        lastEntry[static_cast<size_t>(entries[i].id)] = static_cast<int32_t>(i);
    if (const auto distinct = static_cast<size_t>(size - std::count(lastEntry.begin(), lastEntry.end(), -1));
        distinct != size)
        holes(distinct);

    text::Vocabulary v;
    size_t bytes = 0;
    for (const int32_t e : lastEntry)
        bytes += entries[static_cast<size_t>(e)].token->size();
    v.pieces.reserve(size, bytes);
    for (const int32_t e : lastEntry)
        v.pieces.push_back(*entries[static_cast<size_t>(e)].token);
    lastEntry = {};

    // token -> id with the last entry of a token winning (c.vocab[token] = id, entry by entry):
    // first over the entries, then each value turned into its id, or an alias when another
    // token holds that id's piece (see VocabLookup).
    c.vocab.index.reset(entries.size());
    const auto entryKey = [&](int32_t e) { return std::string_view(*entries[static_cast<size_t>(e)].token); };
    for (size_t i = 0; i < entries.size(); ++i)
        c.vocab.index.insert(*entries[i].token, static_cast<int32_t>(i), entryKey, true);
    c.vocab.index.remapValues([&](int32_t e) {
        const TokenEntry& entry = entries[static_cast<size_t>(e)];
        if (v.pieces[static_cast<size_t>(entry.id)] == *entry.token)
            return entry.id;
        c.vocab.aliasKeys.push_back(*entry.token);
        c.vocab.aliasIds.push_back(entry.id);
        return static_cast<int32_t>(size + c.vocab.aliasIds.size() - 1);
    });

    v.types.assign(size, PieceType::Normal);
    c.byteFallback = boolOr(model, "byte_fallback", false, label, "model");
    c.fuseUnk = boolOr(model, "fuse_unk", false, label, "model");
    c.ignoreMerges = boolOr(model, "ignore_merges", false, label, "model");
    const std::string unkToken = stringOr(model, "unk_token", "", label, "model");
    if (!unkToken.empty()) {
        c.unk = c.vocab.find(v.pieces, unkToken);
        if (c.unk < 0)
            failInput(label, "model.unk_token \"" + unkToken + "\" is not in the vocabulary");
        v.unk = c.unk;
        v.types[static_cast<size_t>(c.unk)] = PieceType::Unknown;
    }
    for (size_t i = 0; i < v.pieces.size(); ++i)
        if (c.byteFallback && text::parseBytePiece(v.pieces[i]) >= 0)
            v.types[i] = PieceType::Byte;
    // Special added tokens, the unknown token among them, decode to nothing, as HF's
    // decode(skip_special_tokens=True) does (Gemma 3, Mistral: "<unk>" is a special added token).
    t.specialById.assign(size, -1);
    for (const auto& [id, special] : t.special) // the last flag given an id wins
        t.specialById[static_cast<size_t>(id)] = special ? 1 : 0;
    for (size_t id = 0; id < size; ++id)
        if (t.specialById[id] == 1)
            v.types[id] = PieceType::Control;
    return v;
}

// model.merges into c.merges, ranked by position (the first of equal pairs wins).
void readMerges(const json& model, const std::string& label, const StringTable& pieces, HfBpeTokenizer::Config& c)
{
    const json& merges = member(model, "merges", label, "model");
    if (!merges.is_array())
        failInput(label, "model.merges must be an array");
    std::vector<MergeTable::Raw> raw;
    raw.reserve(merges.size());
    std::string left;
    std::string right;
    std::string both;
    for (size_t i = 0; i < merges.size(); ++i) {
        const json& m = merges[i];
        if (m.is_string()) {
            const std::string& line = m.get_ref<const std::string&>();
            const size_t space = line.find(' ');
            if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
                failInput(label, "model.merges[" + std::to_string(i) + "] \"" + line +
                                     "\" is not two tokens separated by one space");
            left.assign(line, 0, space);
            right.assign(line, space + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            left = m[0].get_ref<const std::string&>();
            right = m[1].get_ref<const std::string&>();
        } else {
            failInput(label, "model.merges[" + std::to_string(i) + "] is " + m.dump() +
                                 "; merges are \"left right\" strings or [left, right] pairs");
        }
        both.assign(left);
        both += right;
        const int32_t l = c.vocab.find(pieces, left);
        const int32_t r = c.vocab.find(pieces, right);
        const int32_t merged = c.vocab.find(pieces, both);
        if (l < 0 || r < 0 || merged < 0)
            failInput(label, "model.merges[" + std::to_string(i) + "] merges \"" + left + "\" and \"" + right +
                                 "\", but the vocabulary lacks " +
                                 (l < 0   ? left
                                  : r < 0 ? right
                                          : both));
        raw.push_back({l, r, static_cast<int32_t>(i), merged});
    }
    c.merges = MergeTable(std::move(raw), pieces.size()); // the first rank of a pair wins
}

// The normalizers and pre-tokenizers into c; returns whether the pipeline is byte-level.
bool readPipeline(const json& root, const std::string& label, HfBpeTokenizer::Config& c)
{
    if (const auto it = root.find("normalizer"); it != root.end())
        parseNormalizer(*it, label, "normalizer", c.normalizers);
    if (const auto it = root.find("pre_tokenizer"); it != root.end())
        parsePreTokenizer(*it, label, "pre_tokenizer", c.preTokenizers);

    bool byteLevel = false;
    for (const PreTokenizer& p : c.preTokenizers)
        byteLevel = byteLevel || p.type == PreTokenizer::Type::ByteLevel;
    if (const auto it = root.find("decoder"); it != root.end() && it->is_object()) {
        byteLevel = byteLevel || optionalType(*it) == "ByteLevel";
        c.stripLeadingSpace = decoderStripsLeadingSpace(*it);
    }
    return byteLevel;
}

// BOS and EOS: from the post-processor's template, tokenizer_config.json beside the file,
// or, last, the usual names among the special added tokens.
void findBosEos(const json& root, const std::filesystem::path& dir, const HfBpeTokenizer::Config& c,
                const std::vector<int8_t>& specialById, text::Vocabulary& v)
{
    const json post = root.value("post_processor", json());
    auto idOf = [&](const std::optional<std::string>& token) -> int32_t {
        if (!token)
            return -1;
        return c.vocab.find(v.pieces, *token);
    };
    v.bos = idOf(templateSpecial(post, true));
    if (v.bos < 0)
        v.bos = idOf(configToken(dir, "bos_token"));
    v.eos = idOf(configToken(dir, "eos_token"));
    if (v.eos < 0) {
        const auto back = templateSpecial(post, false);
        v.eos = back && back != templateSpecial(post, true) ? idOf(back) : -1;
    }
    // Last resort: the usual names among the special added tokens.
    auto specialNamed = [&](std::initializer_list<const char*> names) -> int32_t {
        for (const char* name : names)
            for (const AddedToken& t : c.added)
                if (t.content == name && specialById[static_cast<size_t>(t.id)] == 1)
                    return t.id;
        return -1;
    };
    if (v.bos < 0)
        v.bos = specialNamed({"<s>", "<|begin_of_text|>", "<bos>"});
    if (v.eos < 0)
        v.eos = specialNamed({"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"});
}

} // namespace

std::unique_ptr<Tokenizer> loadHfTokenizerJson(const std::filesystem::path& path)
{
    const std::string label = path.string();
    // The JSON tree (about 10 MB for a 32,000-entry vocabulary, 60 MB for 150,000) and the token
    // list go once loaded; the tables kept are flat (text::StringTable, text::StringIndex,
    // MergeTable): a few large blocks, so once the tree is freed its pages are whole free
    // chunks that malloc_trim gives back (openRunnable). The tree used to be parsed on a thread
    // of its own (glibc's heap of that thread) to keep the node-based tables of the time from
    // pinning its pages; with flat tables that made things worse: the thread's heap, all free,
    // ends up mostly its top chunk, which malloc_trim does not return for a thread's heap
    // (measured after malloc_trim on Qwen3's tokenizer.json: 37 MB more resident with the
    // thread for 6.1 MB kept, 6.8 MB more without it).
    struct Parsed {
        json root;
        Tokens tokens;
        std::vector<AddedToken> added;
    } p;
    {
        const std::vector<std::byte> bytes = text::readFileBytes(path);
        p.root =
            parseJsonStrict({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, path, 0, "tokenizer.json");
    }
    readVocab(bpeModel(p.root, label), label, p.tokens);
    readAddedTokens(p.root, label, p.tokens, p.added);
    const json& root = p.root;
    const json& model = bpeModel(root, label);
    HfBpeTokenizer::Config c;
    c.added = std::move(p.added);
    text::Vocabulary v = pieceTable(model, label, p.tokens, c);
    p.tokens.entries = {};
    readMerges(model, label, v.pieces, c);
    const bool byteLevel = readPipeline(root, label, c);
    findBosEos(root, path.parent_path(), c, p.tokens.specialById, v);

    std::string kind = byteLevel ? "bpe-byte-level" : c.byteFallback ? "bpe-byte-fallback" : "bpe";
    const text::DecodeStyle style = byteLevel ? text::DecodeStyle::ByteLevel : text::DecodeStyle::Metaspace;
    return std::make_unique<HfBpeTokenizer>(std::move(v), std::move(c), style, std::move(kind), label);
}

} // namespace novaq
