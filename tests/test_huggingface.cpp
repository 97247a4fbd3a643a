// The Hugging Face source against a scripted Hub and a storage host on another port, both on
// 127.0.0.1: search with pagination, details and tree, downloads into the huggingface_hub
// cache layout, cache reuse without requests, offline, gated (401/403), not found, invalid
// token, rate limits, checksum mismatch, the token kept from the storage host and out of
// every message, file choice, environment variables; then `novaq hf` end to end. A hostile
// Hub: listings that page on forever or loop, answers that are not JSON or not HTTP, sizes
// that are not sizes, a listed file that is missing, a repo with 100,000 files; each fails
// with a bounded number of requests as a network error (exit 7), never as bad usage.

#include "http_test_server.h"
#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/net/sha256.h"
#include "novaq/pipeline/compress.h"
#include "novaq/sources/huggingface.h"

#include <QProcess>
#include <QProcessEnvironment>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace novaq;
using novaq::test::HttpTestServer;
using novaq::test::ScriptedResponse;
using novaq::test::SeenRequest;
namespace fs = std::filesystem;

namespace {

constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kGoodToken = "hf_GoodSecretToken123";

// A safetensors file with F32 matrices of the given shapes.
std::string safetensors(const std::vector<std::tuple<std::string, int, int>>& tensors, uint64_t seed)
{
    std::ostringstream header;
    std::string data;
    header << "{";
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& [name, rows, cols] = tensors[i];
        const auto values = test::gaussian(size_t(rows) * size_t(cols), seed + i);
        const size_t begin = data.size();
        data.append(reinterpret_cast<const char*>(values.data()), values.size() * 4);
        header << (i ? "," : "") << '"' << name << R"(":{"dtype":"F32","shape":[)" << rows << "," << cols
               << R"(],"data_offsets":[)" << begin << "," << data.size() << "]}";
    }
    header << "}";
    return test::makeSafetensors(header.str(), data);
}

struct RepoSpec {
    std::map<std::string, std::string> files; // path -> content
    std::set<std::string> lfs;                // paths stored in LFS (served from storage)
    std::string gated = "false";
    std::map<std::string, std::string> wrongSha; // path -> the sha256 the tree claims instead
};

// A scripted Hub (API + resolve) and a storage host the resolve redirects LFS files to.
class FakeHub {
public:
    FakeHub()
    {
        RepoSpec tiny;
        tiny.files["model.safetensors"] = safetensors({{"layers.0.weight", 64, 128}, {"layers.1.weight", 96, 64}}, 5);
        tiny.files["config.json"] = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama"})";
        tiny.files["README.md"] = "# tiny\n";
        tiny.lfs = {"model.safetensors"};
        repos["org/tiny"] = tiny;

        RepoSpec sharded;
        sharded.files["model-00001-of-00002.safetensors"] = safetensors({{"a.weight", 64, 64}}, 11);
        sharded.files["model-00002-of-00002.safetensors"] = safetensors({{"b.weight", 64, 64}}, 12);
        sharded.files["model.safetensors.index.json"] =
            R"({"metadata":{"total_size":32768},"weight_map":{"a.weight":"model-00001-of-00002.safetensors",)"
            R"("b.weight":"model-00002-of-00002.safetensors"}})";
        sharded.files["config.json"] = R"({"model_type":"llama"})";
        sharded.lfs = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
        repos["org/sharded"] = sharded;

        RepoSpec gated = tiny;
        gated.gated = "manual";
        repos["org/gated"] = gated;

        RepoSpec corrupt = tiny;
        corrupt.wrongSha["model.safetensors"] = std::string(64, 'e');
        repos["org/corrupt"] = corrupt;

        RepoSpec ggufs;
        ggufs.files["tiny-Q4_K_M.gguf"] = "GGUF-not-really";
        ggufs.files["tiny-Q8_0.gguf"] = "GGUF-not-really-either";
        ggufs.lfs = {"tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"};
        repos["org/ggufs"] = ggufs;

        storage.route("/", [this](const SeenRequest& r) {
            if (r.hasHeader("authorization"))
                ++storageAuthLeaks;
            const auto it = blobs.find(r.path.substr(1));
            return it == blobs.end() ? ScriptedResponse::json("{}", 404) : ScriptedResponse::file(it->second);
        });
        for (const auto& [id, spec] : repos)
            for (const auto& [path, content] : spec.files)
                blobs[net::sha256Hex(content)] = content;

        hub.route("/api/models/", [this](const SeenRequest& r) { return api(r); });
        hub.route("/api/models", [this](const SeenRequest& r) { return search(r); });
        hub.route("/", [this](const SeenRequest& r) { return resolve(r); });
    }

    std::string endpoint() const { return hub.url(); }

    hf::HubSettings settings(const fs::path& cache, const std::string& token = {}) const
    {
        hf::HubSettings s;
        s.endpoint = endpoint();
        s.cacheDir = cache;
        s.token = token;
        return s;
    }

    int resolves() const { return hub.count("/org/"); }

