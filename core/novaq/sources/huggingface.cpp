#include "novaq/sources/huggingface.h"

#include "novaq/io/error.h"
#include "novaq/io/json.h"
#include "novaq/io/units.h"
#include "novaq/net/http_client.h"
#include "novaq/net/sha256.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace novaq::hf {

namespace fs = std::filesystem;
using net::HttpHeaders;
using net::HttpResponse;

namespace {

constexpr int kApiAttempts = 4;
constexpr int kPageSizeMax = 100;
constexpr size_t kListedMax = 10;                    // names in one message
constexpr uint64_t kMaxFileSize = uint64_t(1) << 50; // 1 PiB: a larger size is a malformed listing

// The Hub could not be reached at all (as opposed to an answer we could not use).
class Unreachable : public Error {
public:
    explicit Unreachable(const std::string& message) : Error(ErrorKind::Network, message) {}
};

std::string env(const char* name)
{
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

std::string trim(std::string s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
        ++i;
    return s.substr(i);
}

fs::path expandUser(const std::string& path)
{
    if (path == "~" || path.starts_with("~/"))
        return fs::path(env("HOME")) / path.substr(std::min<size_t>(2, path.size()));
    return path;
}

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

// File names on the Hub are matched without regard to case ("Model.GGUF").
bool endsWithIgnoringCase(const std::string& s, std::string_view lowerSuffix)
{
    return lower(s).ends_with(lowerSuffix);
}

bool isHex(const std::string& s, size_t length)
{
    return s.size() == length && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

// A repo-relative path that stays inside the snapshot folder.
bool isSafeRepoPath(const std::string& path)
{
    if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos ||
        path.find('\0') != std::string::npos)
        return false;
    std::stringstream parts(path);
    std::string part;
    while (std::getline(parts, part, '/'))
        if (part.empty() || part == "." || part == "..")
            return false;
    return true;
}

// A count the Hub reports (downloads, likes, parameters); 0 when absent or not a count.
uint64_t jsonCount(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number())
        return 0;
    if (it->is_number_unsigned())
        return it->get<uint64_t>();
    if (it->is_number_integer())
        return it->get<int64_t>() < 0 ? 0 : uint64_t(it->get<int64_t>());
    const double d = it->get<double>();
    return d >= 0 && d < 1.8e19 ? uint64_t(d) : 0;
}

// A file size from the tree API: a non-negative integer below kMaxFileSize, else nullopt.
std::optional<uint64_t> jsonSize(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > kMaxFileSize)
        return std::nullopt;
    return it->get<uint64_t>();
}

// "\n  a\n  b ... and 12 more": a list that stays readable for a repo of 100,000 files.
std::string cappedList(const std::vector<std::string>& lines)
{
    std::string out;
    for (size_t i = 0; i < std::min(lines.size(), kListedMax); ++i)
        out += "\n  " + lines[i];
    if (lines.size() > kListedMax)
        out += "\n  ... and " + std::to_string(lines.size() - kListedMax) + " more";
    return out;
}

