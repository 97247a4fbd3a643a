#include "novaq/container/novaq_file.h"

#include "novaq/io/atomic_file.h"
#include "novaq/io/byte_cursor.h"
#include "novaq/io/bytes.h"
#include "novaq/io/error.h"
#include "novaq/io/mapped_file.h"

#include <xxhash.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace novaq {

namespace {

constexpr uint64_t kHeaderSize = 64;
constexpr uint64_t kTrailerSize = 64;
constexpr std::array<unsigned char, 8> kHeaderMagic = {0x89, 'N', 'O', 'V', 'A', 'Q', '\r', '\n'};
constexpr std::string_view kTrailerMagic = "NOVAQIDX";
constexpr std::string_view kEndMagic = "NOVAQEND";

// Trailer layout (offsets within the last 64 bytes).
constexpr size_t kTrailerManifestOffset = 8;
constexpr size_t kTrailerManifestLength = 16;
constexpr size_t kTrailerManifestHash = 24;
constexpr size_t kTrailerFileSize = 32;
constexpr size_t kTrailerMajor = 40;
constexpr size_t kTrailerMinor = 42;
constexpr size_t kTrailerEnd = 56;

// Header layout.
constexpr size_t kHeaderMajor = 8;
constexpr size_t kHeaderMinor = 10;
constexpr size_t kHeaderSizeField = 12;

uint64_t alignUp(uint64_t v) { return (v + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign; }

std::string hex16(uint64_t v)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4)
        s[static_cast<size_t>(i)] = kDigits[v & 0xf];
    return s;
}

std::string versionText(uint16_t major, uint16_t minor) { return std::to_string(major) + "." + std::to_string(minor); }

[[noreturn]] void corrupt(const std::filesystem::path& path, const std::string& what)
{
    throw Error(ErrorKind::Corrupt, path.string() + ": " + what);
}

} // namespace

uint64_t checksum(std::span<const std::byte> data) noexcept { return XXH3_64bits(data.data(), data.size()); }

bool isNovaqHeader(std::span<const std::byte> head) noexcept
{
    return head.size() >= kHeaderMagic.size() &&
           std::memcmp(head.data(), kHeaderMagic.data(), kHeaderMagic.size()) == 0;
}

// ---- SectionRef ---------------------------------------------------------------------------------

nlohmann::json SectionRef::toJson() const
{
    return nlohmann::json{{"offset", offset}, {"length", length}, {"xxh3", hex16(xxh3)}};
}

SectionRef SectionRef::fromJson(const nlohmann::json& j, const std::string& what)
{
    if (!j.is_object())
        throw Error(ErrorKind::Corrupt, what + ": expected an object {\"offset\", \"length\", \"xxh3\"}");
    auto unsignedField = [&](const char* key) -> uint64_t {
        auto it = j.find(key);
        if (it == j.end())
            throw Error(ErrorKind::Corrupt, what + "." + key + ": missing");
        if (it->is_number_unsigned())
            return it->get<uint64_t>();
        if (it->is_number_integer() && it->get<int64_t>() >= 0)
            return static_cast<uint64_t>(it->get<int64_t>());
        throw Error(ErrorKind::Corrupt, what + "." + key + ": expected a non-negative integer, found " + it->dump());
    };
    SectionRef ref;
    ref.offset = unsignedField("offset");
    ref.length = unsignedField("length");
    auto it = j.find("xxh3");
    if (it == j.end())
        throw Error(ErrorKind::Corrupt, what + ".xxh3: missing");
    if (!it->is_string())
        throw Error(ErrorKind::Corrupt, what + ".xxh3: expected a string of 16 hex digits, found " + it->dump());
    const std::string& s = it->get_ref<const std::string&>();
    if (s.size() != 16)
        throw Error(ErrorKind::Corrupt, what + ".xxh3: expected 16 hex digits, found \"" + s + "\"");
    uint64_t v = 0;
    for (char c : s) {
        int digit = 0;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            throw Error(ErrorKind::Corrupt, what + ".xxh3: expected 16 hex digits, found \"" + s + "\"");
        v = (v << 4) | static_cast<uint64_t>(digit);
    }
    ref.xxh3 = v;
    return ref;
}

