#pragma once
// Command-line options from one table per command: the parser, `--help` and the README all
// read the same rows.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace novaq::cli {

struct OptionSpec {
    std::string name;         // "--bits"
    std::string valueName;    // "B"; empty for a flag
    std::string help;         // one line
    std::string defaultValue; // shown in help; empty when there is none

    bool takesValue() const noexcept { return !valueName.empty(); }
};

struct ParsedArgs {
    std::vector<std::string> positionals;
    std::map<std::string, std::string> values; // option name -> value ("" for flags)

    bool has(const std::string& name) const { return values.count(name) != 0; }
    std::optional<std::string> value(const std::string& name) const;
};

// --threads N accepts 0 (all cores) .. kMaxThreads.
inline constexpr int64_t kMaxThreads = 4096;

// Options many commands share.
inline const OptionSpec kHelpOption{"--help", "", "show this help and exit", ""};
inline const OptionSpec kJsonOption{"--json", "", "print the result as JSON on stdout (and nothing else there)", ""};

// Parses `args` (the words after the command name) against `options`. Accepts `--opt value`
// and `--opt=value`; `--` ends the options. Throws Error(InvalidArgument) for an unknown
// option (with a suggestion when one is close), a missing value, a value given to a flag, or
// an option given twice. `-h` is `--help`.
ParsedArgs parseArgs(const std::vector<std::string>& args, const std::vector<OptionSpec>& options);

// The closest of `candidates` to `word` when it is close enough to be a typo, else empty.
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

// Typed values; each error names the option and the value it got.
int64_t parseInteger(const std::string& option, const std::string& value, int64_t min, int64_t max);
uint64_t parseUnsigned(const std::string& option, const std::string& value);
double parseNumber(const std::string& option, const std::string& value);
// A size in bytes: "2200000", "2.2MB", "4GB", "500kB" (SI: 1000^n), "2MiB", "4GiB", "512KiB"
// (binary: 1024^n); units are case-insensitive, a space before them is allowed. Anything
// else, zero, or more than 2^62 bytes throws Error(InvalidArgument) naming the value.
uint64_t parseSize(const std::string& option, const std::string& value);

// "1.5", "2", "0.25": a number as a person writes it.
std::string formatNumber(double value);

} // namespace novaq::cli
