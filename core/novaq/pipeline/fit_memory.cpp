#include "novaq/pipeline/fit_memory.h"

#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/report.h"
#include "novaq/runtime/llama.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace novaq {

namespace {

int threadsOr(int threads)
{
    return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

LlamaConfig runnableConfig(const ModelReader& reader, const std::string& what)
{
    try {
        return llamaConfig(reader);
    } catch (const Error& e) {
        throw Error(e.kind(), what +
                                  " counts what the runtime holds when it runs the model, and it does not run this "
                                  "one: " +
                                  e.what() + "; use --target-size instead");
    }
}

} // namespace

uint64_t memoryNeeded(const RunMemory& m) noexcept
{
    return m.total() + static_cast<uint64_t>(std::ceil(kWeightHeadroom * double(m.weights)));
}

int64_t defaultFitContext(const ModelReader& reader)
{
    return std::min<int64_t>(llamaConfig(reader).maxSeq, kDefaultFitContext);
}

RunMemory predictRunMemory(const ModelReader& reader, const ModelInspection& plan, int64_t context, int threads)
{
    const LlamaConfig c = llamaConfig(reader);
    const LlamaTensorMap map = llamaTensors(reader, c);
    const auto& tensors = reader.tensors();
    const int t = threadsOr(threads);
    RunMemory m;
    m.context = context > 0 ? context : std::min<int64_t>(c.maxSeq, kDefaultFitContext);
    uint64_t linearScratch = 0;
    // A matrix as loadLlama holds it: quantized ones in the code domain, the rest decoded to f32.
    auto matrix = [&](size_t index) {
        const TensorInspection& p = plan.tensors.at(index);
        const TensorInfo& info = tensors[index];
        if (p.quantize) {
            m.weights += predictQuantizedLinearBytes(info.rows(), info.cols(), p.config);
            linearScratch = std::max(linearScratch, linearScratchBytes(info.cols(), &p.config, kForwardBatchTokens, t));
        } else {
            m.weights += uint64_t(info.numel()) * sizeof(float);
        }
    };
    auto vector = [&](size_t index) {
        if (index != kNoTensor)
            m.weights += uint64_t(tensors[index].numel()) * sizeof(float);
    };
    matrix(map.embedding);
    if (map.output)
        matrix(*map.output);
    vector(map.finalNorm);
    for (size_t l = 0; l < map.linear.size(); ++l) {
        for (size_t k = 0; k < kLinearSlots; ++k) {
            if (map.linear[l][k] != kNoTensor)
                matrix(map.linear[l][k]);
            vector(map.bias[l][k]);
        }
        for (const auto* norms :
             {&map.attnNorm, &map.ffnNorm, &map.postAttnNorm, &map.postFfnNorm, &map.qNorm, &map.kNorm})
            vector((*norms)[l]);
    }
    // KvCache: keys and values, f32, layers x context x kvDim each.
    m.kvCache = 2 * uint64_t(c.layers) * uint64_t(m.context) * uint64_t(c.kvDim()) * sizeof(float);
    const bool fusedQkv = !map.linear.empty() && map.linear.front()[size_t(LinearSlot::K)] == kNoTensor;
    const bool fusedGateUp = !map.linear.empty() && map.linear.front()[size_t(LinearSlot::Up)] == kNoTensor;
    m.scratch = forwardScratchBytes(c, kForwardBatchTokens, m.context, linearScratch, fusedQkv, fusedGateUp, t);
    return m;
}

std::vector<TensorBits> planTensorBits(const ModelInspection& plan)
{
    std::vector<TensorBits> out;
    for (const TensorInspection& t : plan.tensors)
        if (t.info.shape.size() >= 2 && t.info.numel() > 0)
            out.push_back({t.info.name, 8.0 * double(t.estimatedBytes) / double(t.info.numel())});
    return out;
}

uint64_t parseByteSize(const std::string& what, const std::string& value)
{
    const auto bad = [&](const std::string& why) {
        return Error(ErrorKind::InvalidArgument,
                     what +
                         " expects a size in bytes, or with a unit (kB, MB, GB, TB are powers of 1000; KiB, "
                         "MiB, GiB, TiB powers of 1024), e.g. 2.2MB or 4GiB; got '" +
                         value + "'" + why);
    };
    size_t pos = 0;
    while (pos < value.size() && (std::isdigit(static_cast<unsigned char>(value[pos])) || value[pos] == '.'))
        ++pos;
    const std::string number = value.substr(0, pos);
    if (number.empty() || number.front() == '.' || number.back() == '.' ||
        std::count(number.begin(), number.end(), '.') > 1)
        throw bad("");
    std::string unit = value.substr(pos);
    if (!unit.empty() && unit.front() == ' ')
        unit.erase(0, 1);
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    struct Unit {
        const char* name;
        double factor;
    };
    static constexpr Unit kUnits[] = {
        {"", 1},      {"b", 1},        {"kb", 1e3},        {"mb", 1e6},           {"gb", 1e9},
        {"tb", 1e12}, {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
    };
    const Unit* found = nullptr;
    for (const Unit& u : kUnits)
        if (unit == u.name)
            found = &u;
    if (!found)
        throw bad(" (unknown unit '" + value.substr(pos) + "')");
    const double bytes = std::floor(std::strtod(number.c_str(), nullptr) * found->factor);
    if (!(bytes >= 1))
        throw bad(" (must be at least 1 byte)");
    if (bytes > 4611686018427387904.0)
        throw bad(" (too large)");
    return static_cast<uint64_t>(bytes);
}

MemoryTarget fitToMemory(const ModelReader& reader, const std::filesystem::path& path, uint64_t memoryBytes,
                         int64_t context, int subspaces, const std::string& what, int threads,
                         const std::filesystem::path& calibration)
{
    const LlamaConfig c = runnableConfig(reader, what);
    if (context <= 0)
        context = std::min<int64_t>(c.maxSeq, kDefaultFitContext);
    if (context > c.maxSeq)
        throw Error(ErrorKind::InvalidArgument, "--context " + std::to_string(context) +
                                                    " is longer than this model's context length (" +
                                                    std::to_string(c.maxSeq) + " tokens); give at most that");
    const TargetFit range = targetRange(reader, path, subspaces);
    auto fitAt = [&](uint64_t target) {
        MemoryTarget t;
        t.fit = fitToTarget(reader, path, target, 0, subspaces, what, 0, calibration);
        t.memory = predictRunMemory(reader, t.fit.inspection, context, threads);
        return t;
    };
    auto needs = [](const RunMemory& m) { return memoryNeeded(m); };
    MemoryTarget best = fitAt(range.minBytes);
    const uint64_t smallest = needs(best.memory);
    if (smallest > memoryBytes) {
        char text[768];
        std::snprintf(text, sizeof text,
                      "%s (%s bytes) is less than this model needs to run even at the smallest setting: %s bytes (%s: "
                      "weights %s as the runtime holds them, KV cache %s at %lld tokens, buffers %s, 3%% of the "
                      "weights as headroom); give at least %s, or a shorter --context",
                      what.c_str(), withThousands(memoryBytes).c_str(), withThousands(smallest).c_str(),
                      humanBytes(smallest).c_str(), humanBytes(best.memory.weights).c_str(),
                      humanBytes(best.memory.kvCache).c_str(), static_cast<long long>(context),
                      humanBytes(best.memory.scratch).c_str(), siBytesAtLeast(smallest).c_str());
        throw Error(ErrorKind::InvalidArgument, text);
    }
    // The largest file target whose plan runs in the memory. The planner's memory grows with the
    // target almost everywhere (a larger budget upgrades tensors); a bisection over the bytes
    // keeps the largest target seen to fit, so a rare non-monotone step costs a little room at
    // most, never a plan that does not fit.
    if (MemoryTarget top = fitAt(range.maxBytes); needs(top.memory) <= memoryBytes) {
        best = std::move(top);
    } else {
        uint64_t lo = range.minBytes, hi = range.maxBytes; // lo fits, hi does not
        while (hi - lo > std::max<uint64_t>(1, lo / 2000)) {
            const uint64_t mid = lo + (hi - lo) / 2;
            MemoryTarget t = fitAt(mid);
            if (needs(t.memory) <= memoryBytes) {
                lo = mid;
                best = std::move(t);
            } else {
                hi = mid;
            }
        }
    }
    best.smallestBytes = smallest;
    best.memory.limit = memoryBytes;
    best.memory.text = what;
    best.memory.context = context;
    best.fit.inspection.runMemory = best.memory;
    return best;
}

MemoryTarget fitToMemory(const std::filesystem::path& path, uint64_t memoryBytes, int64_t context, int subspaces,
                         const std::string& what, int threads, const std::filesystem::path& calibration)
{
    const std::unique_ptr<ModelReader> reader = openModel(path);
    return fitToMemory(*reader, path, memoryBytes, context, subspaces, what, threads, calibration);
}

} // namespace novaq
