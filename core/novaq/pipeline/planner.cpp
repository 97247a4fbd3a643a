#include "novaq/pipeline/planner.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/novaq_file.h"
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

// The role table: per row of kBitsPresets (in its order), the presets the output layer, the
// embedding and the first block get, as rows of kBitsPresets found by their bits. The
// static_assert below fails the build when the two tables drift apart: a preset added, removed
// or re-valued without its row here, or a role given fewer bits than the preset it belongs to.
struct RoleRow {
    size_t preset, output, embedding, firstBlock; // rows of kBitsPresets
};
constexpr std::array<RoleRow, kBitsPresets.size()> kRoleTable = {{
    {presetIndex(1.0), presetIndex(2.0), presetIndex(1.5), presetIndex(1.5)},
    {presetIndex(1.5), presetIndex(3.0), presetIndex(2.0), presetIndex(2.0)},
    {presetIndex(2.0), presetIndex(3.0), presetIndex(2.0), presetIndex(2.0)},
    {presetIndex(2.5), presetIndex(4.0), presetIndex(2.5), presetIndex(3.0)},
    {presetIndex(3.0), presetIndex(4.0), presetIndex(3.0), presetIndex(4.0)},
    {presetIndex(4.0), presetIndex(4.0), presetIndex(4.0), presetIndex(4.0)},
    {presetIndex(5.0), presetIndex(6.0), presetIndex(5.0), presetIndex(5.0)},
    {presetIndex(6.0), presetIndex(6.0), presetIndex(6.0), presetIndex(6.0)},
}};

constexpr bool roleTableMatchesPresets() noexcept
{
    for (size_t i = 0; i < kRoleTable.size(); ++i) {
        const RoleRow& r = kRoleTable[i];
        if (r.preset != i) // one row per preset, in the presets' order (a missing row reads as zeros)
            return false;
        for (size_t role : {r.output, r.embedding, r.firstBlock})
            if (role >= kBitsPresets.size() || kBitsPresets[role].bits < kBitsPresets[i].bits)
                return false; // not a preset, or fewer bits than asked for
    }
    return true;
}
static_assert(roleTableMatchesPresets(), "kRoleTable must have one row per row of kBitsPresets, in its order, "
                                         "naming presets with at least that row's bits");

// Measured mean relative error ||W - What||^2 / ||W||^2 per row of kBitsPresets (in its order);
// see presetRelativeError. A preset missing here would count as error-free and draw the whole
// budget of a --target-size fit: a row added to kBitsPresets without its figure reads as 0 and
// fails the static_assert.
constexpr std::array<double, kBitsPresets.size()> kMeasuredError = {
    0.2927, 0.1534, 0.0733, 0.0426, 0.0240, 0.00592, 0.00293, 0.000734,
};
static_assert(
    [] {
        for (size_t i = 0; i < kMeasuredError.size(); ++i)
            if (!(kMeasuredError[i] > 0) || (i > 0 && !(kMeasuredError[i] < kMeasuredError[i - 1])))
                return false;
        return true;
    }(),
    "kMeasuredError needs one positive figure per row of kBitsPresets, falling as the bits rise");

