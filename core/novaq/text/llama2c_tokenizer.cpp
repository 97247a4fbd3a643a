// llama2.c's tokenizer.bin (tok512.bin, tokenizer.bin): int32 max_token_length, then for each
// token a float score, an int32 byte length and the bytes; the vocabulary size is whatever the
// file holds. The export replaced '▁' by ' ' and wrote BOS/EOS as "\n<s>\n" / "\n</s>\n".
//
// encode() is run.c's: [BOS], the " " token as dummy prefix for non-empty text, each UTF-8
// character's token (or its bytes as ids byte + 3), then repeatedly the adjacent pair whose
// concatenation is the best-scoring vocabulary entry (score above -1e10, leftmost on ties)
// is merged. run.c rescans for that pair each time; the priority queue here merges in the
// same order. As in run.c, the BOS takes part in the pair search.

#include "novaq/io/byte_cursor.h"
#include "novaq/io/error.h"
#include "novaq/text/tokenizer_detail.h"

#include <cstring>

namespace novaq {

namespace {

using text::MergeCandidate;
using text::MergeSymbol;
using text::PieceType;

class Llama2cTokenizer final : public text::VocabTokenizer {
public:
    Llama2cTokenizer(text::Vocabulary v, const std::string& label)
        : VocabTokenizer(std::move(v), text::DecodeStyle::Llama2c, "llama2c", label)
    {
        const auto& pieces = vocab().pieces;
        // run.c looks strings up with bsearch over the sorted vocabulary; with no duplicates
        // (checked below) that is a plain map.
        m_lookup.reset(pieces.size());
        for (size_t i = 0; i < pieces.size(); ++i)
            m_lookup.insert(pieces, static_cast<int32_t>(i), false);
        m_dummyPrefix = m_lookup.find(pieces, " ");
    }

    std::vector<int32_t> encode(std::string_view input, bool addBos) const override
    {
        std::vector<int32_t> initial;
        if (addBos && bos() >= 0)
            initial.push_back(bos());
        if (!input.empty() && m_dummyPrefix >= 0)
            initial.push_back(m_dummyPrefix);
        std::string buffer;
        for (size_t i = 0; i < input.size(); ++i) {
            const auto c = static_cast<uint8_t>(input[i]);
            if ((c & 0xC0) != 0x80)
                buffer.clear();
            buffer += static_cast<char>(c);
            const bool nextIsContinuation = i + 1 < input.size() && (static_cast<uint8_t>(input[i + 1]) & 0xC0) == 0x80;
            if (nextIsContinuation && buffer.size() < 4)
                continue;
            if (const int32_t found = m_lookup.find(vocab().pieces, buffer); found >= 0) {
                initial.push_back(found);
            } else {
                for (const char b : buffer) {
                    const int32_t id = static_cast<uint8_t>(b) + 3; // byte fallback past <unk>, <s>, </s>
                    if (id < vocabSize())
                        initial.push_back(id);
                }
            }
            buffer.clear();
        }

        // The pieces side by side, so that a pair's concatenation is a span of `text`.
        std::string text;
        std::vector<MergeSymbol> symbols(initial.size());
        for (size_t i = 0; i < initial.size(); ++i) {
            const std::string_view p = vocab().pieces[static_cast<size_t>(initial[i])];
            symbols[i].begin = static_cast<uint32_t>(text.size());
            symbols[i].length = static_cast<uint32_t>(p.size());
            symbols[i].id = initial[i];
            text += p;
        }
        // An empty piece could not be told from a merged-away symbol; it never merges anyway.
        for (MergeSymbol& s : symbols)
            s.frozen = s.length == 0;
        text::linkSymbols(symbols);
        const auto& scores = vocab().scores;
        text::PairMerger merger;
        merger.run(symbols,
                   [&](const std::vector<MergeSymbol>& sym, int32_t l, int32_t r) -> std::optional<MergeCandidate> {
                       const MergeSymbol& a = sym[static_cast<size_t>(l)];
                       const MergeSymbol& b = sym[static_cast<size_t>(r)];
                       const int32_t id =
                           m_lookup.find(vocab().pieces, std::string_view(text).substr(a.begin, a.length + b.length));
                       if (id < 0)
                           return std::nullopt;
                       const float score = scores[static_cast<size_t>(id)];
                       if (!(score > -1e10f)) // run.c's initial best score
                           return std::nullopt;
                       return MergeCandidate{score, id};
                   });
        std::vector<int32_t> ids;
        for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<size_t>(i)].next)
            ids.push_back(symbols[static_cast<size_t>(i)].id);
        return ids;
    }

private:
    text::PieceIndex m_lookup; // ids by piece, over vocab().pieces
    int32_t m_dummyPrefix = -1;
};

} // namespace

std::unique_ptr<Tokenizer> loadLlama2cTokenizer(const std::filesystem::path& path)
{
    const std::vector<std::byte> bytes = text::readFileBytes(path);
    const std::string label = path.string();
    ByteCursor cursor(bytes, label);
    if (bytes.size() < 4)
        text::failInput(label, "the llama2.c tokenizer is " + std::to_string(bytes.size()) +
                                   " bytes; it must start with the int32 max_token_length");
    cursor.setContext("header");
    const auto maxTokenLength = cursor.read<int32_t>("max_token_length");
    if (maxTokenLength <= 0 || maxTokenLength > 65536)
        cursor.fail("max_token_length is " + std::to_string(maxTokenLength) +
                        "; this is not a llama2.c tokenizer (expected 1 to 65536)",
                    0);
    text::Vocabulary v;
    while (cursor.remaining() > 0) {
        const size_t index = v.pieces.size();
        const uint64_t at = cursor.pos();
        cursor.setContext("token " + std::to_string(index));
        const auto score = cursor.read<float>("score");
        const auto length = cursor.read<int32_t>("length");
        if (length < 0 || length > maxTokenLength || static_cast<uint64_t>(length) > cursor.remaining())
            cursor.fail("length " + std::to_string(length) + " is negative, exceeds max_token_length " +
                            std::to_string(maxTokenLength) + " or runs past the end of the file",
                        at + 4);
        std::string piece(cursor.readBytes(static_cast<uint64_t>(length), "piece"));
        PieceType type = PieceType::Normal;
        if (index == 0)
            type = PieceType::Unknown;
        else if (index == 1 || index == 2)
            type = PieceType::Control;
        else if (text::parseBytePiece(piece) >= 0)
            type = PieceType::Byte;
        v.pieces.push_back(piece);
        v.scores.push_back(score);
        v.types.push_back(type);
    }
    if (v.pieces.size() < 3 + 256)
        text::failInput(label, "the llama2.c tokenizer holds " + std::to_string(v.pieces.size()) +
                                   " tokens; it needs <unk>, <s>, </s> and the 256 byte tokens at least");
    v.pieces.shrinkToFit();
    text::PieceIndex seen;
    seen.reset(v.pieces.size());
    for (size_t i = 0; i < v.pieces.size(); ++i)
        if (const int32_t earlier = seen.insert(v.pieces, static_cast<int32_t>(i), false); earlier >= 0)
            text::failInput(label, "token " + std::to_string(i) + " \"" + std::string(v.pieces[i]) +
                                       "\" repeats token " + std::to_string(earlier) +
                                       "; llama2.c's lookup needs unique tokens");
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    return std::make_unique<Llama2cTokenizer>(std::move(v), label);
}

} // namespace novaq
