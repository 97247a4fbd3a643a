// libFuzzer target: the llama2c reader (novaq::openLlama2c), then every small tensor read back.
#include "fuzz_common.h"

#include "novaq/formats/llama2c_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.bin");
    try {
        auto reader = novaq::openLlama2c(path);
        novaq::fuzz::readAllTensors(*reader);
    } catch (const novaq::Error&) {
    }
    return 0;
}
