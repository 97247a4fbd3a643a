#include "novaq/sources/ollama.h"

#include "novaq/io/error.h"
#include "novaq/io/json.h"
#include "novaq/net/http_client.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace novaq::ollama {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxManifestBytes = size_t(4) << 20;
constexpr uint64_t kMaxLayerSize = uint64_t(1) << 50; // 1 PiB: a larger size is a malformed manifest

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

bool validPart(const std::string& s, size_t maxLength, bool allowDot, bool allowColon)
{
    if (s.empty() || s.size() > maxLength)
        return false;
    const auto first = static_cast<unsigned char>(s.front());
    if (!std::isalnum(first) && first != '_')
        return false;
    return std::all_of(s.begin(), s.end(), [&](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-' || (allowDot && c == '.') || (allowColon && c == ':');
    });
}

std::string readSmallFile(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(ErrorKind::Io, "cannot read " + path.string());
    std::string text;
    text.resize(kMaxManifestBytes + 1);
    in.read(text.data(), std::streamsize(text.size()));
    text.resize(size_t(in.gcount()));
    if (text.size() > kMaxManifestBytes)
        throw Error(ErrorKind::InvalidInput, path.string() + " is too large to be an Ollama manifest");
    return text;
}

std::string env(const char* name)
{
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

fs::path blobPath(const fs::path& store, const std::string& digest)
{
    return store / "blobs" / ("sha256-" + digestHex(digest));
}

// What `ollama show` and /api/tags report of a model in a store comes from its config blob
// (Ollama's ConfigV2: model_family or model_families, model_type such as "8.0B", file_type
// such as "Q4_0"). A missing or unreadable config leaves the fields empty: it is a detail of
// the listing, not a reason to hide the model.
void readStoreConfig(const fs::path& store, const Layer& config, ListedModel& row)
{
    if (config.digest.empty())
        return;
    try {
        const nlohmann::json j = parseJsonStrict(readSmallFile(blobPath(store, config.digest)),
                                                 blobPath(store, config.digest), 0, "the config blob");
        if (!j.is_object())
            return;
        const auto text = [&j](const char* key) {
            const auto it = j.find(key);
            return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        row.family = text("model_family");
        if (const auto families = j.find("model_families"); row.family.empty() && families != j.end() &&
                                                            families->is_array() && !families->empty() &&
                                                            families->front().is_string())
            row.family = families->front().get<std::string>();
        row.parameterSize = text("model_type");
        row.quantization = text("file_type");
    } catch (const std::exception&) {
        // not there or not JSON: the fields stay empty
    }
}

} // namespace

ModelName ModelName::parse(const std::string& text)
{
    ModelName n;
    std::string rest = text;
    const auto bad = [&](const std::string& why) {
        return Error(ErrorKind::InvalidArgument, "'" + text + "' is not an Ollama model name: " + why +
                                                     " (write model, model:tag, namespace/model:tag or "
                                                     "host/namespace/model:tag, e.g. llama3.2:1b)");
    };
    if (const size_t s = rest.find("://"); s != std::string::npos) {
        n.scheme = lower(rest.substr(0, s));
        if (n.scheme != "http" && n.scheme != "https")
            throw bad("only http:// and https:// registries exist");
        rest = rest.substr(s + 3);
    }
    if (rest.find('@') != std::string::npos)
        throw bad("names with @digest are not supported; use a tag");
    const size_t colon = rest.rfind(':');
    const size_t slash = rest.rfind('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
        n.tag = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
    }
    std::vector<std::string> parts;
    std::stringstream ss(rest);
    std::string part;
    while (std::getline(ss, part, '/'))
        parts.push_back(part);
    if (!rest.empty() && rest.back() == '/')
        parts.push_back({});
    if (parts.empty() || parts.size() > 3)
        throw bad("expected at most host/namespace/model");
    n.model = parts.back();
    if (parts.size() >= 2)
        n.ns = parts[parts.size() - 2];
    if (parts.size() == 3)
        n.host = lower(parts[0]);
    if (!validPart(n.host, 350, true, true))
        throw bad("the host '" + n.host + "' is invalid");
    if (!validPart(n.ns, 80, false, false))
        throw bad("the namespace '" + n.ns + "' is invalid");
    if (!validPart(n.model, 80, true, false))
        throw bad("the model '" + n.model + "' is invalid");
    if (!validPart(n.tag, 80, true, false))
        throw bad("the tag '" + n.tag + "' is invalid");
    return n;
}

std::string ModelName::full() const { return host + "/" + ns + "/" + model + ":" + tag; }

std::string ModelName::shortest() const
{
    if (host != kDefaultHost)
        return full();
    if (ns != kDefaultNamespace)
        return ns + "/" + model + ":" + tag;
    return model + ":" + tag;
}

fs::path ModelName::manifestPath() const { return fs::path("manifests") / host / ns / model / tag; }

std::string digestHex(const std::string& digest)
{
    const std::string d = lower(digest);
    if ((d.starts_with("sha256:") || d.starts_with("sha256-")) && d.size() == 71 &&
        std::all_of(d.begin() + 7, d.end(), [](unsigned char c) { return std::isxdigit(c); }))
        return d.substr(7);
    throw Error(ErrorKind::InvalidInput, "'" + digest + "' is not a sha256 digest");
}

const Layer* Manifest::modelLayer() const
{
    for (const Layer& l : layers)
        if (l.mediaType == kModelMediaType)
            return &l;
    return nullptr;
}

Manifest Manifest::parse(const std::string& json, const std::string& what)
{
    Manifest m;
    nlohmann::json j;
    try {
        j = parseJsonStrict(json, "the manifest", 0, "it");
    } catch (const Error& e) {
        throw Error(ErrorKind::InvalidInput, what + " is not an Ollama manifest (" + e.what() + ")");
    }
    try {
        const auto layer = [&](const nlohmann::json& l) {
            Layer out;
            out.mediaType = l.value("mediaType", "");
            out.digest = l.value("digest", "");
            if (const auto size = l.find("size"); size != l.end()) {
                if (!size->is_number_unsigned() || size->get<uint64_t>() > kMaxLayerSize)
                    throw std::invalid_argument("a layer's size is not a byte count");
                out.size = size->get<uint64_t>();
            }
            digestHex(out.digest); // validates
            return out;
        };
        if (j.contains("config") && j["config"].is_object())
            m.config = layer(j["config"]);
        for (const auto& l : j.at("layers"))
            m.layers.push_back(layer(l));
    } catch (const Error&) {
        throw Error(ErrorKind::InvalidInput, what + " names a layer with an invalid digest");
    } catch (const std::exception& e) {
        throw Error(ErrorKind::InvalidInput, what + " is not an Ollama manifest (" + e.what() + ")");
    }
    return m;
}

fs::path novaqStore()
{
    if (const std::string x = env("XDG_CACHE_HOME"); !x.empty())
        return fs::path(x) / "novaq" / "ollama";
    return fs::path(env("HOME")) / ".cache" / "novaq" / "ollama";
}

std::vector<fs::path> storeFolders()
{
    std::vector<fs::path> stores;
    if (const std::string m = env("OLLAMA_MODELS"); !m.empty()) {
        stores.push_back(m);
    } else {
        if (const std::string home = env("HOME"); !home.empty())
            stores.push_back(fs::path(home) / ".ollama" / "models");
        stores.push_back("/usr/share/ollama/.ollama/models");
    }
    stores.push_back(novaqStore());
    return stores;
}

std::optional<LocalModel> findLocal(const ModelName& name, const std::vector<fs::path>& stores)
{
    for (const fs::path& store : stores) {
        std::error_code ec;
        fs::path manifest = store / name.manifestPath();
        if (!fs::is_regular_file(manifest, ec)) {
            ModelName lowered = name;
            lowered.ns = lower(lowered.ns);
            lowered.model = lower(lowered.model);
            lowered.tag = lower(lowered.tag);
            manifest = store / lowered.manifestPath();
            if (!fs::is_regular_file(manifest, ec))
                continue;
        }
        const Manifest m = Manifest::parse(readSmallFile(manifest), manifest.string());
        const Layer* layer = m.modelLayer();
        if (!layer)
            throw Error(ErrorKind::Unsupported, name.shortest() + " (" + manifest.string() +
                                                    ") has no GGUF model layer; newer safetensors-based Ollama "
                                                    "models are not read yet");
        const fs::path blob = blobPath(store, layer->digest);
        if (!fs::is_regular_file(blob, ec))
            continue; // a manifest without its blob (an interrupted pull): not usable here
        LocalModel local;
        local.name = name;
        local.store = store;
        local.blob = blob;
        local.size = uint64_t(fs::file_size(blob, ec));
        return local;
    }
    return std::nullopt;
}

std::string serverUrl()
{
    std::string host = env("OLLAMA_HOST");
    if (host.empty())
        return "http://127.0.0.1:11434";
    while (!host.empty() && host.back() == '/')
        host.pop_back();
    std::string scheme = "http";
    if (const size_t s = host.find("://"); s != std::string::npos) {
        scheme = host.substr(0, s);
        host = host.substr(s + 3);
    }
    const size_t slash = host.find('/');
    const std::string path = slash == std::string::npos ? "" : host.substr(slash);
    std::string hostPort = slash == std::string::npos ? host : host.substr(0, slash);
    if (hostPort.find(':') == std::string::npos || hostPort.back() == ']')
        hostPort += scheme == "https" ? ":443" : ":11434";
    return scheme + "://" + hostPort + path;
}

std::optional<std::vector<ListedModel>> listFromServer(const std::string& server, const CancelToken* cancel)
{
    net::HttpSettings settings;
    settings.connectTimeoutSeconds = 2;
    settings.requestTimeoutSeconds = 10;
    const net::HttpClient client(settings);
    net::HttpRequest request;
    request.url = server + "/api/tags";
    net::HttpResponse r;
    try {
        r = client.send(request, {}, cancel, size_t(16) << 20);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Cancelled)
            throw;
        return std::nullopt;
    }
    if (!r.ok())
        return std::nullopt;
    std::vector<ListedModel> models;
    try {
        const nlohmann::json j = parseJsonStrict(r.body, request.url, 0, "the model list");
        for (const auto& m : j.at("models")) {
            ListedModel row;
            row.name = m.value("name", m.value("model", ""));
            row.size = m.value("size", uint64_t(0));
            row.modified = m.value("modified_at", "");
            if (const auto d = m.find("details"); d != m.end() && d->is_object()) {
                row.family = d->value("family", "");
                row.parameterSize = d->value("parameter_size", "");
                row.quantization = d->value("quantization_level", "");
            }
            row.where = "server " + server;
            models.push_back(std::move(row));
        }
    } catch (const std::exception&) {
        return std::nullopt; // not an Ollama server
    }
    return models;
}

