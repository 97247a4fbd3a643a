#include "net_helper.h"

#include "novaq/io/error.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace novaq::cli {

namespace fs = std::filesystem;

fs::path netHelperPath(const fs::path& executable)
{
    const fs::path folder = executable.parent_path();
    // NOVAQ_NET_HELPER_DIR: the installed libexec folder as seen from the bin folder
    // (app/cli/CMakeLists.txt), e.g. "../libexec/novaq".
    const std::vector<fs::path> candidates = {folder / kNetHelperName,
                                              (folder / NOVAQ_NET_HELPER_DIR / kNetHelperName).lexically_normal()};
    std::string looked;
    for (const fs::path& c : candidates) {
        if (::access(c.c_str(), X_OK) == 0)
            return c;
        looked += (looked.empty() ? "" : " and ") + c.string();
    }
    throw Error(
        ErrorKind::Unsupported,
        std::string("this command needs ") + kNetHelperName +
            " (novaq's network side: downloads, the server, MPI runs), which is not installed here (looked at " +
            looked + "); reinstall novaq, or build the novaq-net target beside novaq");
}

void execNetHelper(const fs::path& executable, char** argv)
{
    const fs::path helper = netHelperPath(executable);
    std::fflush(stdout);
    std::fflush(stderr);
    ::execv(helper.c_str(), argv);
    const int error = errno;
    throw Error(ErrorKind::Io, "could not start " + helper.string() + ": " + std::strerror(error) +
                                   "; check that it is executable, or reinstall novaq");
}

} // namespace novaq::cli