    HttpTestServer hub;
    HttpTestServer storage;
    std::map<std::string, RepoSpec> repos;
    std::map<std::string, std::string> blobs; // sha256 -> content
    std::atomic<int> storageAuthLeaks{0};
    std::atomic<bool> rateLimited{false};
    std::atomic<bool> rejectTokens{false};

private:
    static ScriptedResponse hubError(int status, const std::string& code, const std::string& message = {})
    {
        ScriptedResponse r =
            ScriptedResponse::json(R"({"error":")" + (message.empty() ? code : message) + "\"}", status);
        if (!code.empty())
            r.headers.emplace_back("X-Error-Code", code);
        if (!message.empty())
            r.headers.emplace_back("X-Error-Message", message);
        return r;
    }

    ScriptedResponse api(const SeenRequest& r)
    {
        if (rateLimited) {
            ScriptedResponse out = hubError(429, "", "Too many requests");
            out.headers.emplace_back("Retry-After", "0");
            return out;
        }
        // /api/models/org/name/revision/<rev> or /api/models/org/name/tree/<commit>
        const std::string rest = r.path.substr(std::string("/api/models/").size());
        const size_t kind = rest.find('/', rest.find('/') + 1);
        const std::string id = rest.substr(0, kind);
        const auto repo = repos.find(id);
        if (repo == repos.end() || kind == std::string::npos)
            return hubError(401, "RepoNotFound", "Repository not found");
        const std::string tail = rest.substr(kind + 1);
        const RepoSpec& spec = repo->second;
        if (tail.starts_with("revision/")) {
            if (tail != "revision/main" && tail != std::string("revision/") + kCommit)
                return hubError(404, "RevisionNotFound", "Invalid rev id: " + tail.substr(9));
            nlohmann::json j = {{"id", id},
                                {"sha", kCommit},
                                {"private", false},
                                {"downloads", 12},
                                {"likes", 3},
                                {"config", {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}}},
                                {"safetensors", {{"total", 14336}}}};
            j["gated"] = spec.gated == "false" ? nlohmann::json(false) : nlohmann::json(spec.gated);
            return ScriptedResponse::json(j.dump());
        }
        if (tail == std::string("tree/") + kCommit) {
            // Two pages, to exercise the Link header.
            const bool second = r.target.find("cursor=2") != std::string::npos;
            nlohmann::json list = nlohmann::json::array();
            size_t i = 0;
            for (const auto& [path, content] : spec.files) {
                if ((i++ % 2 == 1) != second)
                    continue;
                nlohmann::json e = {{"type", "file"},
                                    {"path", path},
                                    {"size", content.size()},
                                    {"oid", net::sha256Hex(content).substr(0, 40)}};
                if (spec.lfs.count(path)) {
                    const auto wrong = spec.wrongSha.find(path);
                    e["lfs"] = {{"oid", wrong == spec.wrongSha.end() ? net::sha256Hex(content) : wrong->second},
                                {"size", content.size()},
                                {"pointerSize", 134}};
                }
                list.push_back(e);
            }
            if (!second)
                list.push_back({{"type", "directory"}, {"path", "extra"}, {"oid", std::string(40, 'a')}});
            ScriptedResponse out = ScriptedResponse::json(list.dump());
            if (!second)
                out.headers.emplace_back("Link", "<" + hub.url() + r.path + "?recursive=true&cursor=2>; rel=\"next\"");
            return out;
        }
        return hubError(404, "EntryNotFound");
    }

    ScriptedResponse search(const SeenRequest& r)
    {
        if (r.path != "/api/models")
            return hubError(404, "");
        // Five results, two per page; the cursor is the index of the first one.
        size_t start = 0;
        if (const size_t c = r.target.find("cursor="); c != std::string::npos)
            start = std::stoul(r.target.substr(c + 7));
        nlohmann::json list = nlohmann::json::array();
        for (size_t i = start; i < std::min<size_t>(start + 2, 5); ++i)
            // The third id carries terminal escapes and a forged line, as a hostile listing could.
            list.push_back({{"id", "org/tiny-" + std::to_string(i) + (i == 2 ? "\x1b[2J\nnovaq: forged" : "")},
                            {"downloads", 1000 - i},
                            {"likes", i},
                            {"lastModified", "2026-01-0" + std::to_string(i + 1) + "T00:00:00.000Z"},
                            {"gated", i == 1 ? nlohmann::json("auto") : nlohmann::json(false)},
                            {"tags", {"gguf"}}});
        ScriptedResponse out = ScriptedResponse::json(list.dump());
        if (start + 2 < 5)
            out.headers.emplace_back("Link", "<https://huggingface.co/api/models?search=tiny&cursor=" +
                                                 std::to_string(start + 2) + ">; rel=\"next\"");
        return out;
    }

    ScriptedResponse resolve(const SeenRequest& r)
    {
        const size_t at = r.path.find("/resolve/");
        if (at == std::string::npos)
            return hubError(404, "");
        const std::string id = r.path.substr(1, at - 1);
        const std::string rest = r.path.substr(at + 9);
        const std::string file = rest.substr(rest.find('/') + 1);
        const auto repo = repos.find(id);
        if (repo == repos.end())
            return hubError(401, "RepoNotFound");
        const std::string auth = r.header("authorization");
        if (rejectTokens && !auth.empty())
            return hubError(401, "", "Invalid credentials in Authorization header");
        if (repo->second.gated != "false") {
            if (auth.empty())
                return hubError(401, "GatedRepo", "Access to model " + id + " is restricted.");
            if (auth != std::string("Bearer ") + kGoodToken)
                return hubError(403, "GatedRepo", "Access to model " + id + " is restricted.");
        }
        const auto f = repo->second.files.find(file);
        if (f == repo->second.files.end())
            return hubError(404, "EntryNotFound", "Entry not found");
        if (repo->second.lfs.count(file))
            return ScriptedResponse::redirect(storage.url() + "/" + net::sha256Hex(f->second) + "?X-Signature=abc");
        return ScriptedResponse::file(f->second);
    }
};

