// `novaq chat`: talk to a model in the terminal, the reply streamed as it is generated.
// Reads lines from stdin (a terminal or not, so scripts and tests can drive it); Ctrl-C stops
// the reply being written, Ctrl-C twice at the prompt ends the program.

#include "cli_help.h"
#include "commands.h"
#include "terminal.h"

#include "novaq/io/error.h"
#include "novaq/runtime/generator.h"
#include "novaq/runtime/session.h"
#include "novaq/serve/server.h"
#include "novaq/text/chat_template.h"

#include <tbb/global_control.h>

#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

// Ctrl-C while a reply is written cancels that reply's token; at the prompt it counts, and the
// second one in a row ends the program. Both stores are async-signal-safe (lock-free atomics).
std::atomic<CancelToken*> g_reply{nullptr};
volatile std::sig_atomic_t g_interrupts = 0;
static_assert(std::atomic<CancelToken*>::is_always_lock_free);

extern "C" void onChatInterrupt(int)
{
    g_interrupts = g_interrupts + 1;
    if (CancelToken* reply = g_reply.load())
        reply->cancel();
}

// SIGINT only (SIGTERM and SIGHUP keep main.cpp's handler: they end the program). No
// SA_RESTART: a read at the prompt returns EINTR, so the prompt sees the Ctrl-C.
void installChatInterrupt()
{
    struct sigaction previous {};
    if (sigaction(SIGINT, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN)
        return; // a background job keeps ignoring it
    struct sigaction action {};
    action.sa_handler = onChatInterrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, nullptr);
}

// Lines from stdin with read(2), which (unlike std::getline) reports the interrupt.
class LineReader {
public:
    enum class Result { Line, End, Interrupted };
    Result next(std::string& line)
    {
        for (;;) {
            if (const size_t nl = m_buffer.find('\n'); nl != std::string::npos) {
                line = m_buffer.substr(0, nl);
                m_buffer.erase(0, nl + 1);
                if (!line.empty() && line.back() == '\r')
                    line.pop_back();
                return Result::Line;
            }
            if (m_end) {
                if (m_buffer.empty())
                    return Result::End;
                line = std::exchange(m_buffer, std::string());
                return Result::Line;
            }
            // SIGINT is blocked from the check of the count until pselect() waits with it
            // unblocked, so a Ctrl-C that comes in between is not lost.
            sigset_t blocked, previous;
            sigemptyset(&blocked);
            sigaddset(&blocked, SIGINT);
            sigprocmask(SIG_BLOCK, &blocked, &previous);
            if (g_interrupts > m_seen) {
                m_seen = g_interrupts;
                sigprocmask(SIG_SETMASK, &previous, nullptr);
                return Result::Interrupted;
            }
            fd_set readable;
            FD_ZERO(&readable);
            FD_SET(STDIN_FILENO, &readable);
            const int ready = pselect(STDIN_FILENO + 1, &readable, nullptr, nullptr, nullptr, &previous);
            sigprocmask(SIG_SETMASK, &previous, nullptr);
            if (ready < 0) {
                if (errno == EINTR)
                    continue; // the count is looked at again above
                m_end = true;
                continue;
            }
            char chunk[4096];
            const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
            if (n > 0)
                m_buffer.append(chunk, static_cast<size_t>(n));
            else if (n == 0 || errno != EINTR)
                m_end = true;
        }
    }

    // Ctrl-C presses counted so far, for the prompt to see each once; forgotten after a line.
    int interrupts() const noexcept { return m_seen; }
    void forgetInterrupts() noexcept
    {
        g_interrupts = 0;
        m_seen = 0;
    }

private:
    std::string m_buffer;
    bool m_end = false;
    int m_seen = 0;
};

std::string fixed1(double value)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", value);
    return buf;
}

std::string rate(int64_t tokens, double seconds)
{
    return seconds > 0 && tokens > 0 ? fixed1(double(tokens) / seconds) + " tokens/s" : "- tokens/s";
}

