#include "cli_help.h"

#include "novaq/codec/codec_config.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace novaq::cli {

namespace {

std::string padRight(const std::string& text, size_t width)
{
    return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

std::string optionsText(const std::vector<OptionSpec>& options)
{
    size_t width = 0;
    for (const OptionSpec& o : options)
        width = std::max(width, o.name.size() + (o.takesValue() ? o.valueName.size() + 1 : 0));
    std::ostringstream out;
    for (const OptionSpec& o : options) {
        const std::string left = o.name + (o.takesValue() ? " " + o.valueName : "");
        out << "  " << padRight(left, width + 2) << o.help;
        if (!o.defaultValue.empty())
            out << " (default: " << o.defaultValue << ")";
        out << '\n';
    }
    return out.str();
}

} // namespace

const std::vector<ExitCodeRow>& exitCodeTable()
{
    static const std::vector<ExitCodeRow> kTable = {
        {std::nullopt, kExitSuccess, "success"},
        {ErrorKind::Internal, 0, "internal error (a bug: please report it)"},
        {ErrorKind::InvalidArgument, 0, "bad usage: unknown command or option, bad option value"},
        {ErrorKind::InvalidInput, 0, "unreadable or malformed input file"},
        {ErrorKind::Unsupported, 0, "unsupported input, or a command not available in this build"},
        {ErrorKind::Io, 0, "I/O error: missing file or folder, permissions, disk full"},
        {ErrorKind::Corrupt, 0, "corrupt .novaq file, or validation failed"},
        {ErrorKind::Network, 0, "network error (a download failed)"},
        {std::nullopt, 129, "stopped by SIGHUP (the terminal closed); no output file is left behind"},
        {ErrorKind::Cancelled, 0, "cancelled (Ctrl-C); no output file is left behind"},
        {std::nullopt, 143,
         "stopped by SIGTERM (kill, timeout, systemd, a container stop); no output file is left behind"},
    };
    return kTable;
}

std::string versionText() { return std::string("novaq ") + NOVAQ_VERSION + " (NOVAQ Studio)\n"; }

std::string bitsTableText()
{
    std::ostringstream out;
    out << "  bits  d   b1+b2  label\n";
    for (const BitsPreset& p : bitsPresets()) {
        char row[128];
        std::snprintf(row, sizeof row, "  %-5s %-3d %-6s %s\n", formatNumber(p.bits).c_str(), p.d,
                      (std::to_string(p.b1) + "+" + std::to_string(p.b2)).c_str(), std::string(p.label).c_str());
        out << row;
    }
    out << "  Code bits per weight are (b1 + b2) / d. Effective bits, as reported, also count the\n"
           "  codebooks and the per-row and per-column scales: a little higher for large matrices,\n"
           "  much higher for small ones, where the codebooks are a fixed cost.\n";
    return out.str();
}

std::string exitCodesText()
{
    std::ostringstream out;
    for (const ExitCodeRow& row : exitCodeTable()) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-4d %s\n", row.exitCode(), std::string(row.meaning).c_str());
        out << line;
    }
    return out.str();
}

std::string generalHelp()
{
    std::ostringstream out;
    out << "novaq " << NOVAQ_VERSION << " - compress large language models with NOVAQ\n\n"
        << "USAGE\n"
        << "  novaq COMMAND [ARGUMENTS] [OPTIONS]\n"
        << "  novaq help COMMAND       options and examples of one command\n"
        << "  novaq --version\n\n"
        << "COMMANDS\n";
    size_t width = 0;
    for (const Command& c : commandTable())
        width = std::max(width, c.name.size());
    for (const Command& c : commandTable())
        out << "  " << padRight(c.name, width + 2) << c.summary << '\n';
    out << "\n--bits PRESETS\n" << bitsTableText() << "\nEXIT CODES\n" << exitCodesText();
    out << "\nRun `novaq help COMMAND` for the options of a command.\n";
    return out.str();
}

std::string commandHelp(const Command& command)
{
    std::ostringstream out;
    out << "USAGE\n  novaq " << command.name << (command.arguments.empty() ? "" : " " + command.arguments);
    if (!command.options.empty())
        out << " [OPTIONS]";
    out << "\n\n" << command.summary << '\n';
    if (!command.details.empty())
        out << '\n' << command.details << '\n';
    if (!command.options.empty())
        out << "\nOPTIONS\n" << optionsText(command.options);
    if (command.showsBitsTable)
        out << "\n--bits PRESETS\n" << bitsTableText();
    if (!command.examples.empty()) {
        out << "\nEXAMPLES\n";
        for (const std::string& e : command.examples)
            out << "  " << e << '\n';
    }
    out << "\nEXIT CODES\n" << exitCodesText();
    return out.str();
}

} // namespace novaq::cli