#define VERIFY_CONTAINS(text, part)                                                                                    \
    QVERIFY2(std::string(text).find(part) != std::string::npos,                                                        \
             (std::string(text) + "  [missing: " + (part) + "]").c_str())

// A Hub that misbehaves in one way (`mode`), for org/x at kCommit.
class HostileHub {
public:
    explicit HostileHub(std::string mode) : m_mode(std::move(mode))
    {
        server.route("/api/models/org/x/revision/", [this](const SeenRequest&) {
            if (m_mode == "not JSON")
                return ScriptedResponse::json("<html>a captive portal</html>");
            if (m_mode == "JSON nested 60,000 deep") // overflowed the stack of a recursive reader
                return ScriptedResponse::json(std::string(60000, '[') + std::string(60000, ']'));
            if (m_mode == "HTTP 500")
                return ScriptedResponse::json(R"({"error":"internal"})", 500);
            return ScriptedResponse::json(std::string(R"({"id":"org/x","sha":")") + kCommit + "\"}");
        });
        server.route("/api/models/org/x/tree/", [this](const SeenRequest& r) { return tree(r); });
        server.route("/api/models", [this](const SeenRequest& r) {
            ScriptedResponse out = ScriptedResponse::json("[]");
            const int n = cursor(r);
            const int next = m_mode == "search links back" ? (n == 2 ? 1 : n + 1) : n + 1;
            out.headers.emplace_back(
                "Link", "<" + server.url() + "/api/models?search=x&cursor=" + std::to_string(next) + ">; rel=\"next\"");
            return out;
        });
        server.route("/org/x/resolve/", [](const SeenRequest&) {
            ScriptedResponse out = ScriptedResponse::json(R"({"error":"Entry not found"})", 404);
            out.headers.emplace_back("X-Error-Code", "EntryNotFound");
            return out;
        });
    }

    hf::HubSettings settings(const fs::path& cache) const
    {
        hf::HubSettings s;
        s.endpoint =
            m_mode == "TLS to a plain port" ? "https://127.0.0.1:" + std::to_string(server.port()) : server.url();
        s.cacheDir = cache;
        s.maxPages = 25;
        return s;
    }

    HttpTestServer server;

private:
    static int cursor(const SeenRequest& r)
    {
        const size_t c = r.target.find("cursor=");
        return c == std::string::npos ? 0 : std::stoi(r.target.substr(c + 7));
    }

    ScriptedResponse tree(const SeenRequest& r)
    {
        nlohmann::json entry = {{"type", "file"}, {"path", "model.safetensors"}, {"oid", std::string(40, 'b')}};
        entry["size"] = 10;
        if (m_mode == "negative size")
            entry["size"] = -5;
        else if (m_mode == "size as text")
            entry["size"] = "10";
        else if (m_mode == "size of 16 EiB")
            entry["size"] = uint64_t(1) << 62;
        const int n = cursor(r);
        ScriptedResponse out = ScriptedResponse::json(nlohmann::json::array({entry}).dump());
        std::string next;
        if (m_mode == "tree pages on forever")
            next = std::to_string(n + 1);
        else if (m_mode == "tree links back")
            next = n == 2 ? "1" : std::to_string(n + 1);
        if (!next.empty())
            out.headers.emplace_back("Link", "<" + server.url() + "/api/models/org/x/tree/" + kCommit +
                                                 "?recursive=true&cursor=" + next + ">; rel=\"next\"");
        if (m_mode == "next page not http")
            out.headers.emplace_back("Link", "<ftp://127.0.0.1/tree?cursor=2>; rel=\"next\"");
        return out;
    }

    std::string m_mode;
};

} // namespace

class TestHuggingFace : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void searchFollowsPages();
    void modelInfoHasTreeSizesAndHashes();
    void downloadWritesTheCacheLayout();
    void cachedFilesAreNotRequested();
    void offlineUsesOnlyTheCache();
    void unreachableHubFallsBackToCache();
    void shardedCheckpoint();
    void gatedWithoutToken();
    void gatedWithUnapprovedToken();
    void gatedWithApprovedToken();
    void invalidToken();
    void notFound_data();
    void notFound();
    void rateLimited();
    void checksumMismatchKeepsNothing();
    void chooseFiles_data();
    void chooseFiles();
    void environment();
    void compressesEndToEnd();
    void cliEndToEnd();
    void hostileHub_data();
    void hostileHub();
    void longFileListsAreCapped();
};

