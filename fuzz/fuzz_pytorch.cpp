// libFuzzer target: the pytorch reader (novaq::openPyTorch), then every small tensor read back.
#include "fuzz_common.h"

#include "novaq/formats/pytorch_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.pt");
    try {
        auto reader = novaq::openPyTorch(path);
        novaq::fuzz::readAllTensors(*reader);
    } catch (const novaq::Error&) {
    }
    return 0;
}
