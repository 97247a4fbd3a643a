#pragma once
// Engine jobs on worker threads. CompressJob runs compressModel and turns its ProgressSink
// events into Qt signals on the GUI thread: progress throttled to about 20 a second, every
// finished tensor delivered, and one of finished / failed / cancelled at the end. Nothing
// crosses the thread boundary as an exception.

#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/report.h"

#include <QFutureWatcher>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QtConcurrent/QtConcurrentRun>

#include <functional>
#include <memory>
#include <optional>
#include <thread>

namespace novaq::ui {

// One throttled progress update.
struct CompressProgress {
    int tensorIndex = 0; // 0-based
    int tensorCount = 0;
    QString tensorName;
    QString stage;
    double tensorFraction = 0;
    double overallFraction = 0;
    double elapsedSeconds = 0;
    double remainingSeconds = -1; // the engine's estimatedSecondsLeft; < 0 while unknown
};

class CompressJob : public QObject {
    Q_OBJECT
public:
    explicit CompressJob(QObject* parent = nullptr);
    ~CompressJob() override; // cancels and waits for the worker

    // Starts a run; false (and nothing happens) while another one is running.
    bool start(const CompressOptions& options);
    bool isRunning() const noexcept { return m_running; }
    const CompressOptions& options() const noexcept { return m_options; }
    const RunningTotals& totals() const noexcept { return m_totals; }

    static constexpr int kProgressIntervalMs = 50; // ~20 updates a second

public Q_SLOTS:
    void cancel(); // the engine stops at its next check and leaves no output file

Q_SIGNALS:
    void started(int tensorCount);
    void progress(const novaq::ui::CompressProgress& progress);
    // `totals`: the engine's RunningTotals over the tensors finished so far, this one included.
    void tensorFinished(int index, const novaq::TensorResult& result, const novaq::RunningTotals& totals);
    void finished(const novaq::ModelReport& report);
    void failed(novaq::ErrorKind kind, const QString& message);
    void cancelled();

private:
    class Sink;
    void deliverEvent(const ProgressEvent& event, const TensorResult* result, double elapsed);
    void deliverEnd(std::optional<ModelReport> report, std::optional<Error> error, QString unexpected);

    CompressOptions m_options;
    RunningTotals m_totals;
    std::unique_ptr<CancelToken> m_cancel;
    std::thread m_worker;
    bool m_running = false;
};

// The outcome of a background task: a value, or the engine's error in plain words.
template <typename T>
struct TaskOutcome {
    std::optional<T> value;
    ErrorKind kind = ErrorKind::Io;
    QString error;
};

// Runs `work` on Qt's thread pool and calls `done` on `context`'s thread afterwards, unless
// `context` is gone by then. Engine errors and any other exception become outcome.error.
template <typename T>
void runTask(QObject* context, std::function<T()> work, std::function<void(TaskOutcome<T>)> done)
{
    auto* watcher = new QFutureWatcher<TaskOutcome<T>>(context);
    QObject::connect(watcher, &QFutureWatcherBase::finished, context, [watcher, done = std::move(done)] {
        done(watcher->result());
        watcher->deleteLater();
    });
    watcher->setFuture(QtConcurrent::run([work = std::move(work)] {
        TaskOutcome<T> outcome;
        try {
            outcome.value = work();
        } catch (const Error& e) {
            outcome.kind = e.kind();
            outcome.error = QString::fromStdString(e.what());
        } catch (const std::exception& e) {
            outcome.error = QString::fromStdString(e.what());
        }
        return outcome;
    }));
}

} // namespace novaq::ui

Q_DECLARE_METATYPE(novaq::ui::CompressProgress)
Q_DECLARE_METATYPE(novaq::RunningTotals)
Q_DECLARE_METATYPE(novaq::TensorResult)
Q_DECLARE_METATYPE(novaq::ModelReport)
Q_DECLARE_METATYPE(novaq::ErrorKind)
