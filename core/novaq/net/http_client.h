#pragma once
// A small HTTP/1.1 client over libcurl: one request at a time per call, bodies streamed to a
// sink, redirects followed by hand so that credentials (Authorization) are sent only to the
// host they were meant for, cancel at any moment (before the first byte too) through the
// CancelToken. Every transfer is bounded in time: a connect timeout, a time to the answer's
// first byte, a stall limit (no bytes for a while) and a minimum average rate over a window,
// so a silent or trickling server fails instead of holding a download for days.

#include "novaq/io/cancel.h"
#include "novaq/io/error.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace novaq::net {

// Response or request headers in arrival order; names compare case-insensitively.
struct HttpHeaders {
    std::vector<std::pair<std::string, std::string>> entries;

    std::optional<std::string> get(std::string_view name) const; // the first value
    void set(const std::string& name, const std::string& value); // replaces every value
    void remove(std::string_view name);
    bool has(std::string_view name) const { return get(name).has_value(); }
};

struct HttpSettings {
    long connectTimeoutSeconds = 10;
    // No answer (not even a status line) this long after the transfer began, connecting included.
    double firstByteSeconds = 20;
    // No body bytes for this long (also while waiting for the answer) is a stall.
    double stallSeconds = 30;
    // Fewer than minBytesPerSecond on average over the last minRateWindowSeconds of a body
    // is too slow (1 byte a second would otherwise keep a download alive for days).
    double minBytesPerSecond = 1024;
    double minRateWindowSeconds = 60;
    long requestTimeoutSeconds = 0; // the whole transfer; 0: no limit (downloads)
    int maxRedirects = 10;
    std::string userAgent; // empty: "novaq-studio/<version>"
};

struct HttpRequest {
    std::string method = "GET"; // GET or HEAD
    std::string url;
    HttpHeaders headers;
    std::optional<uint64_t> rangeStart; // Range: bytes=start-[end]
    std::optional<uint64_t> rangeEnd;   // inclusive
    bool followRedirects = true;
    // Headers dropped for good once a redirect leads to another host.
    std::vector<std::string> hostBoundHeaders{"Authorization"};
};

// Protocol: the answer is not HTTP (TLS to a plain-HTTP port, a NUL in a header, a certificate
// that does not verify): the same request fails the same way again, so it is not retried.
// NoAnswer and TooSlow: the server accepted but says nothing, or trickles; retried at most
// once (DownloadSettings::maxSlowAttempts).
enum class TransportFailure { None, Connect, Timeout, Stall, Truncated, Protocol, NoAnswer, TooSlow, Other };

// False for failures that a retry cannot cure (Protocol).
bool isRetryable(TransportFailure failure) noexcept;

struct HttpResponse {
    long status = 0;     // 0 when no response arrived
    HttpHeaders headers; // of the final response
    std::string body;    // the body when no sink took it (capped), e.g. an error page
    std::string url;     // the URL that answered, after redirects
    int redirects = 0;
    TransportFailure failure = TransportFailure::None;
    std::string failureMessage; // curl's reason, never with credentials
    uint64_t bodyBytes = 0;     // bytes handed to the sink

    bool transportOk() const noexcept { return failure == TransportFailure::None; }
    bool ok() const noexcept { return transportOk() && status >= 200 && status < 300; }
};

// Receives the body of a 2xx final response chunk by chunk; `head` holds its status and
// headers. Return false to stop the transfer (the call then throws Error(Cancelled)).
// Exceptions thrown here propagate out of send().
using BodySink = std::function<bool(const HttpResponse& head, std::span<const char> chunk)>;

// An HTTP status the caller could not use, with what the server said about it.
class HttpStatusError : public Error {
public:
    HttpStatusError(const std::string& message, long status, HttpHeaders headers, std::string url)
        : Error(ErrorKind::Network, message), m_status(status), m_headers(std::move(headers)), m_url(std::move(url))
    {}
    long status() const noexcept { return m_status; }
    const HttpHeaders& headers() const noexcept { return m_headers; }
    const std::string& url() const noexcept { return m_url; }

private:
    long m_status;
    HttpHeaders m_headers;
    std::string m_url;
};

class HttpClient {
public:
    explicit HttpClient(HttpSettings settings = {});

    // Sends the request, following redirects when asked. Non-2xx bodies and bodies without
    // a sink land in response.body (at most maxBodyBytes; more fails the transfer). Transport
    // failures are reported in the response, never thrown; a cancel throws Error(Cancelled).
    HttpResponse send(const HttpRequest& request, const BodySink& sink, const CancelToken* cancel,
                      size_t maxBodyBytes = size_t(64) << 20) const;

    const HttpSettings& settings() const noexcept { return m_settings; }

private:
    HttpResponse sendOnce(const std::string& url, const HttpRequest& request, const HttpHeaders& headers,
                          const BodySink& sink, const CancelToken* cancel, size_t maxBodyBytes) const;

    HttpSettings m_settings;
};

// "host[:port]" of an http(s) URL, lower-case; empty when the URL cannot be parsed.
std::string hostOf(const std::string& url);
// "http" or "https" (lower-case), else empty.
std::string schemeOf(const std::string& url);
// `location` resolved against `base` (absolute or relative); empty when invalid.
std::string resolveUrl(const std::string& base, const std::string& location);
// The URL without query, fragment and user info: safe to print (signed URLs stay secret).
std::string redactUrl(const std::string& url);
// Percent-encodes everything but unreserved characters (and '/' when keepSlash).
std::string percentEncode(std::string_view text, bool keepSlash);
// The URL of `rel` (e.g. "next") in a Link header, empty when there is none.
std::string linkTarget(const std::string& linkHeader, std::string_view rel);
// Seconds to wait from a Retry-After header (delta seconds or an HTTP date), if any.
std::optional<double> retryAfterSeconds(const HttpHeaders& headers);
// An unsigned decimal header value (Content-Length), nullopt when it is not one.
std::optional<uint64_t> parseDecimal(std::string_view text);
// "connection failed", "stalled", ...: a few words for messages.
std::string_view failureName(TransportFailure failure) noexcept;
// For a request that fails the same way every time (TransportFailure::Protocol): what to check,
// starting with "; ". Names a missing CA certificate store (libcurl only recommends Debian's
// ca-certificates, so a minimal system can lack it) before suspecting the URL.
std::string protocolHint(const HttpResponse& r);

} // namespace novaq::net
