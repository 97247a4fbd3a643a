// SentencePiece tokenizer.model (a ModelProto): the normalizer (precompiled charsmap trie,
// whitespace flags, dummy prefix), the BPE and unigram encoders, byte fallback and unknown
// fusion, as SentencePiece's normalizer.cc, bpe_model.cc, unigram_model.cc and
// sentencepiece_processor.cc define them.
//
// ModelProto fields read: pieces = 1 {piece = 1, score = 2, type = 3}; trainer_spec = 2
// {model_type = 3, treat_whitespace_as_suffix = 24, byte_fallback = 35, unk_piece = 45,
// bos_piece = 46, eos_piece = 47}; normalizer_spec = 3 {name = 1, precompiled_charsmap = 2,
// add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5}. Other fields
// (training options, self-test data, the denormalizer) do not change encoding and are skipped.

#include "novaq/formats/protobuf_wire.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"
#include "novaq/text/tokenizer_detail.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <unordered_map>

namespace novaq {

namespace {

using text::failInput;
using text::kSpaceSymbol;
using text::MergeCandidate;
using text::MergeSymbol;
using text::PieceIndex;
using text::PieceType;

constexpr size_t kMaxPieceBytes = 8000; // SentencePiece refuses longer pieces

// ---------------------------------------------------------------------------------------
// The precompiled charsmap: uint32 trie size (little-endian), a Darts-clone double-array trie
// of that many bytes (uint32 units), then a pool of NUL-terminated replacement strings the
// trie's values index. Lookup is the longest key that prefixes the input.

class CharsMap {
public:
    CharsMap() = default;
    CharsMap(std::string_view blob, const std::string& where)
    {
        if (blob.size() <= 4)
            failInput(where, "precompiled_charsmap (field 2) is " + std::to_string(blob.size()) +
                                 " bytes; it must hold a 4-byte trie size and the trie");
        const uint32_t trieBytes = loadLe<uint32_t>(blob.data());
        if (trieBytes == 0 || trieBytes % 4 != 0 || trieBytes > blob.size() - 4)
            failInput(where, "precompiled_charsmap (field 2) says its trie is " + std::to_string(trieBytes) +
                                 " bytes, but the blob holds " + std::to_string(blob.size() - 4) +
                                 " bytes after the size (the trie must be a non-empty multiple of 4 that fits)");
        m_units.resize(trieBytes / 4);
        for (size_t i = 0; i < m_units.size(); ++i)
            m_units[i] = loadLe<uint32_t>(blob.data() + 4 + i * 4);
        m_pool = blob.substr(4 + trieBytes);
    }

    bool empty() const noexcept { return m_units.empty(); }

