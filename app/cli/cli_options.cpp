#include "cli_options.h"

#include "novaq/io/error.h"
#include "novaq/pipeline/fit_memory.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace novaq::cli {

namespace {

Error usageError(const std::string& message) { return Error(ErrorKind::InvalidArgument, message); }

const OptionSpec* findOption(const std::vector<OptionSpec>& options, std::string_view name)
{
    for (const OptionSpec& o : options)
        if (o.name == name)
            return &o;
    return nullptr;
}

size_t editDistance(std::string_view a, std::string_view b)
{
    std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        previous[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

} // namespace

std::optional<std::string> ParsedArgs::value(const std::string& name) const
{
    auto it = values.find(name);
    if (it == values.end())
        return std::nullopt;
    return it->second;
}

std::string suggest(std::string_view word, const std::vector<std::string>& candidates)
{
    std::string best;
    size_t bestDistance = std::numeric_limits<size_t>::max();
    for (const std::string& c : candidates) {
        // A prefix of a longer name ("--sub" for "--subspaces") counts as close.
        const size_t d = (word.size() >= 3 && c.starts_with(word)) ? 1 : editDistance(word, c);
        if (d < bestDistance) {
            bestDistance = d;
            best = c;
        }
    }
    const size_t allowed = std::max<size_t>(2, word.size() / 3);
    return bestDistance <= allowed ? best : std::string();
}

ParsedArgs parseArgs(const std::vector<std::string>& args, const std::vector<OptionSpec>& options)
{
    ParsedArgs parsed;
    bool optionsEnded = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (optionsEnded || arg.size() < 2 || arg[0] != '-') {
            parsed.positionals.push_back(arg);
            continue;
        }
        if (arg == "--") {
            optionsEnded = true;
            continue;
        }
        std::string name = arg;
        std::optional<std::string> inlineValue;
        if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
            name = arg.substr(0, eq);
            inlineValue = arg.substr(eq + 1);
        }
        if (name == "-h")
            name = "--help";
        const OptionSpec* spec = findOption(options, name);
        if (!spec) {
            std::vector<std::string> names;
            for (const OptionSpec& o : options)
                names.push_back(o.name);
            const std::string close = suggest(name, names);
            throw usageError(
                "unknown option '" + name + "'" +
                (close.empty() ? "; run with --help to see the options" : " (did you mean " + close + "?)"));
        }
        if (parsed.has(spec->name))
            throw usageError("option " + spec->name + " given twice; give it once");
        if (!spec->takesValue()) {
            if (inlineValue)
                throw usageError("option " + spec->name + " takes no value (got '" + *inlineValue + "')");
            parsed.values[spec->name] = "";
            continue;
        }
        if (inlineValue) {
            parsed.values[spec->name] = *inlineValue;
            continue;
        }
        if (i + 1 >= args.size())
            throw usageError("option " + spec->name + " needs a value: " + spec->name + " " + spec->valueName);
        parsed.values[spec->name] = args[++i];
    }
    return parsed;
}

int64_t parseInteger(const std::string& option, const std::string& value, int64_t min, int64_t max)
{
    int64_t result = 0;
    const char* begin = value.data();
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(begin, end, result);
    if (value.empty() || ec != std::errc() || ptr != end)
        throw usageError(option + " expects a whole number, got '" + value + "'");
    if (result < min || result > max) {
        const std::string range = max == std::numeric_limits<int64_t>::max()
                                      ? ">= " + std::to_string(min)
                                      : std::to_string(min) + ".." + std::to_string(max);
        throw usageError(option + " must be " + range + ", got '" + value + "'");
    }
    return result;
}

uint64_t parseUnsigned(const std::string& option, const std::string& value)
{
    uint64_t result = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, result);
    if (value.empty() || ec != std::errc() || ptr != end)
        throw usageError(option + " expects a whole number >= 0, got '" + value + "'");
    return result;
}

double parseNumber(const std::string& option, const std::string& value)
{
    errno = 0;
    char* end = nullptr;
    const double result = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || errno != 0 || !std::isfinite(result))
        throw usageError(option + " expects a number, got '" + value + "'");
    return result;
}

uint64_t parseSize(const std::string& option, const std::string& value)
{
    return parseByteSize(option, value); // core/novaq/pipeline/fit_memory.h: the app parses sizes the same way
}

std::string formatNumber(double value)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
}

} // namespace novaq::cli
