#pragma once
// A small scripted HTTP/1.1 server for the network tests: bound to 127.0.0.1 on a free port,
// one thread per connection, one request per connection (Connection: close). Routes are
// matched by path prefix in the order they were added. It can honour or ignore Range (and
// If-Range against the response's ETag / Last-Modified), cut a body short, go silent before
// the answer or in the middle of the body, send slowly, send a body without Content-Length or
// a raw, malformed head; a TLS ClientHello gets the plain-text 400 a plain-HTTP server sends.
// It stops when destroyed, and by itself after a minute at the latest, so a failing test
// never hangs on it.

#include "novaq/net/downloader.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace novaq::test {

struct SeenRequest {
    std::string method;
    std::string target;                         // path and query
    std::string path;                           // without the query
    std::map<std::string, std::string> headers; // lower-case names

    std::string header(const std::string& lowerName) const
    {
        const auto it = headers.find(lowerName);
        return it == headers.end() ? std::string() : it->second;
    }
    bool hasHeader(const std::string& lowerName) const { return headers.count(lowerName) != 0; }
};

struct ScriptedResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool honourRange = false;            // a Range request gets 206 and the slice
    bool honourIfRange = true;           // ... unless If-Range names another ETag / Last-Modified
    size_t cutAfter = std::string::npos; // close after this many body bytes (Content-Length stays full)
    int stallMs = 0;                     // at the cut, stay silent this long before closing
    int chunkDelayMs = 0;                // pause between chunks of chunkBytes
    size_t chunkBytes = 16 * 1024;
    int silentMs = 0;              // before the answer: say nothing this long (then close)
    bool sendContentLength = true; // false: the body ends when the connection closes
    std::string rawHead;           // non-empty: sent as the whole head instead (ends with CRLF CRLF)

    static ScriptedResponse json(const std::string& body, int status = 200);
    static ScriptedResponse file(const std::string& body); // honours Range, with a strong ETag of the body
    static ScriptedResponse redirect(const std::string& location, int status = 302);
};

using Handler = std::function<ScriptedResponse(const SeenRequest&)>;

class HttpTestServer {
public:
    HttpTestServer();
    ~HttpTestServer();
    HttpTestServer(const HttpTestServer&) = delete;
    HttpTestServer& operator=(const HttpTestServer&) = delete;

    void route(const std::string& pathPrefix, Handler handler);
    std::string url() const; // http://127.0.0.1:<port>
    int port() const noexcept { return m_port; }

    std::vector<SeenRequest> requests() const;
    int count(const std::string& pathPrefix) const;
    int tlsHellos() const noexcept { return m_tlsHellos; }
    uint64_t bodyBytesSent() const noexcept { return m_bodyBytesSent; } // accepted by the socket
    void stop();

private:
    void acceptLoop();
    void serve(int fd);

    int m_listen = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_tlsHellos{0};
    std::atomic<uint64_t> m_bodyBytesSent{0};
    std::chrono::steady_clock::time_point m_deadline;
    std::thread m_acceptThread;
    mutable std::mutex m_mutex;
    std::vector<std::pair<std::string, Handler>> m_routes;
    std::vector<SeenRequest> m_requests;
    std::vector<std::thread> m_connections;
};

// Download settings for tests against this server: short timeouts, quick retries.
novaq::net::DownloadSettings quickDownloadSettings();

} // namespace novaq::test
