#include "terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace novaq::cli {

namespace {

constexpr size_t kBarWidth = 20;
constexpr size_t kDefaultColumns = 100;

} // namespace

size_t terminalColumns(std::FILE* stream)
{
    winsize size{};
    if (ioctl(fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return kDefaultColumns;
}

std::string textBar(double fraction)
{
    const auto filled = static_cast<size_t>(std::clamp(fraction, 0.0, 1.0) * double(kBarWidth));
    // Built by appending only: GCC 12 warns (-Wrestrict, falsely) about `"literal" + std::string`.
    std::string bar = "[";
    bar.append(filled, '#').append(kBarWidth - filled, '.').append("] ");
    return bar;
}

std::string clockText(double seconds)
{
    const long total = std::lround(std::max(0.0, seconds));
    char buf[32];
    if (total >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60, total % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", total / 60, total % 60);
    return buf;
}

} // namespace novaq::cli
