#pragma once
// Help text generated from the tables: commands, options, --bits presets, exit codes.

#include "commands.h"

#include "novaq/io/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace novaq::cli {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitInternalError = 1;

// The one table of exit codes. Rows with an error kind take their code from exitCodeFor(),
// so the help, the README and the process agree by construction.
struct ExitCodeRow {
    std::optional<ErrorKind> kind;
    int code; // used when kind is empty
    std::string_view meaning;

    int exitCode() const noexcept { return kind ? exitCodeFor(*kind) : code; }
};
const std::vector<ExitCodeRow>& exitCodeTable();

std::string versionText();
std::string generalHelp();
std::string commandHelp(const Command& command);
std::string bitsTableText();
std::string exitCodesText();

} // namespace novaq::cli
