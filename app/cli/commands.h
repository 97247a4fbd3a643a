#pragma once
// The table of `novaq` commands. main() dispatches through it and `--help` is generated
// from it. Rows are written with designated initializers (.name = ..., .run = ...).

#include "cli_options.h"

#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"
#include "novaq/runtime/quantized_linear.h"
#include "novaq/runtime/session.h"

#include <tbb/global_control.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace novaq::cli {

inline constexpr const char* kDefaultOutput = "novaq_compressed.bin"; // as in the original NOVAQ README

struct Context {
    std::filesystem::path executable; // this program, resolved (/proc/self/exe)
    const CancelToken* cancel = nullptr;
    char** argv = nullptr; // the command line as given (null-terminated), for handing it to novaq-net
};

struct Command {
    // Every member has a default (GCC's -Wmissing-field-initializers then accepts rows that
    // leave one out).
    std::string name{};
    std::string arguments{}; // "[PATH]", "FILE"
    std::string summary{};   // one line for the command list
    std::string details{};   // a paragraph for `novaq help CMD`
    std::vector<OptionSpec> options{};
    std::vector<std::string> examples{};
    bool showsBitsTable = false;
    // Returns the exit code; throws Error for everything that went wrong.
    std::function<int(const Context&, const ParsedArgs&)> run{};
};

const std::vector<Command>& commandTable();
const Command* findCommand(std::string_view name);

// Runners (commands.cpp).
int runLocal(const Context& context, const ParsedArgs& args);
int runInspect(const Context& context, const ParsedArgs& args);
int runValidate(const Context& context, const ParsedArgs& args);
int runStats(const Context& context, const ParsedArgs& args);
int runExport(const Context& context, const ParsedArgs& args);

// Error(Io) naming `path` when nothing is there (commands.cpp).
void requireExisting(const std::filesystem::path& path);
// --threads N as a TBB limit for the command's lifetime (none for 0 or no option).
std::optional<tbb::global_control> threadLimit(const ParsedArgs& args);
// --tables int8|f32 (default: the fastest this CPU has), and its one help line.
Tables tablesOption(const ParsedArgs& args);
// How a command that runs a model loads it: --decode and --tables (runtime_commands.cpp).
LoadOptions loadOptionsFrom(const ParsedArgs& args);
// The model at `path` loaded to run, with --tokenizer, --decode and --tables (chat, serve).
RunnableModel openToRun(const std::filesystem::path& path, const ParsedArgs& args);
extern const OptionSpec kTablesOption;
// Options several commands share, declared once (runtime_commands.cpp).
extern const OptionSpec kThreadsOption;   // --threads N, 0 = all cores
extern const OptionSpec kDecodeOption;    // --decode
extern const OptionSpec kTokenizerOption; // --tokenizer FILE; eval and generate add the --against fallback
const OptionSpec& chatTemplateOption();   // --chat-template NAME, naming the built-in templates
std::string builtinTemplateNames();       // "chatml, gemma, ..."
// The path given with `option`, which must exist (requireExisting), or nullopt.
std::optional<std::filesystem::path> optionalPath(const ParsedArgs& args, const char* option);
// The one MODEL argument of a command; `what` names the missing one ("the MODEL to evaluate").
std::filesystem::path oneModelArgument(const ParsedArgs& args, const std::string& what);

// Copies whose texts from files (names, formats, settings) went through printable()
// (terminal.h), for the text formatters of the core, which print them as given.
ModelReport printableReport(ModelReport report);
ModelInspection printableInspection(ModelInspection inspection);

// Shared by `local` and the download commands (commands.cpp).
void parseCodecOptions(const ParsedArgs& args, CompressOptions& options); // --bits, --subspaces, --d/--b1/--b2
std::vector<OptionSpec> compressOptionSpecs();                            // --bits ... --b2, without --help
OptionSpec compressOptionSpec(std::string_view name);        // one row of compressOptionSpecs(), for `inspect`
CompressOptions compressOptionsFrom(const ParsedArgs& args); // everything but input and label
void requireOutputFolderOf(const CompressOptions& options);  // fails early, before a download
// A cluster run of a download command: rank 0 downloaded (into a folder every node shares);
// the others take its input path and label.
void shareSourceFromRankZero(CompressOptions& options, const CancelToken* cancel);
// Compresses options.input as `novaq local` does, with progress on stderr and the report
// (or --json) on stdout.
int compressAndReport(const Context& context, const ParsedArgs& args, const CompressOptions& options);

// `search`, `hf`, `ollama`, `url` (source_commands.cpp).
void addSourceCommands(std::vector<Command>& commands);
// `eval`, `generate` (runtime_commands.cpp).
void addRuntimeCommands(std::vector<Command>& commands);
// `tokenize` (text_commands.cpp).
void addTextCommands(std::vector<Command>& commands);
// `prompt` (chat_commands.cpp).
void addChatCommands(std::vector<Command>& commands);
// `chat` (chat_repl.cpp) and `serve` (serve_commands.cpp).
void addChatReplCommand(std::vector<Command>& commands);
void addServeCommands(std::vector<Command>& commands);
// The runners of the commands that need the network stack (libcurl, OpenSSL, cpp-httplib):
// source_runners.cpp and serve_runner.cpp in novaq-net; in `novaq`, offline_runners.cpp hands
// the command line to novaq-net (net_helper.h).
int runSearch(const Context& context, const ParsedArgs& args);
int runHf(const Context& context, const ParsedArgs& args);
int runOllama(const Context& context, const ParsedArgs& args);
int runUrl(const Context& context, const ParsedArgs& args);
int runServe(const Context& context, const ParsedArgs& args);

} // namespace novaq::cli
