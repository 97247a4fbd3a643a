#include "novaq/sources/url_source.h"

#include "novaq/io/error.h"
#include "novaq/net/http_client.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>

namespace novaq::sources {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxNameBytes = 200;

std::string percentDecode(const std::string& s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

} // namespace

std::string sanitizeFileName(const std::string& name)
{
    // Only the last component: "a/b\\..\\c" -> "c".
    std::string base = name;
    const size_t cut = base.find_last_of("/\\");
    if (cut != std::string::npos)
        base = base.substr(cut + 1);
    std::string out;
    for (const char ch : base) {
        const auto c = static_cast<unsigned char>(ch);
        out += std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' ? char(c) : '_';
    }
    while (!out.empty() && (out.front() == '.' || out.front() == '-'))
        out.erase(out.begin());
    if (out.size() > kMaxNameBytes)
        out = out.substr(out.size() - kMaxNameBytes);
    if (out.empty() || out.find_first_not_of("._") == std::string::npos)
        return "download";
    return out;
}

std::string fileNameFromContentDisposition(const std::string& header)
{
    // filename*=UTF-8''name%20x.gguf wins over filename="name.gguf".
    const auto param = [&](const std::string& key) -> std::string {
        size_t pos = 0;
        while ((pos = header.find(key, pos)) != std::string::npos) {
            const bool boundary = pos == 0 || header[pos - 1] == ';' || header[pos - 1] == ' ';
            size_t v = pos + key.size();
            while (v < header.size() && header[v] == ' ')
                ++v;
            if (boundary && v < header.size() && header[v] == '=') {
                ++v;
                while (v < header.size() && header[v] == ' ')
                    ++v;
                if (v < header.size() && header[v] == '"') {
                    const size_t end = header.find('"', v + 1);
                    return header.substr(v + 1, end == std::string::npos ? std::string::npos : end - v - 1);
                }
                const size_t end = header.find(';', v);
                std::string value = header.substr(v, end == std::string::npos ? std::string::npos : end - v);
                while (!value.empty() && value.back() == ' ')
                    value.pop_back();
                return value;
            }
            pos += key.size();
        }
        return {};
    };
    if (std::string ext = param("filename*"); !ext.empty()) {
        const size_t quote = ext.find("''");
        return percentDecode(quote == std::string::npos ? ext : ext.substr(quote + 2));
    }
    return param("filename");
}

std::string fileNameFromUrl(const std::string& url)
{
    const std::string clean = net::redactUrl(url);
    const size_t scheme = clean.find("://");
    const size_t pathStart = clean.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (pathStart == std::string::npos)
        return {};
    std::string path = clean.substr(pathStart);
    while (!path.empty() && path.back() == '/')
        path.pop_back();
    const size_t slash = path.find_last_of('/');
    return percentDecode(slash == std::string::npos ? path : path.substr(slash + 1));
}

fs::path defaultDownloadFolder()
{
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        return fs::path(x) / "novaq" / "downloads";
    const char* home = std::getenv("HOME");
    return fs::path(home ? home : ".") / ".cache" / "novaq" / "downloads";
}

UrlDownload downloadUrl(const std::string& url, const fs::path& folder, const net::DownloadSettings& settings,
                        net::DownloadSink* sink, const CancelToken* cancel)
{
    if (net::schemeOf(url).empty())
        throw Error(ErrorKind::InvalidArgument, "'" + net::redactUrl(url) +
                                                    "' is not an http:// or https:// URL; for a file on disk use "
                                                    "`novaq local PATH`");
    net::HttpSettings headSettings = settings.http;
    headSettings.requestTimeoutSeconds = std::max<long>(headSettings.connectTimeoutSeconds, 30);
    const net::HttpClient client(headSettings);
    net::HttpRequest head;
    head.method = "HEAD";
    head.url = url;
    const net::HttpResponse r = client.send(head, {}, cancel);

    std::string name;
    std::optional<uint64_t> size;
    if (r.ok()) {
        if (auto cd = r.headers.get("Content-Disposition"))
            name = fileNameFromContentDisposition(*cd);
        if (auto length = r.headers.get("Content-Length"); length && !r.headers.has("Content-Encoding"))
            size = net::parseDecimal(*length); // a malformed value: size unknown
        if (name.empty())
            name = fileNameFromUrl(r.url); // after redirects: the real file's name
    } else if (r.transportOk() && (r.status == 404 || r.status == 410)) {
        throw Error(ErrorKind::InvalidArgument,
                    net::redactUrl(url) + " does not exist (HTTP " + std::to_string(r.status) + "); check the URL");
    } else if (r.failure == net::TransportFailure::NoAnswer || r.failure == net::TransportFailure::Protocol) {
        // The download would fail the same way (after the slow retries): say so now.
        throw Error(ErrorKind::Network,
                    net::redactUrl(url) + ": " + std::string(net::failureName(r.failure)) + " (" + r.failureMessage +
                        ")" +
                        (r.failure == net::TransportFailure::Protocol ? net::protocolHint(r)
                                                                      : "; check the URL, or try again later"));
    } else if (r.transportOk() && (r.status == 401 || r.status == 403)) {
        throw Error(ErrorKind::Network, net::redactUrl(url) + " refused access (HTTP " + std::to_string(r.status) +
                                            "); NOVAQ sends no credentials for plain URLs: use a public or signed "
                                            "link");
    }
    if (name.empty())
        name = fileNameFromUrl(url);
    if (size && *size == 0)
        size.reset();
    UrlDownload result;
    result.file = folder / sanitizeFileName(name);
    std::error_code ec;
    if (size && fs::is_regular_file(result.file, ec) && fs::file_size(result.file, ec) == *size) {
        result.reused = true;
        result.size = *size;
        return result;
    }
    net::DownloadTarget target;
    target.url = url;
    target.destination = result.file;
    target.expectedSize = size;
    target.label = result.file.filename().string();
    net::Downloader downloader(settings, sink, cancel);
    const net::DownloadResult d = downloader.download(target);
    result.size = d.size;
    return result;
}

} // namespace novaq::sources
