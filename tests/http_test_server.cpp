#include "http_test_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>

namespace novaq::test {

namespace {

constexpr auto kLifetime = std::chrono::seconds(60);
constexpr int kPollMs = 50;
constexpr int kReadTimeoutMs = 3000;

std::string reasonFor(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 302:
        return "Found";
    case 307:
        return "Temporary Redirect";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 410:
        return "Gone";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

bool sendAll(int fd, const char* data, size_t size)
{
    while (size > 0) {
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data += n;
        size -= size_t(n);
    }
    return true;
}

// Keeps the connection open and silent for `ms` (or until the server stops); false when the
// client gave up first.
bool holdOpen(int fd, const std::atomic<bool>& stop, int ms)
{
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!stop && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, kPollMs) > 0) {
            char c;
            if (::recv(fd, &c, 1, MSG_PEEK) <= 0)
                return false;
        }
    }
    return true;
}

} // namespace

ScriptedResponse ScriptedResponse::json(const std::string& body, int status)
{
    ScriptedResponse r;
    r.status = status;
    r.body = body;
    r.headers.emplace_back("Content-Type", "application/json");
    return r;
}

ScriptedResponse ScriptedResponse::file(const std::string& body)
{
    ScriptedResponse r;
    r.body = body;
    r.honourRange = true;
    r.headers.emplace_back("Accept-Ranges", "bytes");
    char etag[32];
    std::snprintf(etag, sizeof etag, "\"%016zx\"", std::hash<std::string>{}(body));
    r.headers.emplace_back("ETag", etag);
    return r;
}

ScriptedResponse ScriptedResponse::redirect(const std::string& location, int status)
{
    ScriptedResponse r;
    r.status = status;
    r.headers.emplace_back("Location", location);
    return r;
}

HttpTestServer::HttpTestServer() : m_deadline(std::chrono::steady_clock::now() + kLifetime)
{
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listen < 0)
        throw std::runtime_error("test server: socket() failed");
    int one = 1;
    ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen, 64) != 0)
        throw std::runtime_error("test server: bind/listen on 127.0.0.1 failed");
    socklen_t len = sizeof addr;
    ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_acceptThread = std::thread([this] { acceptLoop(); });
}

HttpTestServer::~HttpTestServer() { stop(); }

void HttpTestServer::stop()
{
    m_stop = true;
    if (m_acceptThread.joinable())
        m_acceptThread.join();
    std::vector<std::thread> connections;
    {
        std::lock_guard lock(m_mutex);
        connections.swap(m_connections);
    }
    for (std::thread& t : connections)
        t.join();
    if (m_listen >= 0) {
        ::close(m_listen);
        m_listen = -1;
    }
}

void HttpTestServer::route(const std::string& pathPrefix, Handler handler)
{
    std::lock_guard lock(m_mutex);
    m_routes.emplace_back(pathPrefix, std::move(handler));
}

std::string HttpTestServer::url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

std::vector<SeenRequest> HttpTestServer::requests() const
{
    std::lock_guard lock(m_mutex);
    return m_requests;
}

int HttpTestServer::count(const std::string& pathPrefix) const
{
    std::lock_guard lock(m_mutex);
    return int(std::count_if(m_requests.begin(), m_requests.end(),
                             [&](const SeenRequest& r) { return r.path.starts_with(pathPrefix); }));
}

void HttpTestServer::acceptLoop()
{
    while (!m_stop && std::chrono::steady_clock::now() < m_deadline) {
        pollfd p{m_listen, POLLIN, 0};
        if (::poll(&p, 1, kPollMs) <= 0)
            continue;
        const int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        std::lock_guard lock(m_mutex);
        m_connections.emplace_back([this, fd] {
            serve(fd);
            ::close(fd);
        });
    }
    m_stop = true;
}

