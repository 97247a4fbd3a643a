#pragma once
// A file written through a temporary beside its target and renamed over it only when
// complete (design.md section 3): a cancelled or failed write never leaves a file that looks
// valid, and an existing target keeps its old contents until the rename.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace novaq {

// ".<target filename>.partial-<pid>" in the target's folder.
std::filesystem::path temporaryPathFor(const std::filesystem::path& target);

// Deletes what a crashed or killed run left behind for `target`: regular files named exactly
// ".<target filename>.partial-<pid>" in its folder whose process no longer exists (kill(pid, 0)
// fails with ESRCH). A live process's file, this process's own, other targets' and anything
// else are left alone. Returns how many were deleted; never throws (a folder that cannot be
// listed or a file that cannot be deleted is skipped). AtomicFile calls it before it writes.
// (A writer in another PID namespace sharing the folder looks dead from here; NOVAQ does not
// support two containers writing the same output.)
size_t removeStaleTemporaries(const std::filesystem::path& target) noexcept;

class AtomicFile {
public:
    // Removes stale temporaries of earlier runs for the same target (removeStaleTemporaries),
    // then creates the temporary file; throws Error(Io) naming the folder and the reason.
    explicit AtomicFile(const std::filesystem::path& target);
    ~AtomicFile(); // deletes the temporary file unless commit() succeeded
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    // Appends bytes; throws Error(Io) naming the file and the reason (e.g. disk full).
    void write(std::span<const std::byte> data);
    void writeZeros(uint64_t count);
    uint64_t position() const noexcept { return m_position; }

    // Flushes to disk, closes and renames over the target. On failure the temporary file is
    // deleted and Error(Io) thrown.
    void commit();
    // Closes and deletes the temporary file now (idempotent).
    void discard() noexcept;

    bool committed() const noexcept { return m_committed; }
    const std::filesystem::path& target() const noexcept { return m_target; }
    const std::filesystem::path& temporaryPath() const noexcept { return m_temporary; }

private:
    std::filesystem::path m_target;
    std::filesystem::path m_temporary;
    int m_fd = -1;
    uint64_t m_position = 0;
    bool m_committed = false;
    bool m_removed = false;
};

} // namespace novaq