std::string jsonString(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string gatedText(const nlohmann::json& j)
{
    const auto it = j.find("gated");
    if (it == j.end() || it->is_null())
        return "false";
    if (it->is_boolean())
        return it->get<bool>() ? "true" : "false";
    return it->is_string() ? it->get<std::string>() : "false";
}

ModelSummary parseSummary(const nlohmann::json& j)
{
    ModelSummary m;
    m.id = jsonString(j, "id");
    if (m.id.empty())
        m.id = jsonString(j, "modelId");
    m.downloads = jsonCount(j, "downloads");
    m.likes = jsonCount(j, "likes");
    m.lastModified = jsonString(j, "lastModified");
    if (m.lastModified.empty())
        m.lastModified = jsonString(j, "createdAt");
    m.pipelineTag = jsonString(j, "pipeline_tag");
    m.libraryName = jsonString(j, "library_name");
    m.gated = gatedText(j);
    if (const auto tags = j.find("tags"); tags != j.end() && tags->is_array())
        for (const auto& t : *tags)
            if (t.is_string())
                m.tags.push_back(t.get<std::string>());
    return m;
}

std::string errorDetail(const HttpResponse& r)
{
    if (auto m = r.headers.get("X-Error-Message"))
        return *m;
    try {
        const nlohmann::json j = parseJsonStrict(r.body, "the Hub", 0, "its error answer");
        if (j.is_object() && j.contains("error") && j["error"].is_string())
            return j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
    return {};
}

void validateRevision(const std::string& revision)
{
    if (revision.empty() || !isSafeRepoPath(revision))
        throw Error(ErrorKind::InvalidArgument,
                    "'" + revision + "' is not a valid revision (a branch, tag or commit, e.g. main)");
}

bool isWeightsGguf(const RepoFile& f)
{
    return endsWithIgnoringCase(f.path, ".gguf") && lower(f.path).find("mmproj") == std::string::npos;
}

} // namespace

void validateRepoId(const std::string& repo)
{
    const size_t slash = repo.find('/');
    const auto okPart = [](const std::string& p) {
        return !p.empty() && p.size() <= 96 && p != "." && p != ".." && p.front() != '-' && p.front() != '.' &&
               std::all_of(p.begin(), p.end(),
                           [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
    };
    const bool ok = slash == std::string::npos ? okPart(repo)
                                               : repo.find('/', slash + 1) == std::string::npos &&
                                                     okPart(repo.substr(0, slash)) && okPart(repo.substr(slash + 1));
    if (!ok)
        throw Error(ErrorKind::InvalidArgument, "'" + repo +
                                                    "' is not a Hugging Face model id; write it as org/name, "
                                                    "e.g. meta-llama/Llama-3.2-1B");
}

std::string repoIdFrom(std::string text, const std::string& endpoint)
{
    for (const std::string& prefix :
         {endpoint + "/", std::string("https://huggingface.co/"), std::string("http://huggingface.co/"),
          std::string("https://hf.co/"), std::string("huggingface.co/"), std::string("hf.co/")})
        if (text.starts_with(prefix)) {
            text = text.substr(prefix.size());
            break;
        }
    while (!text.empty() && text.back() == '/')
        text.pop_back();
    return text;
}

HubSettings HubSettings::fromEnvironment()
{
    HubSettings s;
    if (std::string e = env("HF_ENDPOINT"); !e.empty()) {
        while (!e.empty() && e.back() == '/')
            e.pop_back();
        s.endpoint = e;
    }
    fs::path home;
    if (const std::string h = env("HF_HOME"); !h.empty())
        home = expandUser(h);
    else if (const std::string x = env("XDG_CACHE_HOME"); !x.empty())
        home = fs::path(x) / "huggingface";
    else
        home = fs::path(env("HOME")) / ".cache" / "huggingface";
    if (const std::string c = env("HF_HUB_CACHE"); !c.empty())
        s.cacheDir = expandUser(c);
    else if (const std::string legacy = env("HUGGINGFACE_HUB_CACHE"); !legacy.empty())
        s.cacheDir = expandUser(legacy);
    else
        s.cacheDir = home / "hub";
    for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"}) {
        if (std::string t = trim(env(name)); !t.empty()) {
            s.token = t;
            break;
        }
    }
    if (s.token.empty()) {
        const std::string tokenPath = env("HF_TOKEN_PATH");
        std::ifstream in(tokenPath.empty() ? home / "token" : expandUser(tokenPath));
        std::string line;
        if (in && std::getline(in, line))
            s.token = trim(line);
    }
    for (const char* name : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
        const std::string v = lower(trim(env(name)));
        if (v == "1" || v == "on" || v == "yes" || v == "true")
            s.offline = true;
    }
    return s;
}

HubClient::HubClient(HubSettings settings, net::DownloadSettings download, net::DownloadSink* sink,
                     const CancelToken* cancel)
    : m_settings(std::move(settings)), m_download(std::move(download)), m_sink(sink), m_cancel(cancel)
{
    while (!m_settings.endpoint.empty() && m_settings.endpoint.back() == '/')
        m_settings.endpoint.pop_back();
}

HttpHeaders HubClient::authHeaders(const std::string& url) const
{
    HttpHeaders h;
    if (!m_settings.token.empty() && net::hostOf(url) == net::hostOf(m_settings.endpoint))
        h.set("Authorization", "Bearer " + m_settings.token);
    return h;
}

std::string HubClient::fixEndpoint(const std::string& url) const
{
    const std::string official = "https://huggingface.co";
    if (m_settings.endpoint != official && url.starts_with(official))
        return m_settings.endpoint + url.substr(official.size());
    return url;
}

void HubClient::throwHubError(const HttpResponse& r, const std::string& repo, const std::string& revision,
                              const std::string& file) const
{
    const std::string code = r.headers.get("X-Error-Code").value_or("");
    const std::string detail = errorDetail(r);
    const std::string page = modelPageUrl(repo);
    const bool hasToken = !m_settings.token.empty();
    if (r.status == 401 && detail.find("Invalid credentials") != std::string::npos)
        throw Error(ErrorKind::Network,
                    "the Hugging Face token was rejected (invalid or expired); create a new one at " +
                        m_settings.endpoint + "/settings/tokens and set HF_TOKEN, or unset it for public models");
    if (code == "GatedRepo") {
        if (!hasToken || r.status == 401)
            throw Error(ErrorKind::Network, repo + " is a gated model: log in at " + page +
                                                " and accept its terms, then set HF_TOKEN to a token of that "
                                                "account (or save it in $HF_HOME/token)");
        throw Error(ErrorKind::Network, repo +
                                            " is a gated model and your token's account has no access yet: "
                                            "request access at " +
                                            page +
                                            " and wait for approval (a fine-grained token also needs read "
                                            "access to gated repos)");
    }
    if (code == "RevisionNotFound")
        throw Error(ErrorKind::InvalidArgument, "revision '" + revision + "' not found in " + repo +
                                                    "; give a branch, tag or commit that exists (see " + page +
                                                    "/tree/main)");
    if (code == "EntryNotFound" || (r.status == 404 && !file.empty() && code.empty()))
        throw Error(ErrorKind::InvalidArgument, "'" + file + "' not found in " + repo + " at revision " + revision +
                                                    "; run `novaq hf " + repo + " --list` to see its files");
    if (code == "RepoNotFound" || r.status == 401 || r.status == 404)
        throw Error(ErrorKind::InvalidArgument,
                    "model " + repo + " not found on " + m_settings.endpoint +
                        (hasToken ? " (or your token cannot see it); check the id at " + m_settings.endpoint + "/models"
                                  : "; check the id, or set HF_TOKEN if it is a private model"));
    if (r.status == 403)
        throw Error(ErrorKind::Network,
                    "access to " + repo + " was refused (HTTP 403" + (detail.empty() ? "" : ": " + detail) +
                        "); check your token's permissions at " + m_settings.endpoint + "/settings/tokens");
    if (r.status == 429) {
        const auto after = net::retryAfterSeconds(r.headers);
        throw Error(ErrorKind::Network,
                    "the Hub is rate-limiting requests (HTTP 429); wait " +
                        (after ? std::to_string(long(std::ceil(*after))) + " s" : std::string("a few minutes")) +
                        " and run again" + (hasToken ? "" : ", or set HF_TOKEN for a higher limit"));
    }
    throw Error(ErrorKind::Network, m_settings.endpoint + " answered HTTP " + std::to_string(r.status) + " for " +
                                        net::redactUrl(r.url) + (detail.empty() ? "" : ": " + detail));
}

nlohmann::json HubClient::getJson(const std::string& url, const std::string& repo, const std::string& revision,
                                  std::string* nextUrl) const
{
    net::HttpSettings http = m_download.http;
    if (http.requestTimeoutSeconds == 0)
        http.requestTimeoutSeconds = 60;
    const net::HttpClient client(http);
    net::HttpRequest request;
    request.url = url;
    request.headers = authHeaders(url);
    request.headers.set("Accept", "application/json");
    HttpResponse r;
    int slowAttempts = 0;
    for (int attempt = 1;; ++attempt) {
        r = client.send(request, {}, m_cancel);
        // A silent or trickling Hub is tried maxSlowAttempts times; an answer that is not
        // HTTP (TLS to a plain port, a malformed head) is not retried at all.
        const bool slow = r.failure == net::TransportFailure::NoAnswer || r.failure == net::TransportFailure::TooSlow;
        if (slow)
            ++slowAttempts;
        const bool retry =
            (!r.transportOk() && net::isRetryable(r.failure) &&
             !(slow && slowAttempts >= m_download.maxSlowAttempts)) ||
            (r.transportOk() && (r.status == 429 || r.status == 408 || (r.status >= 500 && r.status <= 599)));
        if (!retry || attempt >= kApiAttempts)
            break;
        double wait =
            std::min(m_download.maxBackoffSeconds, m_download.initialBackoffSeconds * std::pow(2.0, attempt - 1));
        if (const auto after = net::retryAfterSeconds(r.headers)) {
            if (*after > m_download.maxRetryAfterSeconds)
                break;
            wait = *after;
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(long(wait * 1000));
        while (std::chrono::steady_clock::now() < until) {
            checkCancel(m_cancel);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    if (!r.transportOk())
        throw Unreachable("cannot reach " + m_settings.endpoint + ": " + std::string(net::failureName(r.failure)) +
                          " (" + r.failureMessage +
                          "); check the network or proxy, or set HF_ENDPOINT to a mirror (HF_HUB_OFFLINE=1 uses "
                          "the cache only)");
    if (!r.ok())
        throwHubError(r, repo, revision, {});
    if (nextUrl) {
        const std::string next = net::linkTarget(r.headers.get("Link").value_or(""), "next");
        *nextUrl = next.empty() ? std::string() : fixEndpoint(net::resolveUrl(url, next));
        if (!next.empty() && net::schemeOf(*nextUrl).empty())
            throw Error(ErrorKind::Network, m_settings.endpoint + " answered " + net::redactUrl(url) +
                                                " with a next page that is not an http(s) URL; is HF_ENDPOINT a Hub?");
    }
    try {
        return parseJsonStrict(r.body, "the answer", 0, "it");
    } catch (const std::exception& e) {
        throw Error(ErrorKind::Network, m_settings.endpoint + " answered " + net::redactUrl(url) +
                                            " with something that is not JSON (" + e.what() +
                                            "); is HF_ENDPOINT a Hub (or is a proxy in the way)?");
    }
}

SearchPage HubClient::searchPage(const SearchQuery& query, const std::string& pageUrl) const
{
    if (m_settings.offline)
        throw Error(ErrorKind::Network, "search needs the network, but HF_HUB_OFFLINE is set; unset it to search");
    std::string url = pageUrl;
    if (url.empty()) {
        std::string sort = query.sort == "updated" ? "lastModified" : query.sort;
        url = m_settings.endpoint + "/api/models?search=" + net::percentEncode(query.text, false);
        if (!query.format.empty())
            url += "&filter=" + net::percentEncode(query.format, false);
        if (!query.author.empty())
            url += "&author=" + net::percentEncode(query.author, false);
        if (!sort.empty())
            url += "&sort=" + net::percentEncode(sort, false) + "&direction=-1";
        url += "&limit=" + std::to_string(std::clamp(query.limit, 1, kPageSizeMax));
        for (const char* field :
             {"downloads", "likes", "lastModified", "pipeline_tag", "library_name", "gated", "tags"})
            url += std::string("&expand=") + field;
    }
    SearchPage page;
    const nlohmann::json j = getJson(url, query.text, {}, &page.nextUrl);
    if (!j.is_array())
        throw Error(ErrorKind::Network, "the Hub's search answer is not a list; is HF_ENDPOINT a Hub?");
    for (const auto& row : j)
        if (row.is_object())
            page.models.push_back(parseSummary(row));
    return page;
}

std::vector<ModelSummary> HubClient::search(const SearchQuery& query) const
{
    std::vector<ModelSummary> all;
    std::string next;
    std::set<std::string> seen;
    int pages = 0;
    do {
        if (++pages > m_settings.maxPages)
            throw Error(ErrorKind::Network, "the Hub's search results go on past " +
                                                std::to_string(m_settings.maxPages) +
                                                " pages without reaching --limit; stopped. Is HF_ENDPOINT a Hub?");
        SearchPage page = searchPage(query, next);
        for (ModelSummary& m : page.models)
            if (int(all.size()) < query.limit)
                all.push_back(std::move(m));
        if (!page.nextUrl.empty() && !seen.insert(page.nextUrl).second && int(all.size()) < query.limit)
            throw Error(ErrorKind::Network, "the Hub's search results link back to a page already read (" +
                                                net::redactUrl(page.nextUrl) + "); stopped. Is HF_ENDPOINT a Hub?");
        next = page.nextUrl;
    } while (!next.empty() && int(all.size()) < query.limit);
    return all;
}

std::vector<RepoFile> HubClient::tree(const std::string& repo, const std::string& commit) const
{
    std::vector<RepoFile> files;
    std::string url =
        m_settings.endpoint + "/api/models/" + repo + "/tree/" + net::percentEncode(commit, false) + "?recursive=true";
    std::set<std::string> seen;
    for (int pages = 1; !url.empty(); ++pages) {
        if (pages > m_settings.maxPages)
            throw Error(ErrorKind::Network, "the Hub's file list of " + repo + " goes on past " +
                                                std::to_string(m_settings.maxPages) +
                                                " pages; stopped. Is HF_ENDPOINT a Hub?");
        if (!seen.insert(url).second)
            throw Error(ErrorKind::Network, "the Hub's file list of " + repo + " links back to a page already read (" +
                                                net::redactUrl(url) + "); stopped. Is HF_ENDPOINT a Hub?");
        std::string next;
        const nlohmann::json j = getJson(url, repo, commit, &next);
        if (!j.is_array())
            throw Error(ErrorKind::Network, "the Hub's file list of " + repo + " is not a list");
        for (const auto& e : j) {
            if (!e.is_object() || jsonString(e, "type") != "file")
                continue;
            RepoFile f;
            f.path = jsonString(e, "path");
            std::optional<uint64_t> size = jsonSize(e, "size");
            f.gitOid = jsonString(e, "oid");
            if (const auto lfs = e.find("lfs"); lfs != e.end() && lfs->is_object()) {
                f.sha256 = lower(jsonString(*lfs, "oid"));
                if (lfs->contains("size"))
                    size = jsonSize(*lfs, "size");
            }
            if (!size)
                throw Error(ErrorKind::Network, "the Hub listed the file '" + f.path.substr(0, 200) + "' of " + repo +
                                                    " without a valid size; refusing to download it");
            f.size = *size;
            if (!isSafeRepoPath(f.path) || (!f.sha256.empty() && !isHex(f.sha256, 64)) ||
                (f.sha256.empty() && !isHex(f.gitOid, 40)))
                throw Error(ErrorKind::Network,
                            "the Hub listed a file of " + repo + " with an unsafe path or id; refusing to download it");
            files.push_back(std::move(f));
        }
        url = next;
    }
    return files;
}

ModelInfo HubClient::modelInfo(const std::string& repo, const std::string& revision) const
{
    validateRepoId(repo);
    validateRevision(revision);
    if (m_settings.offline)
        throw Error(ErrorKind::Network, "model details need the network, but HF_HUB_OFFLINE is set");
    const nlohmann::json j =
        getJson(m_settings.endpoint + "/api/models/" + repo + "/revision/" + net::percentEncode(revision, false), repo,
                revision, nullptr);
    if (!j.is_object())
        throw Error(ErrorKind::Network, "the Hub's details of " + repo + " are not an object");
    ModelInfo info;
    info.id = jsonString(j, "id").empty() ? repo : jsonString(j, "id");
    info.revision = revision;
    info.commit = lower(jsonString(j, "sha"));
    if (!isHex(info.commit, 40))
        throw Error(ErrorKind::Network, "the Hub did not say which commit '" + revision + "' of " + repo +
                                            " is; is HF_ENDPOINT a Hub (or is a proxy in the way)?");
    info.gated = gatedText(j);
    info.isPrivate = j.value("private", false);
    info.pipelineTag = jsonString(j, "pipeline_tag");
    info.libraryName = jsonString(j, "library_name");
    info.downloads = jsonCount(j, "downloads");
    info.likes = jsonCount(j, "likes");
    info.lastModified = jsonString(j, "lastModified");
    if (const auto c = j.find("config"); c != j.end() && c->is_object()) {
        if (const auto a = c->find("architectures");
            a != c->end() && a->is_array() && !a->empty() && a->front().is_string())
            info.architecture = a->front().get<std::string>();
        else
            info.architecture = jsonString(*c, "model_type");
    }
    if (const auto s = j.find("safetensors"); s != j.end() && s->is_object())
        info.parameters = jsonCount(*s, "total");
    if (const auto g = j.find("gguf"); g != j.end() && g->is_object()) {
        if (info.parameters == 0)
            info.parameters = jsonCount(*g, "total");
        if (info.architecture.empty())
            info.architecture = jsonString(*g, "architecture");
    }
    info.files = tree(repo, info.commit);
    return info;
}

namespace {

const RepoFile* findFile(const std::vector<RepoFile>& files, const std::string& path)
{
    for (const RepoFile& f : files)
        if (f.path == path)
            return &f;
    return nullptr;
}

// A sharded checkpoint: its index first, then config.json when the repo has one.
FileChoice indexChoice(const std::vector<RepoFile>& files, const std::string& index, const std::string& what)
{
    FileChoice choice;
    choice.indexPath = index;
    choice.modelPath = index;
    choice.files.push_back(index);
    if (findFile(files, "config.json"))
        choice.files.push_back("config.json");
    choice.description = what + " (sharded, by " + index + ")";
    return choice;
}

// One weights file, with config.json when `withConfig` and the repo has one.
FileChoice singleChoice(const std::vector<RepoFile>& files, const std::string& path, bool withConfig,
                        const std::string& description)
{
    FileChoice choice;
    choice.files.push_back(path);
    choice.modelPath = path;
    if (withConfig && findFile(files, "config.json"))
        choice.files.push_back("config.json");
    choice.description = description;
    return choice;
}

// "\n  m-Q4_K_M.gguf  (4.1 GiB)..." of the repo's GGUF weights, capped.
std::string ggufList(const std::vector<RepoFile>& files)
{
    std::vector<std::string> lines;
    for (const RepoFile& f : files)
        if (isWeightsGguf(f))
            lines.push_back(f.path + "  (" + humanBytes(f.size) + ")");
    return cappedList(lines);
}

// --file: an exact path, else the one GGUF whose name contains `wanted` (case-insensitive).
FileChoice chooseWantedFile(const std::vector<RepoFile>& files, const std::string& wanted, const std::string& repo)
{
    const RepoFile* exact = findFile(files, wanted);
    std::vector<const RepoFile*> matches;
    if (!exact)
        for (const RepoFile& f : files)
            if (isWeightsGguf(f) && lower(f.path).find(lower(wanted)) != std::string::npos)
                matches.push_back(&f);
    if (!exact && matches.size() == 1)
        exact = matches.front();
    if (!exact)
        throw Error(ErrorKind::InvalidArgument,
                    "'" + wanted + "' " +
                        (matches.empty() ? "is not a file of " + repo
                                         : "matches several files of " + repo + "; give the full name") +
                        (ggufList(files).empty() ? "; run `novaq hf " + repo + " --list` to see its files"
                                                 : ". Its GGUF files:" + ggufList(files)));
    if (endsWithIgnoringCase(exact->path, ".index.json"))
        return indexChoice(files, exact->path,
                           endsWithIgnoringCase(exact->path, ".bin.index.json") ? "PyTorch" : "safetensors");
    return singleChoice(files, exact->path, !endsWithIgnoringCase(exact->path, ".gguf"), exact->path);
}

} // namespace

FileChoice chooseFiles(const std::vector<RepoFile>& files, const std::string& wanted, const std::string& repo)
{
    if (!wanted.empty())
        return chooseWantedFile(files, wanted, repo);

    std::vector<const RepoFile*> safetensors;
    std::vector<const RepoFile*> ggufs;
    for (const RepoFile& f : files) {
        if (f.path.find('/') != std::string::npos)
            continue; // weights at the top level; subfolders hold other variants
        if (endsWithIgnoringCase(f.path, ".safetensors"))
            safetensors.push_back(&f);
        else if (isWeightsGguf(f))
            ggufs.push_back(&f);
    }
    if (findFile(files, "model.safetensors.index.json"))
        return indexChoice(files, "model.safetensors.index.json", "safetensors");
    const RepoFile* single = findFile(files, "model.safetensors");
    if (!single && safetensors.size() == 1)
        single = safetensors.front();
    if (single)
        return singleChoice(files, single->path, true, "safetensors (" + single->path + ")");
    if (safetensors.size() > 1) {
        std::vector<std::string> lines;
        for (const RepoFile* f : safetensors)
            lines.push_back(f->path);
        throw Error(ErrorKind::InvalidArgument, repo + " has " + std::to_string(safetensors.size()) +
                                                    " safetensors files and no index:" + cappedList(lines) +
                                                    "\nPick one with --file");
    }
    if (findFile(files, "pytorch_model.bin.index.json"))
        return indexChoice(files, "pytorch_model.bin.index.json", "PyTorch");
    if (const RepoFile* bin = findFile(files, "pytorch_model.bin"))
        return singleChoice(files, bin->path, true, "PyTorch (pytorch_model.bin)");
    if (ggufs.size() == 1)
        return singleChoice(files, ggufs.front()->path, false, "GGUF (" + ggufs.front()->path + ")");
    if (ggufs.size() > 1)
        throw Error(ErrorKind::InvalidArgument, repo + " has " + std::to_string(ggufs.size()) +
                                                    " GGUF files; pick one with --file (a name or a quant such as "
                                                    "Q8_0):" +
                                                    ggufList(files));
    throw Error(ErrorKind::InvalidArgument, repo +
                                                " has no model weights NOVAQ reads at its top level (safetensors, "
                                                "PyTorch or GGUF); run `novaq hf " +
                                                repo + " --list` and pick a file with --file");
}

std::vector<std::string> shardsOfIndex(const fs::path& index)
{
    std::ifstream in(index);
    nlohmann::json j;
    try {
        j = parseJsonStrict(std::string(std::istreambuf_iterator<char>(in), {}), index, 0, "the index");
    } catch (const std::exception& e) {
        throw Error(ErrorKind::InvalidInput, std::string(e.what()) + "; it is not a valid index");
    }
    std::vector<std::string> shards;
    std::set<std::string> seen;
    const auto map = j.find("weight_map");
    if (map == j.end() || !map->is_object())
        throw Error(ErrorKind::InvalidInput, index.string() + " has no weight_map; it is not a checkpoint index");
    const std::string folder = fs::path(index.filename()).parent_path().string();
    for (const auto& [tensor, file] : map->items()) {
        if (!file.is_string() || !isSafeRepoPath(file.get<std::string>()))
            throw Error(ErrorKind::InvalidInput,
                        index.string() + " names an unsafe shard path for tensor '" + tensor + "'");
        if (seen.insert(file.get<std::string>()).second)
            shards.push_back(file.get<std::string>());
    }
    return shards;
}

fs::path HubClient::repoFolder(const std::string& repo) const
{
    std::string name = "models--";
    for (const char c : repo)
        name += c == '/' ? std::string("--") : std::string(1, c);
    return m_settings.cacheDir / name;
}

std::optional<std::string> HubClient::cachedCommit(const std::string& repo, const std::string& revision) const
{
    if (isHex(revision, 40))
        return lower(revision);
    std::ifstream in(repoFolder(repo) / "refs" / revision);
    std::string commit;
    if (in && std::getline(in, commit) && isHex(trim(commit), 40))
        return lower(trim(commit));
    return std::nullopt;
}

Snapshot HubClient::fromCache(const std::string& repo, const std::string& revision, const std::string& file,
                              const std::string& why) const
{
    const auto commit = cachedCommit(repo, revision);
    const fs::path folder = commit ? repoFolder(repo) / "snapshots" / *commit : fs::path();
    std::error_code ec;
    if (!commit || !fs::is_directory(folder, ec))
        throw Error(ErrorKind::Network, why + ", and " + repo + " (revision " + revision +
                                            ") is not in the Hugging Face cache at " + m_settings.cacheDir.string() +
                                            (m_settings.offline ? "; unset HF_HUB_OFFLINE to download it"
                                                                : "; connect to the network and run again"));
    std::vector<RepoFile> files;
    for (fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, ec), end;
         !ec && it != end; it.increment(ec)) {
        std::error_code e2;
        if (it->is_regular_file(e2))
            files.push_back(
                {it->path().lexically_relative(folder).generic_string(), uint64_t(it->file_size(e2)), {}, {}});
    }
    const FileChoice choice = chooseFiles(files, file, repo);
    Snapshot s;
    s.repo = repo;
    s.commit = *commit;
    s.folder = folder;
    s.modelPath = folder / choice.modelPath;
    s.files = choice.files;
    s.offline = true;
    s.description = choice.description;
    if (!choice.indexPath.empty())
        for (const std::string& shard : shardsOfIndex(folder / choice.indexPath)) {
            if (!fs::exists(folder / shard, ec))
                throw Error(ErrorKind::Network, why + ", and the cached " + repo + " lacks the shard " + shard +
                                                    "; run again with the network to complete it");
            s.files.push_back(shard);
        }
    s.filesCached = int(s.files.size());
    return s;
}

fs::path HubClient::fetchFile(const std::string& repo, const std::string& commit, const RepoFile& file,
                              Snapshot& snapshot) const
{
    const fs::path folder = repoFolder(repo);
    const fs::path link = folder / "snapshots" / commit / file.path;
    std::error_code ec;
    if (fs::is_regular_file(link, ec) && fs::file_size(link, ec) == file.size && !ec) {
        ++snapshot.filesCached;
        return link;
    }
    const fs::path blob = folder / "blobs" / file.blobName();
    if (!(fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == file.size && !ec)) {
        net::DownloadTarget target;
        target.url =
            m_settings.endpoint + "/" + repo + "/resolve/" + commit + "/" + net::percentEncode(file.path, true);
        target.headers = authHeaders(target.url);
        target.destination = blob;
        target.expectedSize = file.size;
        target.expectedSha256 = file.sha256;
        target.label = file.path;
        net::Downloader downloader(m_download, m_sink, m_cancel);
        try {
            downloader.download(target);
        } catch (const net::HttpStatusError& e) {
            if (e.status() == 404 || e.status() == 416 || e.status() >= 500)
                // The tree listed this file at this commit: a 404 now is the Hub's fault.
                throw Error(ErrorKind::Network, "the Hub lists " + file.path + " in " + repo + " at commit " +
                                                    commit.substr(0, 12) + ", but answered HTTP " +
                                                    std::to_string(e.status()) + " when it was downloaded (" +
                                                    e.what() + "); try again later");
            HttpResponse r;
            r.status = e.status();
            r.headers = e.headers();
            r.url = e.url();
            throwHubError(r, repo, commit, file.path);
        }
        snapshot.downloadedBytes += file.size;
        ++snapshot.filesDownloaded;
    } else {
        ++snapshot.filesCached;
    }
    fs::create_directories(link.parent_path(), ec);
    if (ec)
        throw Error(ErrorKind::Io, "cannot create " + link.parent_path().string() + ": " + ec.message());
    fs::remove(link, ec); // a stale or broken link
    fs::create_symlink(fs::absolute(blob).lexically_relative(fs::absolute(link.parent_path())), link, ec);
    if (ec) {
        ec.clear();
        fs::copy_file(blob, link, fs::copy_options::overwrite_existing, ec); // no symlinks here: a copy
        if (ec)
            throw Error(ErrorKind::Io,
                        "cannot place " + file.path + " in the cache at " + link.string() + ": " + ec.message());
    }
    return link;
}

Snapshot HubClient::download(const std::string& repo, const std::string& revision, const std::string& file) const
{
    validateRepoId(repo);
    validateRevision(revision);
    if (m_settings.offline)
        return fromCache(repo, revision, file, "offline (HF_HUB_OFFLINE is set)");
    ModelInfo info;
    try {
        info = modelInfo(repo, revision);
    } catch (const Unreachable& e) {
        if (cachedCommit(repo, revision))
            return fromCache(repo, revision, file, e.what());
        throw;
    }
    FileChoice choice = chooseFiles(info.files, file, repo);
    const auto findFile = [&](const std::string& path) -> const RepoFile& {
        for (const RepoFile& f : info.files)
            if (f.path == path)
                return f;
        throw Error(ErrorKind::InvalidInput, repo + " names '" + path + "' in " +
                                                 (choice.indexPath.empty() ? "its files" : choice.indexPath) +
                                                 ", but has no such file at commit " + info.commit);
    };

    Snapshot s;
    s.repo = repo;
    s.commit = info.commit;
    s.folder = repoFolder(repo) / "snapshots" / info.commit;
    s.description = choice.description;
    std::vector<std::string> paths = choice.files;
    if (!choice.indexPath.empty()) {
        const fs::path index = fetchFile(repo, info.commit, findFile(choice.indexPath), s);
        for (const std::string& shard : shardsOfIndex(index))
            paths.push_back(shard);
    }
    uint64_t missing = 0;
    std::error_code ec;
    for (const std::string& p : paths)
        if (!fs::exists(s.folder / p, ec))
            missing = std::min(missing + findFile(p).size, kMaxFileSize); // no overflow with many shards
    if (m_download.checkFreeSpace)
        net::requireFreeSpace(repoFolder(repo) / "blobs", missing, "downloading " + repo);
    for (const std::string& p : paths)
        if (p != choice.indexPath)
            fetchFile(repo, info.commit, findFile(p), s);
    if (revision != info.commit) {
        const fs::path ref = repoFolder(repo) / "refs" / revision;
        fs::create_directories(ref.parent_path(), ec);
        std::ofstream out(ref, std::ios::trunc);
        out << info.commit;
    }
    s.files = paths;
    s.modelPath = s.folder / choice.modelPath;
    return s;
}

} // namespace novaq::hf
