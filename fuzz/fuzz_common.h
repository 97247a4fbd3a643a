#pragma once
// Shared by the fuzz targets: the readers open files by path and memory-map them, so each
// input is written to one scratch file per process (in /dev/shm when it exists, else
// $TMPDIR), rewritten for every input. The scratch file sits in a folder of its own, so a
// reader that looks beside its file (config.json, ONNX external data) finds only the input.
//
// The oracle: a reader may refuse an input only with novaq::Error (what the CLI turns into
// its exit codes). Any other exception escapes the target, and libFuzzer reports it as a
// crash, like a sanitizer report, a timeout or running out of memory.
#include "novaq/io/error.h"
#include "novaq/tensor/tensor.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace novaq::fuzz {

// The scratch folder of this process (created once, removed at exit).
inline const std::filesystem::path& scratchDir()
{
    static const std::filesystem::path dir = [] {
        std::error_code ec;
        std::filesystem::path base = "/dev/shm";
        if (!std::filesystem::is_directory(base, ec)) {
            const char* tmp = std::getenv("TMPDIR");
            base = tmp && *tmp ? std::filesystem::path(tmp) : std::filesystem::temp_directory_path();
        }
        std::filesystem::path d = base / ("novaq-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(scratchDir(), ignored);
        });
        return d;
    }();
    return dir;
}

// Writes `data` to `<scratch>/<name>` (replacing it) and returns the path.
inline std::filesystem::path writeInput(const uint8_t* data, size_t size, const std::string& name)
{
    std::filesystem::path path = scratchDir() / name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f)
        std::abort(); // the harness itself is broken; not a finding
    if (size && std::fwrite(data, 1, size, f) != size)
        std::abort();
    std::fclose(f);
    return path;
}

// Tensors up to this many elements are read back as float; larger ones are only listed
// (the readers map them lazily, so a claimed 1 TB tensor must be refused when opened or
// read, but we do not allocate its float buffer in the harness).
inline constexpr uint64_t kMaxReadElements = uint64_t{1} << 20;

// Reads every small tensor, rawBytes() and readFloat(), then releases it. Error from a
// single tensor is an allowed outcome; the loop goes on with the next.
template <typename Reader>
void readAllTensors(const Reader& reader)
{
    const auto& infos = reader.tensors();
    for (size_t i = 0; i < infos.size(); ++i) {
        try {
            int64_t numel = infos[i].numel();
            if (numel < 0 || static_cast<uint64_t>(numel) > kMaxReadElements)
                continue;
            std::vector<float> out(static_cast<size_t>(numel));
            reader.readFloat(i, out);
            (void)reader.rawBytes(i);
        } catch (const novaq::Error&) {
        }
        reader.release(i);
    }
    (void)reader.metadata().dump();
    (void)reader.tensorBytes();
}

} // namespace novaq::fuzz
