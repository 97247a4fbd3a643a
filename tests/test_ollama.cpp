// Ollama as a source: names as Ollama parses them, models read in place from a store,
// listing through a (scripted) server with the stores as fallback, registry pulls verified
// by SHA-256 and resumable, and `novaq ollama` end to end. A faulty registry (a malformed
// manifest, a 5xx, a blob longer than the manifest says) is malformed input or a network
// error, never bad usage or a disk problem.

#include "http_test_server.h"
#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/net/sha256.h"
#include "novaq/pipeline/compress.h"
#include "novaq/sources/ollama.h"

#include <QProcess>
#include <QProcessEnvironment>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>

using namespace novaq;
using novaq::test::f32Bytes;
using novaq::test::HttpTestServer;
using novaq::test::indexByName;
using novaq::test::le;
using novaq::test::readTensor;
using novaq::test::ScriptedResponse;
using novaq::test::SeenRequest;
namespace fs = std::filesystem;

namespace {

std::string ggufString(const std::string& s) { return le(s.size(), 8) + s; }

// A GGUF v3 file with one F32 matrix and general.architecture.
std::string tinyGguf(int rows, int cols)
{
    std::string out = "GGUF" + le(3, 4) + le(1, 8) + le(1, 8);
    out += ggufString("general.architecture") + le(8, 4) + ggufString("llama");
    out += ggufString("blk.0.attn_q.weight") + le(2, 4) + le(uint64_t(cols), 8) + le(uint64_t(rows), 8) + le(0, 4) +
           le(0, 8);
    while (out.size() % 32 != 0)
        out.push_back('\0');
    const auto values = test::gaussian(size_t(rows) * size_t(cols), 3);
    out.append(reinterpret_cast<const char*>(values.data()), values.size() * 4);
    return out;
}

std::string manifestFor(const std::string& gguf)
{
    nlohmann::json m = {
        {"schemaVersion", 2},
        {"mediaType", ollama::kManifestMediaType},
        {"config",
         {{"mediaType", "application/vnd.docker.container.image.v1+json"},
          {"digest", "sha256:" + net::sha256Hex("{}")},
          {"size", 2}}},
        {"layers",
         {{{"mediaType", ollama::kModelMediaType}, {"digest", "sha256:" + net::sha256Hex(gguf)}, {"size", gguf.size()}},
          {{"mediaType", "application/vnd.ollama.image.license"},
           {"digest", "sha256:" + net::sha256Hex("MIT")},
           {"size", 3}}}}};
    return m.dump();
}

// Writes a model into a store the way `ollama pull` leaves it.
void writeStoreModel(const fs::path& store, const std::string& name, const std::string& gguf)
{
    const ollama::ModelName n = ollama::ModelName::parse(name);
    fs::create_directories((store / n.manifestPath()).parent_path());
    fs::create_directories(store / "blobs");
    test::writeAll(store / n.manifestPath(), manifestFor(gguf));
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex(gguf)), gguf);
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex("MIT")), std::string("MIT"));
}

// A registry: manifests and blobs; the blob redirects to a CDN path on the same server.
class FakeRegistry {
public:
    explicit FakeRegistry(std::string gguf) : blob(std::move(gguf))
    {
        server.route("/v2/library/tiny/manifests/", [this](const SeenRequest& r) {
            if (r.path.ends_with("/latest") || r.path.ends_with("/q8"))
                return ScriptedResponse::json(manifest.empty() ? manifestFor(blob) : manifest, manifestStatus);
            return ScriptedResponse::json(R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})", 404);
        });
        server.route("/v2/library/tiny/blobs/", [this](const SeenRequest&) {
            return ScriptedResponse::redirect(server.url() + "/cdn/tiny?sig=1", 307);
        });
        server.route("/cdn/", [this](const SeenRequest&) {
            ScriptedResponse out = ScriptedResponse::file(served.empty() ? blob : served);
            if (cutFirst && server.count("/cdn/") == 1)
                out.cutAfter = blob.size() / 3;
            return out;
        });
    }
    std::string host() const { return "127.0.0.1:" + std::to_string(server.port()); }

    HttpTestServer server;
    std::string blob;
    std::string served; // what the CDN sends instead, when set
    bool cutFirst = false;
    std::string manifest; // the manifest served instead, when set
    int manifestStatus = 200;
};

} // namespace

