#include "novaq/net/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>

namespace novaq::net {

namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

void initCurlOnce()
{
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlUrl {
    CURLU* handle = curl_url();
    ~CurlUrl() { curl_url_cleanup(handle); }
    CurlUrl() = default;
    CurlUrl(const CurlUrl&) = delete;
    CurlUrl& operator=(const CurlUrl&) = delete;

    std::string part(CURLUPart which) const
    {
        char* out = nullptr;
        if (curl_url_get(handle, which, &out, 0) != CURLUE_OK || !out)
            return {};
        std::string s(out);
        curl_free(out);
        return s;
    }
};

// State shared with curl's callbacks during one transfer.
struct Transfer {
    using Clock = std::chrono::steady_clock;
    HttpResponse* response = nullptr;
    const BodySink* sink = nullptr;
    const CancelToken* cancel = nullptr;
    const HttpSettings* settings = nullptr;
    size_t maxBodyBytes = 0;
    bool cancelled = false;
    bool tooLarge = false;
    bool stalled = false;
    bool noAnswer = false;
    bool tooSlow = false;
    double measuredRate = 0; // bytes per second when tooSlow
    bool answered = false;   // a status line arrived
    Clock::time_point started = Clock::now();
    curl_off_t lastBytes = -1;
    Clock::time_point lastBytesAt = Clock::now();
    // (time, bytes) since the answer arrived, at least kSampleInterval apart, spanning a
    // little more than the rate window.
    std::deque<std::pair<Clock::time_point, curl_off_t>> samples;
    std::exception_ptr error;
};

constexpr auto kSampleInterval = std::chrono::milliseconds(100);

bool isRedirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

size_t onHeader(char* data, size_t size, size_t count, void* user)
{
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    std::string_view line(data, n);
    t->answered = true;
    if (line.starts_with("HTTP/")) {
        // A new response (after 100-continue or a redirect): start over.
        t->response->headers.entries.clear();
        const size_t space = line.find(' ');
        t->response->status =
            space == std::string_view::npos ? 0 : std::atol(std::string(line.substr(space + 1, 3)).c_str());
        return n;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos)
        t->response->headers.entries.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
    return n;
}

size_t onBody(char* data, size_t size, size_t count, void* user)
{
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (t->cancel && t->cancel->cancelled()) {
        t->cancelled = true;
        return 0;
    }
    HttpResponse& r = *t->response;
    const bool success = r.status >= 200 && r.status < 300;
    if (success && t->sink && *t->sink) {
        try {
            if (!(*t->sink)(r, std::span<const char>(data, n))) {
                t->cancelled = true;
                return 0;
            }
        } catch (...) {
            t->error = std::current_exception();
            return 0;
        }
        r.bodyBytes += n;
        return n;
    }
    if (isRedirect(r.status))
        return n; // the redirect page is not wanted
    if (r.body.size() + n > t->maxBodyBytes) {
        t->tooLarge = true;
        return 0;
    }
    r.body.append(data, n);
    return n;
}

int onProgress(void* user, curl_off_t, curl_off_t downloaded, curl_off_t, curl_off_t)
{
    auto* t = static_cast<Transfer*>(user);
    if (t->cancel && t->cancel->cancelled()) {
        t->cancelled = true;
        return 1;
    }
    using Seconds = std::chrono::duration<double>;
    const HttpSettings& s = *t->settings;
    const auto now = Transfer::Clock::now();
    if (!t->answered && s.firstByteSeconds > 0 && Seconds(now - t->started).count() > s.firstByteSeconds) {
        t->noAnswer = true;
        return 1;
    }
    if (downloaded != t->lastBytes) {
        t->lastBytes = downloaded;
        t->lastBytesAt = now;
    } else if (s.stallSeconds > 0 && Seconds(now - t->lastBytesAt).count() > s.stallSeconds) {
        t->stalled = true;
        return 1;
    }
    // The minimum average rate. curl's CURLOPT_LOW_SPEED_LIMIT does a similar check, but it
    // cannot say which rate it measured, and the message should.
    if (!t->answered || s.minBytesPerSecond <= 0 || s.minRateWindowSeconds <= 0)
        return 0;
    if (t->samples.empty() || now - t->samples.back().first >= kSampleInterval)
        t->samples.emplace_back(now, downloaded);
    const auto windowStart =
        now - std::chrono::duration_cast<Transfer::Clock::duration>(Seconds(s.minRateWindowSeconds));
    while (t->samples.size() > 1 && t->samples[1].first <= windowStart)
        t->samples.pop_front();
    const auto& [since, bytesThen] = t->samples.front();
    if (since > windowStart)
        return 0; // the answer is younger than the window
    const double seconds = Seconds(now - since).count();
    const double rate = double(downloaded - bytesThen) / seconds;
    if (rate < s.minBytesPerSecond) {
        t->tooSlow = true;
        t->measuredRate = rate;
        return 1;
    }
    return 0;
}

TransportFailure classify(CURLcode code, const std::string& message)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return TransportFailure::Connect;
    case CURLE_OPERATION_TIMEDOUT:
        return message.find("too slow") != std::string::npos ? TransportFailure::TooSlow : TransportFailure::Timeout;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return TransportFailure::Truncated;
    case CURLE_SSL_CONNECT_ERROR:
        // A handshake cut by the network is worth a retry; one the server answered with
        // something that is not TLS (a plain-HTTP port) is not.
        if (message.find("reset") != std::string::npos || message.find("SYSCALL") != std::string::npos ||
            message.find("unexpected eof") != std::string::npos)
            return TransportFailure::Truncated;
        return TransportFailure::Protocol;
    case CURLE_UNSUPPORTED_PROTOCOL: // also "Received HTTP/0.9 when not allowed"
    case CURLE_WEIRD_SERVER_REPLY:   // a NUL in a header, a malformed status line
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_RANGE_ERROR:
        return TransportFailure::Protocol;
    default:
        return TransportFailure::Other;
    }
}

} // namespace

