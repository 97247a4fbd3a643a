#include "novaq/formats/zip_archive.h"

#include "novaq/io/byte_cursor.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_set>
#include <zlib.h>

namespace novaq {

namespace {

constexpr uint32_t kLocalMagic = 0x04034b50;
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

// The signatures as they stand in the file (little-endian), for ByteCursor::startsWith.
constexpr std::string_view kLocalSignature{"PK\x03\x04", 4};
constexpr std::string_view kCentralSignature{"PK\x01\x02", 4};

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
    return head.size() >= 4 && loadLe<uint32_t>(head.data()) == kLocalMagic;
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
    const ByteCursor file(m_bytes, m_path.string());
    ByteCursor central = file.range(dir.offset, dir.size, "the central directory");
    for (uint64_t i = 0; i < dir.count; ++i) {
        ZipEntry e;
        readCentralEntry(central, i, e);
        if (!names.insert(e.name).second)
            fail("entry \"" + e.name + "\" appears twice in the central directory (second" + at(e.centralOffset) +
                 "); the archive is damaged or was built by a broken tool");
        m_entries.push_back(std::move(e));
    }
}

// The end of central directory record: the last signature within the trailing comment range.
uint64_t ZipArchive::findEndRecord() const
{
    const uint64_t size = m_bytes.size();
    const std::byte* base = m_bytes.data();
    const uint64_t lowest = size - kEndBytes > kMaxComment ? size - kEndBytes - kMaxComment : 0;
    for (uint64_t pos = size - kEndBytes + 1; pos-- > lowest;)
        if (loadLe<uint32_t>(base + pos) == kEndMagic && pos + kEndBytes + loadLe<uint16_t>(base + pos + 20) <= size)
            return pos;
    fail("no zip end of central directory record in the last " + std::to_string(size - lowest) +
         " bytes; the archive is truncated or damaged, download it again");
}

// Where the central directory is and how many entries it lists, from the end record at `end`
// (or the ZIP64 end record it leads to), checked against the file.
ZipArchive::CentralDirectory ZipArchive::readEndRecords(uint64_t end) const
{
    const ByteCursor file(m_bytes, m_path.string());
    ByteCursor eocd = file.range(end, kEndBytes, "the end of central directory record");
    eocd.setContext("end of central directory");
    eocd.skip(4, "signature");
    uint64_t diskNumber = eocd.read<uint16_t>("disk number");
    uint64_t centralDisk = eocd.read<uint16_t>("central directory disk");
    eocd.skip(2, "entries on this disk");
    uint64_t count = eocd.read<uint16_t>("entry count");
    uint64_t centralSize = eocd.read<uint32_t>("central directory size");
    uint64_t centralOffset = eocd.read<uint32_t>("central directory offset");
    uint64_t centralLimit = end; // the central directory ends before the record that describes it

    // ZIP64: a locator right before the end record points at the ZIP64 end record, whose
    // 64-bit counts and offsets replace the 16/32-bit ones (torch writes it for every archive).
    if (end >= kEnd64LocatorBytes &&
        loadLe<uint32_t>(m_bytes.data() + end - kEnd64LocatorBytes) == kEnd64LocatorMagic) {
        const uint64_t locatorAt = end - kEnd64LocatorBytes;
        ByteCursor locator = file.range(locatorAt, kEnd64LocatorBytes, "the ZIP64 locator");
        locator.setContext("ZIP64 locator");
        locator.skip(8, "signature and disk");
        const auto record = locator.read<uint64_t>("ZIP64 end of central directory offset");
        if (record > locatorAt || locatorAt - record < kEnd64Bytes)
            fail("the ZIP64 end of central directory offset " + std::to_string(record) + " (field of the locator" +
                 at(locatorAt + 8) + ") does not leave room for the record before the locator; the archive is damaged");
        ByteCursor zip64 = file.range(record, kEnd64Bytes, "the ZIP64 end of central directory record");
        zip64.setContext("ZIP64 end of central directory");
        if (zip64.read<uint32_t>("signature") != kEnd64Magic)
            fail("no ZIP64 end of central directory record" + at(record) +
                 " where the locator points; the archive is damaged");
        zip64.skip(12, "record size and versions");
        diskNumber = zip64.read<uint32_t>("disk number");
        centralDisk = zip64.read<uint32_t>("central directory disk");
        zip64.skip(8, "entries on this disk");
        count = zip64.read<uint64_t>("entry count");
        centralSize = zip64.read<uint64_t>("central directory size");
        centralOffset = zip64.read<uint64_t>("central directory offset");
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

// Reads the central directory entry (the i-th) at the cursor, which covers the central
// directory, into e; leaves the cursor after the entry.
void ZipArchive::readCentralEntry(ByteCursor& dir, uint64_t i, ZipEntry& e) const
{
    const uint64_t pos = dir.pos();
    dir.setContext("central directory entry " + std::to_string(i));
    if (dir.remaining() < kCentralBytes || !dir.startsWith(kCentralSignature))
        fail("central directory entry " + std::to_string(i) + at(pos) +
             " is missing or has a bad signature; the archive is damaged");
    e.centralOffset = pos;
    dir.skip(8, "signature and versions");
    e.flags = dir.read<uint16_t>("flags");
    e.method = dir.read<uint16_t>("compression method");
    dir.skip(4, "modification time");
    e.crc32 = dir.read<uint32_t>("CRC-32");
    e.compressedSize = dir.read<uint32_t>("compressed size");
    e.size = dir.read<uint32_t>("size");
    const uint64_t nameLen = dir.read<uint16_t>("name length");
    const uint64_t extraLen = dir.read<uint16_t>("extra field length");
    const uint64_t commentLen = dir.read<uint16_t>("comment length");
    const uint64_t disk = dir.read<uint16_t>("disk number");
    dir.skip(6, "file attributes");
    e.localHeaderOffset = dir.read<uint32_t>("local header offset");
    e.name = dir.readBytes(nameLen, "name");
    dir.need(extraLen, "extra fields");
    ByteCursor extra = dir.range(dir.pos(), extraLen, "the extra fields of entry \"" + e.name + "\"");
    dir.skip(extraLen, "extra fields");
    dir.skip(commentLen, "comment");

    readZip64Extra(extra, e);
    if (disk != 0 && disk != 0xFFFF)
        fail("entry \"" + e.name + "\" lives on disk " + std::to_string(disk) +
             "; multi-part zip archives are not supported");
}

// ZIP64 extra field: 64-bit values for exactly those fields of e that hold 0xFFFFFFFF, in order.
void ZipArchive::readZip64Extra(ByteCursor& extra, ZipEntry& e) const
{
    extra.setContext("entry \"" + e.name + "\"");
    while (extra.remaining() >= 4) {
        const uint64_t x = extra.pos();
        const auto id = extra.read<uint16_t>("extra field id");
        const uint64_t len = extra.read<uint16_t>("extra field length");
        if (len > extra.remaining())
            fail("entry \"" + e.name + "\": extra field" + at(x) + " (" + std::to_string(len) +
                 " bytes) runs past its record; the archive is damaged");
        if (id == kZip64ExtraId) {
            ByteCursor zip64 = extra.range(extra.pos(), len, "the ZIP64 extra field");
            zip64.setContext("entry \"" + e.name + "\"");
            if (e.size == 0xFFFFFFFF)
                e.size = zip64.read<uint64_t>("64-bit size");
            if (e.compressedSize == 0xFFFFFFFF)
                e.compressedSize = zip64.read<uint64_t>("64-bit compressed size");
            if (e.localHeaderOffset == 0xFFFFFFFF)
                e.localHeaderOffset = zip64.read<uint64_t>("64-bit local header offset");
        }
        extra.skip(len, "extra field");
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
    // Lengths from the local header: torch pads the local extra field so that data is aligned.
    const ByteCursor file(m_bytes, m_path.string());
    ByteCursor header = file.range(local, m_centralStart - local, "the entries (before the central directory)");
    header.setContext(entry + " local header");
    if (!header.startsWith(kLocalSignature))
        fail(entry + ": no local header signature" + at(local) + "; the archive is damaged");
    header.skip(26, "signature, versions, flags, method, time, CRC-32 and sizes");
    const uint64_t nameLen = header.read<uint16_t>("name length");
    const uint64_t extraLen = header.read<uint16_t>("extra field length");
    const uint64_t data = local + kLocalBytes + nameLen + extraLen;
    if (data > m_centralStart || e.size > m_centralStart - data)
        fail(entry + ": its " + std::to_string(e.size) + " bytes" + at(data) +
             " run past the end of the entries (the central directory starts" + at(m_centralStart) +
             "); the archive is truncated or damaged");
    if (header.readBytes(nameLen, "name") != e.name)
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
