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

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// "\x1b" or, with prefix "\u00", "\u009b".
void appendHex(std::string& out, unsigned char byte, const char* prefix = "\\x")
{
    out.append(prefix);
    out.push_back(kHexDigits[byte >> 4]);
    out.push_back(kHexDigits[byte & 15]);
}

// Length of the valid UTF-8 sequence (RFC 3629: shortest form, no surrogates, at most
// U+10FFFF) starting at text[i], or 0 when there is none.
size_t utf8Length(std::string_view text, size_t i)
{
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char b0 = byte(i);
    size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        low = b0 == 0xE0 ? 0xA0 : 0x80;
        high = b0 == 0xED ? 0x9F : 0xBF;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        low = b0 == 0xF0 ? 0x90 : 0x80;
        high = b0 == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (text.size() - i < length)
        return 0;
    if (byte(i + 1) < low || byte(i + 1) > high)
        return 0;
    for (size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF)
            return 0;
    return length;
}

} // namespace

std::string printable(std::string_view text, bool keepLineBreaks)
{
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F) {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        if (c < 0x80) { // C0 controls and DEL
            if (keepLineBreaks && (c == '\n' || c == '\t'))
                out.push_back(static_cast<char>(c));
            else if (c == '\n')
                out.append("\\n");
            else if (c == '\r')
                out.append("\\r");
            else if (c == '\t')
                out.append("\\t");
            else
                appendHex(out, c);
            ++i;
            continue;
        }
        const size_t length = utf8Length(text, i);
        if (length == 0) {
            appendHex(out, c);
            ++i;
        } else if (length == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
            // U+0080..U+009F, the C1 controls (CSI U+009B starts an escape sequence on some terminals).
            appendHex(out, static_cast<unsigned char>(text[i + 1]), "\\u00");
            i += 2;
        } else {
            out.append(text.substr(i, length));
            i += length;
        }
    }
    return out;
}

std::string shown(std::string_view text) { return printable(text); }

} // namespace novaq::cli
