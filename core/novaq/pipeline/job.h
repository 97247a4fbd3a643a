#pragma once
// What every compression job shares: the cancel token (io/cancel.h), the figures of a
// finished tensor and the progress sink.

#include "novaq/io/cancel.h"

#include <cstdint>
#include <string>
#include <vector>

namespace novaq {

// Figures of one finished tensor.
struct TensorResult {
    std::string name;
    std::vector<int64_t> shape;
    std::string sourceDtype;
    bool quantized = false;
    std::string storedAs;     // "novaq d=8 8+4 K=4" or "F16"
    double relError = 0.0;    // ||W - What||^2 / ||W||^2 (0 for kept tensors stored exactly)
    double sqnrDb = 0.0;      // -10 log10(relError); +inf stored as 999 when exact
    double effectiveBits = 0; // payload bits / parameters
    uint64_t params = 0;
    uint64_t bytesIn = 0;  // bytes in the source file
    uint64_t bytesOut = 0; // payload bytes in the .novaq file
    double seconds = 0.0;  // wall time of this tensor (reported, not stored in the file)
    // With calibration: tr(E H E^T) / tr(W H W^T) on the calibration inputs (E = W - What),
    // after and before the output refit; -1 when the tensor was not calibrated.
    double outputError = -1.0;
    double outputErrorUnrefined = -1.0;
};

struct ProgressEvent {
    enum class Kind { JobStarted, TensorStarted, TensorProgress, TensorFinished, JobFinished };
    Kind kind = Kind::JobStarted;
    size_t tensorIndex = 0; // 0-based, of tensorCount
    size_t tensorCount = 0;
    std::string tensorName;
    double tensorFraction = 0;            // progress within the current tensor, 0..1
    double overallFraction = 0;           // by parameters done, 0..1
    std::string stage;                    // "normalize", "train", "encode", "refit", "write"
    const TensorResult* result = nullptr; // TensorFinished only
};

// Called from the job's thread (never concurrently). Implementations must be quick.
class ProgressSink {
public:
    virtual ~ProgressSink() = default;
    virtual void onEvent(const ProgressEvent& event) = 0;
};

} // namespace novaq
