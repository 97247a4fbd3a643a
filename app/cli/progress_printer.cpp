#include "progress_printer.h"

#include "novaq/pipeline/report.h"
#include "novaq/tensor/tensor.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace novaq::cli {

namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr size_t kBarWidth = 20;
constexpr size_t kDefaultColumns = 100;

size_t terminalColumns(std::FILE* stream)
{
    winsize size{};
    if (ioctl(fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return kDefaultColumns;
}

std::string clockText(double seconds)
{
    const long total = std::lround(std::max(0.0, seconds));
    char buf[32];
    if (total >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60, total % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", total / 60, total % 60);
    return buf;
}

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
    const auto filled = static_cast<size_t>(fraction * double(kBarWidth));
    std::string line = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] ";
    line += std::to_string(m_done) + "/" + std::to_string(m_count) + " tensors  " + m_tensor;
    if (!m_stage.empty())
        line +=
            "  " + m_stage + " " + std::to_string(std::lround(100.0 * std::clamp(m_tensorFraction, 0.0, 1.0))) + "%";
    const double elapsed = std::chrono::duration<double>(Clock::now() - m_start).count();
    if (fraction > 0.01 && elapsed > 1.0)
        line += "  ETA " + clockText(elapsed * (1.0 - fraction) / fraction);
    if (m_cancel && m_cancel->cancelled())
        line += "  cancelling...";
    const size_t columns = terminalColumns(m_stream);
    if (line.size() >= columns)
        line.resize(columns - 1);
    std::fputs(("\r" + line + "\033[K").c_str(), m_stream);
    std::fflush(m_stream);
    m_lineShown = true;
}

void ProgressPrinter::printPlain(const ProgressEvent& event)
{
    if (m_plain == PlainLines::None)
        return;
    std::string line =
        "[" + std::to_string(m_done) + "/" + std::to_string(m_count) + "] " + m_verb + " " + event.tensorName;
    if (const TensorResult* r = event.result) {
        char figures[160];
        std::snprintf(figures, sizeof figures, "  rel.err %.4g  %.2f bits  %.2fs", r->relError, r->effectiveBits,
                      r->seconds);
        line += "  " + shapeToString(r->shape) + "  " + r->storedAs + "  " + humanBytes(r->bytesIn) + " -> " +
                humanBytes(r->bytesOut) + figures;
    }
    std::fputs((line + "\n").c_str(), m_stream);
    std::fflush(m_stream);
}

} // namespace novaq::cli
