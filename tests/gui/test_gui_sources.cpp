// The Model page's sources offscreen: QAbstractItemModelTester on the source models, a
// Hugging Face search, details and download against a scripted Hub on 127.0.0.1, the Ollama
// tab over a fake store folder (and its empty state), a URL download with progress and a
// cancel that leaves no file under the final name, and a search error shown in the banner.

#include "http_test_server.h"
#include "ui/app_settings.h"
#include "ui/application.h"
#include "ui/download_job.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/source_models.h"
#include "ui/source_tabs.h"
#include "ui/widgets.h"

#include "novaq/net/sha256.h"

#include <QAbstractItemModelTester>
#include <QApplication>
#include <QDir>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <tuple>

using namespace novaq;
using namespace novaq::ui;
using novaq::test::HttpTestServer;
using novaq::test::ScriptedResponse;
using novaq::test::SeenRequest;
namespace fs = std::filesystem;

namespace {

constexpr const char* kCommit = "89abcdef0123456789abcdef0123456789abcdef";

std::string le(uint64_t value, int bytes)
{
    std::string out;
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    return out;
}

std::string ggufString(const std::string& s) { return le(s.size(), 8) + s; }

// A GGUF v3 file with one 4 x 8 F32 matrix and general.architecture.
std::string tinyGguf()
{
    std::string out = "GGUF" + le(3, 4) + le(1, 8) + le(1, 8);
    out += ggufString("general.architecture") + le(8, 4) + ggufString("llama");
    out += ggufString("blk.0.attn_q.weight") + le(2, 4) + le(8, 8) + le(4, 8) + le(0, 4) + le(0, 8);
    while (out.size() % 32 != 0)
        out.push_back('\0');
    for (int i = 0; i < 32; ++i) {
        const float v = float(i % 7) * 0.25f - 0.75f;
        out.append(reinterpret_cast<const char*>(&v), 4);
    }
    return out;
}

void writeAll(const fs::path& path, const std::string& data)
{
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << data;
}

// What `ollama pull` writes as a model's config blob (Ollama's ConfigV2).
std::string ollamaConfig(const std::string& family, const std::string& parameters, const std::string& fileType)
{
    return nlohmann::json{{"model_format", "gguf"},
                          {"model_family", family},
                          {"model_families", {family}},
                          {"model_type", parameters},
                          {"file_type", fileType}}
        .dump();
}

// The way `ollama pull` leaves a model: a manifest, the config blob and the GGUF blob by digest.
void writeStoreModel(const fs::path& store, const std::string& model, const std::string& gguf,
                     const std::string& config = "{}")
{
    const nlohmann::json manifest = {{"schemaVersion", 2},
                                     {"mediaType", ollama::kManifestMediaType},
                                     {"config",
                                      {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                                       {"digest", "sha256:" + net::sha256Hex(config)},
                                       {"size", config.size()}}},
                                     {"layers",
                                      {{{"mediaType", ollama::kModelMediaType},
                                        {"digest", "sha256:" + net::sha256Hex(gguf)},
                                        {"size", gguf.size()}}}}};
    writeAll(store / "manifests" / "registry.ollama.ai" / "library" / model / "latest", manifest.dump());
    writeAll(store / "blobs" / ("sha256-" + net::sha256Hex(gguf)), gguf);
    writeAll(store / "blobs" / ("sha256-" + net::sha256Hex(config)), config);
}

const std::string kWeights = tinyGguf();

// One page of search results as the Hub lists them.
nlohmann::json resultRows(std::initializer_list<std::tuple<const char*, int, int, const char*>> rows)
{
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [id, downloads, likes, updated] : rows)
        list.push_back({{"id", id},
                        {"downloads", downloads},
                        {"likes", likes},
                        {"lastModified", updated},
                        {"gated", false},
                        {"tags", {"gguf"}}});
    return list;
}

