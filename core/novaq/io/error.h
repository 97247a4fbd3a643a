#pragma once
// User-facing errors of the engine. Internal invariants use assert(); everything a user
// can cause (a bad file, a bad option, a cancelled run) is an Error with a message that
// names what failed and says what to do.

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
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), m_kind(kind) {}
    ErrorKind kind() const noexcept { return m_kind; }

private:
    ErrorKind m_kind;
};

// Process exit code for an error kind, documented in the README and `novaq --help`.
int exitCodeFor(ErrorKind kind) noexcept;

} // namespace novaq
