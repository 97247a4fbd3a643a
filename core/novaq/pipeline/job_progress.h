#pragma once
// The progress events of a job over the tensors of a model (compress, validate, export), built
// in one place: every event names the tensor count, and the overall fraction is by parameters
// done (the tensor in progress counts by its own fraction).

#include "novaq/pipeline/job.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace novaq {

class JobProgress {
public:
    // `stage`: what every event of the job says it does ("validate", "write"); compress leaves
    // it empty and names the stage of each TensorProgress event instead. A null sink: no events.
    JobProgress(ProgressSink* sink, size_t tensorCount, uint64_t totalParams, std::string stage = {});

    void jobStarted() const;
    void tensorStarted(size_t index, const std::string& name) const;
    // `fraction` (0..1) of tensor `index` and its `params` parameters, in `stage`.
    void tensorProgress(size_t index, const std::string& name, uint64_t params, double fraction,
                        const char* stage) const;
    // Counts the tensor's `params` as done, then reports it with its figures.
    void tensorFinished(size_t index, const std::string& name, uint64_t params, const TensorResult* result);
    // `tensorFraction`: validate and export report 1, compress has always reported 0.
    void jobFinished(double tensorFraction = 1.0) const;

    uint64_t doneParams() const noexcept { return m_doneParams; }

private:
    ProgressEvent event(ProgressEvent::Kind kind) const;
    void send(const ProgressEvent& e) const;

    ProgressSink* m_sink;
    size_t m_tensorCount;
    uint64_t m_totalParams;
    uint64_t m_doneParams = 0;
    std::string m_stage;
};

} // namespace novaq
