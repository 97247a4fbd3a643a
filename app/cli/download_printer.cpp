#include "download_printer.h"

#include "terminal.h"

#include "novaq/io/units.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace novaq::cli {

DownloadPrinter::DownloadPrinter(std::FILE* stream, const CancelToken* cancel)
    : m_stream(stream), m_cancel(cancel), m_terminal(isatty(fileno(stream)) == 1)
{}

DownloadPrinter::~DownloadPrinter() { clear(); }

void DownloadPrinter::clear()
{
    if (m_lineShown) {
        std::fputs("\r\033[K", m_stream);
        std::fflush(m_stream);
        m_lineShown = false;
    }
}

void DownloadPrinter::line(const std::string& text)
{
    clear();
    std::fputs((printable(text) + "\n").c_str(), m_stream);
    std::fflush(m_stream);
}

void DownloadPrinter::onDownload(const net::DownloadProgress& p)
{
    using Stage = net::DownloadProgress::Stage;
    const std::string total = p.bytesTotal ? humanBytes(*p.bytesTotal) : std::string("size unknown");
    const bool newFile = p.label != m_label;
    const bool stageChanged = newFile || p.stage != m_stage;
    m_label = p.label;
    m_stage = p.stage;
    switch (p.stage) {
    case Stage::Connecting:
        if (stageChanged)
            line("Downloading " + p.label + " (" + total + ")");
        return;
    case Stage::Retrying:
        line("  " + p.label + ": " + p.note);
        return;
    case Stage::Finished:
        line("  " + p.label + ": done, " + humanBytes(p.bytesDone));
        return;
    case Stage::Verifying:
        if (stageChanged && !m_terminal)
            line("  " + p.label + ": verifying SHA-256");
        break;
    case Stage::Downloading:
        break;
    }
    if (!m_terminal)
        return;
    std::string text;
    if (p.bytesTotal && *p.bytesTotal > 0) {
        const double fraction = std::clamp(double(p.bytesDone) / double(*p.bytesTotal), 0.0, 1.0);
        text = textBar(fraction);
    }
    text += printable(p.label) + "  " + (p.stage == Stage::Verifying ? "verifying " : "") + humanBytes(p.bytesDone) +
            " / " + total;
    if (p.bytesPerSecond > 0)
        text += "  " + humanBytes(uint64_t(p.bytesPerSecond)) + "/s";
    if (p.etaSeconds)
        text += "  ETA " + clockText(*p.etaSeconds);
    if (m_cancel && m_cancel->cancelled())
        text += "  cancelling...";
    const size_t columns = terminalColumns(m_stream);
    if (text.size() >= columns)
        text.resize(columns - 1);
    std::fputs(("\r" + text + "\033[K").c_str(), m_stream);
    std::fflush(m_stream);
    m_lineShown = true;
}

} // namespace novaq::cli
