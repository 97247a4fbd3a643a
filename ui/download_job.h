#pragma once
// A download on a worker thread: runs an engine source call (Hugging Face, Ollama, URL) with
// a DownloadSink and a CancelToken, and turns its progress into Qt signals on the GUI thread,
// throttled to about 20 a second (every stage change still arrives). It ends with one of
// finished (the path to open), failed (the engine's message) or cancelled.

#include "ui/jobs.h" // Q_DECLARE_METATYPE(novaq::ErrorKind)

#include "novaq/io/error.h"
#include "novaq/net/downloader.h"
#include "novaq/pipeline/job.h"

#include <QObject>
#include <QString>

#include <functional>
#include <memory>
#include <thread>

namespace novaq::ui {

// One throttled download update, as the engine reported it.
struct DownloadStatus {
    QString file;
    quint64 bytesDone = 0;
    qint64 bytesTotal = -1; // < 0 while unknown
    double bytesPerSecond = 0;
    double etaSeconds = -1; // < 0 while unknown
    QString note;           // why a retry happens
    bool verifying = false;
};

class DownloadJob : public QObject {
    Q_OBJECT
public:
    // The work: download with `sink` and `cancel`, return the path to open.
    using Work = std::function<QString(net::DownloadSink* sink, const CancelToken* cancel)>;

    explicit DownloadJob(QObject* parent = nullptr);
    ~DownloadJob() override; // cancels and waits for the worker

    // Starts a download; false (and nothing happens) while another one is running.
    bool start(Work work);
    bool isRunning() const noexcept { return m_running; }

    static constexpr int kProgressIntervalMs = 50; // ~20 updates a second

public Q_SLOTS:
    void cancel();

Q_SIGNALS:
    void progress(const novaq::ui::DownloadStatus& status);
    void finished(const QString& path);
    void failed(novaq::ErrorKind kind, const QString& message);
    void cancelled();

private:
    class Sink;
    void deliverEnd(QString path, bool ok, ErrorKind kind, QString message);

    std::unique_ptr<CancelToken> m_cancel;
    std::thread m_worker;
    bool m_running = false;
};

} // namespace novaq::ui

Q_DECLARE_METATYPE(novaq::ui::DownloadStatus)
