#pragma once
// What a tokenizer made of a text, as `novaq tokenize` gives it: JSON and text.

#include "novaq/io/shown_text.h"
#include "novaq/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace novaq {

// {tokenizer, count, ids, pieces}: the vocabulary's pieces as they are (a piece need not be
// valid UTF-8; dump with an error handler).
nlohmann::json tokensJson(const Tokenizer& tokenizer, const std::vector<int32_t>& ids);

// A line per token, "ID<TAB>TEXT" (the bytes the token stands for, through `shown`), then
// "N tokens (KIND)".
std::string formatTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, const ShownText& shown);

} // namespace novaq