std::string trimmed(const std::string& s)
{
    const size_t a = s.find_first_not_of(" \t");
    if (a == std::string::npos)
        return {};
    return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

int runChat(const Context& context, const ParsedArgs& args)
{
    const fs::path modelPath = oneModelArgument(args, "the MODEL to chat with");
    GenerationParams params;
    SamplingParams& s = params.sampling;
    s.temperature = 0.8f;
    s.topP = 0.95f;
    s.topK = 40;
    s.seed = std::random_device{}();
    if (auto v = args.value("--temperature")) {
        s.temperature = static_cast<float>(parseNumber("--temperature", *v));
        if (!(s.temperature >= 0))
            throw Error(ErrorKind::InvalidArgument, "--temperature must be >= 0 (0 is greedy), got '" + *v + "'");
    }
    if (auto v = args.value("--top-p")) {
        s.topP = static_cast<float>(parseNumber("--top-p", *v));
        if (!(s.topP > 0 && s.topP <= 1))
            throw Error(ErrorKind::InvalidArgument, "--top-p must be greater than 0 and at most 1, got '" + *v + "'");
    }
    if (auto v = args.value("--top-k"))
        s.topK = static_cast<int>(parseInteger("--top-k", *v, 0, 1 << 30));
    if (auto v = args.value("--seed"))
        s.seed = parseUnsigned("--seed", *v);
    if (auto v = args.value("--max-tokens"))
        params.maxTokens = parseInteger("--max-tokens", *v, 0, int64_t(1) << 30);
    int64_t contextTokens = serve::kDefaultContext;
    if (auto v = args.value("--ctx"))
        contextTokens = parseInteger("--ctx", *v, 2, int64_t(1) << 24);
    const auto limit = threadLimit(args);
    const RunnableModel model = openToRun(modelPath, args);
    const Tokenizer& tokenizer = tokenizerOf(model, nullptr);
    std::string note;
    const ChatTemplate chatTemplate =
        chooseChatTemplate(*model.reader, modelPath, args.value("--chat-template"), &note);
    const PromptEncoder encoder(model.model, tokenizer);
    const std::vector<std::string> templateStops = chatTemplate.stopStrings();
    params.stop = templateStops;
    params.stopTokens = encoder.stopTokens(templateStops);
    Generator generator(model.model, tokenizer, contextTokens);

    std::vector<ChatMessage> messages;
    if (auto system = args.value("--system"); system && !system->empty())
        messages.push_back({"system", *system});
    const size_t kept = messages.size(); // the system message stays through /reset and trimming

    const bool interactive = isatty(STDIN_FILENO) != 0;
    std::cerr << "novaq chat: " << printable(modelPath.string()) << ", " << printable(note) << ", context "
              << generator.contextTokens() << " tokens\n"
              << "novaq chat: /reset starts over, /exit quits; Ctrl-C stops a reply\n";
    installChatInterrupt();
    LineReader reader;
    std::string line;
    for (;;) {
        if (interactive)
            std::cout << "> " << std::flush;
        const LineReader::Result got = reader.next(line);
        if (context.cancel->cancelled())
            throw Error(ErrorKind::Cancelled, "chat ended by a signal");
        if (got == LineReader::Result::End) {
            if (interactive)
                std::cout << '\n';
            break;
        }
        if (got == LineReader::Result::Interrupted) {
            if (reader.interrupts() >= 2)
                return 128 + SIGINT;
            std::cerr << "\n(Ctrl-C again to quit, or /exit)\n";
            continue;
        }
        reader.forgetInterrupts();
        const std::string text = trimmed(line);
        if (text.empty())
            continue;
        if (text == "/exit" || text == "/quit")
            break;
        if (text == "/reset") {
            messages.resize(kept);
            generator.reset();
            std::cerr << "(conversation cleared)\n";
            continue;
        }
        if (text.starts_with("/")) {
            std::cerr << "unknown command " << printable(text) << "; /reset starts over, /exit quits\n";
            continue;
        }
        messages.push_back({"user", line});
        // The prompt; the oldest turns go when it does not leave room for a reply.
        std::vector<int32_t> ids;
        size_t dropped = 0;
        std::string failed;
        for (;;) {
            try {
                ids = encoder.encodeChat(chatTemplate.render(messages, true), chatTemplate);
            } catch (const Error& e) { // the template refuses this conversation: say so, keep going
                failed = e.what();
                break;
            }
            if (static_cast<int64_t>(ids.size()) < generator.contextTokens() - 16 || messages.size() <= kept + 1)
                break;
            messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(kept));
            ++dropped;
        }
        if (!failed.empty()) {
            std::cerr << printable(failed) << '\n';
            messages.pop_back();
            continue;
        }
        if (dropped > 0)
            std::cerr << "(context full: left out the " << dropped << " oldest messages)\n";
        if (static_cast<int64_t>(ids.size()) >= generator.contextTokens()) {
            std::cerr << "that message has " << ids.size() << " tokens and the context holds "
                      << generator.contextTokens() << "; write a shorter one (or raise --ctx)\n";
            messages.pop_back();
            continue;
        }
        CancelToken replyCancel;
        g_reply.store(&replyCancel);
        const GenerationResult r = generator.generate(
            ids, params,
            [&](std::string_view piece) {
                std::cout << printable(piece, true) << std::flush;
                return !context.cancel->cancelled();
            },
            &replyCancel);
        g_reply.store(nullptr);
        std::cout << std::endl;
        if (context.cancel->cancelled())
            throw Error(ErrorKind::Cancelled, "chat ended by a signal");
        if (r.finish == FinishReason::Cancelled) {
            std::cerr << "[stopped]\n";
            reader.forgetInterrupts();
        }
        messages.push_back({"assistant", r.text});
        std::cerr << "[prompt " << r.promptTokens << " tokens (" << r.promptTokens - r.reusedTokens << " new), "
                  << rate(r.promptTokens - r.reusedTokens, r.promptSeconds) << "; reply " << r.completionTokens
                  << " tokens, " << rate(r.completionTokens, r.generateSeconds) << "; " << finishReasonName(r.finish)
                  << "]\n";
    }
    return kExitSuccess;
}

} // namespace

