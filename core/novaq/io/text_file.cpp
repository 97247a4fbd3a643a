#include "novaq/io/text_file.h"

#include "novaq/io/error.h"
#include "novaq/io/units.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace novaq {

namespace {

constexpr size_t kChunk = size_t(1) << 20;

class Descriptor {
public:
    explicit Descriptor(int fd) noexcept : m_fd(fd) {}
    ~Descriptor()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    int get() const noexcept { return m_fd; }

private:
    int m_fd;
};

[[noreturn]] void tooLarge(const std::filesystem::path& path, const std::string& size, uint64_t limit)
{
    throw Error(ErrorKind::InvalidInput, path.string() + ": the text is " + size + ", more than the " +
                                             exactBytes(limit) +
                                             " a text file may hold; use a part of it (e.g. `head -c 100M " +
                                             path.filename().string() + " > part.txt`)");
}

} // namespace

std::string readBoundedText(const std::filesystem::path& path, uint64_t limit)
{
    // O_NONBLOCK: opening a FIFO without a writer must not hang; it is refused below anyway.
    const Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        const int error = errno;
        throw Error(ErrorKind::Io, "cannot open " + path.string() + " for reading: " + std::strerror(error) +
                                       "; check the path and its permissions");
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        const int error = errno;
        throw Error(ErrorKind::Io, "cannot read " + path.string() + ": " + std::strerror(error));
    }
    if (!S_ISREG(info.st_mode))
        throw Error(ErrorKind::InvalidInput, path.string() + ": not a regular file (" +
                                                 (S_ISDIR(info.st_mode)    ? "a folder"
                                                  : S_ISFIFO(info.st_mode) ? "a pipe"
                                                  : S_ISCHR(info.st_mode)  ? "a device"
                                                                           : "not a plain file") +
                                                 "), whose text may never end; save the text to a file and give that");
    const auto size = static_cast<uint64_t>(std::max<off_t>(info.st_size, 0));
    if (size > limit)
        tooLarge(path, std::to_string(size) + " bytes", limit);

    std::string text;
    text.reserve(static_cast<size_t>(size));
    // Up to limit + 1 bytes: one more than allowed says the file grew past the limit.
    while (text.size() <= limit) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, limit + 1 - text.size()));
        const size_t before = text.size();
        text.resize(before + want);
        const ssize_t n = ::read(fd.get(), text.data() + before, want);
        if (n < 0) {
            const int error = errno;
            text.resize(before);
            if (error == EINTR)
                continue;
            throw Error(ErrorKind::Io, "cannot read " + path.string() + ": " + std::strerror(error));
        }
        text.resize(before + static_cast<size_t>(n));
        if (n == 0)
            return text;
    }
    tooLarge(path, "over " + exactBytes(limit) + " (it grew while it was read)", limit);
}

} // namespace novaq
