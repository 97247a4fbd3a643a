#include "novaq/io/system_memory.h"

#include <unistd.h>

#include <algorithm>

namespace novaq {

std::optional<uint64_t> physicalMemoryBytes()
{
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long pageSize = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || pageSize <= 0)
        return std::nullopt;
    return uint64_t(pages) * uint64_t(pageSize);
}

uint64_t expectedRunMemory(uint64_t weightBytes)
{
    constexpr uint64_t kMinMargin = uint64_t(512) << 20;
    return weightBytes + std::max(weightBytes / 4, kMinMargin);
}

MemoryFit memoryFit(uint64_t weightBytes, uint64_t physicalBytes)
{
    if (weightBytes == 0 || physicalBytes == 0)
        return MemoryFit::Unknown;
    return expectedRunMemory(weightBytes) <= physicalBytes ? MemoryFit::Fits : MemoryFit::TooLarge;
}

} // namespace novaq