class TestOllama : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void names_data();
    void names();
    void badNames_data();
    void badNames();
    void readsTheStoreInPlace();
    void manifestWithoutBlobIsSkipped();
    void listsFromServerElseStores();
    void listsStoreDetailsFromTheConfig();
    void pullFromRegistry();
    void pullChecksumMismatch();
    void pullErrors();
    void registryFaults_data();
    void registryFaults();
    void cliEndToEnd();
};

void TestOllama::names_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("full");
    QTest::addColumn<QString>("shortest");
    QTest::newRow("model") << "llama3.2"
                           << "registry.ollama.ai/library/llama3.2:latest"
                           << "llama3.2:latest";
    QTest::newRow("model:tag") << "llama3.2:1b"
                               << "registry.ollama.ai/library/llama3.2:1b"
                               << "llama3.2:1b";
    QTest::newRow("namespace/model:tag") << "user/model:7b"
                                         << "registry.ollama.ai/user/model:7b"
                                         << "user/model:7b";
    QTest::newRow("host/ns/model:tag") << "hf.co/bartowski/X-GGUF:Q4_K_M"
                                       << "hf.co/bartowski/X-GGUF:Q4_K_M"
                                       << "hf.co/bartowski/X-GGUF:Q4_K_M";
    QTest::newRow("host:port") << "localhost:5000/team/m"
                               << "localhost:5000/team/m:latest"
                               << "localhost:5000/team/m:latest";
    QTest::newRow("host:port with tag") << "localhost:5000/team/m:v1"
                                        << "localhost:5000/team/m:v1"
                                        << "localhost:5000/team/m:v1";
    QTest::newRow("scheme") << "http://localhost:5000/team/m:v1"
                            << "localhost:5000/team/m:v1"
                            << "localhost:5000/team/m:v1";
}

void TestOllama::names()
{
    QFETCH(QString, text);
    QFETCH(QString, full);
    QFETCH(QString, shortest);
    const ollama::ModelName n = ollama::ModelName::parse(text.toStdString());
    QCOMPARE(QString::fromStdString(n.full()), full);
    QCOMPARE(QString::fromStdString(n.shortest()), shortest);
}

void TestOllama::badNames_data()
{
    QTest::addColumn<QString>("text");
    QTest::newRow("empty") << "";
    QTest::newRow("too many parts") << "a/b/c/d";
    QTest::newRow("traversal") << "../../etc:passwd";
    QTest::newRow("dot namespace") << "x/../m";
    QTest::newRow("empty tag") << "model:";
    QTest::newRow("digest") << "model@sha256:abc";
    QTest::newRow("ftp") << "ftp://host/ns/m";
    QTest::newRow("long model") << QString(81, 'm');
}

void TestOllama::badNames()
{
    QFETCH(QString, text);
    ErrorKind kind{};
    const std::string message = test::failureMessage([&] { ollama::ModelName::parse(text.toStdString()); }, &kind);
    QCOMPARE(kind, ErrorKind::InvalidArgument);
    QVERIFY2(message.find("not an Ollama model name") != std::string::npos, message.c_str());
}

void TestOllama::readsTheStoreInPlace()
{
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path()) / "models";
    const std::string gguf = tinyGguf(32, 64);
    writeStoreModel(store, "tiny:q8", gguf);
    const auto found =
        ollama::findLocal(ollama::ModelName::parse("tiny:q8"), {test::toPath(dir.path()) / "none", store});
    QVERIFY(found);
    QCOMPARE(found->blob, store / "blobs" / ("sha256-" + net::sha256Hex(gguf)));
    QCOMPARE(found->store, store);
    QCOMPARE(detectFileFormat(found->blob), ModelFormat::Gguf);
    QVERIFY(!ollama::findLocal(ollama::ModelName::parse("tiny:other"), {store}));
}

