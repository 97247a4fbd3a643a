#include "novaq/io/mapped_file.h"

#include "novaq/io/error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace novaq {

namespace {

std::string systemError(int error) { return std::strerror(error); }

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : m_fd(fd) {}
    ~FileDescriptor()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const noexcept { return m_fd; }

private:
    int m_fd;
};

} // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : m_path(path)
{
    int fd = -1;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        const int error = errno;
        throw Error(ErrorKind::Io, "cannot open " + path.string() + ": " + systemError(error) +
                                       (error == ENOENT ? "; check the path" : ""));
    }
    FileDescriptor file(fd);

    struct stat st {};
    if (::fstat(file.get(), &st) != 0) {
        const int error = errno;
        throw Error(ErrorKind::Io, "cannot read the size of " + path.string() + ": " + systemError(error));
    }
    if (S_ISDIR(st.st_mode))
        throw Error(ErrorKind::Io, "cannot map " + path.string() + ": it is a folder, not a file");
    if (!S_ISREG(st.st_mode))
        throw Error(ErrorKind::Io, "cannot map " + path.string() + ": it is not a regular file");

    m_size = static_cast<uint64_t>(st.st_size);
    if (m_size == 0)
        return; // an empty file maps to nothing: data() == nullptr, size() == 0

    void* address = ::mmap(nullptr, static_cast<size_t>(m_size), PROT_READ, MAP_PRIVATE, file.get(), 0);
    if (address == MAP_FAILED) {
        const int error = errno;
        m_size = 0;
        throw Error(ErrorKind::Io, "cannot map " + path.string() + " into memory: " + systemError(error));
    }
    m_data = static_cast<const std::byte*>(address);
}

MappedFile::~MappedFile()
{
    if (m_data != nullptr)
        ::munmap(const_cast<std::byte*>(m_data), static_cast<size_t>(m_size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_data(std::exchange(other.m_data, nullptr)),
      m_size(std::exchange(other.m_size, 0))
{}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept
{
    if (this != &other) {
        if (m_data != nullptr)
            ::munmap(const_cast<std::byte*>(m_data), static_cast<size_t>(m_size));
        m_path = std::move(other.m_path);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

void MappedFile::release(uint64_t offset, uint64_t length) const noexcept
{
    if (m_data == nullptr || offset >= m_size || length == 0)
        return;
    const uint64_t end = length > m_size - offset ? m_size : offset + length;
    const long pageSize = ::sysconf(_SC_PAGESIZE);
    const uint64_t page = pageSize > 0 ? static_cast<uint64_t>(pageSize) : 4096;
    // Rounded outward to whole pages: the mapping is read-only and file-backed, so a page
    // shared with a neighbouring tensor that is dropped here is simply read again on use.
    const uint64_t begin = offset / page * page;
    const uint64_t last = (end + page - 1) / page * page;
    if (last <= begin)
        return;
    ::madvise(const_cast<std::byte*>(m_data) + begin, static_cast<size_t>(last - begin), MADV_DONTNEED);
}

} // namespace novaq
