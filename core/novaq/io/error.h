#pragma once
// Errors of the engine. Everything a user can cause (a bad file, a bad option, a cancelled
// run) is an Error with a message that names what failed and says what to do. A broken
// invariant inside the engine (a bug, never the user's doing) is ErrorKind::Internal: the CLI
// exits with 1 and asks for a report instead of calling it bad usage; throw it with
// internalError() so the message always starts the same way.

#include <stdexcept>
#include <string>

namespace novaq {

enum class ErrorKind {
    InvalidArgument, // a bad option or setting
    InvalidInput,    // a malformed or unsupported input file
    Unsupported,     // a valid input we cannot handle (yet)
    Io,              // reading or writing failed (disk full, permissions, missing file)
    Corrupt,         // a .novaq file failed its structure or checksum checks
    Cancelled,       // the user cancelled the job
    Network,         // a download failed
    Internal,        // a bug in the engine: an invariant did not hold (please report)
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const noexcept { return m_kind; }

private:
    ErrorKind m_kind;
};

// Throws Error(ErrorKind::Internal, "internal: " + what).
[[noreturn]] void internalError(const std::string& what);

// Process exit code for an error kind, documented in the README and `novaq --help`.
int exitCodeFor(ErrorKind kind) noexcept;

} // namespace novaq
