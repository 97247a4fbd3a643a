#pragma once
// What every reader needs around the weights: text files, strict JSON (duplicate keys are
// refused, errors name the file and byte), config.json beside the model, and the common
// shape of ModelReader::metadata().

#include "novaq/io/json.h" // parseJsonStrict

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace novaq {

// The whole file; Error(Io) naming it when it cannot be read.
std::string readTextFile(const std::filesystem::path& path);

// config.json in `folder`, or null when there is none; Error(InvalidInput) when it is not a
// JSON object.
nlohmann::json readConfigJson(const std::filesystem::path& folder);

// {"format_metadata": ..., "config": ..., "architecture": config's model_type when present}.
nlohmann::json makeModelMetadata(nlohmann::json formatMetadata, nlohmann::json config);

// A sharded checkpoint's index (model.safetensors.index.json, pytorch_model.bin.index.json):
// {"metadata": {...}, "weight_map": {tensor: shard file}}. Shard names must be plain file
// names inside the index's folder. The reader opens each shard and `claim`s every tensor it
// finds there; `checkAllFound` then checks that the shards hold exactly what the map says.
// Every failure is Error(InvalidInput) naming the index (Error(Io) for a missing shard).
class ShardIndex {
public:
    explicit ShardIndex(const std::filesystem::path& index);

    const std::filesystem::path& path() const noexcept { return m_path; }
    const std::filesystem::path& folder() const noexcept { return m_folder; }
    const nlohmann::json& metadata() const noexcept { return m_metadata; }
    // Shard file names, sorted, each with the tensors the weight_map puts in it.
    const std::map<std::string, std::vector<std::string>>& shards() const noexcept { return m_tensorsOf; }
    // The shard's path; Error(Io) naming the shard and its tensors when the file is missing.
    std::filesystem::path shardPath(const std::string& shard) const;
    // A tensor found in `shard`: listed there by the weight_map and not found before.
    void claim(const std::string& tensor, const std::string& shard);
    void checkAllFound() const;

private:
    std::filesystem::path m_path, m_folder;
    nlohmann::json m_metadata;
    std::map<std::string, std::string> m_shardOf;                // tensor -> shard
    std::map<std::string, std::vector<std::string>> m_tensorsOf; // shard -> tensors
    std::map<std::string, std::string> m_foundIn;                // tensor -> shard it was found in
};

} // namespace novaq
