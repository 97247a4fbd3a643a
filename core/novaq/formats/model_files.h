#pragma once
// What every reader needs around the weights: text files, strict JSON (duplicate keys are
// refused, errors name the file and byte), config.json beside the model, and the common
// shape of ModelReader::metadata().

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace novaq {

// The whole file; Error(Io) naming it when it cannot be read.
std::string readTextFile(const std::filesystem::path& path);

// Parses JSON strictly: a parse error becomes Error(InvalidInput) naming `file`, `what` and
// the byte offset (`base` is the file offset of the text); a key twice in one object is
// refused (nlohmann::json would silently keep the last one).
nlohmann::json parseJsonStrict(std::string_view text, const std::filesystem::path& file, uint64_t base,
                               const std::string& what);

// config.json in `folder`, or null when there is none; Error(InvalidInput) when it is not a
// JSON object.
nlohmann::json readConfigJson(const std::filesystem::path& folder);

// {"format_metadata": ..., "config": ..., "architecture": config's model_type when present}.
nlohmann::json makeModelMetadata(nlohmann::json formatMetadata, nlohmann::json config);

} // namespace novaq