    // The longest rule matching a prefix of `input`: its length and replacement, or length 0.
    std::pair<size_t, std::string_view> longestMatch(std::string_view input) const noexcept
    {
        size_t bestLength = 0;
        std::string_view best;
        size_t node = offset(m_units[0]);
        for (size_t i = 0; i < input.size(); ++i) {
            const auto c = static_cast<uint8_t>(input[i]);
            node ^= c;
            if (node >= m_units.size())
                break;
            const uint32_t unit = m_units[node];
            if ((unit & ((1u << 31) | 0xFFu)) != c) // label()
                break;
            node ^= offset(unit);
            if (node >= m_units.size())
                break;
            if ((unit >> 8) & 1u) { // has_leaf(): the value sits in the unit at `node`
                const size_t value = m_units[node] & ((1u << 31) - 1);
                if (value < m_pool.size()) {
                    std::string_view rest = m_pool.substr(value);
                    bestLength = i + 1;
                    best = rest.substr(0, rest.find('\0'));
                }
            }
        }
        return {bestLength, best};
    }

private:
    static size_t offset(uint32_t unit) noexcept { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

    std::vector<uint32_t> m_units;
    std::string_view m_pool; // into the tokenizer's copy of the blob
};

// ---------------------------------------------------------------------------------------

struct NormalizerSpec {
    std::string name;
    std::string charsmap;
    bool addDummyPrefix = true;
    bool removeExtraWhitespaces = true;
    bool escapeWhitespaces = true;
};

struct TrainerSpec {
    int modelType = 1; // 1 UNIGRAM (the proto's default), 2 BPE, 3 WORD, 4 CHAR
    bool treatWhitespaceAsSuffix = false;
    bool byteFallback = false;
    std::string unkPiece = "<unk>";
    std::string bosPiece = "<s>";
    std::string eosPiece = "</s>";
};

struct ParsedModel {
    text::Vocabulary vocab;
    TrainerSpec trainer;
    NormalizerSpec normalizer;
};

std::string_view modelProtoFieldName(uint32_t n) noexcept
{
    switch (n) {
    case 1:
        return "pieces";
    case 2:
        return "trainer_spec";
    case 3:
        return "normalizer_spec";
    case 4:
        return "self_test_data";
    case 5:
        return "denormalizer_spec";
    }
    return {};
}

std::string_view pieceFieldName(uint32_t n) noexcept
{
    switch (n) {
    case 1:
        return "piece";
    case 2:
        return "score";
    case 3:
        return "type";
    }
    return {};
}

std::string_view trainerFieldName(uint32_t n) noexcept
{
    switch (n) {
    case 3:
        return "model_type";
    case 24:
        return "treat_whitespace_as_suffix";
    case 35:
        return "byte_fallback";
    case 45:
        return "unk_piece";
    case 46:
        return "bos_piece";
    case 47:
        return "eos_piece";
    }
    return {};
}

std::string_view normalizerFieldName(uint32_t n) noexcept
{
    switch (n) {
    case 1:
        return "name";
    case 2:
        return "precompiled_charsmap";
    case 3:
        return "add_dummy_prefix";
    case 4:
        return "remove_extra_whitespaces";
    case 5:
        return "escape_whitespaces";
    }
    return {};
}

// One ModelProto.pieces[index] entry (field 1 of the ModelProto, at f) into vocab.
void parsePiece(std::span<const std::byte> bytes, const protobuf::Field& f, const std::string& label, size_t index,
                text::Vocabulary& vocab)
{
    using protobuf::Field;
    using protobuf::WireReader;
    using protobuf::WireType;
    WireReader p(bytes, f.offset, f.offset + f.length, label + ": ModelProto.pieces[" + std::to_string(index) + "]",
                 pieceFieldName);
    std::string piece;
    float score = 0;
    uint64_t type = 1;
    Field g;
    while (p.next(g)) {
        if (g.number == 1) {
            p.expectType(g, WireType::Bytes);
            piece = std::string(p.text(g));
        } else if (g.number == 2) {
            p.expectType(g, WireType::Fixed32);
            score = std::bit_cast<float>(static_cast<uint32_t>(g.value));
        } else if (g.number == 3) {
            p.expectType(g, WireType::Varint);
            type = g.value;
        }
    }
    if (type < 1 || type > 6)
        failInput(p.where(), "type (field 3) is " + std::to_string(type) +
                                 "; SentencePiece piece types are 1 (NORMAL) to 6 (BYTE)");
    if (piece.empty())
        failInput(p.where(), "piece (field 1) is empty");
    if (piece.find('\0') != std::string::npos)
        failInput(p.where(), "piece (field 1) contains a NUL byte");
    if (piece.size() >= kMaxPieceBytes)
        failInput(p.where(), "piece (field 1) is " + std::to_string(piece.size()) +
                                 " bytes; SentencePiece allows fewer than " + std::to_string(kMaxPieceBytes));
    vocab.pieces.push_back(piece);
    vocab.scores.push_back(score);
    vocab.types.push_back(static_cast<PieceType>(type));
}

// The fields of ModelProto.trainer_spec (field 2) this reader uses.
void parseTrainerSpec(std::span<const std::byte> bytes, const protobuf::Field& f, const std::string& label,
                      TrainerSpec& trainer)
{
    using protobuf::Field;
    using protobuf::WireReader;
    using protobuf::WireType;
    WireReader t(bytes, f.offset, f.offset + f.length, label + ": ModelProto.trainer_spec", trainerFieldName);
    Field g;
    while (t.next(g)) {
        switch (g.number) {
        case 3:
            t.expectType(g, WireType::Varint);
            trainer.modelType = static_cast<int>(std::min<uint64_t>(g.value, 1000));
            break;
        case 24:
            t.expectType(g, WireType::Varint);
            trainer.treatWhitespaceAsSuffix = g.value != 0;
            break;
        case 35:
            t.expectType(g, WireType::Varint);
            trainer.byteFallback = g.value != 0;
            break;
        case 45:
            t.expectType(g, WireType::Bytes);
            trainer.unkPiece = std::string(t.text(g));
            break;
        case 46:
            t.expectType(g, WireType::Bytes);
            trainer.bosPiece = std::string(t.text(g));
            break;
        case 47:
            t.expectType(g, WireType::Bytes);
            trainer.eosPiece = std::string(t.text(g));
            break;
        default:
            break;
        }
    }
}

// The fields of ModelProto.normalizer_spec (field 3).
void parseNormalizerSpec(std::span<const std::byte> bytes, const protobuf::Field& f, const std::string& label,
                         NormalizerSpec& normalizer)
{
    using protobuf::Field;
    using protobuf::WireReader;
    using protobuf::WireType;
    WireReader n(bytes, f.offset, f.offset + f.length, label + ": ModelProto.normalizer_spec", normalizerFieldName);
    Field g;
    while (n.next(g)) {
        switch (g.number) {
        case 1:
            n.expectType(g, WireType::Bytes);
            normalizer.name = std::string(n.text(g));
            break;
        case 2:
            n.expectType(g, WireType::Bytes);
            normalizer.charsmap = std::string(n.text(g));
            break;
        case 3:
            n.expectType(g, WireType::Varint);
            normalizer.addDummyPrefix = g.value != 0;
            break;
        case 4:
            n.expectType(g, WireType::Varint);
            normalizer.removeExtraWhitespaces = g.value != 0;
            break;
        case 5:
            n.expectType(g, WireType::Varint);
            normalizer.escapeWhitespaces = g.value != 0;
            break;
        default:
            break;
        }
    }
}

ParsedModel parseModelProto(std::span<const std::byte> bytes, const std::string& label)
{
    using protobuf::Field;
    using protobuf::WireReader;
    using protobuf::WireType;
    ParsedModel out;
    WireReader top(bytes, 0, bytes.size(), label + ": ModelProto", modelProtoFieldName);
    Field f;
    size_t index = 0;
    bool sawTrainer = false;
    while (top.next(f)) {
        if (f.number == 1) {
            top.expectType(f, WireType::Bytes);
            parsePiece(bytes, f, label, index, out.vocab);
            ++index;
        } else if (f.number == 2) {
            top.expectType(f, WireType::Bytes);
            sawTrainer = true;
            parseTrainerSpec(bytes, f, label, out.trainer);
        } else if (f.number == 3) {
            top.expectType(f, WireType::Bytes);
            parseNormalizerSpec(bytes, f, label, out.normalizer);
        }
    }
    out.vocab.pieces.shrinkToFit();
    if (out.vocab.pieces.empty())
        failInput(label, "the ModelProto has no pieces (field 1); this is not a SentencePiece tokenizer.model");
    if (!sawTrainer)
        failInput(label, "the ModelProto has no trainer_spec (field 2), so its model type is unknown; this is not a "
                         "complete SentencePiece tokenizer.model");
    return out;
}

// ---------------------------------------------------------------------------------------

class SentencePieceTokenizer final : public text::VocabTokenizer {
public:
    SentencePieceTokenizer(ParsedModel model, const std::string& label)
        : VocabTokenizer(std::move(model.vocab), text::DecodeStyle::Metaspace,
                         model.trainer.modelType == 2 ? "sentencepiece-bpe" : "sentencepiece-unigram", label),
          m_trainer(std::move(model.trainer)), m_spec(std::move(model.normalizer))
    {
        if (m_trainer.modelType != 1 && m_trainer.modelType != 2)
            throw Error(ErrorKind::Unsupported,
                        label + ": trainer_spec.model_type (field 3) is " + std::to_string(m_trainer.modelType) +
                            (m_trainer.modelType == 3   ? " (WORD)"
                             : m_trainer.modelType == 4 ? " (CHAR)"
                                                        : "") +
                            "; only UNIGRAM (1) and BPE (2) SentencePiece models are supported");
        if (!m_spec.charsmap.empty())
            m_charsMap = CharsMap(m_spec.charsmap, label + ": ModelProto.normalizer_spec");
        indexPieces();
        setStripLeadingSpace(m_spec.addDummyPrefix || m_spec.removeExtraWhitespaces);
    }

