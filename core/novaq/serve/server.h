#pragma once
// `novaq serve`: an OpenAI-compatible HTTP server for one model (cpp-httplib).
//
//   GET  /health                 {"status":"ok", slots and queue}
//   GET  /v1/models[/ID]         the one model
//   POST /v1/chat/completions    messages rendered with the chat template
//   POST /v1/completions         a plain prompt, as `novaq generate` runs it
// both with "stream": true (server-sent events, `data: {...}` chunks, then `data: [DONE]`) or
// false; max_tokens, temperature, top_p, top_k, seed, stop, usage, finish_reason. Errors have
// OpenAI's shape {"error": {"message", "type", "param", "code"}} and status (400 bad JSON or
// field, 401 API key, 404 path or model, 405 method, 413 body too large, 503 busy).
//
// The model is loaded once and shared read-only; each of `parallel` generation slots owns a
// KV cache (reused for the prefix a request shares with the slot's previous one). Requests
// beyond the slots wait in a bounded queue; beyond that they get 503. A streaming client that
// disconnects stops its generation at the next token.

#include "novaq/runtime/llama.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace novaq {

class Tokenizer;
class ChatTemplate;

namespace serve {

struct ServerOptions {
    std::string host = "127.0.0.1";        // loopback: only this machine can connect
    int port = 8080;                       // 0: a free port (Server::bind() returns it)
    std::string apiKey;                    // non-empty: requests need `Authorization: Bearer KEY`
    int parallel = 1;                      // generations at once (a KV cache each)
    int queue = 16;                        // requests waiting for a slot at most (0..256); more get 503
    size_t maxBodyBytes = size_t(4) << 20; // larger request bodies get 413
    int64_t contextTokens = 0;             // per slot; 0: the model's context, at most kDefaultContext
    std::string modelId = "model";         // the name /v1/models lists and requests use
    // Observers for tests and logs, called on the generating thread: after a request got its
    // slot, and after each produced token.
    std::function<void()> onSlotAcquired;
    std::function<void(int64_t produced)> onToken;
    std::function<void(const std::string& line)> log; // one line per request
};

inline constexpr int64_t kDefaultContext = 4096;

struct ServerStats {
    int64_t active = 0;       // generating now
    int64_t queued = 0;       // waiting for a slot
    int64_t completed = 0;    // generations that ran to their end
    int64_t disconnected = 0; // cut short: the client went away, shutdown, or an error
    int64_t rejected = 0;     // 503 for a full queue
    int64_t generatedTokens = 0;
};

class Server {
public:
    // `model` and `tokenizer` must outlive the server; the template is copied. Throws
    // Error(InvalidArgument) for options out of range.
    Server(const LlamaModel& model, const Tokenizer& tokenizer, const ChatTemplate& chatTemplate,
           ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds host:port and returns the port. Throws Error(Io) naming the address when it cannot.
    // Ignores SIGPIPE for the process (a client that went away must be an error on the write,
    // not the end of the server).
    int bind();
    // Serves until stop(); call after bind(), on any thread.
    void run();
    // From any thread: running generations end, waiting requests get 503, run() returns.
    // Join the thread that called run() before destroying the server.
    void stop();

    ServerStats stats() const;
    const ServerOptions& options() const noexcept;
    int64_t contextTokens() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace serve
} // namespace novaq