std::optional<std::string> HttpHeaders::get(std::string_view name) const
{
    for (const auto& [k, v] : entries)
        if (equalsIgnoreCase(k, name))
            return v;
    return std::nullopt;
}

void HttpHeaders::set(const std::string& name, const std::string& value)
{
    remove(name);
    entries.emplace_back(name, value);
}

void HttpHeaders::remove(std::string_view name)
{
    std::erase_if(entries, [&](const auto& e) { return equalsIgnoreCase(e.first, name); });
}

HttpClient::HttpClient(HttpSettings settings) : m_settings(std::move(settings))
{
    initCurlOnce();
    if (m_settings.userAgent.empty())
        m_settings.userAgent = "novaq-studio/" NOVAQ_VERSION;
}

HttpResponse HttpClient::send(const HttpRequest& request, const BodySink& sink, const CancelToken* cancel,
                              size_t maxBodyBytes) const
{
    checkCancel(cancel);
    const std::string scheme = schemeOf(request.url);
    if (scheme.empty())
        throw Error(ErrorKind::InvalidArgument,
                    "'" + redactUrl(request.url) + "' is not an http or https URL; only those are downloaded");
    const std::string originHost = hostOf(request.url);
    HttpHeaders headers = request.headers;
    std::string url = request.url;
    int redirects = 0;
    for (;;) {
        HttpResponse response = sendOnce(url, request, headers, sink, cancel, maxBodyBytes);
        response.redirects = redirects;
        const auto location = response.headers.get("Location");
        if (!request.followRedirects || !response.transportOk() || !isRedirect(response.status) || !location)
            return response;
        if (++redirects > m_settings.maxRedirects)
            throw Error(ErrorKind::Network, "too many redirects (more than " + std::to_string(m_settings.maxRedirects) +
                                                ") from " + redactUrl(request.url));
        const std::string next = resolveUrl(url, *location);
        const std::string nextScheme = schemeOf(next);
        if (nextScheme.empty())
            throw Error(ErrorKind::Network, redactUrl(url) + " redirected to an unsupported or invalid URL");
        if (schemeOf(url) == "https" && nextScheme == "http")
            throw Error(ErrorKind::Network, redactUrl(url) + " redirected from https to plain http (" +
                                                redactUrl(next) + "); refusing the downgrade");
        if (hostOf(next) != originHost)
            for (const std::string& h : request.hostBoundHeaders)
                headers.remove(h);
        url = next;
    }
}

