#pragma once
// UTF-8 as every reader and tokenizer checks it: well-formed means shortest form, no
// surrogates, at most U+10FFFF (RFC 3629). Written here rather than taken from a library
// because the rules are short and the readers need them on raw bytes without allocation.

#include <cstddef>
#include <string>
#include <string_view>

namespace novaq {

// Decodes the well-formed character at `pos`. Returns its length (1-4), or 0 when the bytes
// there are malformed or `pos` is at the end; `codePoint` is set only on success.
size_t decodeUtf8(std::string_view text, size_t pos, char32_t& codePoint) noexcept;

bool isValidUtf8(std::string_view text) noexcept;

// `text` with each byte that does not start a well-formed character replaced by U+FFFD.
std::string sanitizeUtf8(std::string_view text);

void appendUtf8(std::string& out, char32_t codePoint);

} // namespace novaq
