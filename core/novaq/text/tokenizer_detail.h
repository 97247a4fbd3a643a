#pragma once
// Internals shared by the tokenizers of core/novaq/text: UTF-8 and Unicode classes, the
// vocabulary every tokenizer carries (pieces, types, specials) with its decoders, and the
// pair-merging engine every BPE flavour runs (SentencePiece, llama.cpp, llama2.c, GPT-2, HF).

#include "novaq/io/utf8.h"
#include "novaq/text/tokenizer.h"

#include <queue>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
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
// Token types as SentencePiece's ModelProto and GGUF's tokenizer.ggml.token_type number them.
enum class PieceType : uint8_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// How ids become text.
enum class DecodeStyle {
    Metaspace, // '▁' -> ' ', <0xNN> -> byte, leading space of the first piece dropped
    Llama2c,   // pieces carry ' ' already; <0xNN> -> byte; leading space of the first piece dropped
    ByteLevel, // each character -> the byte it stands for (GPT-2)
};

// ---------------------------------------------------------------------------------------
// Flat string tables (tokenizer_common.cpp)

// Strings by index, their bytes side by side in one buffer with an offset each: a vocabulary's
// pieces cost their bytes plus 4 bytes each (a std::string each was 32 bytes, plus a heap
// block for those over 15 bytes).
class StringTable {
public:
    void reserve(size_t count, size_t bytes);
    void push_back(std::string_view s); // Error(InvalidInput) past 4 GiB of text in all
    size_t size() const noexcept { return m_offsets.empty() ? 0 : m_offsets.size() - 1; }
    bool empty() const noexcept { return size() == 0; }
    std::string_view operator[](size_t i) const noexcept
    {
        return {m_bytes.data() + m_offsets[i], m_offsets[i + 1] - m_offsets[i]};
    }
    void shrinkToFit();
    size_t memoryBytes() const noexcept { return m_bytes.capacity() + m_offsets.capacity() * sizeof(uint32_t); }

private:
    std::vector<char> m_bytes;
    std::vector<uint32_t> m_offsets; // size() + 1 once a string is in: [i, i + 1) is string i
};

// An open-addressing hash table (linear probing) of int32 values >= 0 keyed by strings that
// live elsewhere: keyOf(value) is the key a stored value stands for (for a vocabulary, the
// piece of an id), so a slot is 8 bytes (32 bits of the key's hash and the value) and keys are
// not stored twice. Written by hand because no library Debian packages gives a flat
// string -> int map with lookups by string_view: std::unordered_map allocates a node per entry
// (about 48 bytes with the std::string key, plus the key's own block when over 15 bytes) and
// a bucket array, which for a 128k vocabulary is megabytes held for the process's life.
// The table is kept at most 3/4 full; slots are found from the hash by multiply-shift, so its
// size need not be a power of two.
class StringIndex {
public:
    // Empties the table and sizes it for `count` keys (it grows past that as needed).
    void reset(size_t count);
    size_t size() const noexcept { return m_count; }
    bool empty() const noexcept { return m_count == 0; }
    size_t memoryBytes() const noexcept { return m_slots.capacity() * sizeof(Slot); }

    // The value stored for `key`, or -1.
    template <class KeyOf>
    int32_t find(std::string_view key, const KeyOf& keyOf) const noexcept
    {
        if (m_slots.empty())
            return -1;
        const uint64_t h = hash(key);
        const auto tag = static_cast<uint32_t>(h >> 32);
        for (size_t at = home(h);; at = next(at)) {
            const Slot& s = m_slots[at];
            if (s.value < 0)
                return -1;
            if (s.tag == tag && keyOf(s.value) == key)
                return s.value;
        }
    }

