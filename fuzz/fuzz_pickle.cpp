// libFuzzer target: the restricted unpickler (novaq::pickle::unpickle) on bytes in memory,
// then every value, storage and tensor description walked.
#include "fuzz_common.h"

#include "novaq/formats/unpickler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const novaq::pickle::PickleSource source{"fuzz.pkl", "archive/data.pkl", 0};
    try {
        auto result = novaq::pickle::unpickle(std::span(reinterpret_cast<const std::byte*>(data), size), source);
        if (result.consumed > size)
            __builtin_trap(); // consumed past the end of the input
        if (result.root >= result.values.size())
            __builtin_trap();
        size_t walked = 0;
        for (const auto& value : result.values)
            for (auto item : value.items)
                walked += result.values.at(item).items.size(); // every item id must index values
        for (const auto& tensor : result.tensors)
            walked += result.values.at(tensor.storage).text.size() + tensor.shape.size();
        (void)walked;
    } catch (const novaq::Error&) {
    }
    return 0;
}