// Rungs above the presets that only a size fit uses: with measured sensitivity (calibration
// text) the output layer and the embedding carry most of the predicted KL at 5 to 6 bits
// (kjv-llama-7m: sensitivity 0.27 and 0.071 against 0.0002-0.012 for the blocks), and the
// best use of bytes near the 6-bit types is a few more bits for those two rather than for
// everything. Not presets: no card or --bits value names them. Errors measured like
// kMeasuredError (`novaq local kjv-llama-7m --d 2 --b1 7 --b2 7`, resp. 8 8, seed 20260101,
// no calibration, parameter-weighted mean, 2026-12-06).
struct FitRung {
    double bits;
    CodecConfig config;
    double error;
};
constexpr std::array<FitRung, 2> kFitRungs = {{
    {7.0, CodecConfig{2, 7, 7, 4}, 0.000188},
    {8.0, CodecConfig{2, 8, 8, 4}, 0.0000451},
}};
static_assert(kFitRungs.front().bits > kBitsPresets.back().bits && kFitRungs.front().error < kMeasuredError.back() &&
                  kFitRungs[1].error < kFitRungs[0].error,
              "fit rungs lie above the last preset, each with less error than the one below");

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
    const size_t row = presetIndex(bits); // exact: a preset's own bits
    if (row == kBitsPresets.size())
        return bits;
    const RoleRow& r = kRoleTable[row];
    switch (role) {
    case TensorRole::Output:
        return kBitsPresets[r.output].bits;
    case TensorRole::Embedding:
        return kBitsPresets[r.embedding].bits;
    case TensorRole::FirstBlock:
        return kBitsPresets[r.firstBlock].bits;
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
    const CodecConfig asked = options.codec.resolve();
    CodecConfig base = asked;
    // A preset only: expert settings are taken as given, even when they equal a preset's.
    if (options.codec.isPreset() && options.allocation == BitAllocation::Balanced) {
        const double bits = options.codec.bits();
        const double target = presetBitsFor(bits, tensorRole(info.name));
        if (const auto preset = presetForBits(target); preset && target != bits)
            base = preset->config(base.subspaces); // the role's preset, in the subspaces asked for
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
        if (c.d != asked.d || c.b1 != asked.b1 || c.b2 != asked.b2)
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

double presetRelativeError(double presetBits) noexcept
{
    // Parameter-weighted mean relative error of every quantized matrix of kjv-llama-7m at that
    // codec configuration (novaq local --bits 1 ... 6 --json, seed 20260101, no calibration,
    // measured 2026-12-06; at 5 bits the tensors stored at d=2 6+4, the output layer being at
    // 6), in kMeasuredError above. Only the ratios between rows matter to the allocation.
    const size_t row = presetIndex(presetBits);
    if (row < kMeasuredError.size())
        return kMeasuredError[row];
    for (const FitRung& rung : kFitRungs)
        if (rung.bits == presetBits)
            return rung.error;
    return 0.0;
}

double roleWeight(TensorRole role) noexcept
{
    // At the optimum of the Gaussian model (error w * 2^(-2R) per weight) the error reduction
    // per bit is equal everywhere, so a role given `extra` more bits weighs 2^(2 extra). The
    // role table at 1.5 and 2.5 bits gives the output layer 1.5 more bits (weight 8), the
    // embedding and the first block 0.5 more (weight 2).
    switch (role) {
    case TensorRole::Output:
        return 8.0;
    case TensorRole::Embedding:
    case TensorRole::FirstBlock:
        return 2.0;
    case TensorRole::Other:
        break;
    }
    return 1.0;
}

std::vector<std::vector<FitOption>> fitOptions(const ModelReader& reader, int subspaces,
                                               const std::vector<double>* sensitivity)
{
    std::vector<std::vector<FitOption>> out(reader.tensors().size());
    for (size_t i = 0; i < reader.tensors().size(); ++i) {
        const TensorInfo& info = reader.tensors()[i];
        const double weight = sensitivity && i < sensitivity->size()
                                  ? (*sensitivity)[i]
                                  : roleWeight(tensorRole(info.name)) * static_cast<double>(info.numel());
        std::vector<FitOption> all;
        // The presets, then (with measured sensitivity) the rungs above them.
        std::vector<std::pair<double, CodecSpec>> rungs;
        for (const BitsPreset& p : bitsPresets())
            rungs.emplace_back(p.bits, CodecSpec::preset(p.bits, subspaces));
        if (sensitivity)
            for (const FitRung& r : kFitRungs)
                rungs.emplace_back(r.bits,
                                   CodecSpec::expert(CodecConfig{r.config.d, r.config.b1, r.config.b2, subspaces}));
        for (const auto& [bits, spec] : rungs) {
            PlanOptions options;
            options.codec = spec;
            options.allocation = BitAllocation::Uniform;
            FitOption o;
            o.plan = planTensor(info, options);
            o.plan.index = i;
            o.presetBits = o.plan.quantize ? bits : 0.0;
            if (o.plan.quantize)
                o.plan.reason = "quantized at " + bitsText(bits) + " bits (fit to target)";
            // Manifest records measured on stories260K and the demo model: name plus 255 to 265
            // bytes when kept, plus 320 to 325 when quantized (shape included); the margin is
            // for longer numbers.
            o.record = info.name.size() + 8 * info.shape.size() + (o.plan.quantize ? 345 : 285);
            o.cost = (o.plan.estimatedBytes + kNovaqAlign - 1) / kNovaqAlign * kNovaqAlign + o.record;
            o.error = o.plan.quantize ? weight * presetRelativeError(bits) : 0.0;
            all.push_back(std::move(o));
        }
        std::stable_sort(all.begin(), all.end(), [](const FitOption& a, const FitOption& b) {
            return a.cost != b.cost ? a.cost < b.cost : a.error < b.error;
        });
        for (FitOption& o : all)
            if (out[i].empty() || (o.cost > out[i].back().cost && o.error < out[i].back().error))
                out[i].push_back(std::move(o));
    }
    return out;
}

std::vector<size_t> allocateBudget(const std::vector<std::vector<FitOption>>& options, uint64_t budget,
                                   const std::vector<int>& fixed)
{
    std::vector<size_t> choice(options.size(), 0);
    uint64_t spent = 0;
    std::vector<bool> free(options.size(), true);
    for (size_t i = 0; i < options.size(); ++i) {
        if (i < fixed.size() && fixed[i] >= 0) {
            choice[i] = static_cast<size_t>(fixed[i]);
            free[i] = false;
        } else {
            spent += options[i].front().cost;
        }
    }
    if (spent > budget)
        return choice;
    uint64_t left = budget - spent;
    // A few hundred tensors and six options: a plain scan per step is fast enough (at most
    // tensors x options steps) and keeps the order obvious.
    for (;;) {
        double bestRatio = -1;
        size_t bestTensor = 0, bestOption = 0;
        for (size_t i = 0; i < options.size(); ++i) {
            if (!free[i])
                continue;
            const FitOption& now = options[i][choice[i]];
            for (size_t j = choice[i] + 1; j < options[i].size(); ++j) {
                const uint64_t extra = options[i][j].cost - now.cost;
                if (extra > left)
                    break; // sorted by cost: the later ones do not fit either
                const double ratio = (now.error - options[i][j].error) / double(std::max<uint64_t>(extra, 1));
                if (ratio > bestRatio) {
                    bestRatio = ratio;
                    bestTensor = i;
                    bestOption = j;
                }
            }
        }
        if (bestRatio < 0)
            break;
        left -= options[bestTensor][bestOption].cost - options[bestTensor][choice[bestTensor]].cost;
        choice[bestTensor] = bestOption;
    }
    return choice;
}

int64_t defaultCalibrationTokens(int64_t widestInput) noexcept
{
    constexpr int64_t kWindow = 256, kLeast = 32768, kMost = 65536;
    const int64_t wanted = (4 * std::max<int64_t>(widestInput, 0) + kWindow - 1) / kWindow * kWindow;
    return std::clamp(wanted, kLeast, kMost);
}

} // namespace novaq