void TestOllama::manifestWithoutBlobIsSkipped()
{
    QTemporaryDir dir;
    const fs::path first = test::toPath(dir.path()) / "a";
    const fs::path second = test::toPath(dir.path()) / "b";
    const std::string gguf = tinyGguf(8, 32);
    writeStoreModel(first, "tiny", gguf);
    fs::remove(first / "blobs" / ("sha256-" + net::sha256Hex(gguf))); // an interrupted pull
    writeStoreModel(second, "tiny", gguf);
    const auto found = ollama::findLocal(ollama::ModelName::parse("tiny"), {first, second});
    QVERIFY(found);
    QCOMPARE(found->store, second);
}

void TestOllama::listsFromServerElseStores()
{
    HttpTestServer server;
    server.route("/api/tags", [](const SeenRequest&) {
        return ScriptedResponse::json(
            R"({"models":[{"name":"llama3.2:1b","model":"llama3.2:1b","size":1321098329,"digest":"x",)"
            R"("details":{"format":"gguf","family":"llama","parameter_size":"1.2B","quantization_level":"Q8_0"}}]})");
    });
    const auto listed = ollama::listFromServer(server.url(), nullptr);
    QVERIFY(listed);
    QCOMPARE(listed->size(), size_t(1));
    QCOMPARE(listed->front().name, std::string("llama3.2:1b"));
    QCOMPARE(listed->front().quantization, std::string("Q8_0"));
    QCOMPARE(listed->front().size, uint64_t(1321098329));

    QVERIFY(!ollama::listFromServer("http://127.0.0.1:1", nullptr)); // nobody there

    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path());
    writeStoreModel(store, "tiny:q8", tinyGguf(8, 32));
    writeStoreModel(store, "team/other:v1", tinyGguf(8, 32));
    const auto rows = ollama::listStores({store});
    QCOMPARE(rows.size(), size_t(2));
    QCOMPARE(rows[0].name, std::string("team/other:v1"));
    QCOMPARE(rows[1].name, std::string("tiny:q8"));

    qputenv("OLLAMA_HOST", "127.0.0.1:7777");
    QCOMPARE(ollama::serverUrl(), std::string("http://127.0.0.1:7777"));
    qputenv("OLLAMA_HOST", "0.0.0.0");
    QCOMPARE(ollama::serverUrl(), std::string("http://0.0.0.0:11434"));
    qunsetenv("OLLAMA_HOST");
    QCOMPARE(ollama::serverUrl(), std::string("http://127.0.0.1:11434"));
}

// The store's config blob (Ollama's ConfigV2) gives what /api/tags calls the details.
void TestOllama::listsStoreDetailsFromTheConfig()
{
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path());
    const auto writeManifest = [&store](const std::string& name, const nlohmann::json& manifest) {
        const fs::path path = store / ollama::ModelName::parse(name).manifestPath();
        fs::create_directories(path.parent_path());
        test::writeAll(path, manifest.dump());
    };
    const std::string gguf = tinyGguf(8, 32);
    // manifestFor() names the config blob sha256("{}"): a config without details.
    writeStoreModel(store, "bare:v1", gguf);
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex("{}")), std::string("{}"));

    // A model whose config says what it is, as `ollama pull` writes it.
    const std::string config =
        R"({"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"1.2B",)"
        R"("file_type":"Q8_0","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    nlohmann::json manifest = nlohmann::json::parse(manifestFor(gguf));
    manifest["config"]["digest"] = "sha256:" + net::sha256Hex(config);
    manifest["config"]["size"] = config.size();
    writeManifest("full:q8", manifest);
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex(config)), config);

    // Only model_families, and a config blob that is missing from the store.
    const std::string familiesOnly = R"({"model_families":["qwen2","clip"],"file_type":"F16"})";
    manifest["config"]["digest"] = "sha256:" + net::sha256Hex(familiesOnly);
    writeManifest("families:f16", manifest);
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex(familiesOnly)), familiesOnly);
    manifest["config"]["digest"] = "sha256:" + std::string(64, 'e');
    writeManifest("noconfig:v1", manifest);
    // A config blob that is not JSON.
    manifest["config"]["digest"] = "sha256:" + net::sha256Hex("not json");
    writeManifest("garbled:v1", manifest);
    test::writeAll(store / "blobs" / ("sha256-" + net::sha256Hex("not json")), std::string("not json"));

    const auto rows = ollama::listStores({store});
    QCOMPARE(rows.size(), size_t(5)); // a model with an unreadable config is still listed
    std::map<std::string, ollama::ListedModel> byName;
    for (const auto& r : rows)
        byName[r.name] = r;
    QCOMPARE(byName.at("full:q8").family, std::string("llama"));
    QCOMPARE(byName.at("full:q8").parameterSize, std::string("1.2B"));
    QCOMPARE(byName.at("full:q8").quantization, std::string("Q8_0"));
    QCOMPARE(byName.at("full:q8").size, uint64_t(gguf.size() + 3)); // the model and the license layer
    QCOMPARE(byName.at("families:f16").family, std::string("qwen2"));
    QCOMPARE(byName.at("families:f16").parameterSize, std::string());
    QCOMPARE(byName.at("families:f16").quantization, std::string("F16"));
    for (const char* name : {"bare:v1", "noconfig:v1", "garbled:v1"}) {
        QVERIFY2(byName.at(name).family.empty(), name);
        QVERIFY2(byName.at(name).parameterSize.empty(), name);
        QVERIFY2(byName.at(name).quantization.empty(), name);
    }

    // The server's details give the same fields.
    HttpTestServer server;
    server.route("/api/tags", [](const SeenRequest&) {
        return ScriptedResponse::json(
            R"({"models":[{"name":"full:q8","size":1,"details":{"family":"llama","parameter_size":"1.2B",)"
            R"("quantization_level":"Q8_0"}}]})");
    });
    const auto listed = ollama::listFromServer(server.url(), nullptr);
    QVERIFY(listed);
    QCOMPARE(listed->front().family, byName.at("full:q8").family);
    QCOMPARE(listed->front().parameterSize, byName.at("full:q8").parameterSize);
    QCOMPARE(listed->front().quantization, byName.at("full:q8").quantization);
}

