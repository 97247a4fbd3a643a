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

} // namespace

json parseJsonStrict(std::string_view text, const fs::path& file, uint64_t base, const std::string& what)
{
    std::vector<std::set<std::string>> seen; // keys of each open object
    std::vector<std::string> keys;           // the current key of each open object
    std::optional<std::string> duplicate;

    auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            seen.emplace_back();
            keys.emplace_back();
            break;
        case json::parse_event_t::object_end:
            if (!seen.empty()) {
                seen.pop_back();
                keys.pop_back();
            }
            break;
        case json::parse_event_t::key:
            if (!seen.empty() && parsed.is_string()) {
                const std::string& key = parsed.get_ref<const std::string&>();
                keys.back() = key;
                if (!seen.back().insert(key).second && !duplicate) {
                    std::string where;
                    for (size_t i = 0; i + 1 < keys.size(); ++i)
                        where += (where.empty() ? "" : " > ") + quote(keys[i]);
                    duplicate = quote(key) + " appears twice" + (where.empty() ? "" : " inside " + where);
                }
            }
            break;
        default:
            break;
        }
        return true;
    };

    json result;
    try {
        result = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    } catch (const json::parse_error& e) {
        std::string reason = e.what();
        if (const size_t pos = reason.find("] "); pos != std::string::npos)
            reason.erase(0, pos + 2);
        const uint64_t at = e.byte > 0 ? e.byte - 1 : 0;
        fail(file, what + " is not valid UTF-8 JSON: error near byte " + std::to_string(at) + " of it (file offset " +
                       std::to_string(base + at) + "): " + reason);
    } catch (const json::exception& e) {
        fail(file, what + " cannot be read as JSON: " + e.what());
    }
    if (duplicate) {
        fail(file, what + ": key " + *duplicate +
                       "; duplicate keys are not allowed (the file is damaged or was written by a broken tool)");
    }
    return result;
}

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

} // namespace novaq
