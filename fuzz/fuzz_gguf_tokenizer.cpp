// libFuzzer target: the vocabulary in a GGUF file's metadata (novaq::openGguf, then
// novaq::tokenizerFromGguf on its key/values), then encode and decode. Tensors are not read.
#include "fuzz_tokenizer_common.h"

#include "novaq/formats/gguf_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "vocab.gguf");
    try {
        auto reader = novaq::openGguf(path);
        auto tok = novaq::tokenizerFromGguf(reader->metadata()["format_metadata"], "vocab.gguf");
        novaq::fuzz::exerciseTokenizer(*tok);
    } catch (const novaq::Error&) {
    }
    return 0;
}
