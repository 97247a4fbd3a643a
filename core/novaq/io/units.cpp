#include "novaq/io/units.h"

#include <cmath>
#include <cstdio>
#include <iterator>

namespace novaq {

std::string humanBytes(uint64_t bytes)
{
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
    double value = double(bytes) / 1024.0;
    size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
        value /= 1024.0;
        ++unit;
    }
    char text[48];
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
    return text;
}

std::string exactBytes(uint64_t bytes)
{
    static constexpr struct {
        int shift;
        const char* name;
    } kUnits[] = {{40, " TiB"}, {30, " GiB"}, {20, " MiB"}};
    for (const auto& unit : kUnits) {
        const uint64_t size = uint64_t(1) << unit.shift;
        if (bytes >= size && bytes % size == 0)
            return std::to_string(bytes >> unit.shift) + unit.name;
    }
    return std::to_string(bytes) + " bytes";
}

std::string siBytesAtLeast(uint64_t bytes)
{
    const double unit = bytes >= 1'000'000'000'000ull ? 1e12 : bytes >= 1'000'000'000ull ? 1e9 : 1e6;
    const char* name = unit == 1e12 ? "TB" : unit == 1e9 ? "GB" : "MB";
    char text[64];
    std::snprintf(text, sizeof text, "%.1f%s", std::ceil(double(bytes) / unit * 10.0) / 10.0, name);
    return text;
}

std::string withThousands(uint64_t value)
{
    const std::string digits = std::to_string(value);
    std::string out;
    const size_t n = digits.size();
    for (size_t i = 0; i < n; ++i) {
        if (i > 0 && (n - i) % 3 == 0)
            out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

} // namespace novaq