HttpResponse HttpClient::sendOnce(const std::string& url, const HttpRequest& request, const HttpHeaders& headers,
                                  const BodySink& sink, const CancelToken* cancel, size_t maxBodyBytes) const
{
    HttpResponse response;
    response.url = url;
    Transfer transfer;
    transfer.response = &response;
    transfer.sink = &sink;
    transfer.cancel = cancel;
    transfer.maxBodyBytes = maxBodyBytes;
    transfer.settings = &m_settings;

    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl)
        throw Error(ErrorKind::Network, "cannot start an HTTP transfer (libcurl failed to initialize)");
    curl_slist* list = nullptr;
    for (const auto& [k, v] : headers.entries)
        list = curl_slist_append(list, (k + ": " + v).c_str());
    if (!headers.has("Accept-Encoding"))
        list = curl_slist_append(list, "Accept-Encoding: identity"); // real sizes, byte-exact ranges
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headerList(list, curl_slist_free_all);

    CURL* h = curl.get();
    char errorBuffer[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headerList.get());
    curl_easy_setopt(h, CURLOPT_USERAGENT, m_settings.userAgent.c_str());
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, m_settings.connectTimeoutSeconds);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, m_settings.requestTimeoutSeconds);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errorBuffer);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, onProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
    if (request.method == "HEAD")
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    std::string range;
    if (request.rangeStart) {
        range = std::to_string(*request.rangeStart) + "-" + (request.rangeEnd ? std::to_string(*request.rangeEnd) : "");
        curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }

    const CURLcode code = curl_easy_perform(h);
    if (transfer.error)
        std::rethrow_exception(transfer.error);
    if (transfer.cancelled || (cancel && cancel->cancelled()))
        throw Error(ErrorKind::Cancelled, "download cancelled");
    if (transfer.tooLarge)
        throw Error(ErrorKind::Network, "the answer of " + redactUrl(url) + " is larger than expected (over " +
                                            std::to_string(maxBodyBytes >> 20) + " MiB); is this the right server?");
    char text[160];
    if (transfer.noAnswer) {
        std::snprintf(text, sizeof text, "connected, but no answer within %.0f s", m_settings.firstByteSeconds);
        response.failure = TransportFailure::NoAnswer;
        response.failureMessage = text;
    } else if (transfer.stalled) {
        std::snprintf(text, sizeof text, "no data for %.0f s", m_settings.stallSeconds);
        response.failure = TransportFailure::Stall;
        response.failureMessage = text;
    } else if (transfer.tooSlow) {
        std::snprintf(text, sizeof text, "%.0f bytes/s on average over %.0f s, below the minimum of %.0f bytes/s",
                      transfer.measuredRate, m_settings.minRateWindowSeconds, m_settings.minBytesPerSecond);
        response.failure = TransportFailure::TooSlow;
        response.failureMessage = text;
    } else if (code != CURLE_OK) {
        response.failureMessage = errorBuffer[0] ? errorBuffer : curl_easy_strerror(code);
        response.failure = classify(code, response.failureMessage);
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 0)
        response.status = status;
    return response;
}

