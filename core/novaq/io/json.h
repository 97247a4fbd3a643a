#pragma once
// The one place where NOVAQ parses JSON: model files (config.json, safetensors headers,
// checkpoint indexes, tokenizer files), .novaq manifests and the answers of the Hub and of
// Ollama all go through parseJsonStrict().
//
// Why a nesting limit: nlohmann::json parses iteratively, but it copies, compares and dumps
// recursively, so a document nested some 50,000 levels deep (a 120 KB file of brackets)
// parses fine and then overflows the stack at the first copy. The parser's callback sees the
// depth of every object and array it opens; deeper than the limit, the parse stops there.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace novaq {

// Objects and arrays inside each other, counting the outermost: `{"a": [1]}` has 2 levels.
// Real config.json, tokenizer.json and Hub answers use fewer than 10; 256 leaves room for
// anything legitimate and keeps recursion over a parsed document far from the stack's end.
inline constexpr int kMaxJsonDepth = 256;

// Parses JSON strictly: a parse error becomes Error(InvalidInput) naming `file`, `what` and
// the byte offset (`base` is the file offset of the text); a key twice in one object is
// refused (nlohmann::json would silently keep the last one); objects and arrays nested more
// than `maxDepth` levels are refused ("nested deeper than N levels"). `file` may also be a
// URL or another label: it is only used in messages.
nlohmann::json parseJsonStrict(std::string_view text, const std::filesystem::path& file, uint64_t base,
                               const std::string& what, int maxDepth = kMaxJsonDepth);

} // namespace novaq
