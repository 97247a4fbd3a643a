#include "novaq/io/atomic_file.h"

#include "novaq/io/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace novaq {

namespace {

std::string folderOf(const std::filesystem::path& target)
{
    std::filesystem::path parent = target.parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

std::string errnoText(int error) { return std::strerror(error); }

} // namespace

std::filesystem::path temporaryPathFor(const std::filesystem::path& target)
{
    const std::string name = "." + target.filename().string() + ".partial-" + std::to_string(::getpid());
    return target.parent_path() / name;
}

AtomicFile::AtomicFile(const std::filesystem::path& target) : m_target(target), m_temporary(temporaryPathFor(target))
{
    if (target.filename().empty())
        throw Error(ErrorKind::InvalidArgument,
                    "cannot write to '" + target.string() + "': the path names a folder, not a file");
    m_fd = ::open(m_temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (m_fd < 0) {
        const int error = errno;
        throw Error(ErrorKind::Io, "cannot create a temporary file in folder '" + folderOf(target) + "' (" +
                                       m_temporary.filename().string() + "): " + errnoText(error) +
                                       " — check that the folder exists and is writable");
    }
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept
{
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
    if (!m_committed && !m_removed) {
        ::unlink(m_temporary.c_str());
        m_removed = true;
    }
}

void AtomicFile::write(std::span<const std::byte> data)
{
    if (m_fd < 0)
        throw Error(ErrorKind::InvalidArgument, "writing '" + m_target.string() + "' after it was closed");
    const std::byte* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        const size_t chunk = std::min<size_t>(left, size_t(1) << 30);
        const ssize_t n = ::write(m_fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int error = errno;
            throw Error(ErrorKind::Io, "cannot write '" + m_temporary.string() + "' at offset " +
                                           std::to_string(m_position) + ": " + errnoText(error) +
                                           (error == ENOSPC || error == EDQUOT
                                                ? " — free some disk space or choose another output folder"
                                                : ""));
        }
        if (n == 0)
            throw Error(ErrorKind::Io, "cannot write '" + m_temporary.string() + "' at offset " +
                                           std::to_string(m_position) + ": the system accepted no bytes");
        p += n;
        left -= static_cast<size_t>(n);
        m_position += static_cast<uint64_t>(n);
    }
}

void AtomicFile::writeZeros(uint64_t count)
{
    static constexpr std::array<std::byte, 4096> kZeros{};
    while (count > 0) {
        const size_t chunk = static_cast<size_t>(std::min<uint64_t>(count, kZeros.size()));
        write(std::span<const std::byte>(kZeros.data(), chunk));
        count -= chunk;
    }
}

void AtomicFile::commit()
{
    if (m_committed)
        return;
    if (m_fd < 0)
        throw Error(ErrorKind::InvalidArgument, "committing '" + m_target.string() + "' after it was discarded");
    try {
        if (::fsync(m_fd) != 0) {
            const int error = errno;
            throw Error(ErrorKind::Io, "cannot flush '" + m_temporary.string() + "' to disk: " + errnoText(error));
        }
        const int fd = m_fd;
        m_fd = -1;
        if (::close(fd) != 0) {
            const int error = errno;
            throw Error(ErrorKind::Io, "cannot close '" + m_temporary.string() + "': " + errnoText(error));
        }
        if (::rename(m_temporary.c_str(), m_target.c_str()) != 0) {
            const int error = errno;
            throw Error(ErrorKind::Io, "cannot rename '" + m_temporary.string() + "' to '" + m_target.string() +
                                           "': " + errnoText(error) +
                                           " — check that the output path is not a folder and is writable");
        }
    } catch (...) {
        discard();
        throw;
    }
    m_committed = true;
    // Make the rename itself durable; failure here does not undo a complete file.
    const std::string folder = folderOf(m_target);
    const int dirFd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirFd >= 0) {
        ::fsync(dirFd);
        ::close(dirFd);
    }
}

} // namespace novaq
