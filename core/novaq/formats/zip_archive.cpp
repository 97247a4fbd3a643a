#include "novaq/formats/zip_archive.h"

#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <algorithm>
#include <cstdio>
#include <unordered_set>
#include <zlib.h>

namespace novaq {

namespace {

constexpr uint32_t kLocalMagic = 0x04034b50;
constexpr uint32_t kCentralMagic = 0x02014b50;
constexpr uint32_t kEndMagic = 0x06054b50;
constexpr uint32_t kEnd64Magic = 0x06064b50;
constexpr uint32_t kEnd64LocatorMagic = 0x07064b50;
constexpr uint64_t kEndBytes = 22;
constexpr uint64_t kEnd64Bytes = 56;
constexpr uint64_t kEnd64LocatorBytes = 20;
constexpr uint64_t kCentralBytes = 46;
constexpr uint64_t kLocalBytes = 30;
constexpr uint64_t kMaxComment = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 0x0001;

// A little-endian field of 2, 4 or 8 bytes, widened.
uint64_t leField(const std::byte* p, int bytes)
{
    switch (bytes) {
    case 2:
        return loadLe<uint16_t>(p);
    case 4:
        return loadLe<uint32_t>(p);
    default:
        return loadLe<uint64_t>(p);
    }
}

std::string at(uint64_t offset) { return " at file offset " + std::to_string(offset); }

std::string hex32(uint32_t value)
{
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", value);
    return text;
}

} // namespace

bool ZipArchive::hasZipMagic(std::span<const std::byte> head) noexcept
{
    return head.size() >= 4 && leField(head.data(), 4) == kLocalMagic;
}

void ZipArchive::fail(const std::string& what) const
{
    throw Error(ErrorKind::InvalidInput, m_path.string() + ": " + what);
}

ZipArchive::ZipArchive(std::span<const std::byte> bytes, std::filesystem::path path)
    : m_bytes(bytes), m_path(std::move(path))
{
    const uint64_t size = m_bytes.size();
    if (size < kEndBytes)
        fail("the file is " + std::to_string(size) +
             " bytes, too short for a zip archive's end of central directory; it is truncated");
    const CentralDirectory dir = readEndRecords(findEndRecord());
    m_centralStart = dir.offset;

    m_entries.reserve(static_cast<size_t>(dir.count));
    std::unordered_set<std::string> names;
    uint64_t pos = dir.offset;
    const uint64_t centralEnd = dir.offset + dir.size;
    for (uint64_t i = 0; i < dir.count; ++i) {
        ZipEntry e;
        const uint64_t recordBytes = readCentralEntry(pos, centralEnd, i, e);
        if (!names.insert(e.name).second)
            fail("entry \"" + e.name + "\" appears twice in the central directory (second" + at(pos) +
                 "); the archive is damaged or was built by a broken tool");
        m_entries.push_back(std::move(e));
        pos += recordBytes;
    }
}

// The end of central directory record: the last signature within the trailing comment range.
uint64_t ZipArchive::findEndRecord() const
{
    const uint64_t size = m_bytes.size();
    const std::byte* base = m_bytes.data();
    const uint64_t lowest = size - kEndBytes > kMaxComment ? size - kEndBytes - kMaxComment : 0;
    for (uint64_t pos = size - kEndBytes + 1; pos-- > lowest;)
        if (leField(base + pos, 4) == kEndMagic && pos + kEndBytes + leField(base + pos + 20, 2) <= size)
            return pos;
    fail("no zip end of central directory record in the last " + std::to_string(size - lowest) +
         " bytes; the archive is truncated or damaged, download it again");
}

// Where the central directory is and how many entries it lists, from the end record at `end`
// (or the ZIP64 end record it leads to), checked against the file.
ZipArchive::CentralDirectory ZipArchive::readEndRecords(uint64_t end) const
{
    const std::byte* base = m_bytes.data();
    uint64_t diskNumber = leField(base + end + 4, 2);
    uint64_t centralDisk = leField(base + end + 6, 2);
    uint64_t count = leField(base + end + 10, 2);
    uint64_t centralSize = leField(base + end + 12, 4);
    uint64_t centralOffset = leField(base + end + 16, 4);
    uint64_t centralLimit = end; // the central directory ends before the record that describes it

    // ZIP64: a locator right before the end record points at the ZIP64 end record, whose
    // 64-bit counts and offsets replace the 16/32-bit ones (torch writes it for every archive).
    if (end >= kEnd64LocatorBytes && leField(base + end - kEnd64LocatorBytes, 4) == kEnd64LocatorMagic) {
        const uint64_t locator = end - kEnd64LocatorBytes;
        const uint64_t record = leField(base + locator + 8, 8);
        if (record > locator || locator - record < kEnd64Bytes)
            fail("the ZIP64 end of central directory offset " + std::to_string(record) + " (field of the locator" +
                 at(locator + 8) + ") does not leave room for the record before the locator; the archive is damaged");
        if (leField(base + record, 4) != kEnd64Magic)
            fail("no ZIP64 end of central directory record" + at(record) +
                 " where the locator points; the archive is damaged");
        diskNumber = leField(base + record + 16, 4);
        centralDisk = leField(base + record + 20, 4);
        count = leField(base + record + 32, 8);
        centralSize = leField(base + record + 40, 8);
        centralOffset = leField(base + record + 48, 8);
        centralLimit = record;
    } else if (count == 0xFFFF || centralSize == 0xFFFFFFFF || centralOffset == 0xFFFFFFFF) {
        fail("the end of central directory" + at(end) +
             " says the archive is ZIP64, but there is no ZIP64 locator before it; the archive is damaged");
    }
    if (diskNumber != 0 || centralDisk != 0)
        fail("the archive spans several disks (end of central directory" + at(end) +
             "); multi-part zip archives are not supported, join the parts first");
    if (centralOffset > centralLimit || centralSize > centralLimit - centralOffset)
        fail("the central directory (offset " + std::to_string(centralOffset) + ", " + std::to_string(centralSize) +
             " bytes, from the end record" + at(end) +
             ") runs past the end of the file or into its end record; "
             "the archive is truncated or damaged");
    if (count > centralSize / kCentralBytes)
        fail("the end of central directory" + at(end) + " lists " + std::to_string(count) + " entries, more than its " +
             std::to_string(centralSize) + "-byte central directory can hold");
    return CentralDirectory{centralOffset, centralSize, count};
}

// Reads the central directory entry at `pos` (the i-th) into e; returns its record's size.
uint64_t ZipArchive::readCentralEntry(uint64_t pos, uint64_t centralEnd, uint64_t i, ZipEntry& e) const
{
    const std::byte* base = m_bytes.data();
    if (centralEnd - pos < kCentralBytes || leField(base + pos, 4) != kCentralMagic)
        fail("central directory entry " + std::to_string(i) + at(pos) +
             " is missing or has a bad signature; the archive is damaged");
    e.centralOffset = pos;
    e.flags = static_cast<uint16_t>(leField(base + pos + 8, 2));
    e.method = static_cast<uint16_t>(leField(base + pos + 10, 2));
    e.crc32 = static_cast<uint32_t>(leField(base + pos + 16, 4));
    e.compressedSize = leField(base + pos + 20, 4);
    e.size = leField(base + pos + 24, 4);
    const uint64_t nameLen = leField(base + pos + 28, 2);
    const uint64_t extraLen = leField(base + pos + 30, 2);
    const uint64_t commentLen = leField(base + pos + 32, 2);
    const uint64_t disk = leField(base + pos + 34, 2);
    e.localHeaderOffset = leField(base + pos + 42, 4);
    const uint64_t recordBytes = kCentralBytes + nameLen + extraLen + commentLen;
    if (recordBytes > centralEnd - pos)
        fail("central directory entry " + std::to_string(i) + at(pos) +
             " runs past the end of the central directory; the archive is damaged");
    e.name.assign(reinterpret_cast<const char*>(base + pos + kCentralBytes), static_cast<size_t>(nameLen));

    readZip64Extra(pos + kCentralBytes + nameLen, extraLen, e);
    if (disk != 0 && disk != 0xFFFF)
        fail("entry \"" + e.name + "\" lives on disk " + std::to_string(disk) +
             "; multi-part zip archives are not supported");
    return recordBytes;
}

// ZIP64 extra field: 64-bit values for exactly those fields of e that hold 0xFFFFFFFF, in order.
void ZipArchive::readZip64Extra(uint64_t extraStart, uint64_t extraLen, ZipEntry& e) const
{
    const std::byte* base = m_bytes.data();
    const uint64_t extraEnd = extraStart + extraLen;
    for (uint64_t x = extraStart; extraEnd - x >= 4;) {
        const auto id = static_cast<uint16_t>(leField(base + x, 2));
        const uint64_t len = leField(base + x + 2, 2);
        if (len > extraEnd - x - 4)
            fail("entry \"" + e.name + "\": extra field" + at(x) + " runs past its record; the archive is damaged");
        if (id == kZip64ExtraId) {
            uint64_t field = x + 4;
            const auto take = [&](uint64_t& value, const char* what) {
                if (field + 8 > x + 4 + len)
                    fail("entry \"" + e.name + "\": the ZIP64 extra field" + at(x) + " lacks the 64-bit " + what);
                value = leField(base + field, 8);
                field += 8;
            };
            if (e.size == 0xFFFFFFFF)
                take(e.size, "size");
            if (e.compressedSize == 0xFFFFFFFF)
                take(e.compressedSize, "compressed size");
            if (e.localHeaderOffset == 0xFFFFFFFF)
                take(e.localHeaderOffset, "local header offset");
        }
        x += 4 + len;
    }
}

const ZipEntry* ZipArchive::find(std::string_view name) const noexcept
{
    const auto it = std::find_if(m_entries.begin(), m_entries.end(), [&](const ZipEntry& e) { return e.name == name; });
    return it == m_entries.end() ? nullptr : &*it;
}

uint64_t ZipArchive::dataOffset(const ZipEntry& e) const
{
    const std::string entry = "entry \"" + e.name + "\"";
    if (e.flags & kFlagEncrypted)
        fail(entry + " is encrypted; PyTorch never encrypts its records, so this archive was not written by "
                     "torch.save");
    if (e.method != 0)
        fail(entry + " is compressed (method " + std::to_string(e.method) + (e.method == 8 ? ", deflate" : "") +
             ", central directory" + at(e.centralOffset) +
             "); PyTorch checkpoints store their records uncompressed so that they can be mapped. The archive was "
             "repacked by another tool: load it in Python and save it again with torch.save");
    if (e.compressedSize != e.size)
        fail(entry + " is stored uncompressed but its compressed size " + std::to_string(e.compressedSize) +
             " differs from its size " + std::to_string(e.size) + " (central directory" + at(e.centralOffset) +
             "); the archive is damaged");
    const uint64_t local = e.localHeaderOffset;
    if (local > m_centralStart || m_centralStart - local < kLocalBytes)
        fail(entry + ": local header offset " + std::to_string(local) + " (central directory" +
             at(e.centralOffset + 42) + ") lies past the entries, which end at the central directory" +
             at(m_centralStart) + "; the archive is truncated or damaged");
    const std::byte* p = m_bytes.data() + local;
    if (leField(p, 4) != kLocalMagic)
        fail(entry + ": no local header signature" + at(local) + "; the archive is damaged");
    // Lengths from the local header: torch pads the local extra field so that data is aligned.
    const uint64_t nameLen = leField(p + 26, 2);
    const uint64_t extraLen = leField(p + 28, 2);
    const uint64_t data = local + kLocalBytes + nameLen + extraLen;
    if (data > m_centralStart || e.size > m_centralStart - data)
        fail(entry + ": its " + std::to_string(e.size) + " bytes" + at(data) +
             " run past the end of the entries (the central directory starts" + at(m_centralStart) +
             "); the archive is truncated or damaged");
    if (nameLen != e.name.size() ||
        !std::equal(e.name.begin(), e.name.end(), reinterpret_cast<const char*>(p + kLocalBytes)))
        fail(entry + ": the local header" + at(local) +
             " names a different entry than the central directory; the archive is damaged");
    return data;
}

std::span<const std::byte> ZipArchive::data(const ZipEntry& entry) const
{
    const uint64_t offset = dataOffset(entry);
    return m_bytes.subspan(static_cast<size_t>(offset), static_cast<size_t>(entry.size));
}

std::span<const std::byte> ZipArchive::verifiedData(const ZipEntry& entry) const
{
    const std::span<const std::byte> bytes = data(entry);
    verify(bytes, entry.crc32, m_path, entry.name);
    return bytes;
}

void ZipArchive::verify(std::span<const std::byte> bytes, uint32_t expected, const std::filesystem::path& archive,
                        const std::string& entry)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    // crc32() takes a 32-bit length: records over 4 GB go in pieces.
    constexpr size_t kPiece = size_t(1) << 30;
    for (size_t done = 0; done < bytes.size(); done += kPiece) {
        const size_t n = std::min(kPiece, bytes.size() - done);
        crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(n));
    }
    const auto actual = static_cast<uint32_t>(crc);
    if (actual != expected)
        throw Error(ErrorKind::InvalidInput,
                    archive.string() + ": record \"" + entry + "\" (" + std::to_string(bytes.size()) +
                        " bytes) fails its CRC-32 check: the zip directory records " + hex32(expected) +
                        ", its bytes give " + hex32(actual) + "; the file is damaged, download or copy it again");
}

} // namespace novaq
