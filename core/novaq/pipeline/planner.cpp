#include "novaq/pipeline/planner.h"

#include "novaq/codec/quantized_tensor.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/runtime/architecture.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace novaq {

namespace {

// Bytes of a kept tensor: 16-bit floats stay as they are, F32/F64 become F16, integers
// are kept exactly in their own type.
DType keptType(DType source) noexcept
{
    switch (source) {
    case DType::F16:
    case DType::BF16:
        return source;
    case DType::F32:
    case DType::F64:
        return DType::F16;
    default:
        return source;
    }
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Per --bits preset: the presets of the output layer, the embedding and the first block.
struct RoleRow {
    double bits, output, embedding, firstBlock;
};
constexpr std::array<RoleRow, 6> kRoleTable = {{
    {1.0, 2.0, 1.5, 1.5},
    {1.5, 3.0, 2.0, 2.0},
    {2.0, 3.0, 2.0, 2.0},
    {2.5, 4.0, 2.5, 3.0},
    {3.0, 4.0, 3.0, 4.0},
    {4.0, 4.0, 4.0, 4.0},
}};

} // namespace

TensorRole tensorRole(const std::string& name)
{
    // The names of the architecture table first (every layout of every family), then the
    // patterns of models outside it (GPT-2's wte / h.0, wrapped checkpoints' prefixes).
    for (const Architecture& arch : architectures())
        for (const Layout& layout : arch.layouts) {
            if (!layout.name)
                continue;
            if (name == layout.names.embedding)
                return TensorRole::Embedding;
            if (name == layout.names.output)
                return TensorRole::Output;
            if (name.starts_with(std::string(layout.names.layerPrefix) + "0."))
                return TensorRole::FirstBlock;
        }
    if (contains(name, "embed_tokens") || contains(name, "tok_embeddings") || contains(name, "wte.weight"))
        return TensorRole::Embedding;
    if (contains(name, "lm_head"))
        return TensorRole::Output;
    if (contains(name, "layers.0.") || contains(name, ".h.0."))
        return TensorRole::FirstBlock;
    return TensorRole::Other;
}

double presetBitsFor(double bits, TensorRole role) noexcept
{
    for (const RoleRow& r : kRoleTable)
        if (r.bits == bits)
            switch (role) {
            case TensorRole::Output:
                return r.output;
            case TensorRole::Embedding:
                return r.embedding;
            case TensorRole::FirstBlock:
                return r.firstBlock;
            case TensorRole::Other:
                break;
            }
    return bits;
}

namespace {

// The plan as if the tensor were floats (a GGUF block-quantized tensor reads as F32).
TensorPlan planAsFloat(const TensorInfo& info, const PlanOptions& options)
{
    TensorPlan plan;
    plan.keepAs = keptType(info.dtype);
    plan.estimatedBytes = static_cast<uint64_t>(info.numel()) * dtypeInfo(plan.keepAs).bytes;
    const bool isFloat =
        info.dtype == DType::F32 || info.dtype == DType::F16 || info.dtype == DType::BF16 || info.dtype == DType::F64;
    if (!isFloat) {
        plan.reason = "not a float tensor (kept exactly)";
        return plan;
    }
    if (info.shape.size() < 2) {
        plan.reason = "1-D (norm or bias)";
        return plan;
    }
    if (info.numel() < options.minParams) {
        plan.reason = "too small to gain";
        return plan;
    }
    const int64_t rows = info.rows(), cols = info.cols();
    CodecConfig base = options.config;
    if (options.bits > 0 && options.allocation == BitAllocation::Balanced) {
        const double target = presetBitsFor(options.bits, tensorRole(info.name));
        if (const auto preset = presetForBits(target); preset && target != options.bits) {
            base.d = preset->d;
            base.b1 = preset->b1;
            base.b2 = preset->b2;
        }
    }
    if (cols < base.d) {
        plan.reason = "rows shorter than one vector";
        return plan;
    }
    const int64_t vpr = vectorsPerRow(cols, base.d);
    const int64_t m1 = int64_t{1} << base.b1;
    const int64_t m2 = base.b2 > 0 ? int64_t{1} << base.b2 : 0;
    const uint64_t sixteenBit = static_cast<uint64_t>(info.numel()) * 2;
    // Fewer subspaces when each would have too few vectors to train its codebooks or when
    // the codebooks would cost more than their share of the code bits.
    for (auto k = static_cast<int>(std::min<int64_t>(base.subspaces, vpr)); k >= 1; --k) {
        CodecConfig c = base;
        c.subspaces = k;
        const int64_t vectorsPerSubspace = rows * (vpr / k);
        const double codeBits = static_cast<double>(rows * vpr) * (base.b1 + base.b2);
        const double bookBits = 16.0 * static_cast<double>(k) * static_cast<double>((m1 + m2) * base.d);
        const double allowed = k > 1 ? options.maxOverheadFraction : options.maxOverheadOneSubspace;
        if (vectorsPerSubspace < 4 * m1 || bookBits > allowed * codeBits)
            continue;
        const uint64_t bytes = payloadBytes(rows, cols, c, true);
        if (bytes >= sixteenBit)
            continue;
        plan.quantize = true;
        plan.config = c;
        plan.colScale = true;
        plan.estimatedBytes = bytes;
        plan.reason = "quantized";
        if (c.d != options.config.d || c.b1 != options.config.b1 || c.b2 != options.config.b2)
            plan.reason = tensorRole(info.name) == TensorRole::Output      ? "quantized, more bits: output layer"
                          : tensorRole(info.name) == TensorRole::Embedding ? "quantized, more bits: embedding"
                                                                           : "quantized, more bits: first block";
        return plan;
    }
    plan.reason = "too small to gain";
    return plan;
}

// The GGUF block type a tensor is stored in, when the container can keep it byte for byte
// (a block type our runtime decodes), else nullptr.
const GgmlTypeTraits* keepableBlockType(const TensorInfo& info) noexcept
{
    if (info.storage.empty())
        return nullptr;
    const GgmlTypeTraits* type = ggmlTypeByName(info.storage);
    return type && !type->dtype && type->supported() ? type : nullptr;
}

std::string bitsText(double bits)
{
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", bits);
    return text;
}

} // namespace

TensorPlan planTensor(const TensorInfo& info, const PlanOptions& options)
{
    TensorPlan plan = planAsFloat(info, options);
    const GgmlTypeTraits* block = keepableBlockType(info);
    if (!block || info.nbytes >= plan.estimatedBytes)
        return plan;
    // Smaller as the source stores it: kept so (also exact, where 16 bits would be too).
    if (plan.quantize) {
        const double bits = info.numel() ? 8.0 * double(info.nbytes) / double(info.numel()) : 0.0;
        plan.quantize = false;
        plan.config = {};
        plan.colScale = false;
        plan.reason = "already smaller as " + std::string(block->name) + " (" + bitsText(bits) + " bits per weight)";
    }
    plan.keepSource = true;
    plan.estimatedBytes = info.nbytes;
    return plan;
}

std::vector<TensorPlan> planModel(const ModelReader& reader, const PlanOptions& options)
{
    std::vector<TensorPlan> plans;
    plans.reserve(reader.tensors().size());
    for (size_t i = 0; i < reader.tensors().size(); ++i) {
        TensorPlan p = planTensor(reader.tensors()[i], options);
        p.index = i;
        plans.push_back(std::move(p));
    }
    return plans;
}

} // namespace novaq