    // Stores key -> value (value >= 0); when the key is there already, its value stays
    // (replace = false) or becomes `value` (replace = true). Returns the value the key had, or -1.
    template <class KeyOf>
    int32_t insert(std::string_view key, int32_t value, const KeyOf& keyOf, bool replace)
    {
        if ((m_count + 1) * 4 > m_slots.size() * 3)
            grow(keyOf);
        const uint64_t h = hash(key);
        const auto tag = static_cast<uint32_t>(h >> 32);
        for (size_t at = home(h);; at = next(at)) {
            Slot& s = m_slots[at];
            if (s.value < 0) {
                s = {tag, value};
                ++m_count;
                return -1;
            }
            if (s.tag == tag && keyOf(s.value) == key) {
                const int32_t before = s.value;
                if (replace)
                    s.value = value;
                return before;
            }
        }
    }

    // Replaces each stored value v by f(v); f must keep each value's key (keyOf(f(v)) after
    // equal to keyOf(v) before) and return values >= 0.
    template <class F>
    void remapValues(const F& f)
    {
        for (Slot& s : m_slots)
            if (s.value >= 0)
                s.value = f(s.value);
    }

    static uint64_t hash(std::string_view key) noexcept { return std::hash<std::string_view>{}(key); }

private:
    struct Slot {
        uint32_t tag = 0;
        int32_t value = -1; // -1: empty
    };
    size_t home(uint64_t h) const noexcept
    {
        return static_cast<size_t>((static_cast<uint64_t>(static_cast<uint32_t>(h)) * m_slots.size()) >> 32);
    }
    size_t next(size_t at) const noexcept { return at + 1 == m_slots.size() ? 0 : at + 1; }
    template <class KeyOf>
    void grow(const KeyOf& keyOf)
    {
        std::vector<Slot> old = std::move(m_slots);
        m_slots.assign(std::max<size_t>(16, (m_count + 1) * 2), Slot{});
        for (const Slot& s : old) {
            if (s.value < 0)
                continue;
            size_t at = home(hash(keyOf(s.value)));
            while (m_slots[at].value >= 0)
                at = next(at);
            m_slots[at] = s;
        }
    }

    std::vector<Slot> m_slots;
    size_t m_count = 0;
};

// The ids of strings of a StringTable (an id is the string's index): a vocabulary's lookup.
class PieceIndex {
public:
    void reset(size_t count) { m_index.reset(count); }
    size_t size() const noexcept { return m_index.size(); }
    bool empty() const noexcept { return m_index.empty(); }
    size_t memoryBytes() const noexcept { return m_index.memoryBytes(); }
    // The id of `key` among `pieces`, or -1.
    int32_t find(const StringTable& pieces, std::string_view key) const noexcept
    {
        return m_index.find(key, [&](int32_t id) { return pieces[static_cast<size_t>(id)]; });
    }
    // Adds pieces[id]; when an equal piece is there already, its id stays (replace = false) or
    // becomes `id` (replace = true). Returns the id the piece had, or -1.
    int32_t insert(const StringTable& pieces, int32_t id, bool replace)
    {
        return m_index.insert(
            pieces[static_cast<size_t>(id)], id, [&](int32_t v) { return pieces[static_cast<size_t>(v)]; }, replace);
    }

private:
    StringIndex m_index;
};

// ---------------------------------------------------------------------------------------
// Vocabulary