void TestHuggingFace::searchFollowsPages()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    hf::SearchQuery q;
    q.text = "tiny";
    q.format = "gguf";
    q.limit = 5;
    const auto all = hub.search(q);
    QCOMPARE(all.size(), size_t(5));
    QCOMPARE(all[4].id, std::string("org/tiny-4"));
    QCOMPARE(all[1].gated, std::string("auto"));
    QCOMPARE(all[0].downloads, uint64_t(1000));
    QCOMPARE(fake.hub.count("/api/models"), 3);
    const std::string first = fake.hub.requests().front().target;
    VERIFY_CONTAINS(first, "search=tiny");
    VERIFY_CONTAINS(first, "filter=gguf");
    VERIFY_CONTAINS(first, "sort=downloads");
    // The Link header named huggingface.co: rewritten to HF_ENDPOINT, as huggingface_hub does.
    q.limit = 3;
    QCOMPARE(hub.search(q).size(), size_t(3));
    QCOMPARE(fake.hub.count("/api/models"), 5); // stops once it has enough
}

void TestHuggingFace::modelInfoHasTreeSizesAndHashes()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    const hf::ModelInfo info = hub.modelInfo("org/tiny");
    QCOMPARE(info.commit, std::string(kCommit));
    QCOMPARE(info.architecture, std::string("LlamaForCausalLM"));
    QCOMPARE(info.parameters, uint64_t(14336));
    QCOMPARE(info.gated, std::string("false"));
    QCOMPARE(info.files.size(), size_t(3)); // both tree pages, the directory left out
    const auto& spec = fake.repos["org/tiny"];
    for (const hf::RepoFile& f : info.files) {
        QCOMPARE(f.size, uint64_t(spec.files.at(f.path).size()));
        QCOMPARE(f.sha256, spec.lfs.count(f.path) ? net::sha256Hex(spec.files.at(f.path)) : std::string());
    }
    QCOMPARE(hub.modelInfo("org/gated").gated, std::string("manual"));
}

void TestHuggingFace::downloadWritesTheCacheLayout()
{
    FakeHub fake;
    QTemporaryDir dir;
    const fs::path cache = test::toPath(dir.path());
    const hf::HubClient hub(fake.settings(cache, kGoodToken), test::quickDownloadSettings(), nullptr, nullptr);
    const hf::Snapshot s = hub.download("org/tiny", "main", "");
    const fs::path repo = cache / "models--org--tiny";
    QCOMPARE(s.modelPath, repo / "snapshots" / kCommit / "model.safetensors");
    QCOMPARE(s.filesDownloaded, 2); // the weights and config.json; not the README
    const std::string& weights = fake.repos["org/tiny"].files["model.safetensors"];
    const fs::path link = repo / "snapshots" / kCommit / "model.safetensors";
    QVERIFY(fs::is_symlink(link));
    QCOMPARE(fs::read_symlink(link), fs::path("../../blobs") / net::sha256Hex(weights));
    QCOMPARE(test::readAll(link).size(), weights.size());
    QVERIFY(fs::exists(repo / "snapshots" / kCommit / "config.json"));
    QVERIFY(!fs::exists(repo / "snapshots" / kCommit / "README.md"));
    std::ifstream ref(repo / "refs" / "main");
    std::string commit;
    std::getline(ref, commit);
    QCOMPARE(commit, std::string(kCommit));
    // The token went to the Hub, never to the storage host.
    QCOMPARE(fake.storageAuthLeaks.load(), 0);
    QCOMPARE(fake.storage.count("/"), 1);
    for (const SeenRequest& r : fake.hub.requests())
        QCOMPARE(r.header("authorization"), std::string("Bearer ") + kGoodToken);
    // Nothing partial is left behind.
    for (const auto& e : fs::recursive_directory_iterator(repo))
        QVERIFY2(e.path().string().find("incomplete") == std::string::npos, e.path().c_str());
}

void TestHuggingFace::cachedFilesAreNotRequested()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    hub.download("org/tiny", "main", "");
    const int resolves = fake.resolves();
    const int stored = fake.storage.count("/");
    const hf::Snapshot again = hub.download("org/tiny", "main", "");
    QCOMPARE(fake.resolves(), resolves); // no file request at all
    QCOMPARE(fake.storage.count("/"), stored);
    QCOMPARE(again.filesDownloaded, 0);
    QCOMPARE(again.filesCached, 2);
    QCOMPARE(again.downloadedBytes, uint64_t(0));
}

void TestHuggingFace::offlineUsesOnlyTheCache()
{
    FakeHub fake;
    QTemporaryDir dir;
    const fs::path cache = test::toPath(dir.path());
    hf::HubClient(fake.settings(cache), test::quickDownloadSettings(), nullptr, nullptr)
        .download("org/tiny", "main", "");
    const size_t before = fake.hub.requests().size();
    hf::HubSettings offline = fake.settings(cache);
    offline.offline = true;
    const hf::Snapshot s =
        hf::HubClient(offline, test::quickDownloadSettings(), nullptr, nullptr).download("org/tiny", "main", "");
    QVERIFY(s.offline);
    QCOMPARE(s.modelPath.filename(), fs::path("model.safetensors"));
    QCOMPARE(fake.hub.requests().size(), before); // not a single request

    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            hf::HubClient(offline, test::quickDownloadSettings(), nullptr, nullptr).download("org/sharded", "main", "");
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    VERIFY_CONTAINS(message, "HF_HUB_OFFLINE");
    VERIFY_CONTAINS(message, "not in the Hugging Face cache");
}

