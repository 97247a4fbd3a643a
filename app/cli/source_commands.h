// What `novaq search` offers, shared by its table (source_commands.cpp) and its runner
// (source_runners.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace novaq::cli {

inline constexpr int64_t kMaxSearchResults = 1000;

// The sort keys `novaq search` offers, and what the Hub calls them.
struct SortRow {
    const char* name;
    const char* hubKey;
};
inline constexpr SortRow kSorts[] = {
    {"downloads", "downloads"},
    {"likes", "likes"},
    {"updated", "lastModified"},
    {"trending", "trendingScore"},
};

inline std::string sortNames()
{
    std::string names;
    for (const SortRow& s : kSorts)
        names += (names.empty() ? "" : ", ") + std::string(s.name);
    return names;
}

} // namespace novaq::cli