    std::vector<int32_t> encode(std::string_view input, bool addBos) const override
    {
        std::vector<int32_t> ids;
        if (addBos && bos() >= 0)
            ids.push_back(bos());
        const std::string normalized = normalize(input);
        if (normalized.empty())
            return ids;
        std::vector<std::pair<std::string_view, int32_t>> pieces =
            m_trainer.modelType == 2 ? encodeBpe(normalized) : encodeUnigram(normalized);
        bool prevUnknown = false;
        for (const auto& [w, id] : pieces) {
            const bool unknown = id == vocab().unk;
            if (unknown && m_trainer.byteFallback) {
                for (const char c : w)
                    ids.push_back(m_byteIds[static_cast<uint8_t>(c)]);
            } else if (!(unknown && prevUnknown)) { // a run of unknowns is one <unk>
                ids.push_back(id);
            }
            prevUnknown = unknown;
        }
        return ids;
    }

private:
    void indexPieces()
    {
        const text::Vocabulary& v = vocab();
        std::array<bool, 256> byteSeen{};
        m_byteIds.fill(-1);
        m_pieces.reset(v.pieces.size());
        for (size_t i = 0; i < v.pieces.size(); ++i) {
            const auto id = static_cast<int32_t>(i);
            const std::string p(v.pieces[i]); // for the messages
            const PieceType type = v.types[i];
            const bool normal =
                type == PieceType::Normal || type == PieceType::UserDefined || type == PieceType::Unused;
            PieceIndex& target = normal ? m_pieces : m_reserved;
            if (target.insert(v.pieces, id, false) >= 0)
                failInput(label(), "ModelProto.pieces[" + std::to_string(i) + "] \"" + p +
                                       "\" is already defined by an earlier piece");
            if (type == PieceType::UserDefined) {
                m_userDefined.insert(v.pieces, id, false);
                m_maxUserDefinedBytes = std::max(m_maxUserDefinedBytes, p.size());
            }
            if (normal)
                m_maxPieceBytes = std::max(m_maxPieceBytes, p.size());
            if (type == PieceType::Normal) {
                m_minScore = std::min(m_minScore, v.scores[i]);
                m_maxScore = std::max(m_maxScore, v.scores[i]);
            }
            if (type == PieceType::Unknown && m_unk < 0)
                m_unk = id;
            else if (type == PieceType::Unknown)
                failInput(label(), "ModelProto.pieces[" + std::to_string(i) +
                                       "] is a second UNKNOWN piece; a model has exactly one");
            if (type == PieceType::Byte) {
                if (!m_trainer.byteFallback)
                    failInput(label(),
                              "ModelProto.pieces[" + std::to_string(i) + "] \"" + p +
                                  "\" is a BYTE piece although trainer_spec.byte_fallback (field 35) is false");
                const int b = text::parseBytePiece(p);
                if (b < 0)
                    failInput(label(), "ModelProto.pieces[" + std::to_string(i) + "] \"" + p +
                                           "\" is a BYTE piece but not of the form <0xNN>");
                byteSeen[static_cast<size_t>(b)] = true;
                m_byteIds[static_cast<size_t>(b)] = id;
            }
        }
        if (m_unk < 0)
            failInput(label(), "ModelProto.pieces has no UNKNOWN (type 2) piece; SentencePiece requires one");
        if (m_trainer.byteFallback && std::find(byteSeen.begin(), byteSeen.end(), false) != byteSeen.end())
            failInput(label(), "trainer_spec.byte_fallback (field 35) is true but ModelProto.pieces lacks some of "
                               "the 256 byte pieces <0x00>..<0xFF>");
        mutableVocab().unk = m_unk;
        mutableVocab().bos = controlId(m_trainer.bosPiece);
        mutableVocab().eos = controlId(m_trainer.eosPiece);
    }