std::vector<ListedModel> listStores(const std::vector<fs::path>& stores)
{
    std::vector<ListedModel> rows;
    std::set<std::string> seen;
    for (const fs::path& store : stores) {
        const fs::path root = store / "manifests";
        std::error_code ec;
        if (!fs::is_directory(root, ec))
            continue;
        for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
            if (it.depth() != 3 || !it->is_regular_file())
                continue;
            const fs::path rel = it->path().lexically_relative(root);
            std::vector<std::string> parts;
            for (const auto& p : rel)
                parts.push_back(p.string());
            if (parts.size() != 4)
                continue;
            ModelName name;
            name.host = parts[0];
            name.ns = parts[1];
            name.model = parts[2];
            name.tag = parts[3];
            try {
                const Manifest m = Manifest::parse(readSmallFile(it->path()), it->path().string());
                const Layer* layer = m.modelLayer();
                if (!layer || !fs::exists(blobPath(store, layer->digest)))
                    continue;
                if (!seen.insert(name.full()).second)
                    continue;
                ListedModel row;
                row.name = name.shortest();
                for (const Layer& l : m.layers)
                    row.size += l.size;
                readStoreConfig(store, m.config, row);
                row.where = store.string();
                rows.push_back(std::move(row));
            } catch (const Error&) {
                continue; // a damaged manifest is not a model to offer
            }
        }
    }
    std::sort(rows.begin(), rows.end(), [](const ListedModel& a, const ListedModel& b) { return a.name < b.name; });
    return rows;
}

