// libFuzzer target: the .novaq container. Opened as a model (novaq::openNovaqModel: header,
// trailer, manifest, records), every small tensor decoded, attachments unpacked; then the
// same file through novaq::validateNovaq, as `novaq validate` runs it.
#include "fuzz_common.h"

#include "novaq/container/novaq_model_reader.h"
#include "novaq/pipeline/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const auto path = novaq::fuzz::writeInput(data, size, "model.novaq");
    try {
        auto reader = novaq::openNovaqModel(path);
        novaq::fuzz::readAllTensors(*reader);
        for (size_t i = 0; i < reader->tensors().size(); ++i)
            (void)novaq::quantizedTensorOf(*reader, i);
        (void)novaq::novaqAttachments(*reader);
    } catch (const novaq::Error&) {
    }
    try {
        (void)novaq::validateNovaq(path, std::nullopt, nullptr, nullptr);
    } catch (const novaq::Error&) {
    }
    return 0;
}
