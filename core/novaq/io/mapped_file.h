#pragma once
// A read-only memory map of a whole file. Readers hand out spans into it, so a model is
// never loaded into memory at once; the kernel pages in what a tensor needs.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace novaq {

class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::filesystem::path& path); // throws Error(Io) naming the file
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const noexcept { return m_data; }
    uint64_t size() const noexcept { return m_size; }
    std::span<const std::byte> bytes() const noexcept { return {m_data, static_cast<size_t>(m_size)}; }
    const std::filesystem::path& path() const noexcept { return m_path; }

    // Tells the kernel the range is no longer needed, so its pages leave our resident set.
    void release(uint64_t offset, uint64_t length) const noexcept;

private:
    std::filesystem::path m_path;
    const std::byte* m_data = nullptr;
    uint64_t m_size = 0;
};

} // namespace novaq