void TestHuggingFace::unreachableHubFallsBackToCache()
{
    FakeHub fake;
    QTemporaryDir dir;
    const fs::path cache = test::toPath(dir.path());
    hf::HubClient(fake.settings(cache), test::quickDownloadSettings(), nullptr, nullptr)
        .download("org/tiny", "main", "");
    hf::HubSettings down = fake.settings(cache);
    down.endpoint = "http://127.0.0.1:1"; // nothing listens there
    const hf::Snapshot s =
        hf::HubClient(down, test::quickDownloadSettings(), nullptr, nullptr).download("org/tiny", "main", "");
    QVERIFY(s.offline);
    const std::string message = test::failureMessage([&] {
        hf::HubClient(down, test::quickDownloadSettings(), nullptr, nullptr).download("org/other", "main", "");
    });
    VERIFY_CONTAINS(message, "cannot reach");
}

void TestHuggingFace::shardedCheckpoint()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    const hf::Snapshot s = hub.download("org/sharded", "main", "");
    QCOMPARE(s.modelPath.filename(), fs::path("model.safetensors.index.json"));
    QCOMPARE(s.filesDownloaded, 4); // index, config, two shards
    const auto reader = openModel(s.modelPath);
    QCOMPARE(reader->tensors().size(), size_t(2));
}

void TestHuggingFace::gatedWithoutToken()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage([&] { hub.download("org/gated", "main", ""); }, &kind);
    QCOMPARE(kind, ErrorKind::Network);
    VERIFY_CONTAINS(message, "gated");
    VERIFY_CONTAINS(message, fake.endpoint() + "/org/gated");
    VERIFY_CONTAINS(message, "HF_TOKEN");
}

void TestHuggingFace::gatedWithUnapprovedToken()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path()), "hf_NotApprovedSecret"),
                            test::quickDownloadSettings(), nullptr, nullptr);
    const std::string message = test::failureMessage([&] { hub.download("org/gated", "main", ""); });
    VERIFY_CONTAINS(message, "no access yet");
    VERIFY_CONTAINS(message, fake.endpoint() + "/org/gated");
    QVERIFY(message.find("hf_NotApprovedSecret") == std::string::npos);
}

void TestHuggingFace::gatedWithApprovedToken()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path()), kGoodToken), test::quickDownloadSettings(), nullptr,
                            nullptr);
    QCOMPARE(hub.download("org/gated", "main", "").filesDownloaded, 2);
    QCOMPARE(fake.storageAuthLeaks.load(), 0);
}

void TestHuggingFace::invalidToken()
{
    FakeHub fake;
    fake.rejectTokens = true;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path()), "hf_ExpiredSecret"), test::quickDownloadSettings(),
                            nullptr, nullptr);
    const std::string message = test::failureMessage([&] { hub.download("org/tiny", "main", ""); });
    VERIFY_CONTAINS(message, "token was rejected");
    VERIFY_CONTAINS(message, "/settings/tokens");
    QVERIFY(message.find("hf_ExpiredSecret") == std::string::npos);
}

void TestHuggingFace::notFound_data()
{
    QTest::addColumn<QString>("repo");
    QTest::addColumn<QString>("revision");
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("expected");
    QTest::newRow("repo") << "org/nothing"
                          << "main"
                          << ""
                          << "model org/nothing not found";
    QTest::newRow("revision") << "org/tiny"
                              << "v9"
                              << ""
                              << "revision 'v9' not found in org/tiny";
    QTest::newRow("file") << "org/tiny"
                          << "main"
                          << "weights.gguf"
                          << "'weights.gguf' is not a file of org/tiny";
    QTest::newRow("bad id") << "not a repo"
                            << "main"
                            << ""
                            << "is not a Hugging Face model id";
    QTest::newRow("bad revision") << "org/tiny"
                                  << "../x"
                                  << ""
                                  << "is not a valid revision";
}

void TestHuggingFace::notFound()
{
    QFETCH(QString, repo);
    QFETCH(QString, revision);
    QFETCH(QString, file);
    QFETCH(QString, expected);
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] { hub.download(repo.toStdString(), revision.toStdString(), file.toStdString()); }, &kind);
    VERIFY_CONTAINS(message, expected.toStdString());
    QCOMPARE(kind, ErrorKind::InvalidArgument);
}

void TestHuggingFace::rateLimited()
{
    FakeHub fake;
    fake.rateLimited = true;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage([&] { hub.modelInfo("org/tiny"); }, &kind);
    QCOMPARE(kind, ErrorKind::Network);
    VERIFY_CONTAINS(message, "rate-limiting");
    VERIFY_CONTAINS(message, "HF_TOKEN");
    QCOMPARE(fake.hub.count("/api/models/"), 4); // retried, then gave up
}