void HttpTestServer::serve(int fd)
{
    // Read the request head.
    std::string head;
    char buf[4096];
    const auto start = std::chrono::steady_clock::now();
    while (head.find("\r\n\r\n") == std::string::npos) {
        if (m_stop || std::chrono::steady_clock::now() - start > std::chrono::milliseconds(kReadTimeoutMs))
            return;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, kPollMs) <= 0)
            continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        head.append(buf, size_t(n));
        if (head.size() >= 2 && head[0] == 0x16 && head[1] == 0x03) {
            // A TLS ClientHello on this plain-HTTP port: answer as nginx or Apache do.
            ++m_tlsHellos;
            const std::string bad = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
                                    "Connection: close\r\n\r\nBad Request";
            sendAll(fd, bad.data(), bad.size());
            ::shutdown(fd, SHUT_RDWR);
            return;
        }
    }
    SeenRequest request;
    std::istringstream lines(head.substr(0, head.find("\r\n\r\n")));
    std::string line;
    std::getline(lines, line);
    {
        std::istringstream first(line);
        first >> request.method >> request.target;
    }
    request.path = request.target.substr(0, request.target.find('?'));
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        const size_t colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        request.headers[name] = value;
    }

    Handler handler;
    {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(request);
        for (const auto& [prefix, h] : m_routes)
            if (request.path.starts_with(prefix)) {
                handler = h;
                break;
            }
    }
    ScriptedResponse response = handler ? handler(request) : ScriptedResponse::json(R"({"error":"no route"})", 404);

    std::string body = response.body;
    int status = response.status;
    std::vector<std::pair<std::string, std::string>> headers = response.headers;
    const std::string range = request.header("range");
    const auto responseHeader = [&](const std::string& name) {
        for (const auto& [k, v] : headers)
            if (k == name)
                return v;
        return std::string();
    };
    const std::string ifRange = request.header("if-range");
    const bool sameFile = ifRange.empty() || !response.honourIfRange || ifRange == responseHeader("ETag") ||
                          ifRange == responseHeader("Last-Modified");
    if (response.honourRange && status == 200 && range.starts_with("bytes=") && sameFile) {
        const std::string spec = range.substr(6);
        const size_t dash = spec.find('-');
        const uint64_t total = body.size();
        const uint64_t first = std::stoull(spec.substr(0, dash));
        uint64_t last = dash + 1 < spec.size() ? std::stoull(spec.substr(dash + 1)) : total - 1;
        if (first >= total) {
            status = 416;
            headers.emplace_back("Content-Range", "bytes */" + std::to_string(total));
            body.clear();
        } else {
            last = std::min<uint64_t>(last, total - 1);
            status = 206;
            headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                                      std::to_string(total));
            body = body.substr(size_t(first), size_t(last - first + 1));
        }
    }
    if (response.silentMs > 0) {
        holdOpen(fd, m_stop, response.silentMs);
        return;
    }
    std::string out = response.rawHead;
    if (out.empty()) {
        out = "HTTP/1.1 " + std::to_string(status) + " " + reasonFor(status) + "\r\n";
        for (const auto& [k, v] : headers)
            out += k + ": " + v + "\r\n";
        if (response.sendContentLength)
            out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        out += "Connection: close\r\n\r\n";
    }
    if (!sendAll(fd, out.data(), out.size()) || request.method == "HEAD")
        return;
    const size_t limit = std::min(response.cutAfter, body.size());
    size_t sent = 0;
    while (sent < limit && !m_stop) {
        const size_t n = std::min(response.chunkBytes, limit - sent);
        if (!sendAll(fd, body.data() + sent, n))
            return;
        sent += n;
        m_bodyBytesSent += n;
        if (response.chunkDelayMs > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(response.chunkDelayMs));
    }
    if (response.stallMs > 0 && !holdOpen(fd, m_stop, response.stallMs))
        return;
    ::shutdown(fd, SHUT_RDWR);
}

net::DownloadSettings quickDownloadSettings()
{
    net::DownloadSettings s;
    s.http.connectTimeoutSeconds = 2;
    s.http.stallSeconds = 2;
    s.http.firstByteSeconds = 2;
    s.initialBackoffSeconds = 0.01;
    s.maxBackoffSeconds = 0.05;
    s.maxAttempts = 3;
    return s;
}

} // namespace novaq::test