void addChatReplCommand(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "chat",
        .arguments = "MODEL",
        .summary = "Chat with a model in the terminal, the reply streamed as it is written",
        .details = "Each line you type is a message; the model's reply is written as it is generated, then\n"
                   "the speed (prompt and reply tokens per second) on stderr. The conversation is rendered\n"
                   "with the model's chat template (or --chat-template); a turn only runs its new tokens, the\n"
                   "earlier ones stay in the KV cache. /reset starts over (keeping --system), /exit or the\n"
                   "end of input quits. Ctrl-C stops the reply being written; at the prompt, Ctrl-C twice\n"
                   "quits. Reads stdin whether or not it is a terminal, so it can be scripted.",
        .options =
            {
                {"--system", "TEXT", "a system message to start the conversation with", ""},
                {"--temperature", "T", "sampling temperature; 0 picks the most likely token", "0.8"},
                {"--top-p", "P", "sample from the most likely tokens that make up P of the probability", "0.95"},
                {"--top-k", "K", "sample from the K most likely tokens (0: all)", "40"},
                {"--seed", "S", "random seed (the same seed and input give the same replies)", "random"},
                {"--max-tokens", "N", "reply tokens at most (0: until the model ends its turn)", "0"},
                {"--ctx", "N", "context tokens (conversation and reply)",
                 "the model's, at most " + std::to_string(serve::kDefaultContext)},
                chatTemplateOption(),
                kTokenizerOption,
                kDecodeOption,
                kTablesOption,
                kThreadsOption,
                kHelpOption,
            },
        .examples = {"novaq chat model.novaq --system \"You are a helpful assistant.\"",
                     "printf 'Hello\\n' | novaq chat model.novaq --temperature 0"},
        .run = runChat,
    });
}

} // namespace novaq::cli