void TestHuggingFace::checksumMismatchKeepsNothing()
{
    FakeHub fake;
    QTemporaryDir dir;
    const fs::path cache = test::toPath(dir.path());
    const hf::HubClient hub(fake.settings(cache), test::quickDownloadSettings(), nullptr, nullptr);
    const std::string message = test::failureMessage([&] { hub.download("org/corrupt", "main", ""); });
    VERIFY_CONTAINS(message, "SHA-256 mismatch");
    const fs::path repo = cache / "models--org--corrupt";
    QVERIFY(!fs::exists(repo / "snapshots" / kCommit / "model.safetensors"));
    QVERIFY(!fs::exists(repo / "blobs" / std::string(64, 'e')));
    QVERIFY(!fs::exists(repo / "blobs" / (std::string(64, 'e') + ".incomplete")));
    // And a second run does not mistake anything for a cached file.
    QVERIFY(test::failureMessage([&] { hub.download("org/corrupt", "main", ""); }).find("SHA-256 mismatch") !=
            std::string::npos);
}

void TestHuggingFace::chooseFiles_data()
{
    QTest::addColumn<QStringList>("files");
    QTest::addColumn<QString>("wanted");
    QTest::addColumn<QString>("model");    // empty: an error is expected
    QTest::addColumn<QString>("expected"); // the files chosen, or a part of the error

    QTest::newRow("safetensors with config") << QStringList{"config.json", "model.safetensors", "README.md"} << ""
                                             << "model.safetensors"
                                             << "model.safetensors,config.json";
    QTest::newRow("safetensors index wins over PyTorch")
        << QStringList{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "pytorch_model.bin"} << ""
        << "model.safetensors.index.json"
        << "model.safetensors.index.json";
    QTest::newRow("PyTorch shards") << QStringList{"pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"}
                                    << ""
                                    << "pytorch_model.bin.index.json"
                                    << "pytorch_model.bin.index.json";
    QTest::newRow("single GGUF, projector ignored") << QStringList{"m-Q4_K_M.gguf", "mmproj-f16.gguf"} << ""
                                                    << "m-Q4_K_M.gguf"
                                                    << "m-Q4_K_M.gguf";
    QTest::newRow("several GGUF need --file") << QStringList{"m-Q4_K_M.gguf", "m-Q8_0.gguf"} << ""
                                              << ""
                                              << "pick one with --file";
    QTest::newRow("--file by quant") << QStringList{"m-Q4_K_M.gguf", "m-Q8_0.gguf"} << "q8_0"
                                     << "m-Q8_0.gguf"
                                     << "m-Q8_0.gguf";
    QTest::newRow("--file ambiguous") << QStringList{"m-Q4_K_M.gguf", "m-Q4_K_S.gguf"} << "Q4_K"
                                      << ""
                                      << "matches several files";
    QTest::newRow("subfolder weights ignored") << QStringList{"original/consolidated.safetensors", "m.gguf"} << ""
                                               << "m.gguf"
                                               << "m.gguf";
    QTest::newRow("nothing usable") << QStringList{"README.md", "tokenizer.json"} << ""
                                    << ""
                                    << "has no model weights";
    QTest::newRow("several safetensors, no index") << QStringList{"a.safetensors", "b.safetensors"} << ""
                                                   << ""
                                                   << "Pick one with --file";
    QTest::newRow("PyTorch single file with config") << QStringList{"pytorch_model.bin", "config.json"} << ""
                                                     << "pytorch_model.bin"
                                                     << "pytorch_model.bin,config.json";
    QTest::newRow("--file an index: sharded")
        << QStringList{"a.bin.index.json", "config.json", "m.gguf"} << "a.bin.index.json"
        << "a.bin.index.json"
        << "a.bin.index.json,config.json";
    QTest::newRow("--file a safetensors path takes config")
        << QStringList{"sub/m.safetensors", "config.json"} << "sub/m.safetensors"
        << "sub/m.safetensors"
        << "sub/m.safetensors,config.json";
    QTest::newRow("--file a GGUF path takes no config") << QStringList{"m-Q8_0.gguf", "config.json"} << "m-Q8_0.gguf"
                                                        << "m-Q8_0.gguf"
                                                        << "m-Q8_0.gguf";
    QTest::newRow("--file not in the repo") << QStringList{"README.md"} << "nothing.gguf"
                                            << ""
                                            << "is not a file of org/x; run `novaq hf org/x --list`";
}

void TestHuggingFace::chooseFiles()
{
    QFETCH(QStringList, files);
    QFETCH(QString, wanted);
    QFETCH(QString, model);
    QFETCH(QString, expected);
    std::vector<hf::RepoFile> list;
    for (const QString& f : files)
        list.push_back({f.toStdString(), 100, std::string(40, 'a'), {}});
    if (model.isEmpty()) {
        ErrorKind kind{};
        VERIFY_CONTAINS(test::failureMessage([&] { hf::chooseFiles(list, wanted.toStdString(), "org/x"); }, &kind),
                        expected.toStdString());
        QCOMPARE(kind, ErrorKind::InvalidArgument);
        return;
    }
    const hf::FileChoice c = hf::chooseFiles(list, wanted.toStdString(), "org/x");
    QCOMPARE(QString::fromStdString(c.modelPath), model);
    QStringList chosen;
    for (const std::string& f : c.files)
        chosen << QString::fromStdString(f);
    QCOMPARE(chosen.join(","), expected);
}