std::string hostOf(const std::string& url)
{
    CurlUrl u;
    if (curl_url_set(u.handle, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return {};
    std::string host = u.part(CURLUPART_HOST);
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const std::string port = u.part(CURLUPART_PORT);
    return port.empty() ? host : host + ":" + port;
}

std::string schemeOf(const std::string& url)
{
    CurlUrl u;
    if (curl_url_set(u.handle, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return {};
    std::string scheme = u.part(CURLUPART_SCHEME);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return scheme == "http" || scheme == "https" ? scheme : std::string();
}

std::string resolveUrl(const std::string& base, const std::string& location)
{
    CurlUrl u;
    if (curl_url_set(u.handle, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK)
        return {};
    if (curl_url_set(u.handle, CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
        return {};
    return u.part(CURLUPART_URL);
}

std::string redactUrl(const std::string& url)
{
    CurlUrl u;
    if (curl_url_set(u.handle, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        // Not a URL curl parses (no scheme, a path, a typo): say what was given, still without
        // a query, a fragment or a user:password@ part, so that a secret never gets printed.
        std::string shown = url.substr(0, url.find_first_of("?#"));
        const size_t scheme = shown.find("://");
        const size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
        const size_t at = shown.find('@', authority);
        if (at != std::string::npos && at < shown.find('/', authority))
            shown.erase(authority, at + 1 - authority);
        return shown.empty() ? std::string("(an empty URL)") : shown;
    }
    curl_url_set(u.handle, CURLUPART_QUERY, nullptr, 0);
    curl_url_set(u.handle, CURLUPART_FRAGMENT, nullptr, 0);
    curl_url_set(u.handle, CURLUPART_USER, nullptr, 0);
    curl_url_set(u.handle, CURLUPART_PASSWORD, nullptr, 0);
    return u.part(CURLUPART_URL);
}

std::string percentEncode(std::string_view text, bool keepSlash)
{
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/')) {
            out += char(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::string linkTarget(const std::string& linkHeader, std::string_view rel)
{
    // <url>; rel="next", <url>; rel="prev"
    size_t pos = 0;
    while (pos < linkHeader.size()) {
        const size_t open = linkHeader.find('<', pos);
        if (open == std::string::npos)
            break;
        const size_t close = linkHeader.find('>', open);
        if (close == std::string::npos)
            break;
        const size_t end = std::min(linkHeader.find('<', close), linkHeader.size());
        const std::string params = linkHeader.substr(close + 1, end - close - 1);
        const std::string wanted = "rel=\"" + std::string(rel) + "\"";
        const std::string bare = "rel=" + std::string(rel);
        if (params.find(wanted) != std::string::npos || params.find(bare + ";") != std::string::npos ||
            trim(params).ends_with(bare) || params.find(bare + ",") != std::string::npos)
            return linkHeader.substr(open + 1, close - open - 1);
        pos = end;
    }
    return {};
}

std::optional<double> retryAfterSeconds(const HttpHeaders& headers)
{
    const auto value = headers.get("Retry-After");
    if (!value || value->empty())
        return std::nullopt;
    if (std::all_of(value->begin(), value->end(), [](unsigned char c) { return std::isdigit(c); }))
        return value->size() > 12 ? 1e12 : std::stod(*value); // a hostile 400-digit value overflows stod
    const time_t when = curl_getdate(value->c_str(), nullptr);
    if (when < 0)
        return std::nullopt;
    return std::max(0.0, std::difftime(when, std::time(nullptr)));
}

bool isRetryable(TransportFailure failure) noexcept { return failure != TransportFailure::Protocol; }

std::optional<uint64_t> parseDecimal(std::string_view text)
{
    const std::string t = trim(text);
    if (t.empty() || t.size() > 19 || !std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); }))
        return std::nullopt;
    return std::stoull(t);
}

std::string protocolHint(const HttpResponse& r)
{
    if (r.failureMessage.find("certificate verify locations") != std::string::npos)
        return "; this computer has no CA certificates to check the server's identity: install them (Debian: "
               "apt install ca-certificates)";
    const bool tls = r.failureMessage.find("SSL") != std::string::npos ||
                     r.failureMessage.find("TLS") != std::string::npos ||
                     r.failureMessage.find("certificate") != std::string::npos;
    if (tls && schemeOf(r.url) == "https")
        return "; check the URL (is it a plain-http server? then write http://) or the server's certificate";
    return "; the server's answer is malformed: check the URL, or try again later";
}

std::string_view failureName(TransportFailure failure) noexcept
{
    switch (failure) {
    case TransportFailure::None:
        return "no failure";
    case TransportFailure::Connect:
        return "could not connect";
    case TransportFailure::Timeout:
        return "timed out";
    case TransportFailure::Stall:
        return "stalled (no data arriving)";
    case TransportFailure::Truncated:
        return "connection closed before the end";
    case TransportFailure::Protocol:
        return "the answer is not valid HTTP or TLS";
    case TransportFailure::NoAnswer:
        return "no answer";
    case TransportFailure::TooSlow:
        return "too slow";
    case TransportFailure::Other:
        return "transfer failed";
    }
    return "transfer failed";
}

} // namespace novaq::net