LocalModel pull(const ModelName& name, bool insecure, const fs::path& store, const net::DownloadSettings& settings,
                net::DownloadSink* sink, const CancelToken* cancel)
{
    std::string scheme = name.scheme;
    if (insecure && scheme == "https")
        scheme = "http";
    const std::string base = scheme + "://" + name.host + "/v2/" + name.ns + "/" + name.model;
    net::HttpSettings http = settings.http;
    if (http.requestTimeoutSeconds == 0)
        http.requestTimeoutSeconds = 60;
    const net::HttpClient client(http);
    net::HttpRequest request;
    request.url = base + "/manifests/" + name.tag;
    request.headers.set("Accept", kManifestMediaType);
    const net::HttpResponse r = client.send(request, {}, cancel, kMaxManifestBytes);
    if (!r.transportOk())
        throw Error(ErrorKind::Network,
                    "cannot reach the registry " + name.host + ": " + std::string(net::failureName(r.failure)) + " (" +
                        r.failureMessage + ")" +
                        (scheme == "https" ? "; for a plain-http registry pass --insecure" : std::string()));
    if (r.status == 404)
        throw Error(ErrorKind::InvalidArgument, name.shortest() + " is not in the registry " + name.host +
                                                    "; check the name and tag (https://ollama.com/library lists "
                                                    "the public ones)");
    if (r.status == 401 || r.status == 403)
        throw Error(ErrorKind::Unsupported, "the registry " + name.host + " asks for authentication for " +
                                                name.shortest() + ", which NOVAQ does not do yet; run `ollama pull " +
                                                name.shortest() + "` and then `novaq ollama " + name.shortest() +
                                                "` (NOVAQ reads Ollama's store in place)");
    if (!r.ok())
        throw Error(ErrorKind::Network, "the registry " + name.host + " answered HTTP " + std::to_string(r.status) +
                                            " for the manifest of " + name.shortest());
    const Manifest manifest = Manifest::parse(r.body, "the manifest of " + name.shortest());
    const Layer* layer = manifest.modelLayer();
    if (!layer)
        throw Error(ErrorKind::Unsupported, name.shortest() +
                                                " has no GGUF model layer; newer safetensors-based Ollama models "
                                                "are not read yet");

    const fs::path blob = blobPath(store, layer->digest);
    std::error_code ec;
    if (!(fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == layer->size)) {
        net::DownloadTarget target;
        target.url = base + "/blobs/" + layer->digest;
        target.destination = blob;
        target.expectedSize = layer->size;
        target.expectedSha256 = digestHex(layer->digest);
        target.label = name.shortest();
        net::Downloader downloader(settings, sink, cancel);
        try {
            downloader.download(target);
        } catch (const net::HttpStatusError& e) {
            throw Error(ErrorKind::Network, "the registry " + name.host + " refused the weights of " + name.shortest() +
                                                " (HTTP " + std::to_string(e.status()) + ")");
        }
    }
    const fs::path manifestFile = store / name.manifestPath();
    fs::create_directories(manifestFile.parent_path(), ec);
    fs::path tmp = manifestFile;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << r.body;
        if (!out)
            throw Error(ErrorKind::Io, "cannot write " + tmp.string());
    }
    fs::rename(tmp, manifestFile, ec);
    if (ec)
        throw Error(ErrorKind::Io, "cannot write " + manifestFile.string() + ": " + ec.message());
    LocalModel local;
    local.name = name;
    local.store = store;
    local.blob = blob;
    local.size = layer->size;
    return local;
}

} // namespace novaq::ollama
