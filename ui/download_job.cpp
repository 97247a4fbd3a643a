#include "ui/download_job.h"

#include <QMetaObject>

#include <chrono>

namespace novaq::ui {

class DownloadJob::Sink : public net::DownloadSink {
public:
    explicit Sink(DownloadJob* job) : m_job(job) {}

    void onDownload(const net::DownloadProgress& p) override
    {
        const auto now = std::chrono::steady_clock::now();
        const bool stageChanged = p.stage != m_lastStage;
        if (!stageChanged && now - m_last < std::chrono::milliseconds(kProgressIntervalMs))
            return;
        m_last = now;
        m_lastStage = p.stage;
        DownloadStatus s;
        s.file = QString::fromStdString(p.label);
        s.bytesDone = p.bytesDone;
        s.bytesTotal = p.bytesTotal ? qint64(*p.bytesTotal) : -1;
        s.bytesPerSecond = p.bytesPerSecond;
        s.etaSeconds = p.etaSeconds ? *p.etaSeconds : -1;
        s.note = QString::fromStdString(p.note);
        s.verifying = p.stage == net::DownloadProgress::Stage::Verifying;
        DownloadJob* job = m_job;
        QMetaObject::invokeMethod(
            job, [job, s] { Q_EMIT job->progress(s); }, Qt::QueuedConnection);
    }

private:
    DownloadJob* m_job;
    std::chrono::steady_clock::time_point m_last{};
    net::DownloadProgress::Stage m_lastStage = net::DownloadProgress::Stage::Finished;
};

DownloadJob::DownloadJob(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<DownloadStatus>();
    qRegisterMetaType<ErrorKind>();
}

DownloadJob::~DownloadJob()
{
    if (m_cancel)
        m_cancel->cancel();
    if (m_worker.joinable())
        m_worker.join();
}

bool DownloadJob::start(Work work)
{
    if (m_running)
        return false;
    if (m_worker.joinable())
        m_worker.join();
    m_running = true;
    m_cancel = std::make_unique<CancelToken>();
    const CancelToken* cancel = m_cancel.get();
    m_worker = std::thread([this, cancel, work = std::move(work)] {
        Sink sink(this);
        QString path;
        bool ok = false;
        ErrorKind kind = ErrorKind::Io;
        QString message;
        try {
            path = work(&sink, cancel);
            ok = true;
        } catch (const Error& e) {
            kind = e.kind();
            message = QString::fromStdString(e.what());
        } catch (const std::exception& e) {
            kind = ErrorKind::Network;
            message = QString::fromStdString(e.what());
        }
        if (cancel->cancelled() && !ok)
            kind = ErrorKind::Cancelled;
        QMetaObject::invokeMethod(
            this, [this, path, ok, kind, message] { deliverEnd(path, ok, kind, message); }, Qt::QueuedConnection);
    });
    return true;
}

void DownloadJob::cancel()
{
    if (m_cancel)
        m_cancel->cancel();
}

void DownloadJob::deliverEnd(QString path, bool ok, ErrorKind kind, QString message)
{
    if (m_worker.joinable())
        m_worker.join();
    m_running = false;
    if (ok)
        Q_EMIT finished(path);
    else if (kind == ErrorKind::Cancelled)
        Q_EMIT cancelled();
    else
        Q_EMIT failed(kind, message);
}

} // namespace novaq::ui
