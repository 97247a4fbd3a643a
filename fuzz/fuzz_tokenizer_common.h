#pragma once
// Shared by the tokenizer targets: once a tokenizer loads, it must encode and decode a few
// fixed texts (ASCII, multi-byte UTF-8, bytes that are not UTF-8, whitespace runs) and list
// its pieces without anything but novaq::Error escaping.
#include "fuzz_common.h"

#include "novaq/text/tokenizer.h"

#include <string_view>

namespace novaq::fuzz {

inline void exerciseTokenizer(const novaq::Tokenizer& tok)
{
    static constexpr std::string_view kTexts[] = {
        "Hello world",
        " In the beginning God created the heaven and the earth.\n",
        "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
        "\xff\xfe\x80 bad utf-8 \xc3",
        "   \t\n\n  spaces  ",
        "<s></s><unk><0x0A>",
        "",
    };
    (void)tok.kind();
    const int32_t n = tok.vocabSize();
    for (int32_t id = 0; id < n && id < 4096; ++id)
        (void)tok.piece(id);
    for (std::string_view text : kTexts) {
        for (bool bos : {false, true}) {
            std::vector<int32_t> ids = tok.encode(text, bos);
            for (int32_t id : ids)
                if (id < 0 || id >= n) {
                    std::fprintf(stderr, "encode(\"%.*s\", bos=%d) gave id %d; the vocabulary has %d\n",
                                 static_cast<int>(text.size()), text.data(), bos ? 1 : 0, id, n);
                    __builtin_trap();
                }
            (void)tok.decode(ids);
        }
    }
    (void)tok.bos();
    (void)tok.eos();
}

} // namespace novaq::fuzz