// ---- NovaqWriter --------------------------------------------------------------------------------

struct NovaqWriter::Impl {
    Impl(const std::filesystem::path& target, uint16_t minorVersion) : file(target), minor(minorVersion) {}
    AtomicFile file;
    uint16_t minor;
    bool finished = false; // committed, or failed while committing
};

NovaqWriter::NovaqWriter(const std::filesystem::path& target, uint16_t minor)
    : m_impl(std::make_unique<Impl>(target, minor))
{
    std::array<std::byte, kHeaderSize> header{};
    std::memcpy(header.data(), kHeaderMagic.data(), kHeaderMagic.size());
    storeLe<uint16_t>(header.data() + kHeaderMajor, kNovaqMajor);
    storeLe<uint16_t>(header.data() + kHeaderMinor, minor);
    storeLe<uint32_t>(header.data() + kHeaderSizeField, static_cast<uint32_t>(kHeaderSize));
    m_impl->file.write(header);
}

NovaqWriter::~NovaqWriter() = default; // AtomicFile deletes the temporary file unless committed

SectionRef NovaqWriter::writeSection(std::span<const std::byte> data)
{
    if (m_impl->finished)
        throw Error(ErrorKind::InvalidArgument,
                    "NovaqWriter: writeSection() after commit() for '" + m_impl->file.target().string() + "'");
    AtomicFile& file = m_impl->file;
    file.writeZeros(alignUp(file.position()) - file.position());
    SectionRef ref;
    ref.offset = file.position();
    ref.length = data.size();
    ref.xxh3 = checksum(data);
    file.write(data);
    return ref;
}

void NovaqWriter::commit(const nlohmann::json& manifest)
{
    if (m_impl->finished)
        throw Error(ErrorKind::InvalidArgument,
                    "NovaqWriter: commit() called twice for '" + m_impl->file.target().string() + "'");
    m_impl->finished = true;
    AtomicFile& file = m_impl->file;
    try {
        const std::string text = manifest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        file.writeZeros(alignUp(file.position()) - file.position());
        const uint64_t manifestOffset = file.position();
        const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
        file.write(std::span<const std::byte>(bytes, text.size()));
        file.writeZeros(alignUp(file.position()) - file.position());

        std::array<std::byte, kTrailerSize> trailer{};
        std::memcpy(trailer.data(), kTrailerMagic.data(), kTrailerMagic.size());
        storeLe<uint64_t>(trailer.data() + kTrailerManifestOffset, manifestOffset);
        storeLe<uint64_t>(trailer.data() + kTrailerManifestLength, text.size());
        storeLe<uint64_t>(trailer.data() + kTrailerManifestHash,
                          checksum(std::span<const std::byte>(bytes, text.size())));
        storeLe<uint64_t>(trailer.data() + kTrailerFileSize, file.position() + kTrailerSize);
        storeLe<uint16_t>(trailer.data() + kTrailerMajor, kNovaqMajor);
        storeLe<uint16_t>(trailer.data() + kTrailerMinor, m_impl->minor);
        std::memcpy(trailer.data() + kTrailerEnd, kEndMagic.data(), kEndMagic.size());
        file.write(trailer);
        file.commit();
    } catch (...) {
        file.discard();
        throw;
    }
}

const std::filesystem::path& NovaqWriter::temporaryPath() const noexcept { return m_impl->file.temporaryPath(); }

// ---- NovaqFile ----------------------------------------------------------------------------------

struct NovaqFile::Impl {
    MappedFile map;
    nlohmann::json manifest;
    uint16_t major = 0;
    uint16_t minor = 0;
    uint64_t manifestOffset = 0;
};

