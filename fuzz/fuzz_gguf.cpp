// libFuzzer target: the gguf reader (novaq::openGguf), then every small tensor read back.
#include "fuzz_common.h"

#include "novaq/formats/gguf_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.gguf");
    try {
        auto reader = novaq::openGguf(path);
        novaq::fuzz::readAllTensors(*reader);
    } catch (const novaq::Error&) {
    }
    return 0;
}