    int32_t controlId(const std::string& p) const
    {
        const int32_t id = m_reserved.find(vocab().pieces, p);
        if (id < 0 || vocab().types[static_cast<size_t>(id)] != PieceType::Control)
            return -1;
        return id;
    }

    // Longest user-defined piece at the start of `s` (bytes), or 0.
    size_t userDefinedPrefix(std::string_view s) const
    {
        if (m_userDefined.empty())
            return 0;
        for (size_t n = std::min(s.size(), m_maxUserDefinedBytes); n > 0; --n)
            if (m_userDefined.find(vocab().pieces, s.substr(0, n)) >= 0)
                return n;
        return 0;
    }

    // NormalizePrefix(): the normalized text of the first unit of `input` and its length.
    std::pair<std::string_view, size_t> normalizePrefix(std::string_view input) const
    {
        if (const size_t n = userDefinedPrefix(input))
            return {input.substr(0, n), n}; // user-defined pieces are never normalized
        if (!m_charsMap.empty()) {
            const auto [length, replacement] = m_charsMap.longestMatch(input);
            if (length > 0)
                return {replacement, length};
        }
        char32_t cp = 0;
        const size_t length = text::decodeUtf8(input, 0, cp);
        if (length == 0)
            return {"\xEF\xBF\xBD", 1}; // a malformed byte becomes U+FFFD
        return {input.substr(0, length), length};
    }

