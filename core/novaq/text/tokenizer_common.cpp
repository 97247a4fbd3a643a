// The vocabulary every tokenizer carries, its decoders, and the pair-merging loop.

#include "novaq/io/error.h"
#include "novaq/text/tokenizer_detail.h"

#include <fstream>
#include <iterator>

namespace novaq::text {

void StringTable::reserve(size_t count, size_t bytes)
{
    m_offsets.reserve(count + 1);
    m_bytes.reserve(bytes);
}

void StringTable::push_back(std::string_view s)
{
    if (m_offsets.empty())
        m_offsets.push_back(0);
    if (s.size() > UINT32_MAX - m_bytes.size())
        throw Error(ErrorKind::InvalidInput, "the strings of a vocabulary exceed 4 GiB");
    m_bytes.insert(m_bytes.end(), s.begin(), s.end());
    m_offsets.push_back(static_cast<uint32_t>(m_bytes.size()));
}

void StringTable::shrinkToFit()
{
    m_bytes.shrink_to_fit();
    m_offsets.shrink_to_fit();
}

void StringIndex::reset(size_t count)
{
    m_count = 0;
    m_slots.clear();
    m_slots.shrink_to_fit();
    if (count > 0)
        m_slots.assign(std::max<size_t>(16, count + count / 2), Slot{});
}

VocabTokenizer::VocabTokenizer(Vocabulary vocab, DecodeStyle style, std::string kind, std::string label)
    : m_vocab(std::move(vocab)), m_style(style), m_kind(std::move(kind)), m_label(std::move(label))
{}

void VocabTokenizer::checkId(int32_t id) const
{
    if (id < 0 || static_cast<size_t>(id) >= m_vocab.pieces.size())
        throw Error(ErrorKind::InvalidArgument, m_label + ": token id " + std::to_string(id) +
                                                    " is outside the vocabulary (0 to " +
                                                    std::to_string(m_vocab.pieces.size()) + " - 1)");
}

std::string VocabTokenizer::piece(int32_t id) const
{
    checkId(id);
    return std::string(m_vocab.pieces[static_cast<size_t>(id)]);
}

namespace {

// Appends bytes collected from byte tokens; malformed UTF-8 becomes U+FFFD per byte, as
// SentencePiece's decoder does.
void flushBytes(std::string& out, std::string& bytes)
{
    out += sanitizeUtf8(bytes);
    bytes.clear();
}

} // namespace

std::string VocabTokenizer::decode(std::span<const int32_t> ids) const
{
    std::string out;
    std::string bytes;
    if (m_style == DecodeStyle::ByteLevel) {
        for (const int32_t id : ids) {
            checkId(id);
            const auto index = static_cast<size_t>(id);
            if (m_vocab.types[index] == PieceType::Control)
                continue;
            const std::string_view p = m_vocab.pieces[index];
            size_t pos = 0;
            while (pos < p.size()) {
                char32_t cp = 0;
                const size_t length = decodeUtf8(p, pos, cp);
                if (length == 0) {
                    bytes += p[pos++];
                    continue;
                }
                const int b = byteLevelByte(cp);
                if (b >= 0)
                    bytes += static_cast<char>(b);
                else
                    bytes.append(p, pos, length); // an added token outside the byte alphabet
                pos += length;
            }
        }
        flushBytes(out, bytes);
        return out;
    }

    const std::string_view space = m_style == DecodeStyle::Metaspace ? kSpaceSymbol : std::string_view(" ");
    bool first = true;
    for (const int32_t id : ids) {
        checkId(id);
        const auto index = static_cast<size_t>(id);
        const std::string_view p = m_vocab.pieces[index];
        const PieceType type = m_vocab.types[index];
        if (type == PieceType::Byte) {
            const int b = parseBytePiece(p);
            if (b >= 0) {
                bytes += static_cast<char>(b);
                first = false;
                continue;
            }
        }
        flushBytes(out, bytes);
        if (type == PieceType::Control)
            continue;
        if (type == PieceType::Unknown) {
            out += " \xE2\x81\x87 "; // SentencePiece's surface of <unk>: " ⁇ "
            first = false;
            continue;
        }
        std::string_view text = p;
        if (first && m_stripLeadingSpace && text.starts_with(space))
            text.remove_prefix(space.size());
        first = false;
        out += m_style == DecodeStyle::Metaspace ? replaceAll(text, kSpaceSymbol, " ") : std::string(text);
    }
    flushBytes(out, bytes);
    return out;
}

std::string VocabTokenizer::pieceBytes(int32_t id) const
{
    checkId(id);
    const auto index = static_cast<size_t>(id);
    const std::string_view p = m_vocab.pieces[index];
    const PieceType type = m_vocab.types[index];
    if (type == PieceType::Control || type == PieceType::Unknown)
        return std::string(p);
    if (type == PieceType::Byte && parseBytePiece(p) >= 0)
        return std::string(1, static_cast<char>(parseBytePiece(p)));
    if (m_style == DecodeStyle::Metaspace)
        return replaceAll(p, kSpaceSymbol, " ");
    if (m_style == DecodeStyle::Llama2c)
        return std::string(p);
    std::string bytes;
    for (size_t pos = 0; pos < p.size();) {
        char32_t cp = 0;
        const size_t length = decodeUtf8(p, pos, cp);
        const int b = length == 0 ? -1 : byteLevelByte(cp);
        if (b >= 0)
            bytes += static_cast<char>(b);
        else
            bytes.append(p, pos, length == 0 ? 1 : length); // outside the byte alphabet (an added token)
        pos += length == 0 ? 1 : length;
    }
    return bytes;
}

void linkSymbols(std::vector<MergeSymbol>& symbols)
{
    const auto n = static_cast<int32_t>(symbols.size());
    for (int32_t i = 0; i < n; ++i) {
        symbols[static_cast<size_t>(i)].prev = i - 1;
        symbols[static_cast<size_t>(i)].next = i + 1 < n ? i + 1 : -1;
    }
}

void PairMerger::run(std::vector<MergeSymbol>& symbols, const Lookup& lookup)
{
    std::priority_queue<Entry, std::vector<Entry>, Lower> queue;
    auto consider = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0)
            return;
        const MergeSymbol& l = symbols[static_cast<size_t>(left)];
        const MergeSymbol& r = symbols[static_cast<size_t>(right)];
        if (l.frozen || r.frozen)
            return;
        if (const auto candidate = lookup(symbols, left, right))
            queue.push(Entry{candidate->priority, left, right, l.length + r.length, candidate->id});
    };
    for (size_t i = 1; i < symbols.size(); ++i)
        consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!queue.empty()) {
        const Entry top = queue.top();
        queue.pop();
        MergeSymbol& l = symbols[static_cast<size_t>(top.left)];
        MergeSymbol& r = symbols[static_cast<size_t>(top.right)];
        // Stale: one side was merged away or grew since the pair was queued.
        if (l.length == 0 || r.length == 0 || l.next != top.right || l.length + r.length != top.length)
            continue;
        l.length += r.length;
        l.id = top.id;
        l.next = r.next;
        if (r.next >= 0)
            symbols[static_cast<size_t>(r.next)].prev = top.left;
        r.length = 0;
        consider(l.prev, top.left);
        consider(top.left, l.next);
    }
}

std::vector<std::byte> readFileBytes(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorKind::Io, path.string() + ": cannot open the file (does it exist and is it readable?)");
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw Error(ErrorKind::Io, path.string() + ": reading the file failed");
    std::vector<std::byte> bytes(chars.size());
    for (size_t i = 0; i < chars.size(); ++i)
        bytes[i] = static_cast<std::byte>(chars[i]);
    return bytes;
}

void failInput(const std::string& label, const std::string& what)
{
    throw Error(ErrorKind::InvalidInput, label + ": " + what);
}

} // namespace novaq::text
