#include "novaq/io/atomic_file.h"

#include "novaq/io/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <signal.h>
#include <string>

namespace novaq {

namespace {

std::string folderOf(const std::filesystem::path& target)
{
    std::filesystem::path parent = target.parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

std::string errnoText(int error) { return std::strerror(error); }

std::string temporaryPrefixFor(const std::filesystem::path& target)
{
    return "." + target.filename().string() + ".partial-";
}

// The process id of a name "<prefix><decimal pid>", or 0 when the rest is not exactly a pid.
pid_t pidAfter(const std::string& name, const std::string& prefix)
{
    if (name.size() <= prefix.size() || !name.starts_with(prefix))
        return 0;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    if (*first == '0' || last - first > 10)
        return 0;
    long long pid = 0;
    const auto [end, error] = std::from_chars(first, last, pid);
    if (error != std::errc() || end != last || pid <= 0 || pid > INT_MAX)
        return 0;
    return static_cast<pid_t>(pid);
}

} // namespace

size_t removeStaleTemporaries(const std::filesystem::path& target) noexcept
{
    if (target.filename().empty())
        return 0;
    size_t removed = 0;
    try {
        const std::string prefix = temporaryPrefixFor(target);
        const std::filesystem::path folder = target.parent_path().empty() ? "." : target.parent_path();
        std::error_code ec;
        for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const pid_t pid = pidAfter(name, prefix);
            if (pid == 0 || pid == ::getpid())
                continue;
            // Alive (0), or alive but another user's (EPERM): not ours to delete.
            if (::kill(pid, 0) == 0 || errno != ESRCH)
                continue;
            std::error_code statusError;
            if (!std::filesystem::is_regular_file(it->symlink_status(statusError)) || statusError)
                continue;
            if (::unlink(it->path().c_str()) == 0)
                ++removed;
        }
    } catch (...) {
        // Best effort: a failure here must not stop the write that follows.
    }
    return removed;
}

std::filesystem::path temporaryPathFor(const std::filesystem::path& target)
{
    const std::string name = temporaryPrefixFor(target) + std::to_string(::getpid());
    return target.parent_path() / name;
}

AtomicFile::AtomicFile(const std::filesystem::path& target) : m_target(target), m_temporary(temporaryPathFor(target))
{
    if (target.filename().empty())
        throw Error(ErrorKind::InvalidArgument,
                    "cannot write to '" + target.string() + "': the path names a folder, not a file");
    removeStaleTemporaries(target);
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