    std::string normalize(std::string_view input) const
    {
        std::string out;
        if (input.empty())
            return out;
        if (m_spec.removeExtraWhitespaces) {
            while (!input.empty()) {
                const auto [sp, consumed] = normalizePrefix(input);
                if (sp != " ")
                    break;
                input.remove_prefix(consumed);
            }
        }
        if (input.empty())
            return out;
        out.reserve(input.size() * 3);
        auto addSpace = [&] { out += m_spec.escapeWhitespaces ? kSpaceSymbol : std::string_view(" "); };
        if (!m_trainer.treatWhitespaceAsSuffix && m_spec.addDummyPrefix)
            addSpace();
        bool prevSpace = m_spec.removeExtraWhitespaces;
        while (!input.empty()) {
            auto [sp, consumed] = normalizePrefix(input);
            while (prevSpace && !sp.empty() && sp.front() == ' ')
                sp.remove_prefix(1);
            if (!sp.empty()) {
                for (const char c : sp) {
                    if (m_spec.escapeWhitespaces && c == ' ')
                        out += kSpaceSymbol;
                    else
                        out += c;
                }
                prevSpace = sp.back() == ' ';
            }
            input.remove_prefix(consumed);
            if (!m_spec.removeExtraWhitespaces)
                prevSpace = false;
        }
        if (m_spec.removeExtraWhitespaces) {
            const std::string_view space = m_spec.escapeWhitespaces ? kSpaceSymbol : std::string_view(" ");
            while (std::string_view(out).ends_with(space))
                out.resize(out.size() - space.size());
        }
        if (m_trainer.treatWhitespaceAsSuffix && m_spec.addDummyPrefix)
            addSpace();
        return out;
    }

    // PieceToId(): control/unknown/byte pieces first, then the others, else <unk>.
    int32_t pieceToId(std::string_view w) const
    {
        if (const int32_t id = m_reserved.find(vocab().pieces, w); id >= 0)
            return id;
        if (const int32_t id = m_pieces.find(vocab().pieces, w); id >= 0)
            return id;
        return m_unk;
    }

    using EncodeResult = std::vector<std::pair<std::string_view, int32_t>>;

    EncodeResult encodeBpe(std::string_view normalized) const
    {
        std::vector<MergeSymbol> symbols;
        symbols.reserve(normalized.size());
        for (size_t pos = 0; pos < normalized.size();) {
            MergeSymbol s;
            size_t length = userDefinedPrefix(normalized.substr(pos));
            s.frozen = length > 0;
            if (length == 0)
                length =
                    std::min(text::utf8SequenceLength(static_cast<uint8_t>(normalized[pos])), normalized.size() - pos);
            s.begin = static_cast<uint32_t>(pos);
            s.length = static_cast<uint32_t>(length);
            symbols.push_back(s);
            pos += length;
        }
        text::linkSymbols(symbols);

        // Merged pieces of type UNUSED are split back into the pair that formed them.
        std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> revMerge;
        const auto& types = vocab().types;
        const auto& scores = vocab().scores;
        text::PairMerger merger;
        merger.run(
            symbols, [&](const std::vector<MergeSymbol>& sym, int32_t l, int32_t r) -> std::optional<MergeCandidate> {
                const MergeSymbol& a = sym[static_cast<size_t>(l)];
                const MergeSymbol& b = sym[static_cast<size_t>(r)];
                const std::string_view piece = normalized.substr(a.begin, a.length + b.length);
                const int32_t found = m_pieces.find(vocab().pieces, piece);
                if (found < 0)
                    return std::nullopt;
                const auto id = static_cast<size_t>(found);
                if (types[id] == PieceType::Unused)
                    revMerge[piece] = {normalized.substr(a.begin, a.length), normalized.substr(b.begin, b.length)};
                return MergeCandidate{scores[id], found};
            });

        EncodeResult out;
        std::function<void(std::string_view)> resegment = [&](std::string_view w) {
            const int32_t id = pieceToId(w);
            if (types[static_cast<size_t>(id)] == PieceType::Unused) {
                if (const auto it = revMerge.find(w); it != revMerge.end()) {
                    resegment(it->second.first);
                    resegment(it->second.second);
                    return;
                }
            }
            out.emplace_back(w, id);
        };
        for (int32_t i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
            const MergeSymbol& s = symbols[static_cast<size_t>(i)];
            resegment(normalized.substr(s.begin, s.length));
        }
        return out;
    }

