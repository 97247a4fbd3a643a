// `novaq serve`: the OpenAI-compatible HTTP server on a model. This file is its table (options,
// help); what it does is in serve_runner.cpp, linked by novaq-net only (net_helper.h).

#include "cli_help.h"
#include "commands.h"

#include "novaq/serve/server.h" // kDefaultContext (a constant: nothing of the server is linked)

#include <string>
#include <vector>

namespace novaq::cli {

void addServeCommands(std::vector<Command>& commands)
{
    commands.push_back(Command{
        .name = "serve",
        .arguments = "MODEL",
        .summary = "Serve a model over an OpenAI-compatible HTTP API (chat and completions, streamed or not)",
        .details = "Endpoints: GET /health, GET /v1/models, POST /v1/chat/completions and POST\n"
                   "/v1/completions, with \"stream\": true (server-sent events) or false; max_tokens,\n"
                   "temperature, top_p, top_k, seed, stop; usage in every answer. Point an OpenAI client at\n"
                   "the base URL it prints (http://127.0.0.1:8080/v1) with any API key, or the one given with\n"
                   "--api-key (or the NOVAQ_API_KEY environment variable), which requests then must send as\n"
                   "`Authorization: Bearer KEY`. Listens on the loopback address unless --host says\n"
                   "otherwise. The model is loaded once; --parallel generations run at once, each with its own\n"
                   "context of --ctx tokens; up to --queue more requests wait, further ones get 503. Ctrl-C\n"
                   "(or SIGTERM) stops the server; running generations end.",
        .options =
            {
                {"--host", "ADDR", "address to listen on (0.0.0.0: every interface)", "127.0.0.1"},
                {"--port", "N", "TCP port (0: a free one, printed)", "8080"},
                {"--api-key", "KEY", "require `Authorization: Bearer KEY` (default: $NOVAQ_API_KEY when set)", ""},
                {"--parallel", "N", "generations at once, each with its own KV cache", "1"},
                {"--queue", "N", "requests that may wait for a free generation (at most 256); more get 503", "16"},
                {"--ctx", "N", "context tokens per generation (prompt and reply)",
                 "the model's, at most " + std::to_string(serve::kDefaultContext)},
                chatTemplateOption(),
                kTokenizerOption,
                kDecodeOption,
                kTablesOption,
                kThreadsOption,
                kHelpOption,
            },
        .examples = {"novaq serve model.novaq --port 8080",
                     "curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' "
                     "-d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'"},
        .run = runServe,
    });
}

} // namespace novaq::cli