NovaqFile::NovaqFile(const std::filesystem::path& path) : m_impl(std::make_unique<Impl>())
{
    Impl& d = *m_impl;
    d.map = MappedFile(path);
    const uint64_t size = d.map.size();
    const std::byte* base = d.map.data();
    if (size < kHeaderSize + kTrailerSize) {
        if (size >= kHeaderMagic.size() && isNovaqHeader(d.map.bytes()))
            corrupt(path, "truncated: a .novaq file has at least " + std::to_string(kHeaderSize + kTrailerSize) +
                              " bytes, found " + std::to_string(size) + " — re-create or re-download it");
        corrupt(path, "not a .novaq file (only " + std::to_string(size) + " bytes)");
    }
    if (!isNovaqHeader(d.map.bytes()))
        corrupt(path, "not a .novaq file: bad magic at offset 0");

    // Both ends are read in order through the shared cursor; the layout constants above are
    // the writer's, and the reads below walk the same fields.
    static_assert(kHeaderMajor == 8 && kHeaderMinor == 10 && kHeaderSizeField == 12);
    static_assert(kTrailerManifestOffset == 8 && kTrailerManifestLength == 16 && kTrailerManifestHash == 24 &&
                  kTrailerFileSize == 32 && kTrailerMajor == 40 && kTrailerMinor == 42 && kTrailerEnd == 56);
    const ByteCursor file(d.map.bytes(), path.string(), ErrorKind::Corrupt);
    ByteCursor header = file.range(0, kHeaderSize, "the header");
    header.setContext("header");
    header.skip(kHeaderMagic.size(), "magic");
    d.major = header.read<uint16_t>("major version");
    d.minor = header.read<uint16_t>("minor version");
    if (d.major > kNovaqMajor)
        corrupt(path, "written by a newer NOVAQ (format " + versionText(d.major, d.minor) + "); this build reads " +
                          std::to_string(kNovaqMajor) + ".x — update NOVAQ Studio");
    if (d.major < kNovaqMajor)
        corrupt(path, "format version " + versionText(d.major, d.minor) + " is not supported; this build reads " +
                          std::to_string(kNovaqMajor) + ".x");
    const uint64_t headerSize = header.read<uint32_t>("header size");
    if (headerSize != kHeaderSize)
        corrupt(path, "header size at offset " + std::to_string(kHeaderSizeField) + " is " +
                          std::to_string(headerSize) + ", expected " + std::to_string(kHeaderSize));

    const uint64_t trailerAt = size - kTrailerSize;
    ByteCursor trailer = file.range(trailerAt, kTrailerSize, "the trailer");
    trailer.setContext("trailer");
    const bool trailerMagic = trailer.startsWith(kTrailerMagic);
    trailer.skip(kTrailerMagic.size(), "magic");
    const auto manifestOffset = trailer.read<uint64_t>("manifest offset");
    const auto manifestLength = trailer.read<uint64_t>("manifest length");
    const auto expectedHash = trailer.read<uint64_t>("manifest xxh3");
    const auto recordedSize = trailer.read<uint64_t>("file size");
    const auto trailerMajor = trailer.read<uint16_t>("major version");
    const auto trailerMinor = trailer.read<uint16_t>("minor version");
    trailer.skip(kTrailerEnd - kTrailerMinor - 2, "reserved bytes");
    if (!trailerMagic || !trailer.startsWith(kEndMagic))
        corrupt(path, "truncated or incomplete: no trailer in the last 64 bytes (offset " + std::to_string(trailerAt) +
                          ") — the file was cut short or not completely written; re-create or re-download it");
    if (recordedSize != size) {
        if (recordedSize > size)
            corrupt(path, "truncated: expected " + std::to_string(recordedSize) + " bytes, found " +
                              std::to_string(size) + " — re-create or re-download it");
        corrupt(path, "size mismatch: expected " + std::to_string(recordedSize) + " bytes, found " +
                          std::to_string(size) + " — re-create or re-download it");
    }
    if (trailerMajor != d.major || trailerMinor != d.minor)
        corrupt(path, "trailer version " + versionText(trailerMajor, trailerMinor) + " (offset " +
                          std::to_string(trailerAt + kTrailerMajor) + ") does not match header version " +
                          versionText(d.major, d.minor));

    const uint64_t manifestEnd = trailerAt;
    if (manifestOffset < kHeaderSize || manifestOffset > manifestEnd || manifestLength > manifestEnd - manifestOffset)
        corrupt(path, "manifest offset " + std::to_string(manifestOffset) + " / length " +
                          std::to_string(manifestLength) + " (trailer at offset " + std::to_string(trailerAt) +
                          ") lies outside the file's data area [" + std::to_string(kHeaderSize) + ", " +
                          std::to_string(manifestEnd) + ")");
    const std::span<const std::byte> manifestBytes(base + manifestOffset, static_cast<size_t>(manifestLength));
    const uint64_t actualHash = checksum(manifestBytes);
    if (actualHash != expectedHash)
        corrupt(path, "manifest checksum mismatch at offset " + std::to_string(manifestOffset) + " (expected xxh3 " +
                          hex16(expectedHash) + ", found " + hex16(actualHash) +
                          ") — the file was damaged; re-create or re-download it");
    try {
        const std::string_view text(reinterpret_cast<const char*>(manifestBytes.data()), manifestBytes.size());
        d.manifest = parseJsonStrict(text, path, manifestOffset,
                                     "the manifest at offset " + std::to_string(manifestOffset), kMaxManifestDepth);
    } catch (const Error& e) {
        throw Error(ErrorKind::Corrupt, e.what()); // the message names the file already
    }
    if (!d.manifest.is_object())
        corrupt(path, "manifest at offset " + std::to_string(manifestOffset) + " is not a JSON object");
    auto format = d.manifest.find("format");
    if (format == d.manifest.end() || !format->is_string() || format->get<std::string>() != "novaq")
        corrupt(path, "manifest field \"format\" is not \"novaq\"");
    d.manifestOffset = manifestOffset;
}