    // The optimized Viterbi of unigram_model.cc: best path over every piece that starts at
    // each character; a character no piece covers is an unknown node scored min - 10.
    EncodeResult encodeUnigram(std::string_view normalized) const
    {
        struct Node {
            int32_t id = -1;
            float score = 0;
            int64_t startsAt = -1;
        };
        const size_t size = normalized.size();
        const float unkScore = m_minScore - 10.0f; // kUnkPenalty
        std::vector<Node> best(size + 1);
        const auto& types = vocab().types;
        const auto& scores = vocab().scores;
        size_t start = 0;
        while (start < size) {
            const float here = best[start].score;
            const size_t charLength =
                std::min(text::utf8SequenceLength(static_cast<uint8_t>(normalized[start])), size - start);
            bool hasSingle = false;
            const size_t limit = std::min(size, start + m_maxPieceBytes);
            for (size_t end = start + 1; end <= limit; ++end) {
                const int32_t found = m_pieces.find(vocab().pieces, normalized.substr(start, end - start));
                if (found < 0)
                    continue;
                const auto id = static_cast<size_t>(found);
                if (types[id] == PieceType::Unused)
                    continue;
                const size_t length = end - start;
                // As the reference: a user-defined piece scores length * max - 0.1 (in double).
                const double score = types[id] == PieceType::UserDefined
                                         ? static_cast<double>(static_cast<float>(length) * m_maxScore) - 0.1
                                         : static_cast<double>(scores[id]);
                const double candidate = score + static_cast<double>(here);
                Node& target = best[end];
                if (target.startsAt == -1 || candidate > static_cast<double>(target.score)) {
                    target.score = static_cast<float>(candidate);
                    target.startsAt = static_cast<int64_t>(start);
                    target.id = found;
                }
                if (length == charLength)
                    hasSingle = true;
            }
            if (!hasSingle) {
                Node& target = best[start + charLength];
                const float candidate = unkScore + here;
                if (target.startsAt == -1 || candidate > target.score) {
                    target.score = candidate;
                    target.startsAt = static_cast<int64_t>(start);
                    target.id = m_unk;
                }
            }
            start += charLength;
        }
        EncodeResult out;
        for (size_t end = size; end > 0;) {
            const Node& node = best[end];
            const auto from = static_cast<size_t>(node.startsAt);
            out.emplace_back(normalized.substr(from, end - from), node.id);
            end = from;
        }
        std::reverse(out.begin(), out.end());
        return out;
    }

    TrainerSpec m_trainer;
    NormalizerSpec m_spec;
    CharsMap m_charsMap;
    // Ids by piece (over vocab().pieces):
    PieceIndex m_pieces;   // NORMAL, USER_DEFINED and UNUSED pieces: what merges and lattices may use
    PieceIndex m_reserved; // CONTROL, UNKNOWN and BYTE pieces
    PieceIndex m_userDefined;
    size_t m_maxUserDefinedBytes = 0;
    size_t m_maxPieceBytes = 1;
    float m_minScore = std::numeric_limits<float>::max();
    float m_maxScore = std::numeric_limits<float>::min(); // as the reference: FLT_MIN, not -FLT_MAX
    int32_t m_unk = -1;
    std::array<int32_t, 256> m_byteIds{};
};

} // namespace

std::unique_ptr<Tokenizer> loadSentencePieceBytes(std::span<const std::byte> bytes, const std::string& label)
{
    if (bytes.empty())
        failInput(label, "the SentencePiece model is empty (0 bytes)");
    return std::make_unique<SentencePieceTokenizer>(parseModelProto(bytes, label), label);
}

std::unique_ptr<Tokenizer> loadSentencePiece(const std::filesystem::path& path)
{
    const std::vector<std::byte> bytes = text::readFileBytes(path);
    return loadSentencePieceBytes(bytes, path.string());
}

} // namespace novaq
