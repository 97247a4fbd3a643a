#include "novaq/pipeline/job_progress.h"

#include <utility>

namespace novaq {

JobProgress::JobProgress(ProgressSink* sink, size_t tensorCount, uint64_t totalParams, std::string stage)
    : m_sink(sink), m_tensorCount(tensorCount), m_totalParams(totalParams), m_stage(std::move(stage))
{}

ProgressEvent JobProgress::event(ProgressEvent::Kind kind) const
{
    ProgressEvent e;
    e.kind = kind;
    e.tensorCount = m_tensorCount;
    e.stage = m_stage;
    return e;
}

void JobProgress::send(const ProgressEvent& e) const
{
    if (m_sink)
        m_sink->onEvent(e);
}

void JobProgress::jobStarted() const { send(event(ProgressEvent::Kind::JobStarted)); }

void JobProgress::tensorStarted(size_t index, const std::string& name) const
{
    ProgressEvent e = event(ProgressEvent::Kind::TensorStarted);
    e.tensorIndex = index;
    e.tensorName = name;
    e.overallFraction = m_totalParams ? double(m_doneParams) / double(m_totalParams) : 0.0;
    send(e);
}

void JobProgress::tensorProgress(size_t index, const std::string& name, uint64_t params, double fraction,
                                 const char* stage) const
{
    ProgressEvent e = event(ProgressEvent::Kind::TensorProgress);
    e.tensorIndex = index;
    e.tensorName = name;
    e.tensorFraction = fraction;
    e.stage = stage;
    e.overallFraction =
        m_totalParams ? (double(m_doneParams) + fraction * double(params)) / double(m_totalParams) : 0.0;
    send(e);
}

void JobProgress::tensorFinished(size_t index, const std::string& name, uint64_t params, const TensorResult* result)
{
    m_doneParams += params;
    ProgressEvent e = event(ProgressEvent::Kind::TensorFinished);
    e.tensorIndex = index;
    e.tensorName = name;
    e.tensorFraction = 1.0;
    e.overallFraction = m_totalParams ? double(m_doneParams) / double(m_totalParams) : 1.0;
    e.result = result;
    send(e);
}

void JobProgress::jobFinished(double tensorFraction) const
{
    ProgressEvent e = event(ProgressEvent::Kind::JobFinished);
    e.tensorIndex = m_tensorCount;
    e.tensorFraction = tensorFraction;
    e.overallFraction = 1.0;
    send(e);
}

} // namespace novaq