NovaqFile::~NovaqFile() = default;
NovaqFile::NovaqFile(NovaqFile&&) noexcept = default;
NovaqFile& NovaqFile::operator=(NovaqFile&&) noexcept = default;

const nlohmann::json& NovaqFile::manifest() const noexcept { return m_impl->manifest; }
uint64_t NovaqFile::fileSize() const noexcept { return m_impl->map.size(); }
uint16_t NovaqFile::major() const noexcept { return m_impl->major; }
uint16_t NovaqFile::minor() const noexcept { return m_impl->minor; }
const std::filesystem::path& NovaqFile::path() const noexcept { return m_impl->map.path(); }

std::span<const std::byte> NovaqFile::section(const SectionRef& ref, const std::string& what, bool verify) const
{
    const Impl& d = *m_impl;
    const uint64_t size = d.map.size();
    const uint64_t end = size - kTrailerSize;
    if (ref.offset < kHeaderSize || ref.offset > end || ref.length > end - ref.offset)
        corrupt(d.map.path(), "data of " + what + " at offset " + std::to_string(ref.offset) + " (length " +
                                  std::to_string(ref.length) + ") lies outside the file's data area [" +
                                  std::to_string(kHeaderSize) + ", " + std::to_string(end) + ")");
    const std::span<const std::byte> bytes(d.map.data() + ref.offset, static_cast<size_t>(ref.length));
    if (verify) {
        const uint64_t actual = checksum(bytes);
        if (actual != ref.xxh3)
            corrupt(d.map.path(), "checksum mismatch in the data of " + what + " at offset " +
                                      std::to_string(ref.offset) + " (length " + std::to_string(ref.length) +
                                      "; expected xxh3 " + hex16(ref.xxh3) + ", found " + hex16(actual) +
                                      ") — the file was damaged; re-create or re-download it");
    }
    return bytes;
}

void NovaqFile::release(const SectionRef& ref) const noexcept { m_impl->map.release(ref.offset, ref.length); }

} // namespace novaq
