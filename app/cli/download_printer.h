#pragma once
// Download progress on stderr: on a terminal a live line (bar, bytes, speed, ETA) redrawn at
// most ~10 times a second; otherwise one plain line when a file starts, retries and ends.

#include "novaq/net/downloader.h"
#include "novaq/pipeline/job.h"

#include <cstdio>
#include <string>

namespace novaq::cli {

class DownloadPrinter : public net::DownloadSink {
public:
    DownloadPrinter(std::FILE* stream, const CancelToken* cancel);
    ~DownloadPrinter() override;
    DownloadPrinter(const DownloadPrinter&) = delete;
    DownloadPrinter& operator=(const DownloadPrinter&) = delete;

    void onDownload(const net::DownloadProgress& progress) override;
    void clear(); // erases the live line

private:
    void line(const std::string& text); // a permanent line

    std::FILE* m_stream;
    const CancelToken* m_cancel;
    bool m_terminal = false;
    bool m_lineShown = false;
    std::string m_label;
    net::DownloadProgress::Stage m_stage = net::DownloadProgress::Stage::Finished;
};

} // namespace novaq::cli
