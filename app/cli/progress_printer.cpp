#include "progress_printer.h"

#include "terminal.h"

#include "novaq/pipeline/report.h"
#include "novaq/tensor/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace novaq::cli {

namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
} // namespace

ProgressPrinter::ProgressPrinter(std::FILE* stream, std::string verb, PlainLines plain, const CancelToken* cancel)
    : m_stream(stream), m_verb(std::move(verb)), m_plain(plain), m_cancel(cancel),
      m_terminal(isatty(fileno(stream)) == 1), m_start(Clock::now()), m_lastDraw()
{}

ProgressPrinter::~ProgressPrinter() { clear(); }

void ProgressPrinter::clear()
{
    if (m_lineShown) {
        std::fputs("\r\033[K", m_stream);
        std::fflush(m_stream);
        m_lineShown = false;
    }
}

void ProgressPrinter::onEvent(const ProgressEvent& event)
{
    using Kind = ProgressEvent::Kind;
    m_count = event.tensorCount;
    m_overallFraction = event.overallFraction;
    switch (event.kind) {
    case Kind::JobStarted:
        m_start = Clock::now();
        m_done = 0;
        break;
    case Kind::TensorStarted:
        m_tensor = event.tensorName;
        m_stage = event.stage;
        m_tensorFraction = 0;
        break;
    case Kind::TensorProgress:
        m_tensor = event.tensorName;
        m_stage = event.stage;
        m_tensorFraction = event.tensorFraction;
        break;
    case Kind::TensorFinished:
        ++m_done;
        m_tensorFraction = 1;
        if (!m_terminal)
            printPlain(event);
        break;
    case Kind::JobFinished:
        clear();
        return;
    }
    if (!m_terminal)
        return;
    const Clock::time_point now = Clock::now();
    if (now - m_lastDraw < kRedrawInterval)
        return;
    m_lastDraw = now;
    draw();
}

void ProgressPrinter::draw()
{
    const double fraction = std::clamp(m_overallFraction, 0.0, 1.0);
    std::string line = textBar(fraction);
    line.append(std::to_string(m_done)).append("/").append(std::to_string(m_count)).append(" tensors  ");
    line.append(printable(m_tensor));
    if (!m_stage.empty()) {
        const long percent = std::lround(100.0 * std::clamp(m_tensorFraction, 0.0, 1.0));
        line.append("  ").append(m_stage).append(" ").append(std::to_string(percent)).append("%");
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - m_start).count();
    if (fraction > 0.01 && elapsed > 1.0)
        line.append("  ETA ").append(clockText(elapsed * (1.0 - fraction) / fraction));
    if (m_cancel && m_cancel->cancelled())
        line += "  cancelling...";
    const size_t columns = terminalColumns(m_stream);
    if (line.size() >= columns)
        line.resize(columns - 1);
    std::fputs("\r", m_stream);
    std::fputs(line.c_str(), m_stream);
    std::fputs("\033[K", m_stream);
    std::fflush(m_stream);
    m_lineShown = true;
}

void ProgressPrinter::printPlain(const ProgressEvent& event)
{
    if (m_plain == PlainLines::None)
        return;
    std::string line = "[";
    line.append(std::to_string(m_done)).append("/").append(std::to_string(m_count)).append("] ");
    // A tensor kept as it was (norms, small tensors) is not "compressed": say so.
    const bool kept = event.result && !event.result->quantized && m_verb == "compressed";
    line.append(kept ? "kept" : m_verb).append(" ").append(printable(event.tensorName));
    if (const TensorResult* r = event.result) {
        char figures[160];
        std::snprintf(figures, sizeof figures, "  rel.err %.4g  %.2f bits  %.2fs", r->relError, r->effectiveBits,
                      r->seconds);
        line.append("  ").append(shapeToString(r->shape)).append("  ").append(printable(r->storedAs)).append("  ");
        line.append(humanBytes(r->bytesIn)).append(" -> ").append(humanBytes(r->bytesOut)).append(figures);
    }
    line.append("\n");
    std::fputs(line.c_str(), m_stream);
    std::fflush(m_stream);
}

} // namespace novaq::cli
