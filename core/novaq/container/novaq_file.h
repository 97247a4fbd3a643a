#pragma once
// The .novaq container (design.md section 3).
//
//   offset 0   header, 64 bytes: magic "\x89NOVAQ\r\n" (8), u16 major, u16 minor,
//              u32 header size (64), zeros
//   then       data sections, each starting on a 64-byte boundary, zero padding between,
//              written in the order tensors finish
//   then       the manifest: UTF-8 JSON, 64-byte aligned (tensor records point at sections)
//   last 64    trailer: magic "NOVAQIDX" (8), u64 manifest offset, u64 manifest length,
//              u64 manifest XXH3-64, u64 file size, u16 major, u16 minor, zeros,
//              last 8 bytes "NOVAQEND"
// All integers little-endian. Every section carries its own XXH3-64 in the manifest.
// Version rules: a reader accepts any minor of its major; a new major is refused with a
// message that says which version wrote the file. A new variant of something the manifest
// already describes is a new value of an existing key (a new tensor `encoding`), never a new
// key, and takes the next minor; a file is written with the lowest minor that describes it,
// so files that use nothing new stay byte-identical to those of older writers.
// In particular a codec variant is a new `encoding` name, never a new key in a "novaq"
// record's "codec" object or beside it: older readers ignore unknown keys, so they would decode
// the variant's tensors as plain "novaq" ones, wrongly, whereas an unknown encoding name is
// refused, with "update NOVAQ Studio" in a file of a newer minor (manifest.h; the encoding
// name is also the first word of CodecSpec's string form, codec/codec_spec.h).
//   1.0  tensor encodings "novaq" and "raw"
//   1.1  tensor encoding "gguf": a GGUF block-quantized tensor kept byte for byte (manifest.h)

#include "novaq/io/json.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

namespace novaq {

inline constexpr uint16_t kNovaqMajor = 1;
inline constexpr uint16_t kNovaqMinor = 0;     // the minor of a file that uses nothing newer
inline constexpr uint16_t kNovaqMinorGguf = 1; // the minor that added tensor encoding "gguf"
inline constexpr uint16_t kNovaqNewestMinor = kNovaqMinorGguf;
inline constexpr uint64_t kNovaqAlign = 64;
// How deep the manifest's JSON may nest: the config and metadata it copies from the source
// model were parsed within kMaxJsonDepth (io/json.h) and sit a few levels down in it.
inline constexpr int kMaxManifestDepth = kMaxJsonDepth + 8;

struct SectionRef {
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t xxh3 = 0;

    nlohmann::json toJson() const; // {"offset":..,"length":..,"xxh3":"16 hex digits"}
    static SectionRef fromJson(const nlohmann::json& j, const std::string& what); // throws Corrupt naming `what`
};

uint64_t checksum(std::span<const std::byte> data) noexcept; // XXH3-64

// Streams a .novaq file: sections as they come, the manifest at the end. Everything goes to
// a temporary file beside the target, renamed over it only by commit(); a writer destroyed
// without commit() deletes the temporary file, so a failed or cancelled run leaves nothing.
class NovaqWriter {
public:
    // Throws Error(Io) naming the folder. `minor`: the lowest minor version that describes the
    // file (kNovaqMinorGguf when a tensor is stored as "gguf"), written in header and trailer.
    explicit NovaqWriter(const std::filesystem::path& target, uint16_t minor = kNovaqMinor);
    ~NovaqWriter();
    NovaqWriter(const NovaqWriter&) = delete;
    NovaqWriter& operator=(const NovaqWriter&) = delete;

    SectionRef writeSection(std::span<const std::byte> data);
    // Writes manifest and trailer, flushes to disk, renames into place.
    void commit(const nlohmann::json& manifest);
    const std::filesystem::path& temporaryPath() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Opens a .novaq file read-only (memory-mapped) and checks its structure: header, trailer,
// manifest checksum and JSON, version. Section checksums are checked when read.
class NovaqFile {
public:
    explicit NovaqFile(const std::filesystem::path& path);
    ~NovaqFile();
    NovaqFile(NovaqFile&&) noexcept;
    NovaqFile& operator=(NovaqFile&&) noexcept;

    const nlohmann::json& manifest() const noexcept;
    uint64_t fileSize() const noexcept;
    uint16_t major() const noexcept;
    uint16_t minor() const noexcept;
    const std::filesystem::path& path() const noexcept;

    // The bytes of a section after bounds checks; with verify, its checksum is checked too.
    // Throws Error(Corrupt) naming `what` (e.g. the tensor name) on any mismatch.
    std::span<const std::byte> section(const SectionRef& ref, const std::string& what, bool verify = true) const;
    void release(const SectionRef& ref) const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// True when the first bytes are a .novaq header.
bool isNovaqHeader(std::span<const std::byte> head) noexcept;

} // namespace novaq
