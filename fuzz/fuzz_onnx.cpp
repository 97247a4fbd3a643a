// libFuzzer target: the onnx reader (novaq::openOnnx), then every small tensor read back.
#include "fuzz_common.h"

#include "novaq/formats/onnx_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.onnx");
    try {
        auto reader = novaq::openOnnx(path);
        novaq::fuzz::readAllTensors(*reader);
    } catch (const novaq::Error&) {
    }
    return 0;
}
