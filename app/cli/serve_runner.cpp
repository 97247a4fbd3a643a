// What `novaq serve` does: the OpenAI-compatible HTTP server (core/novaq/serve/server.h) on a
// model. Its table is serve_commands.cpp; this file is linked by novaq-net only (net_helper.h).

#include "cli_help.h"
#include "commands.h"
#include "terminal.h"

#include "novaq/io/error.h"
#include "novaq/runtime/session.h"
#include "novaq/serve/server.h"
#include "novaq/text/chat_template.h"

#include <tbb/global_control.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

namespace novaq::cli {

namespace fs = std::filesystem;

namespace {

bool isLoopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

} // namespace

int runServe(const Context& context, const ParsedArgs& args)
{
    const fs::path modelPath = oneModelArgument(args, "the MODEL to serve");
    serve::ServerOptions options;
    options.host = args.value("--host").value_or("127.0.0.1");
    if (options.host.empty())
        throw Error(ErrorKind::InvalidArgument, "--host must not be empty (127.0.0.1, or 0.0.0.0 for every interface)");
    if (auto v = args.value("--port"))
        options.port = static_cast<int>(parseInteger("--port", *v, 0, 65535));
    if (auto v = args.value("--parallel"))
        options.parallel = static_cast<int>(parseInteger("--parallel", *v, 1, 256));
    if (auto v = args.value("--queue"))
        options.queue = static_cast<int>(parseInteger("--queue", *v, 0, 256));
    if (auto v = args.value("--ctx"))
        options.contextTokens = parseInteger("--ctx", *v, 2, int64_t(1) << 24);
    if (auto v = args.value("--api-key")) {
        options.apiKey = *v;
    } else if (const char* env = std::getenv("NOVAQ_API_KEY")) {
        options.apiKey = env;
    }
    if (args.has("--api-key") && options.apiKey.empty())
        throw Error(ErrorKind::InvalidArgument, "--api-key must not be empty");
    const auto limit = threadLimit(args);
    const RunnableModel model = openToRun(modelPath, args);
    const Tokenizer& tokenizer = tokenizerOf(model, nullptr);
    std::string note;
    const ChatTemplate chatTemplate =
        chooseChatTemplate(*model.reader, modelPath, args.value("--chat-template"), &note);
    options.modelId = fs::absolute(modelPath).lexically_normal().filename().string();
    if (options.modelId.empty()) // a folder given with a trailing slash
        options.modelId = fs::absolute(modelPath).lexically_normal().parent_path().filename().string();
    options.log = [](const std::string& line) { std::cerr << "novaq serve: " << printable(line) << '\n'; };

    serve::Server server(model.model, tokenizer, chatTemplate, options);
    const int port = server.bind();
    const std::string base = "http://" +
                             (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) +
                             ":" + std::to_string(port);
    std::cerr << "novaq serve: " << printable(note) << "; context " << server.contextTokens() << " tokens, "
              << options.parallel << " at once, " << options.queue << " waiting at most\n";
    if (!isLoopback(options.host) && options.apiKey.empty())
        std::cerr << "novaq serve: warning: listening on " << printable(options.host)
                  << " without --api-key: anyone who can reach this machine can use the model\n";
    std::cout << "listening on " << printable(base) << " (model \"" << printable(options.modelId)
              << "\"; OpenAI base URL " << printable(base) << "/v1; Ctrl-C stops)" << std::endl;

    std::atomic<bool> running{true};
    std::thread listener([&] {
        server.run();
        running = false;
    });
    // SIGINT/SIGTERM/SIGHUP set the context's token (main.cpp); stop then, cleanly.
    while (running && !context.cancel->cancelled())
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
    listener.join();
    const serve::ServerStats stats = server.stats();
    std::cerr << "novaq serve: stopped (" << stats.completed << " completions, " << stats.disconnected << " cut short, "
              << stats.rejected << " turned away as busy)\n";
    return kExitSuccess;
}

} // namespace novaq::cli
