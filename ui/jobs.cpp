#include "ui/jobs.h"

#include <QCoreApplication>
#include <QMetaObject>

#include <chrono>

namespace novaq::ui {

namespace {

using Clock = std::chrono::steady_clock;

double secondsBetween(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

} // namespace

// Runs on the worker thread: decides what is worth telling the GUI and posts it there.
class CompressJob::Sink : public ProgressSink {
public:
    explicit Sink(CompressJob* job) : m_job(job), m_start(Clock::now()) {}

    void onEvent(const ProgressEvent& event) override
    {
        const auto now = Clock::now();
        const bool progressOnly =
            event.kind == ProgressEvent::Kind::TensorProgress || event.kind == ProgressEvent::Kind::TensorStarted;
        if (progressOnly && m_posted && now - m_lastPost < std::chrono::milliseconds(CompressJob::kProgressIntervalMs))
            return;
        m_posted = true;
        m_lastPost = now;
        const double elapsed = secondsBetween(m_start, now);
        std::optional<TensorResult> result;
        if (event.result)
            result = *event.result;
        ProgressEvent copy = event;
        copy.result = nullptr;
        QMetaObject::invokeMethod(
            m_job,
            [job = m_job, copy, result, elapsed] { job->deliverEvent(copy, result ? &*result : nullptr, elapsed); },
            Qt::QueuedConnection);
    }

private:
    CompressJob* m_job;
    Clock::time_point m_start;
    Clock::time_point m_lastPost;
    bool m_posted = false;
};

CompressJob::CompressJob(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<CompressProgress>();
    qRegisterMetaType<RunningTotals>();
    qRegisterMetaType<TensorResult>();
    qRegisterMetaType<ModelReport>();
    qRegisterMetaType<ErrorKind>();
}

CompressJob::~CompressJob()
{
    if (m_cancel)
        m_cancel->cancel();
    if (m_worker.joinable())
        m_worker.join();
}

bool CompressJob::start(const CompressOptions& options)
{
    if (m_running)
        return false;
    if (m_worker.joinable())
        m_worker.join();
    m_options = options;
    m_totals = {};
    m_cancel = std::make_unique<CancelToken>();
    m_running = true;
    const CancelToken* token = m_cancel.get();
    m_worker = std::thread([this, options, token] {
        Sink sink(this);
        std::optional<ModelReport> report;
        std::optional<Error> error;
        QString unexpected;
        try {
            report = compressModel(options, &sink, token);
        } catch (const Error& e) {
            error = e;
        } catch (const std::exception& e) {
            unexpected = QString::fromStdString(e.what());
        }
        QMetaObject::invokeMethod(
            this,
            [this, report = std::move(report), error = std::move(error), unexpected]() mutable {
                deliverEnd(std::move(report), std::move(error), unexpected);
            },
            Qt::QueuedConnection);
    });
    return true;
}

void CompressJob::cancel()
{
    if (m_running && m_cancel)
        m_cancel->cancel();
}

void CompressJob::deliverEvent(const ProgressEvent& event, const TensorResult* result, double elapsed)
{
    if (!m_running)
        return;
    if (event.kind == ProgressEvent::Kind::JobStarted) {
        Q_EMIT started(int(event.tensorCount));
        return;
    }
    if (event.kind == ProgressEvent::Kind::TensorFinished && result) {
        m_totals.add(*result);
        Q_EMIT tensorFinished(int(event.tensorIndex), *result, m_totals);
    }
    CompressProgress p;
    p.tensorIndex = int(event.tensorIndex);
    p.tensorCount = int(event.tensorCount);
    p.tensorName = QString::fromStdString(event.tensorName);
    p.stage = QString::fromStdString(event.stage);
    p.tensorFraction = event.tensorFraction;
    p.overallFraction = event.overallFraction;
    p.elapsedSeconds = elapsed;
    // The engine's own fraction (by parameters done) over the time so far.
    p.remainingSeconds = estimatedSecondsLeft(elapsed, event.overallFraction);
    Q_EMIT progress(p);
}

void CompressJob::deliverEnd(std::optional<ModelReport> report, std::optional<Error> error, QString unexpected)
{
    if (m_worker.joinable())
        m_worker.join();
    m_running = false;
    if (report) {
        Q_EMIT finished(*report);
    } else if (error && error->kind() == ErrorKind::Cancelled) {
        Q_EMIT cancelled();
    } else if (error) {
        Q_EMIT failed(error->kind(), QString::fromStdString(error->what()));
    } else {
        Q_EMIT failed(ErrorKind::Io, tr("The compression stopped unexpectedly: %1").arg(unexpected));
    }
}

} // namespace novaq::ui