// A scripted Hub: three search results, details and a one-file tree for org/alpha. A search
// for "paged" has two pages: the first links to the second the way the Hub does (a Link
// header naming huggingface.co, which the engine maps to HF_ENDPOINT).
void scriptHub(HttpTestServer& hub)
{
    hub.route("/api/models/org/alpha/revision/", [](const SeenRequest&) {
        return ScriptedResponse::json(
            nlohmann::json{{"id", "org/alpha"}, {"sha", kCommit}, {"gated", "manual"}}.dump());
    });
    hub.route("/api/models/org/alpha/tree/", [](const SeenRequest&) {
        nlohmann::json list = nlohmann::json::array();
        list.push_back(
            {{"type", "file"}, {"path", "alpha-F32.gguf"}, {"size", kWeights.size()}, {"oid", std::string(40, 'b')}});
        return ScriptedResponse::json(list.dump());
    });
    hub.route("/api/models", [](const SeenRequest& r) {
        if (r.target.find("search=broken") != std::string::npos)
            return ScriptedResponse::json(R"({"error":"Invalid search"})", 400);
        if (r.target.find("cursor=page2") != std::string::npos)
            return ScriptedResponse::json(resultRows({{"org/paged-3", 300, 3, "2025-03-03T00:00:00.000Z"},
                                                      {"org/paged-4", 200, 2, "2025-02-02T00:00:00.000Z"}})
                                              .dump());
        if (r.target.find("search=paged") != std::string::npos) {
            ScriptedResponse first =
                ScriptedResponse::json(resultRows({{"org/paged-1", 500, 5, "2025-05-05T00:00:00.000Z"},
                                                   {"org/paged-2", 400, 4, "2025-04-04T00:00:00.000Z"}})
                                           .dump());
            first.headers.emplace_back(
                "Link", "<https://huggingface.co/api/models?search=paged&limit=30&cursor=page2>; rel=\"next\"");
            return first;
        }
        return ScriptedResponse::json(resultRows({{"org/alpha", 48210, 312, "2026-01-02T03:04:05.000Z"},
                                                  {"org/beta", 9120, 87, "2025-11-20T10:00:00.000Z"},
                                                  {"org/gamma", 1234, 5, "2025-06-14T08:30:00.000Z"}})
                                          .dump());
    });
    hub.route("/org/alpha/resolve/", [](const SeenRequest&) { return ScriptedResponse::file(kWeights); });
}

} // namespace