void TestHuggingFace::environment()
{
    QTemporaryDir dir;
    const QByteArray home = dir.path().toUtf8() + "/hfhome";
    const char* names[] = {"HF_ENDPOINT",           "HF_TOKEN",       "HUGGING_FACE_HUB_TOKEN",
                           "HUGGINGFACE_HUB_TOKEN", "HF_HOME",        "HF_HUB_CACHE",
                           "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN_PATH",
                           "TRANSFORMERS_OFFLINE",  "XDG_CACHE_HOME"};
    std::map<std::string, QByteArray> saved;
    for (const char* n : names) {
        if (qEnvironmentVariableIsSet(n))
            saved[n] = qgetenv(n);
        qunsetenv(n);
    }
    qputenv("HF_HOME", home);
    fs::create_directories(home.toStdString());
    test::writeAll(fs::path(home.toStdString()) / "token", std::string("hf_FromFile\n"));
    QCOMPARE(hf::HubSettings::fromEnvironment().token, std::string("hf_FromFile"));
    QCOMPARE(hf::HubSettings::fromEnvironment().cacheDir, fs::path(home.toStdString()) / "hub");
    QCOMPARE(hf::HubSettings::fromEnvironment().endpoint, std::string("https://huggingface.co"));
    qputenv("HUGGINGFACE_HUB_TOKEN", "hf_OriginalReadme");
    QCOMPARE(hf::HubSettings::fromEnvironment().token, std::string("hf_OriginalReadme"));
    qputenv("HUGGING_FACE_HUB_TOKEN", "hf_Legacy");
    QCOMPARE(hf::HubSettings::fromEnvironment().token, std::string("hf_Legacy"));
    qputenv("HF_TOKEN", "hf_Main");
    QCOMPARE(hf::HubSettings::fromEnvironment().token, std::string("hf_Main"));
    qputenv("HF_HUB_CACHE", dir.path().toUtf8() + "/elsewhere");
    QCOMPARE(hf::HubSettings::fromEnvironment().cacheDir, test::toPath(dir.path()) / "elsewhere");
    qputenv("HF_ENDPOINT", "https://hf-mirror.example/");
    QCOMPARE(hf::HubSettings::fromEnvironment().endpoint, std::string("https://hf-mirror.example"));
    QVERIFY(!hf::HubSettings::fromEnvironment().offline);
    qputenv("HF_HUB_OFFLINE", "1");
    QVERIFY(hf::HubSettings::fromEnvironment().offline);
    for (const char* n : names)
        qunsetenv(n);
    for (const auto& [n, v] : saved)
        qputenv(n.c_str(), v);
}

void TestHuggingFace::compressesEndToEnd()
{
    FakeHub fake;
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path()) / "cache"), test::quickDownloadSettings(), nullptr,
                            nullptr);
    const hf::Snapshot s = hub.download("org/tiny", "main", "");
    CompressOptions options;
    options.input = s.modelPath;
    options.output = test::toPath(dir.path()) / "tiny.novaq";
    options.sourceLabel = "hf:org/tiny";
    options.threads = 1;
    const ModelReport report = compressModel(options, nullptr, nullptr);
    QCOMPARE(report.tensors.size(), size_t(2));
    QVERIFY(fs::file_size(options.output) > 0);
}

void TestHuggingFace::cliEndToEnd()
{
    FakeHub fake;
    QTemporaryDir dir;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("HF_ENDPOINT", QString::fromStdString(fake.endpoint()));
    env.insert("HF_HOME", dir.path() + "/hf");
    env.insert("HF_TOKEN", kGoodToken);
    env.remove("HF_HUB_CACHE");
    env.remove("HF_HUB_OFFLINE");
    const auto run = [&](const QStringList& args, QString* out, QString* err) {
        QProcess p;
        p.setProcessEnvironment(env);
        p.setStandardInputFile(QProcess::nullDevice());
        p.start(NOVAQ_CLI_PATH, args);
        p.waitForFinished(60000);
        *out = QString::fromUtf8(p.readAllStandardOutput());
        *err = QString::fromUtf8(p.readAllStandardError());
        return p.exitCode();
    };
    QString out, err;
    const QString output = dir.path() + "/gated.novaq";
    QCOMPARE(run({"hf", "org/gated", "--output", output, "--threads", "1"}, &out, &err), 0);
    QVERIFY2(QFileInfo::exists(output), qPrintable(err));
    QVERIFY2(err.contains("1 downloaded") || err.contains("2 downloaded"), qPrintable(err));
    QVERIFY(!err.contains(kGoodToken) && !out.contains(kGoodToken));

    QCOMPARE(run({"hf", fake.endpoint().c_str() + QString("/org/tiny"), "--list"}, &out, &err), 0);
    QVERIFY2(out.contains("* model.safetensors") && out.contains("LlamaForCausalLM"), qPrintable(out));

    QCOMPARE(run({"search", "tiny", "--limit", "3", "--json"}, &out, &err), 0);
    const auto j = nlohmann::json::parse(out.toStdString());
    QCOMPARE(j.size(), size_t(3));
    // In a table, names from the Hub are shown escaped: no escape reaches the terminal, no forged line.
    QCOMPARE(run({"search", "tiny", "--limit", "3"}, &out, &err), 0);
    QVERIFY2(out.contains("org/tiny-2\\x1b[2J\\nnovaq: forged"), qPrintable(out));
    QVERIFY2(!out.contains(QChar(0x1b)) && !out.contains("\nnovaq:"), qPrintable(out));

    QCOMPARE(run({"hf", "org/missing"}, &out, &err), 2);
    QVERIFY2(err.contains("not found"), qPrintable(err));
    env.insert("HF_TOKEN", "hf_BadSecret");
    env.insert("HF_HOME", dir.path() + "/hf-empty"); // nothing cached: the files must be fetched
    QCOMPARE(run({"hf", "org/gated"}, &out, &err), 7);
    QVERIFY2(err.contains("no access yet") && !err.contains("hf_BadSecret"), qPrintable(err));
}

