#pragma once
// Progress of a job on stderr: on a terminal a live single line redrawn at most ~10 times a
// second; otherwise (a pipe, a log file, CI) one plain line per finished tensor.

#include "novaq/pipeline/job.h"

#include <chrono>
#include <cstdio>
#include <string>

namespace novaq::cli {

class ProgressPrinter : public ProgressSink {
public:
    enum class PlainLines { PerTensor, None };

    // `verb` names the work in plain lines ("compressed", "checked", "exported").
    ProgressPrinter(std::FILE* stream, std::string verb, PlainLines plain, const CancelToken* cancel);
    ~ProgressPrinter() override;
    ProgressPrinter(const ProgressPrinter&) = delete;
    ProgressPrinter& operator=(const ProgressPrinter&) = delete;

    void onEvent(const ProgressEvent& event) override;

    // Erases the live line (if any) so the next output starts on a clean line.
    void clear();

    bool isTerminal() const noexcept { return m_terminal; }

private:
    using Clock = std::chrono::steady_clock;

    void draw();
    void printPlain(const ProgressEvent& event);

    std::FILE* m_stream;
    std::string m_verb;
    PlainLines m_plain;
    const CancelToken* m_cancel;
    bool m_terminal = false;
    bool m_lineShown = false;
    Clock::time_point m_start;
    Clock::time_point m_lastDraw;
    size_t m_done = 0;
    size_t m_count = 0;
    std::string m_tensor;
    std::string m_stage;
    double m_tensorFraction = 0;
    double m_overallFraction = 0;
};

} // namespace novaq::cli
