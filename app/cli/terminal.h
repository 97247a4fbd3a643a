#pragma once
// What the live progress lines of the CLI share: the terminal width, a text bar and times;
// and the one escaping every text from a file passes through on its way to the terminal.

#include <cstdio>
#include <string>
#include <string_view>

namespace novaq::cli {

// Columns of the terminal behind `stream` (100 when it does not say).
size_t terminalColumns(std::FILE* stream);
// "[#####...............] " for fraction 0..1.
std::string textBar(double fraction);
// "1:05", "1:02:03".
std::string clockText(double seconds);

// `text` with every control character shown as a visible escape, so that a name from a file
// (a tensor name, an ONNX location, a metadata string) can neither forge a line of its own
// ("\n novaq: ...") nor send escape sequences to the terminal: C0 controls and DEL become
// \n, \r, \t or \xHH (ESC is \x1b), C1 controls (U+0080..U+009F) \u0080..\u009f, and bytes
// that are not valid UTF-8 \xHH. Valid UTF-8 text is kept as it is. With `keepLineBreaks`,
// '\n' and '\t' pass unchanged (generated text, whose lines are its own).
std::string printable(std::string_view text, bool keepLineBreaks = false);
// printable(text): how the core's text reports show a text from a file, a server or a store
// (novaq/io/shown_text.h ShownText).
std::string shown(std::string_view text);

} // namespace novaq::cli
