#pragma once
// What the live progress lines of the CLI share: the terminal width, a text bar and times.

#include <cstdio>
#include <string>

namespace novaq::cli {

// Columns of the terminal behind `stream` (100 when it does not say).
size_t terminalColumns(std::FILE* stream);
// "[#####...............] " for fraction 0..1.
std::string textBar(double fraction);
// "1:05", "1:02:03".
std::string clockText(double seconds);

} // namespace novaq::cli
