#include "novaq/tensor/tensor.h"

namespace novaq {

int64_t TensorInfo::numel() const noexcept
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

int64_t TensorInfo::rows() const noexcept { return shape.empty() ? 1 : shape.front(); }

int64_t TensorInfo::cols() const noexcept
{
    int64_t n = 1;
    for (size_t i = 1; i < shape.size(); ++i)
        n *= shape[i];
    return n;
}

std::string shapeToString(const std::vector<int64_t>& shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i != 0)
            s += ", ";
        s += std::to_string(shape[i]);
    }
    s += "]";
    return s;
}

} // namespace novaq