struct Vocabulary {
    StringTable pieces;
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

// A BPE model's merges by pair of ids (HF tokenizer.json): for each left id, the merges it
// starts sorted by right id (a binary search finds one). A merge is 8 bytes, (right, rank,
// merged) packed in 22 + 20 + 22 bits, when every id is below 2^22 and every rank below 2^20
// (Llama 3: 128,256 ids and 280,147 merges; Gemma 3: 262,145 and 514,906), else 12; plus 4
// bytes a vocabulary entry. A std::unordered_map was a 32-byte node a merge plus buckets.
class MergeTable {
public:
    struct Merge {
        int32_t rank = -1; // -1: no such merge
        int32_t merged = -1;
    };
    // (left, right, rank, merged) in any order; the first rank of a pair wins.
    struct Raw {
        int32_t left;
        int32_t right;
        int32_t rank;
        int32_t merged;
    };
    MergeTable() = default;
    // packed = false keeps the 12-byte layout whatever the sizes (for tests).
    MergeTable(std::vector<Raw> merges, size_t vocabSize, bool packed = true)
    {
        std::sort(merges.begin(), merges.end(), [](const Raw& a, const Raw& b) {
            return a.left != b.left ? a.left < b.left : a.right != b.right ? a.right < b.right : a.rank < b.rank;
        });
        size_t kept = 0;
        for (size_t i = 0; i < merges.size(); ++i)
            if (i == 0 || merges[i].left != merges[i - 1].left || merges[i].right != merges[i - 1].right)
                merges[kept++] = merges[i];
        merges.resize(kept);
        m_packed = packed && vocabSize <= (size_t{1} << kIdBits) &&
                   std::all_of(merges.begin(), merges.end(), [](const Raw& m) { return m.rank < (1 << kRankBits); });
        m_begin.assign(vocabSize + 1, 0);
        if (m_packed)
            m_narrow.reserve(kept);
        else
            m_wide.reserve(kept);
        for (const Raw& m : merges) {
            ++m_begin[static_cast<size_t>(m.left) + 1];
            if (m_packed)
                m_narrow.push_back(static_cast<uint64_t>(m.right) << (kRankBits + kIdBits) |
                                   static_cast<uint64_t>(m.rank) << kIdBits | static_cast<uint64_t>(m.merged));
            else
                m_wide.push_back({m.right, m.rank, m.merged});
        }
        for (size_t i = 1; i < m_begin.size(); ++i)
            m_begin[i] += m_begin[i - 1];
    }

    Merge find(int32_t left, int32_t right) const noexcept
    {
        const auto l = static_cast<size_t>(static_cast<uint32_t>(left));
        if (l + 1 >= m_begin.size() || right < 0)
            return {};
        if (m_packed) {
            const uint64_t* first = m_narrow.data() + m_begin[l];
            const uint64_t* last = m_narrow.data() + m_begin[l + 1];
            const uint64_t key = static_cast<uint64_t>(right) << (kRankBits + kIdBits);
            const uint64_t* it = std::lower_bound(first, last, key);
            if (it == last || (*it >> (kRankBits + kIdBits)) != static_cast<uint64_t>(right))
                return {};
            return {static_cast<int32_t>((*it >> kIdBits) & ((uint64_t{1} << kRankBits) - 1)),
                    static_cast<int32_t>(*it & ((uint64_t{1} << kIdBits) - 1))};
        }
        const Wide* first = m_wide.data() + m_begin[l];
        const Wide* last = m_wide.data() + m_begin[l + 1];
        const Wide* it = std::lower_bound(first, last, right, [](const Wide& m, int32_t r) { return m.right < r; });
        if (it == last || it->right != right)
            return {};
        return {it->rank, it->merged};
    }
    bool packed() const noexcept { return m_packed; }
    size_t memoryBytes() const noexcept
    {
        return m_begin.capacity() * sizeof(uint32_t) + m_narrow.capacity() * sizeof(uint64_t) +
               m_wide.capacity() * sizeof(Wide);
    }

private:
    static constexpr int kIdBits = 22;
    static constexpr int kRankBits = 20;
    struct Wide {
        int32_t right;
        int32_t rank;
        int32_t merged;
    };
    std::vector<uint32_t> m_begin; // per left id, where its merges start (vocabulary size + 1)
    bool m_packed = true;
    std::vector<uint64_t> m_narrow; // right << 42 | rank << 22 | merged, sorted per left id
    std::vector<Wide> m_wide;
};

// ---------------------------------------------------------------------------------------
// Files

// The whole file; Error(Io) naming it when it cannot be read.
std::vector<std::byte> readFileBytes(const std::filesystem::path& path);

// Error(InvalidInput) "<label>: <what>".
[[noreturn]] void failInput(const std::string& label, const std::string& what);

} // namespace novaq::text
