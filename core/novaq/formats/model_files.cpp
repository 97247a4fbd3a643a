#include "novaq/formats/model_files.h"

#include "novaq/io/error.h"

#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace novaq {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

[[noreturn]] void fail(const fs::path& file, const std::string& what)
{
    throw Error(ErrorKind::InvalidInput, file.string() + ": " + what);
}

constexpr size_t kMaxListed = 5; // names listed in a message before "and N more"

bool isPlainFileName(const std::string& name)
{
    if (name.empty() || name == "." || name == "..")
        return false;
    return name.find_first_of(std::string_view("/\\\0", 3)) == std::string::npos;
}

std::string listNames(const std::vector<std::string>& names)
{
    std::string out;
    for (size_t i = 0; i < names.size() && i < kMaxListed; ++i)
        out += (i == 0 ? "" : ", ") + quote(names[i]);
    if (names.size() > kMaxListed)
        out += " and " + std::to_string(names.size() - kMaxListed) + " more";
    return out;
}

} // namespace

std::string readTextFile(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorKind::Io, "cannot open " + path.string() + " for reading; check its permissions");
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad())
        throw Error(ErrorKind::Io, "cannot read " + path.string());
    return out.str();
}

json readConfigJson(const fs::path& folder)
{
    const fs::path path = folder / "config.json";
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        return nullptr;
    const std::string text = readTextFile(path);
    json config = parseJsonStrict(text, path, 0, "config.json");
    if (!config.is_object())
        fail(path,
             "config.json must be a JSON object, found " + std::string(config.type_name()) + "; fix or remove it");
    return config;
}

json makeModelMetadata(json formatMetadata, json config)
{
    json meta = json::object();
    meta["format_metadata"] = std::move(formatMetadata);
    if (config.is_object()) {
        if (auto type = config.find("model_type"); type != config.end() && type->is_string())
            meta["architecture"] = *type;
    }
    meta["config"] = std::move(config);
    return meta;
}

ShardIndex::ShardIndex(const fs::path& index) : m_path(index), m_folder(index.parent_path())
{
    std::error_code ec;
    if (!fs::exists(index, ec))
        throw Error(ErrorKind::Io, "no such file or folder: " + index.string());
    const json root = parseJsonStrict(readTextFile(index), index, 0, "the index");
    if (!root.is_object())
        fail(index, "the index must be a JSON object with a weight_map, found " + std::string(root.type_name()));
    m_metadata = json::object();
    if (auto meta = root.find("metadata"); meta != root.end() && !meta->is_null()) {
        if (!meta->is_object())
            fail(index, "field metadata must be an object, found " + std::string(meta->type_name()));
        m_metadata = *meta;
    }
    const auto weightMap = root.find("weight_map");
    if (weightMap == root.end())
        fail(index, "field weight_map is missing; a sharded checkpoint's index maps each tensor name to its "
                    "shard file");
    if (!weightMap->is_object())
        fail(index, "field weight_map must be an object of tensor name to shard file, found " +
                        std::string(weightMap->type_name()));
    if (weightMap->empty())
        fail(index, "field weight_map lists no tensors");
    for (const auto& [name, shard] : weightMap->items()) {
        if (!shard.is_string())
            fail(index,
                 "weight_map[" + quote(name) + "] must be a shard file name, found " + std::string(shard.type_name()));
        const std::string& file = shard.get_ref<const std::string&>();
        if (!isPlainFileName(file))
            fail(index, "weight_map puts tensor " + quote(name) + " in " + quote(file) +
                            ", which is not a plain file name inside " + (m_folder.empty() ? "." : m_folder.string()) +
                            "; refusing to read outside the index's folder");
        m_shardOf[name] = file;
        m_tensorsOf[file].push_back(name);
    }
}

fs::path ShardIndex::shardPath(const std::string& shard) const
{
    const fs::path path = m_folder / shard;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        const auto listed = m_tensorsOf.find(shard);
        throw Error(ErrorKind::Io, m_path.string() + ": shard " + quote(shard) + " (holding " +
                                       (listed != m_tensorsOf.end() ? listNames(listed->second) : std::string()) +
                                       ") is missing: no such file " + path.string() + "; download the missing shard");
    }
    return path;
}

void ShardIndex::claim(const std::string& tensor, const std::string& shard)
{
    if (auto other = m_foundIn.find(tensor); other != m_foundIn.end())
        fail(m_path, "tensor " + quote(tensor) + " is stored twice, in shard " + quote(other->second) +
                         " and in shard " + quote(shard));
    const auto listed = m_shardOf.find(tensor);
    if (listed == m_shardOf.end())
        fail(m_path, "shard " + quote(shard) + " holds tensor " + quote(tensor) +
                         ", which the weight_map does not list; the index does not match its shards");
    if (listed->second != shard)
        fail(m_path, "weight_map puts tensor " + quote(tensor) + " in shard " + quote(listed->second) +
                         ", but it is stored in shard " + quote(shard) + "; the index does not match its shards");
    m_foundIn.emplace(tensor, shard);
}

void ShardIndex::checkAllFound() const
{
    for (const auto& [name, shard] : m_shardOf)
        if (!m_foundIn.contains(name))
            fail(m_path, "weight_map puts tensor " + quote(name) + " in shard " + quote(shard) +
                             ", but that file does not hold it; the index does not match its shards");
}

} // namespace novaq
