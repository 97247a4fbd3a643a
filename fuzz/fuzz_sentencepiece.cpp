// libFuzzer target: a SentencePiece ModelProto (tokenizer.model) loaded from bytes in memory
// (novaq::loadSentencePieceBytes, what the .novaq container uses), then encode and decode.
#include "fuzz_tokenizer_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    try {
        auto tok =
            novaq::loadSentencePieceBytes(std::span(reinterpret_cast<const std::byte*>(data), size), "tokenizer.model");
        novaq::fuzz::exerciseTokenizer(*tok);
    } catch (const novaq::Error&) {
    }
    return 0;
}