void TestOllama::pullFromRegistry()
{
    FakeRegistry registry(tinyGguf(16, 64));
    registry.cutFirst = true; // the first blob transfer breaks; the pull resumes
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path()) / "novaq-ollama";
    const auto name = ollama::ModelName::parse(registry.host() + "/library/tiny");
    const ollama::LocalModel pulled = ollama::pull(name, true, store, test::quickDownloadSettings(), nullptr, nullptr);
    QCOMPARE(test::readAll(pulled.blob).size(), registry.blob.size());
    QCOMPARE(net::sha256File(pulled.blob, nullptr), net::sha256Hex(registry.blob));
    const auto requests = registry.server.requests();
    QCOMPARE(requests.front().header("accept"), std::string(ollama::kManifestMediaType));
    QCOMPARE(registry.server.count("/cdn/"), 2);
    // Found in our store afterwards, without the registry.
    QVERIFY(ollama::findLocal(name, {store}));
    const int before = int(registry.server.requests().size());
    ollama::pull(name, true, store, test::quickDownloadSettings(), nullptr, nullptr);
    QCOMPARE(registry.server.count("/cdn/"), 2);                  // the blob was not fetched again
    QCOMPARE(int(registry.server.requests().size()), before + 1); // the manifest only
}

void TestOllama::pullChecksumMismatch()
{
    FakeRegistry registry(tinyGguf(16, 64));
    registry.served = tinyGguf(16, 64);
    registry.served[registry.served.size() - 1] ^= 1;
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path());
    const auto name = ollama::ModelName::parse(registry.host() + "/library/tiny");
    const std::string message =
        test::failureMessage([&] { ollama::pull(name, true, store, test::quickDownloadSettings(), nullptr, nullptr); });
    QVERIFY2(message.find("SHA-256 mismatch") != std::string::npos, message.c_str());
    QVERIFY(!ollama::findLocal(name, {store}));
    QVERIFY(!fs::exists(store / name.manifestPath()));
    QVERIFY(fs::is_empty(store / "blobs"));
}

