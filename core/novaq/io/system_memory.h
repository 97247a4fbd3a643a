#pragma once
// How much memory this computer has, and whether a model of a given size is expected to fit
// in it: the "fits in memory" hint of the model lists. No Qt.

#include <cstdint>
#include <optional>

namespace novaq {

// The physical memory (RAM) of this computer in bytes, from sysconf(_SC_PHYS_PAGES) times
// the page size; nullopt when the system does not say.
std::optional<uint64_t> physicalMemoryBytes();

// What running a model is expected to take, from the size of its weight files: the weights
// themselves (mapped or loaded) plus a margin of a quarter of that, at least 512 MiB, for the
// context cache, the working buffers and the program. A rule of thumb, not a measurement.
uint64_t expectedRunMemory(uint64_t weightBytes);

enum class MemoryFit { Unknown, Fits, TooLarge };

// Fits when expectedRunMemory(weightBytes) <= physicalBytes; Unknown when either is 0.
MemoryFit memoryFit(uint64_t weightBytes, uint64_t physicalBytes);

} // namespace novaq
