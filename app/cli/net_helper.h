// `novaq` and `novaq-net`: one command line, two programs.
//
// The commands that talk to a network (search, hf, ollama, url, serve) and cluster runs under an
// MPI launcher need libcurl, OpenSSL, cpp-httplib and Open MPI. Loading those libraries costs
// every process about 9 MB of resident memory before it does anything (their relocations,
// GnuTLS's and cpp-httplib's start-up code), which `novaq generate` on a small model would pay
// on top of the file and its KV cache. So `novaq` links the engine without them, and hands
// those commands, unchanged, to `novaq-net`: the same command line built with everything (as
// git hands https to git-remote-https). Help and argument errors are the same in both, since
// both are built from the same table (commands.cpp).
#pragma once

#include <filesystem>

namespace novaq::cli {

inline constexpr const char* kNetHelperName = "novaq-net";

// Where novaq-net is for the `novaq` at `executable`: beside it (a build tree), else in the
// installed libexec folder (<prefix>/libexec/novaq/). Throws Error(Unsupported) naming the
// places it looked when neither holds it.
std::filesystem::path netHelperPath(const std::filesystem::path& executable);

// Replaces this process with novaq-net on the same command line and environment (an MPI
// launcher's variables included); returns only by throwing Error.
[[noreturn]] void execNetHelper(const std::filesystem::path& executable, char** argv);

} // namespace novaq::cli
