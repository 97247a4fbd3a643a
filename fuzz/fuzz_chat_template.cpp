// libFuzzer target: a chat template (novaq::jinja::Template), parsed and rendered over a
// small conversation with tight limits. The oracle: only novaq::Error may come out; a crash,
// a sanitizer report, a timeout or running out of memory is a finding.
#include "novaq/io/error.h"
#include "novaq/text/jinja.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(
        R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "h\u00e9llo <x>"},
                         {"role": "assistant", "content": "<think>a</think>b"}],
            "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": null})");
    try {
        const auto t =
            novaq::jinja::Template::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        novaq::jinja::RenderOptions options;
        options.limits.maxSteps = 200000;
        options.limits.maxOutputBytes = 1 << 16;
        options.limits.maxItems = 1 << 14;
        options.now = 0;
        (void)t.render(vars, options);
    } catch (const novaq::Error&) {
    }
    return 0;
}
