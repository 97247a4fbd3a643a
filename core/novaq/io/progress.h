#pragma once
// Progress of long work below the job events (pipeline/job.h): the one signature every layer
// reports through, beside the one cancel token (cancel.h). The encoder reports a fraction of
// one tensor (total 1) with its stage, evaluation the windows scored, hashing the bytes read.
// The job layer (pipeline/job_progress.h) turns a tensor's steps into its ProgressEvents.

#include <functional>

namespace novaq {

struct ProgressStep {
    // How much is done, of how much, in the work's own unit (windows, bytes), or a fraction of
    // 1. Doubles, so that a fraction passes through unchanged; counts are exact up to 2^53.
    double done = 0;
    double total = 0;       // 0: not known
    const char* stage = ""; // what the work does now ("train", "encode", "verify"); a string literal

    double fraction() const noexcept { return total > 0 ? done / total : 0.0; }
};

// Never called concurrently, but maybe from a worker thread (evaluation calls it from its tasks,
// one at a time); may be empty. Implementations must be quick. Stopping early is the
// CancelToken's job, not the callback's.
using ProgressFn = std::function<void(const ProgressStep& step)>;

// Calls `progress` when it is set.
inline void reportProgress(const ProgressFn& progress, double done, double total, const char* stage = "")
{
    if (progress)
        progress(ProgressStep{done, total, stage});
}

} // namespace novaq
