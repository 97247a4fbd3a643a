#pragma once
// "Make it fit" to memory (`--fit-memory SIZE [--context N]`, issue 18): the best per-tensor
// plan whose run fits in SIZE bytes, counting what the runtime holds: the weights as loaded
// (quantized matrices in their code-domain form, every other tensor as f32, not the file's
// bytes), the KV cache at the context, and the working buffers of a forward pass. The parts are
// the runtime's own accounting (runtime/llama.h: predictQuantizedLinearBytes,
// forwardScratchBytes); test_fit_memory checks the prediction against a loaded model.
// Not counted: the program's own code and libraries, the tokenizer, and the file's pages the
// kernel maps while loading (they are page cache, given back under pressure).

#include "novaq/pipeline/inspect.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace novaq {

// The context --fit-memory counts when none is given: the model's context length, at most
// kDefaultFitContext. Why the cap: long-context models (Llama 3.1: 131072 positions) would
// spend most of the memory on a cache that chats and the app (Try it: 4096) never fill.
inline constexpr int64_t kDefaultFitContext = 4096;
int64_t defaultFitContext(const ModelReader& reader);

// Predicted bytes the runtime holds when it runs `plan` (the planned model of `reader`, the
// source) with a cache of `context` positions (0: the default), prompts run in chunks of
// kForwardBatchTokens, the linear layers' scratch on `threads` threads (0: all cores). Throws
// Error(Unsupported) when the runtime does not run the model's architecture.
RunMemory predictRunMemory(const ModelReader& reader, const ModelInspection& plan, int64_t context, int threads = 0);

// What a plan is held to: its prediction plus kWeightHeadroom of its weights. compressModel
// re-plans as it writes (the bytes one tensor saves go to the next), so the written file's
// tensors can differ a little from the plan: measured up to 1.2% more weights as loaded on
// stories260K (test_fit_memory), 2.3% since the runtime holds the codebooks in f16 (the same
// bytes more, of smaller weights), so 3% is kept free.
inline constexpr double kWeightHeadroom = 0.03;
uint64_t memoryNeeded(const RunMemory& memory) noexcept;

// Bits per weight of each matrix of a plan as the file stores it (8 x estimated bytes over its
// parameters), in model order: the allocation chart of the app. 1-D tensors (norms, biases)
// are left out: always kept, they are a rounding error of the size and would only add bars.
struct TensorBits {
    std::string name;
    double bits = 0;
};
std::vector<TensorBits> planTensorBits(const ModelInspection& plan);

// A size as a person writes it: bytes, or a number with a unit: kB, MB, GB, TB (powers of 1000),
// KiB, MiB, GiB, TiB (powers of 1024), case-insensitive, one optional space ("2.2MB", "8 GiB").
// Throws Error(InvalidArgument) naming `what` and the value.
uint64_t parseByteSize(const std::string& what, const std::string& value);

// The largest plan whose memoryNeeded() is at most `memoryBytes`: the file target the
// size planner (fitToTarget) is given is searched for, largest first. `context` 0: the default.
// `what` names the option in messages ("--fit-memory 8GB"). When even the smallest setting does
// not fit, throws Error(InvalidArgument) naming the value, what the smallest setting needs and
// its parts. The result's inspection carries runMemory.
struct MemoryTarget {
    TargetFit fit;              // the plan; fit.targetBytes: the file target that gave it
    RunMemory memory;           // predicted for the plan
    uint64_t smallestBytes = 0; // what the smallest setting would need
};
// `calibration`: as fitToTarget takes it (the fit weighed by measured sensitivity).
MemoryTarget fitToMemory(const ModelReader& reader, const std::filesystem::path& path, uint64_t memoryBytes,
                         int64_t context, int subspaces, const std::string& what, int threads = 0,
                         const std::filesystem::path& calibration = {});
MemoryTarget fitToMemory(const std::filesystem::path& path, uint64_t memoryBytes, int64_t context, int subspaces,
                         const std::string& what, int threads = 0, const std::filesystem::path& calibration = {});

} // namespace novaq