void TestOllama::pullErrors()
{
    FakeRegistry registry(tinyGguf(8, 32));
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path());
    ErrorKind kind{};
    std::string message = test::failureMessage(
        [&] {
            ollama::pull(ollama::ModelName::parse(registry.host() + "/library/tiny:nope"), true, store,
                         test::quickDownloadSettings(), nullptr, nullptr);
        },
        &kind);
    QCOMPARE(kind, ErrorKind::InvalidArgument);
    QVERIFY2(message.find("is not in the registry") != std::string::npos, message.c_str());
    // Without --insecure the registry is spoken to over https, which this one does not speak.
    message = test::failureMessage(
        [&] {
            ollama::pull(ollama::ModelName::parse(registry.host() + "/library/tiny"), false, store,
                         test::quickDownloadSettings(), nullptr, nullptr);
        },
        &kind);
    QCOMPARE(kind, ErrorKind::Network);
    QVERIFY2(message.find("--insecure") != std::string::npos, message.c_str());
}

void TestOllama::registryFaults_data()
{
    QTest::addColumn<QString>("fault");
    QTest::addColumn<int>("kind"); // ErrorKind
    QTest::addColumn<QString>("expected");
    QTest::newRow("negative layer size") << "negative size" << int(ErrorKind::InvalidInput)
                                         << "is not an Ollama manifest";
    QTest::newRow("layer size as text") << "size as text" << int(ErrorKind::InvalidInput)
                                        << "is not an Ollama manifest";
    QTest::newRow("manifest not JSON") << "not JSON" << int(ErrorKind::InvalidInput) << "is not an Ollama manifest";
    QTest::newRow("registry HTTP 503") << "HTTP 503" << int(ErrorKind::Network) << "answered HTTP 503";
    QTest::newRow("blob past the manifest's size") << "long blob" << int(ErrorKind::Network) << "sent more than the";
}

void TestOllama::registryFaults()
{
    QFETCH(QString, fault);
    QFETCH(int, kind);
    QFETCH(QString, expected);
    FakeRegistry registry(tinyGguf(8, 32));
    const nlohmann::json good = nlohmann::json::parse(manifestFor(registry.blob));
    nlohmann::json bad = good;
    if (fault == "negative size")
        bad["layers"][0]["size"] = -5;
    else if (fault == "size as text")
        bad["layers"][0]["size"] = "1024";
    registry.manifest = bad.dump();
    if (fault == "not JSON")
        registry.manifest = "<html>a proxy login page</html>";
    if (fault == "HTTP 503")
        registry.manifestStatus = 503;
    if (fault == "long blob")
        registry.served = registry.blob + std::string(size_t(32) << 20, 'x');
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path());
    const auto name = ollama::ModelName::parse(registry.host() + "/library/tiny");
    ErrorKind actual{};
    const std::string message = test::failureMessage(
        [&] { ollama::pull(name, true, store, test::quickDownloadSettings(), nullptr, nullptr); }, &actual);
    QCOMPARE(int(actual), kind);
    QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    QVERIFY(!ollama::findLocal(name, {store}));
    if (fault == "long blob") // stopped at the manifest's size, not after the whole body
        QVERIFY2(registry.server.bodyBytesSent() < registry.served.size() / 2,
                 std::to_string(registry.server.bodyBytesSent()).c_str());
}

void TestOllama::cliEndToEnd()
{
    QTemporaryDir dir;
    const fs::path store = test::toPath(dir.path()) / "ollama";
    writeStoreModel(store, "tiny:q8", tinyGguf(32, 64));
    HttpTestServer noServer; // answers 404 everywhere: not an Ollama server
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("OLLAMA_MODELS", QString::fromStdString(store.string()));
    env.insert("OLLAMA_HOST", QString::fromStdString(noServer.url()));
    env.insert("XDG_CACHE_HOME", dir.path() + "/cache");
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
    QCOMPARE(run({"ollama", "--list"}, &out, &err), 0);
    QVERIFY2(out.contains("tiny:q8") && out.contains("No Ollama server answers"), qPrintable(out));
    const QString output = dir.path() + "/tiny.novaq";
    QCOMPARE(run({"ollama", "tiny:q8", "--output", output, "--threads", "1"}, &out, &err), 0);
    QVERIFY2(err.contains("reading") && err.contains("in place"), qPrintable(err));
    QVERIFY(QFileInfo::exists(output));
    QCOMPARE(run({"ollama", "not/a/valid/name/x"}, &out, &err), 2);
}

QTEST_GUILESS_MAIN(TestOllama)
#include "test_ollama.moc"
