// `novaq`: the command line. It parses, calls the engine, and prints; nothing else.

#include "cli_help.h"
#include "cli_options.h"
#include "commands.h"
#include "net_helper.h"
#include "terminal.h"

#include "novaq/io/error.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/job.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <new>
#include <string>
#include <vector>

namespace {

using namespace novaq;
using namespace novaq::cli;

CancelToken g_cancel;
// The signal that asked us to stop (0: none): the exit code is 128 + its number, as a shell
// reports a process killed by it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
volatile std::sig_atomic_t g_stopSignal = 0;

static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free atomic store");

// Async-signal-safe: a store into a sig_atomic_t and a relaxed store into a lock-free atomic,
// nothing else. The job sees the token at its next check, deletes its temporary file and
// throws Error(Cancelled).
extern "C" void onStopSignal(int signal)
{
    if (g_stopSignal == 0)
        g_stopSignal = signal;
    g_cancel.cancel();
    // A cluster run: the launcher follows SIGTERM with SIGKILL, maybe before rank 0 gets to
    // its cleanup; unlink() is async-signal-safe (cluster.h). Nothing is registered otherwise.
    removeScratchFile();
}

// Ctrl-C (SIGINT), SIGTERM (what `kill`, `timeout`, systemd and container runtimes send) and
// SIGHUP (the terminal went away) all cancel the job the same way, so that no hidden
// `.OUT.partial-PID` file is left behind.
void installStopHandlers()
{
    struct sigaction action {};
    action.sa_handler = onStopSignal;
    sigemptyset(&action.sa_mask);
    // A second signal gets the default action (terminate) in case a job does not respond.
    action.sa_flags = SA_RESETHAND;
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
        // A signal ignored when we started stays ignored: `nohup` ignores SIGHUP, a shell
        // ignores SIGINT for a background job (`novaq local &` in a script).
        struct sigaction previous {};
        if (sigaction(signal, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN)
            continue;
        sigaction(signal, &action, nullptr);
    }
}

int cancelledExitCode()
{
    const int signal = g_stopSignal;
    return signal > 0 ? 128 + signal : exitCodeFor(ErrorKind::Cancelled);
}

const char* stopSignalName()
{
    switch (g_stopSignal) {
    case SIGTERM:
        return " by SIGTERM";
    case SIGHUP:
        return " by SIGHUP";
    default:
        return "";
    }
}

std::filesystem::path executablePath(const char* argv0)
{
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec)
        return self;
    return std::filesystem::absolute(argv0 ? argv0 : "novaq", ec);
}

std::vector<std::string> commandNames()
{
    std::vector<std::string> names;
    for (const Command& c : commandTable())
        names.push_back(c.name);
    return names;
}

std::string commandList()
{
    std::string list;
    for (const std::string& n : commandNames())
        list += (list.empty() ? "" : ", ") + n;
    return list;
}

Error unknownCommand(const std::string& word)
{
    if (word.starts_with("-"))
        return Error(ErrorKind::InvalidArgument,
                     "unknown option '" + word + "'; options follow a command, run `novaq --help` to see them");
    const std::string close = suggest(word, commandNames());
    return Error(ErrorKind::InvalidArgument, "unknown command '" + word + "'" +
                                                 (close.empty() ? "" : " (did you mean " + close + "?)") +
                                                 "; commands: " + commandList());
}

int run(int argc, char** argv, std::string& prefix)
{
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << generalHelp();
        std::cerr << "\nnovaq: no command given; run `novaq local` to compress the demo model\n";
        return exitCodeFor(ErrorKind::InvalidArgument);
    }
    const std::string& first = args.front();
    if (first == "--help" || first == "-h") {
        std::cout << generalHelp();
        return kExitSuccess;
    }
    if (first == "--version" || first == "-V") {
        std::cout << versionText();
        return kExitSuccess;
    }
    if (first == "help") {
        if (args.size() == 1) {
            std::cout << generalHelp();
            return kExitSuccess;
        }
        const Command* command = findCommand(args[1]);
        if (!command)
            throw unknownCommand(args[1]);
        std::cout << commandHelp(*command);
        return kExitSuccess;
    }

    const Command* command = findCommand(first);
    if (!command)
        throw unknownCommand(first);
    prefix = "novaq " + command->name + ": ";
    if (cluster().rank() > 0)
        prefix = "novaq " + command->name + " (" + rankLabel() + "): ";
    if (!cluster().single() && command->name != "local" && command->name != "hf" && command->name != "ollama" &&
        command->name != "url")
        throw Error(ErrorKind::Unsupported, "only local, hf, ollama and url run across MPI ranks; run `novaq " +
                                                command->name + "` as one process, without mpirun or srun");

    const ParsedArgs parsed = parseArgs({args.begin() + 1, args.end()}, command->options);
    if (parsed.has("--help")) {
        std::cout << commandHelp(*command);
        return kExitSuccess;
    }
    installStopHandlers();
    const Context context{executablePath(argv[0]), &g_cancel, argv};
    return command->run(context, parsed);
}

int runAndReport(int argc, char** argv)
{
    std::string prefix = "novaq: ";
    try {
        return run(argc, argv, prefix);
    } catch (const Error& e) {
        std::cout.flush();
        if (e.kind() == ErrorKind::Cancelled) {
            std::cerr << prefix << "cancelled" << stopSignalName() << "; no output file was written\n";
            return cancelledExitCode();
        }
        if (e.kind() == ErrorKind::Internal) {
            std::cerr << prefix << "internal error: " << printable(e.what()) << "; please report it\n";
            return kExitInternalError;
        }
        // Every rank parses the same arguments: a usage error is told once, by rank 0.
        if (cluster().rank() == 0 || e.kind() != ErrorKind::InvalidArgument)
            std::cerr << prefix << printable(e.what()) << '\n';
        return exitCodeFor(e.kind());
    } catch (const std::bad_alloc&) {
        std::cout.flush();
        std::cerr << prefix << "out of memory; try fewer --threads or a machine with more memory\n";
        return kExitInternalError;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << prefix << "internal error: " << printable(e.what()) << "; please report it\n";
        return kExitInternalError;
    }
}

} // namespace

int main(int argc, char** argv)
{
    const auto env = [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
    if (const std::string problem = launchWithoutMpiProblem(env, builtWithMpi()); !problem.empty()) {
        std::cerr << "novaq: " << problem << '\n';
        return exitCodeFor(ErrorKind::Unsupported);
    }
    try {
#ifdef NOVAQ_CLI_OFFLINE
        // A rank an MPI launcher started: Open MPI is linked by novaq-net only (net_helper.h).
        if (builtWithMpi() && launcherRanks(env) > 1)
            execNetHelper(executablePath(argv[0]), argv);
#endif
        joinCluster(&argc, &argv);
    } catch (const Error& e) {
        std::cerr << "novaq: " << printable(e.what()) << '\n';
        return exitCodeFor(e.kind());
    }
    const int code = runAndReport(argc, argv);
    // A failed rank ends every rank (no rank waits forever for it), and rank 0 has removed
    // its temporary file on the way out: no output file is left.
    if (code != kExitSuccess && !cluster().single()) {
        std::cerr.flush();
        cluster().abort(code);
    }
    leaveCluster();
    return code;
}
