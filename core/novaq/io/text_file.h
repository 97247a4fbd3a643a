#pragma once
// Plain-text files a user gives (evaluation and calibration texts), read whole but bounded.

#include <cstdint>
#include <filesystem>
#include <string>

namespace novaq {

// The largest text read: 1 GiB, some 250 million tokens, far more than an evaluation or a
// calibration uses.
inline constexpr uint64_t kMaxTextBytes = uint64_t(1) << 30;

// The whole file at `path`. Refuses, before allocating, what is not a regular file (/dev/zero,
// a FIFO, a terminal, a folder: such a file may never end) and a file over `limit` bytes, with
// Error(InvalidInput) naming the file; never holds more than `limit` bytes, also when the file
// grows while it is read. Error(Io) when it cannot be opened or read.
std::string readBoundedText(const std::filesystem::path& path, uint64_t limit = kMaxTextBytes);

} // namespace novaq
