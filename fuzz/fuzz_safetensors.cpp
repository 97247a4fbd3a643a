// libFuzzer target: the safetensors reader (novaq::openSafetensors), then every small tensor read back.
#include "fuzz_common.h"

#include "novaq/formats/safetensors_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.safetensors");
    try {
        auto reader = novaq::openSafetensors(path);
        novaq::fuzz::readAllTensors(*reader);
    } catch (const novaq::Error&) {
    }
    return 0;
}