class TestGuiSources : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_home.isValid());
        const QByteArray home = QFile::encodeName(m_home.path());
        qputenv("XDG_CONFIG_HOME", home + "/config"); // QSettings of this test only
        qputenv("XDG_CACHE_HOME", home + "/cache");
        qputenv("HF_HOME", home + "/hf");
        qputenv("OLLAMA_HOST", "127.0.0.1:1"); // no server: the stores are listed
        for (const char* v : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_HUB_CACHE",
                              "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"})
            qunsetenv(v);
        appsettings::captureEnvironment();
    }

    void modelsPassTheTester()
    {
        HubResultsModel results;
        QAbstractItemModelTester t1(&results, QAbstractItemModelTester::FailureReportingMode::QtTest);
        HubResult r;
        r.summary.id = "org/alpha";
        r.summary.downloads = 1234567;
        r.summary.lastModified = "2026-01-02T03:04:05.000Z";
        r.cached = true;
        results.setResults({r, HubResult{}});
        QCOMPARE(results.rowCount(), 2);
        QCOMPARE(results.index(0, HubResultsModel::Model).data().toString(), QStringLiteral("org/alpha"));
        QCOMPARE(results.index(0, HubResultsModel::Local).data().toString(), QStringLiteral("downloaded"));
        QVERIFY(results.index(1, HubResultsModel::Local).data().toString().isEmpty());
        results.clear();
        QCOMPARE(results.rowCount(), 0);

        HubFilesModel files;
        QAbstractItemModelTester t2(&files, QAbstractItemModelTester::FailureReportingMode::QtTest);
        hf::RepoFile a;
        a.path = "model.safetensors";
        a.size = 1000;
        hf::RepoFile b;
        b.path = "config.json";
        b.size = 24;
        files.setFiles({a, b});
        QCOMPARE(files.rowCount(), 2);
        QCOMPARE(files.totalBytes(), uint64_t(1024));
        files.clear();

        OllamaModelsModel ollamaModels;
        QAbstractItemModelTester t3(&ollamaModels, QAbstractItemModelTester::FailureReportingMode::QtTest);
        ollama::ListedModel m;
        m.name = "tiny:latest";
        m.size = 2048;
        m.family = "llama";
        m.parameterSize = "1.2B";
        m.quantization = "Q8_0";
        ollamaModels.setModels({m});
        QCOMPARE(ollamaModels.index(0, OllamaModelsModel::Name).data().toString(), QStringLiteral("tiny:latest"));
        QCOMPARE(ollamaModels.index(0, OllamaModelsModel::Parameters).data().toString(), QStringLiteral("1.2B"));
        QCOMPARE(ollamaModels.index(0, OllamaModelsModel::Family).data().toString(), QStringLiteral("llama"));
        QCOMPARE(ollamaModels.index(0, OllamaModelsModel::Quantization).data().toString(), QStringLiteral("Q8_0"));
        ollamaModels.clear();
        QCOMPARE(ollamaModels.rowCount(), 0);
    }

    void hubSearchDetailsAndDownload()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        // org/beta is in the local cache already.
        writeAll(fs::path(QFile::encodeName(m_home.path()).toStdString()) / "hf" / "hub" / "models--org--beta" /
                     "refs" / "main",
                 std::string(40, 'c'));

        HubTab tab;
        QSignalSpy searched(&tab, &HubTab::searchFinished);
        QSignalSpy failed(&tab, &HubTab::failed);
        tab.searchField()->setText(QStringLiteral("a"));
        tab.search();
        QVERIFY(searched.wait(10000));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(tab.results()->rowCount(), 3);
        QCOMPARE(tab.results()->index(1, HubResultsModel::Model).data().toString(), QStringLiteral("org/beta"));
        QCOMPARE(tab.results()->index(1, HubResultsModel::Local).data().toString(), QStringLiteral("downloaded"));
        QVERIFY(tab.results()->index(0, HubResultsModel::Local).data().toString().isEmpty());

        QSignalSpy details(&tab, &HubTab::detailsShown);
        tab.resultsView()->setCurrentIndex(tab.results()->index(0, 0));
        QVERIFY(details.wait(10000));
        QCOMPARE(tab.files()->rowCount(), 1);
        QVERIFY(tab.useButton()->isEnabled());

        QSignalSpy open(&tab, &HubTab::openRequested);
        tab.useButton()->click();
        QVERIFY(open.wait(15000));
        const QString path = open.first().first().toString();
        QVERIFY(path.endsWith(QStringLiteral("alpha-F32.gguf")));
        QVERIFY(QFileInfo(path).isFile());
        QCOMPARE(QFileInfo(path).size(), qint64(kWeights.size()));
        QCOMPARE(failed.count(), 0);
        // The downloaded model gets its badge without a new search.
        QCOMPARE(tab.results()->index(0, HubResultsModel::Local).data().toString(), QStringLiteral("downloaded"));
        QVERIFY(tab.loadMoreButton()->isHidden()); // one page only
        qunsetenv("HF_ENDPOINT");
    }

    void hubSearchLoadsMorePages()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        HubTab tab;
        QAbstractItemModelTester tester(tab.results(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QSignalSpy searched(&tab, &HubTab::searchFinished);
        QSignalSpy failed(&tab, &HubTab::failed);
        tab.searchField()->setText(QStringLiteral("paged"));
        tab.search();
        QVERIFY(searched.wait(10000));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(tab.results()->rowCount(), 2);
        QVERIFY(tab.hasMore());
        QVERIFY(!tab.loadMoreButton()->isHidden());
        QVERIFY(tab.loadMoreButton()->isEnabled());
        QVERIFY(tab.statusLabel()->text().contains(QStringLiteral("more")));

        // "Load more" follows the engine's next-page link and appends below the first page.
        QSignalSpy inserted(tab.results(), &QAbstractItemModel::rowsInserted);
        tab.loadMoreButton()->click();
        QVERIFY(searched.wait(10000));
        QCOMPARE(failed.count(), 0);
        QCOMPARE(searched.last().first().toInt(), 4);
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(tab.results()->rowCount(), 4);
        QCOMPARE(tab.results()->index(0, HubResultsModel::Model).data().toString(), QStringLiteral("org/paged-1"));
        QCOMPARE(tab.results()->index(2, HubResultsModel::Model).data().toString(), QStringLiteral("org/paged-3"));
        QCOMPARE(tab.results()->index(3, HubResultsModel::Model).data().toString(), QStringLiteral("org/paged-4"));
        QVERIFY(!tab.hasMore());
        QVERIFY(tab.loadMoreButton()->isHidden());
        // The second page was asked for at the link's cursor, on the local Hub.
        int pageTwo = 0;
        for (const SeenRequest& r : hub.requests())
            pageTwo += r.target.find("cursor=page2") != std::string::npos;
        QCOMPARE(pageTwo, 1);

        // A new search starts over at the first page.
        tab.search();
        QVERIFY(searched.wait(10000));
        QCOMPARE(tab.results()->rowCount(), 2);
        QVERIFY(tab.hasMore());
        qunsetenv("HF_ENDPOINT");
    }

    void searchErrorShowsInTheBanner()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        ModelPage page;
        QSignalSpy failed(page.hubTab(), &HubTab::failed);
        page.hubTab()->searchField()->setText(QStringLiteral("broken"));
        page.hubTab()->search();
        QVERIFY(failed.wait(15000));
        QVERIFY(!page.banner()->isHidden());
        QCOMPARE(page.banner()->title(), tr("Hugging Face could not be searched"));
        QVERIFY(!page.banner()->message().isEmpty());
        qunsetenv("HF_ENDPOINT");
    }

    // A tab's error banner goes when another tab is shown, and when a new action starts on its
    // tab: a new search, or a new download while the old error is still up.
    void bannersBelongToTheirTab()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        HttpTestServer server;
        server.route("/slow.gguf", [](const SeenRequest&) {
            ScriptedResponse r = ScriptedResponse::file(std::string(2 << 20, 'x'));
            r.chunkDelayMs = 40;
            return r;
        });
        ModelPage page;
        page.show();
        HubTab* hubTab = page.hubTab();
        page.tabs()->setCurrentWidget(hubTab);
        QSignalSpy failed(hubTab, &HubTab::failed);
        hubTab->searchField()->setText(QStringLiteral("broken"));
        hubTab->search();
        QVERIFY(failed.wait(15000));
        QVERIFY(page.banner()->isVisible());

        // Another tab: the Hub's error is not shown there.
        page.tabs()->setCurrentWidget(page.urlTab());
        QVERIFY(!page.banner()->isVisible());

        // A new search on the Hub tab clears its old error as it starts.
        page.tabs()->setCurrentWidget(hubTab);
        hubTab->search();
        QVERIFY(failed.wait(15000));
        QVERIFY(page.banner()->isVisible());
        QSignalSpy searched(hubTab, &HubTab::searchFinished);
        hubTab->searchField()->setText(QStringLiteral("llama"));
        hubTab->search();
        QVERIFY(!page.banner()->isVisible());
        QVERIFY(searched.wait(15000));
        QVERIFY(!page.banner()->isVisible());

        // A failed download on the URL tab, then a new one: the old error goes while it runs.
        UrlTab* urlTab = page.urlTab();
        page.tabs()->setCurrentWidget(urlTab);
        QSignalSpy urlFailed(urlTab, &UrlTab::failed);
        urlTab->urlField()->setText(QString::fromStdString(server.url() + "/missing.gguf"));
        urlTab->fetchButton()->click();
        QVERIFY(urlFailed.wait(15000));
        QVERIFY(page.banner()->isVisible());
        QSignalSpy cancelled(urlTab->downloadRow()->job(), &DownloadJob::cancelled);
        urlTab->urlField()->setText(QString::fromStdString(server.url() + "/slow.gguf"));
        urlTab->fetchButton()->click();
        QVERIFY(urlTab->downloadRow()->job()->isRunning());
        QVERIFY(!page.banner()->isVisible());
        urlTab->downloadRow()->job()->cancel();
        QVERIFY(cancelled.wait(15000));
        qunsetenv("HF_ENDPOINT");
    }

    void ollamaStoreListingAndUse()
    {
        QTemporaryDir store;
        writeStoreModel(fs::path(QFile::encodeName(store.path()).toStdString()), "tiny", kWeights,
                        ollamaConfig("llama", "32", "F32"));
        qputenv("OLLAMA_MODELS", QFile::encodeName(store.path()));
        OllamaTab tab;
        QSignalSpy listed(&tab, &OllamaTab::listed);
        tab.refresh();
        QVERIFY(listed.wait(10000));
        QCOMPARE(listed.first().first().toInt(), 1);
        QCOMPARE(tab.models()->rowCount(), 1);
        QCOMPARE(tab.models()->index(0, OllamaModelsModel::Name).data().toString(), QStringLiteral("tiny:latest"));
        QCOMPARE(tab.models()->model(0).size, uint64_t(kWeights.size()));
        QCOMPARE(tab.models()->index(0, OllamaModelsModel::Family).data().toString(), QStringLiteral("llama"));
        QCOMPARE(tab.models()->index(0, OllamaModelsModel::Quantization).data().toString(), QStringLiteral("F32"));
        QCOMPARE(tab.models()->index(0, OllamaModelsModel::Parameters).data().toString(), QStringLiteral("32"));
        QVERIFY(!tab.view()->isColumnHidden(OllamaModelsModel::Family));

        QSignalSpy open(&tab, &OllamaTab::openRequested);
        tab.view()->setCurrentIndex(tab.models()->index(0, 0));
        Q_EMIT tab.view()->activated(tab.models()->index(0, 0));
        QVERIFY(open.wait(10000));
        QVERIFY(open.first().first().toString().contains(QStringLiteral("sha256-")));

        QTemporaryDir empty;
        qputenv("OLLAMA_MODELS", QFile::encodeName(empty.path()));
        OllamaTab none;
        QSignalSpy listedNone(&none, &OllamaTab::listed);
        none.refresh();
        QVERIFY(listedNone.wait(10000));
        QCOMPARE(listedNone.first().first().toInt(), 0);
        QVERIFY(none.emptyLabel()->text().contains(QStringLiteral("~/.ollama/models")));
        qunsetenv("OLLAMA_MODELS");
    }

    void urlDownloadAndCancel()
    {
        const std::string body(3 << 20, 'x');
        HttpTestServer server;
        server.route("/fast.gguf", [](const SeenRequest&) { return ScriptedResponse::file(kWeights); });
        server.route("/slow.gguf", [&body](const SeenRequest&) {
            ScriptedResponse r = ScriptedResponse::file(body);
            r.chunkDelayMs = 40;
            return r;
        });
        const fs::path folder = appsettings::effectiveDownloadFolder();

        UrlTab tab;
        QSignalSpy open(&tab, &UrlTab::openRequested);
        QSignalSpy progress(tab.downloadRow()->job(), &DownloadJob::progress);
        tab.urlField()->setText(QString::fromStdString(server.url() + "/fast.gguf"));
        tab.fetchButton()->click();
        QVERIFY(open.wait(15000));
        QVERIFY(progress.count() > 0);
        QCOMPARE(QFileInfo(open.first().first().toString()).size(), qint64(kWeights.size()));

        QSignalSpy cancelled(tab.downloadRow()->job(), &DownloadJob::cancelled);
        QSignalSpy failed(&tab, &UrlTab::failed);
        progress.clear();
        tab.urlField()->setText(QString::fromStdString(server.url() + "/slow.gguf"));
        tab.fetchButton()->click();
        QVERIFY(!tab.fetchButton()->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() > 0, 10000);
        tab.downloadRow()->job()->cancel();
        QVERIFY(cancelled.wait(10000));
        QCOMPARE(failed.count(), 0);
        QVERIFY(tab.fetchButton()->isEnabled());
        QVERIFY(!fs::exists(folder / "slow.gguf")); // only the resumable .incomplete part stays

        // A missing file: failed with the engine's message, in plain words, and no file.
        QSignalSpy jobFailed(tab.downloadRow()->job(), &DownloadJob::failed);
        tab.urlField()->setText(QString::fromStdString(server.url() + "/missing.gguf"));
        tab.fetchButton()->click();
        QVERIFY(failed.wait(15000));
        QCOMPARE(jobFailed.count(), 1);
        QVERIFY(!failed.first().at(1).toString().isEmpty());
        QVERIFY(!fs::exists(folder / "missing.gguf"));
        QVERIFY(tab.fetchButton()->isEnabled());
    }

    void tokenSourceNeverShowsTheToken()
    {
        appsettings::setStoredToken(QStringLiteral("hf_SecretForTheTest"));
        appsettings::applyToEnvironment();
        QCOMPARE(qgetenv("HF_TOKEN"), QByteArray("hf_SecretForTheTest"));
        QVERIFY(!appsettings::tokenFromEnvironment());
        const QString text = appsettings::tokenSourceText();
        QVERIFY(text.contains(QStringLiteral("settings")));
        QVERIFY(!text.contains(QStringLiteral("Secret")));
        appsettings::setStoredToken({});
        appsettings::applyToEnvironment();
        QVERIFY(qgetenv("HF_TOKEN").isEmpty());
    }

    // The source tabs render with real content: the Hugging Face tab over the scripted Hub with
    // a model selected, the Ollama tab over a fake store, the URL tab and the settings dialog,
    // each saved as a PNG. With NOVAQ_STUDIO_SCREENSHOTS=folder they go there, for the README;
    // otherwise into a scratch folder.
    void screenshots()
    {
        QTemporaryDir scratch;
        QVERIFY(scratch.isValid());
        const QString requested = qEnvironmentVariable("NOVAQ_STUDIO_SCREENSHOTS");
        const QString folder = requested.isEmpty() ? scratch.path() : requested;
        Q_INIT_RESOURCE(novaq_studio);
        setupApplication(*qApp);
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        QTemporaryDir store;
        writeStoreModel(fs::path(QFile::encodeName(store.path()).toStdString()), "kjv-llama", kWeights,
                        ollamaConfig("llama", "6.8M", "F32"));
        writeStoreModel(fs::path(QFile::encodeName(store.path()).toStdString()), "tiny", kWeights + "x",
                        ollamaConfig("llama", "32", "F32"));
        qputenv("OLLAMA_MODELS", QFile::encodeName(store.path()));
        writeAll(fs::path(QFile::encodeName(m_home.path()).toStdString()) / "hf" / "hub" / "models--org--beta" /
                     "refs" / "main",
                 std::string(40, 'c'));

        MainWindow window;
        window.resize(1280, 800);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        ModelPage* page = window.modelPage();
        HubTab* hubTab = page->hubTab();
        page->tabs()->setCurrentWidget(hubTab);
        QSignalSpy searched(hubTab, &HubTab::searchFinished);
        hubTab->searchField()->setText(QStringLiteral("llama"));
        hubTab->search();
        QVERIFY(searched.wait(10000));
        QSignalSpy details(hubTab, &HubTab::detailsShown);
        hubTab->resultsView()->setCurrentIndex(hubTab->results()->index(0, 0));
        QVERIFY(details.wait(10000));
        QTest::qWait(200);
        QDir().mkpath(folder);
        QVERIFY(window.grab().save(screenshotPath(folder, QStringLiteral("model-huggingface"))));

        QSignalSpy listed(page->ollamaTab(), &OllamaTab::listed);
        page->tabs()->setCurrentWidget(page->ollamaTab());
        QVERIFY(listed.count() > 0 || listed.wait(10000));
        QTest::qWait(200);
        QVERIFY(window.grab().save(screenshotPath(folder, QStringLiteral("model-ollama"))));

        page->tabs()->setCurrentWidget(page->urlTab());
        page->urlTab()->urlField()->setText(QStringLiteral("https://example.com/models/tiny-F32.gguf"));
        QTest::qWait(100);
        QVERIFY(window.grab().save(screenshotPath(folder, QStringLiteral("model-url"))));

        // The same tabs on a small screen (1024 x 640), into small/.
        const QString small = QDir(folder).filePath(QStringLiteral("small"));
        QDir().mkpath(small);
        window.resize(1024, 640);
        QTRY_COMPARE(window.size(), QSize(1024, 640));
        for (QWidget* tab : std::initializer_list<QWidget*>{hubTab, page->ollamaTab(), page->urlTab()}) {
            page->tabs()->setCurrentWidget(tab);
            QTest::qWait(200);
            const QString name = tab == hubTab              ? QStringLiteral("model-huggingface")
                                 : tab == page->ollamaTab() ? QStringLiteral("model-ollama")
                                                            : QStringLiteral("model-url");
            QVERIFY(window.grab().save(screenshotPath(small, name)));
        }
        qunsetenv("HF_ENDPOINT");
        qunsetenv("OLLAMA_MODELS");

        SettingsDialog dialog(&window);
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        QVERIFY(dialog.grab().save(screenshotPath(folder, QStringLiteral("settings-dialog"))));
        dialog.reject();
    }

private:
    QTemporaryDir m_home;
};

QTEST_MAIN(TestGuiSources)
#include "test_gui_sources.moc"
