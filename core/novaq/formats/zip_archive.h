#pragma once
// A read-only view of a zip archive held in memory (an mmapped file), for PyTorch checkpoints.
//
// Why our own reader rather than libzip or minizip (both in Debian): torch.save writes every
// record STORED (method 0) and 64-byte aligned precisely so that readers can map tensor bytes
// in place. We need nothing but the central directory (with ZIP64, for checkpoints over 4 GB)
// and the offset of each entry's bytes in the mapping; a general zip library would bring
// decompression we must refuse anyway, a second I/O path beside the mmap, and a dependency.
// Every length and offset is checked against the file before it is used, and a failing field
// is named with its file offset. Record bytes are checked against the CRC-32 the central
// directory records (zlib's crc32) when they are read: verify(), once per record.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace novaq {

class ByteCursor;

struct ZipEntry {
    std::string name;
    uint16_t flags = 0;
    uint16_t method = 0; // 0 stored, 8 deflate, ...
    uint64_t compressedSize = 0;
    uint64_t size = 0;
    uint64_t localHeaderOffset = 0;
    uint64_t centralOffset = 0; // file offset of this entry's central directory record
    uint32_t crc32 = 0;         // of the uncompressed bytes, from the central directory
};

class ZipArchive {
public:
    // Parses the end of central directory (ZIP64 when present) and the central directory.
    // Throws Error(InvalidInput) naming `path`, the field and its offset when they are malformed.
    ZipArchive(std::span<const std::byte> bytes, std::filesystem::path path);

    const std::vector<ZipEntry>& entries() const noexcept { return m_entries; }
    const ZipEntry* find(std::string_view name) const noexcept;

    // The file offset of a STORED entry's bytes, checked against its local header and the
    // file. Compressed or encrypted entries are refused (Error(InvalidInput) naming the entry).
    uint64_t dataOffset(const ZipEntry& entry) const;
    std::span<const std::byte> data(const ZipEntry& entry) const;
    // data(entry), after checking it against the entry's CRC-32.
    std::span<const std::byte> verifiedData(const ZipEntry& entry) const;

    // Throws Error(InvalidInput) naming `archive`, the entry and both checksums when the CRC-32
    // of `bytes` is not `expected`. For callers that check a record later than the archive
    // is parsed (PyTorch storages, when their tensor is read).
    static void verify(std::span<const std::byte> bytes, uint32_t expected, const std::filesystem::path& archive,
                       const std::string& entry);

    static bool hasZipMagic(std::span<const std::byte> head) noexcept;

private:
    // Where the central directory is, from the end records.
    struct CentralDirectory {
        uint64_t offset = 0, size = 0, count = 0;
    };

    [[noreturn]] void fail(const std::string& what) const;
    uint64_t findEndRecord() const;
    CentralDirectory readEndRecords(uint64_t end) const;
    void readCentralEntry(ByteCursor& dir, uint64_t i, ZipEntry& e) const;
    void readZip64Extra(ByteCursor& extra, ZipEntry& e) const;

    std::span<const std::byte> m_bytes;
    std::filesystem::path m_path;
    std::vector<ZipEntry> m_entries; // in central directory order
    uint64_t m_centralStart = 0;     // entry data must end before the central directory
};

} // namespace novaq
