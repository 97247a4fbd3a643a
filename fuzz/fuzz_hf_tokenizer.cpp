// libFuzzer target: a Hugging Face tokenizer.json (novaq::loadHfTokenizerJson), then encode
// and decode.
#include "fuzz_tokenizer_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "tokenizer.json");
    try {
        auto tok = novaq::loadHfTokenizerJson(path);
        novaq::fuzz::exerciseTokenizer(*tok);
    } catch (const novaq::Error&) {
    }
    return 0;
}
