#include "novaq/formats/model_reader.h"

namespace novaq {

uint64_t ModelReader::tensorBytes() const noexcept
{
    uint64_t total = 0;
    for (const TensorInfo& t : tensors())
        total += t.nbytes;
    return total;
}

std::string ModelReader::architecture() const
{
    const nlohmann::json& meta = metadata();
    if (!meta.is_object())
        return "unknown";
    if (auto it = meta.find("architecture"); it != meta.end() && it->is_string()) {
        if (!it->get_ref<const std::string&>().empty())
            return it->get<std::string>();
    }
    if (auto config = meta.find("config"); config != meta.end() && config->is_object()) {
        if (auto type = config->find("model_type"); type != config->end() && type->is_string())
            return type->get<std::string>();
    }
    return "unknown";
}

} // namespace novaq
