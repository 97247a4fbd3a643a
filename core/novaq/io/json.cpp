#include "novaq/io/json.h"

#include "novaq/io/error.h"

#include <optional>
#include <set>
#include <vector>

namespace novaq {

using nlohmann::json;

namespace {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what)
{
    throw Error(ErrorKind::InvalidInput, file.string() + ": " + what);
}

} // namespace

json parseJsonStrict(std::string_view text, const std::filesystem::path& file, uint64_t base, const std::string& what,
                     int maxDepth)
{
    std::vector<std::set<std::string>> seen; // keys of each open object
    std::vector<std::string> keys;           // the current key of each open object
    std::optional<std::string> duplicate;

    // `depth` counts the objects and arrays already open around the event's value.
    auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            if (depth >= maxDepth)
                fail(file, what + " is nested deeper than " + std::to_string(maxDepth) +
                               " levels (objects and arrays inside each other); no real model or answer needs that, "
                               "so the file is damaged or made to crash readers");
            if (event == json::parse_event_t::object_start) {
                seen.emplace_back();
                keys.emplace_back();
            }
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
        fail(file, what + " is not valid JSON in UTF-8: error near byte " + std::to_string(at) +
                       " of it (file offset " + std::to_string(base + at) + "): " + reason);
    } catch (const json::exception& e) {
        fail(file, what + " is not valid JSON: " + e.what()); // e.g. a number too large for a double
    }
    if (duplicate) {
        fail(file, what + ": key " + *duplicate +
                       "; duplicate keys are not allowed (the file is damaged or was written by a broken tool)");
    }
    return result;
}

} // namespace novaq
