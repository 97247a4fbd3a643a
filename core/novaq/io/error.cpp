#include "novaq/io/error.h"

namespace novaq {

// Process exit codes (README and `novaq --help` document the same table):
//
//   kind              code
//   ----------------  ----
//   (success)            0
//   InvalidArgument      2   a bad option or setting
//   InvalidInput         3   a malformed or unsupported input file
//   Unsupported          4   a valid input we cannot handle (yet)
//   Io                   5   reading or writing failed
//   Corrupt              6   a .novaq file failed its structure or checksum checks
//   Network              7   a download failed
//   Internal             1   a bug in the engine (please report it)
//   Cancelled          130   the user cancelled (as shells report SIGINT)
void internalError(const std::string& what) { throw Error(ErrorKind::Internal, "internal: " + what); }

int exitCodeFor(ErrorKind kind) noexcept
{
    switch (kind) {
    case ErrorKind::InvalidArgument:
        return 2;
    case ErrorKind::InvalidInput:
        return 3;
    case ErrorKind::Unsupported:
        return 4;
    case ErrorKind::Io:
        return 5;
    case ErrorKind::Corrupt:
        return 6;
    case ErrorKind::Network:
        return 7;
    case ErrorKind::Cancelled:
        return 130;
    case ErrorKind::Internal:
        return 1;
    }
    return 1; // not reached: every kind is listed above
}

} // namespace novaq