void TestHuggingFace::hostileHub_data()
{
    QTest::addColumn<QString>("mode");
    QTest::addColumn<bool>("search"); // else download org/x
    QTest::addColumn<QString>("expected");
    QTest::addColumn<QString>("countedPath"); // requests to this path prefix ...
    QTest::addColumn<int>("requests");        // ... are this many (-1: not checked)

    const QString tree = QString("/api/models/org/x/tree/");
    QTest::newRow("tree pages on forever") << "tree pages on forever" << false << "goes on past 25 pages" << tree << 25;
    QTest::newRow("tree links back") << "tree links back" << false << "links back to a page already read" << tree << 3;
    QTest::newRow("search pages on forever") << "search pages on forever" << true << "go on past 25 pages"
                                             << "/api/models" << 25;
    QTest::newRow("search links back") << "search links back" << true << "link back to a page already read"
                                       << "/api/models" << 3;
    QTest::newRow("details not JSON") << "not JSON" << false << "not JSON"
                                      << "/api/models/org/x/revision/" << 1;
    QTest::newRow("details nested too deep") << "JSON nested 60,000 deep" << false << "nested deeper than 256 levels"
                                             << "/api/models/org/x/revision/" << 1;
    QTest::newRow("details HTTP 500") << "HTTP 500" << false << "HTTP 500"
                                      << "/api/models/org/x/revision/" << 4;
    QTest::newRow("negative size") << "negative size" << false << "without a valid size" << tree << 1;
    QTest::newRow("size as text") << "size as text" << false << "without a valid size" << tree << 1;
    QTest::newRow("size of 16 EiB") << "size of 16 EiB" << false << "without a valid size" << tree << 1;
    QTest::newRow("next page not http") << "next page not http" << false << "not an http(s) URL" << tree << 1;
    QTest::newRow("listed file missing") << "listed file missing" << false << "but answered HTTP 404"
                                         << "/org/x/resolve/" << 1;
    QTest::newRow("TLS to a plain port") << "TLS to a plain port" << false << "not valid HTTP or TLS" << QString()
                                         << -1;
}

void TestHuggingFace::hostileHub()
{
    QFETCH(QString, mode);
    QFETCH(bool, search);
    QFETCH(QString, expected);
    QFETCH(QString, countedPath);
    QFETCH(int, requests);
    HostileHub fake(mode.toStdString());
    QTemporaryDir dir;
    const hf::HubClient hub(fake.settings(test::toPath(dir.path())), test::quickDownloadSettings(), nullptr, nullptr);
    ErrorKind kind{};
    const std::string message = test::failureMessage(
        [&] {
            if (search) {
                hf::SearchQuery q;
                q.text = "x";
                q.limit = 5;
                hub.search(q);
            } else {
                hub.download("org/x", "main", "");
            }
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    VERIFY_CONTAINS(message, expected.toStdString());
    if (requests >= 0)
        QCOMPARE(fake.server.count(countedPath.toStdString()), requests);
    else
        QCOMPARE(fake.server.tlsHellos(), 1); // not retried
}

void TestHuggingFace::longFileListsAreCapped()
{
    std::vector<hf::RepoFile> ggufs;
    std::vector<hf::RepoFile> safetensors;
    for (int i = 0; i < 100000; ++i) {
        ggufs.push_back({"m-" + std::to_string(i) + ".gguf", 100, std::string(40, 'a'), {}});
        safetensors.push_back({"part-" + std::to_string(i) + ".safetensors", 100, std::string(40, 'a'), {}});
    }
    for (const auto* files : {&ggufs, &safetensors}) {
        for (const std::string wanted : {"", "nothing-like-it"}) {
            ErrorKind kind{};
            const std::string message =
                test::failureMessage([&] { hf::chooseFiles(*files, wanted, "org/huge"); }, &kind);
            QCOMPARE(kind, ErrorKind::InvalidArgument);
            if (files == &safetensors && !wanted.empty())
                continue; // names no list: "run novaq hf --list"
            VERIFY_CONTAINS(message, "and 99990 more");
            QVERIFY2(message.size() < 1500, std::to_string(message.size()).c_str());
        }
    }
}

QTEST_GUILESS_MAIN(TestHuggingFace)
#include "test_huggingface.moc"
