// libFuzzer target: a llama2.c tokenizer (tok512.bin, novaq::loadLlama2cTokenizer), then
// encode and decode.
#include "fuzz_tokenizer_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "tok512.bin");
    try {
        auto tok = novaq::loadLlama2cTokenizer(path);
        novaq::fuzz::exerciseTokenizer(*tok);
    } catch (const novaq::Error&) {
    }
    return 0;
}
