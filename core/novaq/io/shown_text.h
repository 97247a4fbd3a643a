#pragma once
// How a text report shows a text that came from a file, a server or a store (a tensor name,
// a host, a model id): the CLI passes its printable() (app/cli/terminal.h), which escapes
// control characters so that such a text can neither forge a line nor send escape sequences
// to the terminal. The JSON forms of the reports never use it: JSON escapes by itself.

#include <functional>
#include <string>
#include <string_view>

namespace novaq {

using ShownText = std::function<std::string(std::string_view)>;

} // namespace novaq
