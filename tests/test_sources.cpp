// The model sources' answers as reports (sources/listing.h): `novaq search`, `novaq hf --list`
// and `novaq ollama --list` as JSON and as text, and the summaries of `novaq hf` and `url`
// downloads, built by the core so that the app can show the same; and the repo id in what a
// person types or pastes (hf::repoIdFrom). No network: the listings are built by hand.

#include "novaq/container/open_model.h"
#include "novaq/sources/huggingface.h"
#include "novaq/sources/listing.h"

#include <QtTest>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace novaq;

namespace {

// Marks every text that went through `shown`, so a test sees which texts did.
std::string bracketed(std::string_view text) { return "<" + std::string(text) + ">"; }

hf::ModelInfo tinyInfo()
{
    hf::ModelInfo info;
    info.id = "org/tiny";
    info.commit = "0123456789abcdef0123456789abcdef01234567";
    info.revision = "main";
    info.gated = "false";
    info.architecture = "LlamaForCausalLM";
    info.parameters = 1'234'567;
    info.files = {{"config.json", 600, std::string(40, 'a'), ""},
                  {"model.safetensors", 3'000'000, std::string(40, 'b'), std::string(64, 'c')}};
    return info;
}

} // namespace

class TestSources : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void repoIdFrom_data()
    {
        QTest::addColumn<QString>("typed");
        QTest::addColumn<QString>("endpoint");
        QTest::addColumn<QString>("repo");
        const QString hub = "https://huggingface.co";
        QTest::newRow("plain id") << "org/name" << hub << "org/name";
        QTest::newRow("model page URL") << "https://huggingface.co/org/name" << hub << "org/name";
        QTest::newRow("http URL") << "http://huggingface.co/org/name" << hub << "org/name";
        QTest::newRow("short host") << "https://hf.co/org/name" << hub << "org/name";
        QTest::newRow("no scheme") << "huggingface.co/org/name" << hub << "org/name";
        QTest::newRow("short host, no scheme") << "hf.co/org/name" << hub << "org/name";
        QTest::newRow("trailing slashes") << "https://huggingface.co/org/name//" << hub << "org/name";
        QTest::newRow("a mirror (HF_ENDPOINT)") << "http://127.0.0.1:8080/org/name"
                                                << "http://127.0.0.1:8080"
                                                << "org/name";
        QTest::newRow("another host stays") << "https://example.org/org/name" << hub << "https://example.org/org/name";
        // One prefix only: what is left is for validateRepoId to refuse.
        QTest::newRow("one prefix taken off") << "hf.co/hf.co/org/name" << hub << "hf.co/org/name";
        QTest::newRow("a page below the model stays")
            << "https://huggingface.co/org/name/tree/main" << hub << "org/name/tree/main";
    }

    void repoIdFrom()
    {
        QFETCH(QString, typed);
        QFETCH(QString, endpoint);
        QFETCH(QString, repo);
        QCOMPARE(QString::fromStdString(hf::repoIdFrom(typed.toStdString(), endpoint.toStdString())), repo);
    }

    void countText_data()
    {
        QTest::addColumn<qulonglong>("count");
        QTest::addColumn<QString>("text");
        QTest::newRow("zero") << 0ULL << "0";
        QTest::newRow("below ten thousand, exact") << 9999ULL << "9999";
        QTest::newRow("ten thousand") << 10000ULL << "10.0k";
        QTest::newRow("thousands, one decimal") << 123456ULL << "123.5k";
        QTest::newRow("a million") << 1000000ULL << "1.0M";
        QTest::newRow("millions") << 4560000ULL << "4.6M";
    }

    void countText()
    {
        QFETCH(qulonglong, count);
        QFETCH(QString, text);
        QCOMPARE(QString::fromStdString(sources::countText(count)), text);
    }

    void searchResults()
    {
        hf::ModelSummary a;
        a.id = "org/a";
        a.downloads = 123456;
        a.likes = 7;
        a.lastModified = "2026-01-02T03:04:05.000Z";
        a.gated = "false";
        a.tags = {"gguf"};
        hf::ModelSummary b = a;
        b.id = "org/b-longer";
        b.gated = "manual";
        const std::vector<hf::ModelSummary> models{a, b};
        hf::SearchQuery query;
        query.text = "llama";

        const nlohmann::json j = sources::searchResultsJson(models);
        QCOMPARE(j.size(), size_t(2));
        QCOMPARE(j[1]["id"].get<std::string>(), std::string("org/b-longer"));
        QCOMPARE(j[0]["downloads"].get<uint64_t>(), uint64_t(123456));
        QCOMPARE(j[0]["last_modified"].get<std::string>(), a.lastModified);
        QCOMPARE(j[1]["gated"].get<std::string>(), std::string("manual"));
        QCOMPARE(QString::fromStdString(j[0]["tags"].dump()), QString(R"(["gguf"])"));

        // The MODEL column is as wide as the longest shown id ("<org/b-longer>", 14) plus two; counts
        // above 10,000 in thousands with one decimal (123456 -> 123.5k); the date is the day only.
        const std::string text = sources::formatSearchResults(models, query, bracketed);
        const std::string expected = "MODEL            DOWNLOADS   LIKES  UPDATED     NOTE\n"
                                     "<org/a>             123.5k       7  <2026-01-02> \n"
                                     "<org/b-longer>      123.5k       7  <2026-01-02> gated\n"
                                     "2 models; `novaq hf ID --list` shows one's files\n";
        QCOMPARE(QString::fromStdString(text), QString::fromStdString(expected));

        query.format = "gguf";
        QCOMPARE(sources::formatSearchResults({}, query, bracketed),
                 std::string("No models match 'llama' with format gguf.\n"));
    }

    void modelInfo()
    {
        const hf::ModelInfo info = tinyInfo();
        hf::FileChoice choice;
        choice.files = {"model.safetensors", "config.json"};
        choice.modelPath = "model.safetensors";
        choice.description = "safetensors (model.safetensors)";

        const nlohmann::json j = sources::modelInfoJson(info, &choice);
        QCOMPARE(j["id"].get<std::string>(), info.id);
        QCOMPARE(j["selection"].get<std::string>(), choice.description);
        QCOMPARE(j["files"].size(), size_t(2));
        QCOMPARE(j["files"][1]["sha256"].get<std::string>(), std::string(64, 'c'));
        QVERIFY(j["files"][0]["selected"].get<bool>());
        QCOMPARE(sources::modelInfoJson(info, nullptr)["files"][0]["selected"].get<bool>(), false);
        QCOMPARE(sources::modelInfoJson(info, nullptr)["selection"].get<std::string>(), std::string());

        // Names padded to the longest shown path plus two; sizes in binary units right-aligned
        // in 10 columns (3,000,000 B = 2.86 MiB); the first 16 hex digits of an LFS file's SHA-256.
        const std::string text = sources::formatModelInfo(info, "main", &choice, "", bracketed);
        const std::string expected = "<org/tiny> at <main> (commit 0123456789ab)\n"
                                     "  architecture: <LlamaForCausalLM>   parameters: 1.2M   gated: no\n"
                                     "  files (* = what `novaq hf` downloads):\n"
                                     "  * <config.json>             600 B\n"
                                     "  * <model.safetensors>     2.9 MiB  sha256 cccccccccccccccc...\n"
                                     "  2 files, 2.9 MiB in all\n"
                                     "  selected: <safetensors (model.safetensors)>\n";
        QCOMPARE(QString::fromStdString(text), QString::fromStdString(expected));

        // Nothing fits: no file is marked, and the reason is shown.
        hf::ModelInfo gated = info;
        gated.gated = "manual";
        const std::string none = sources::formatModelInfo(gated, "v1", nullptr, "no weights", bracketed);
        QVERIFY(none.find("gated: <manual> (needs a token with access)") != std::string::npos);
        QVERIFY(none.find("  * <") == std::string::npos); // no file marked
        QVERIFY(none.find("  selected: nothing yet; <no weights>\n") != std::string::npos);
    }

    void ollamaList()
    {
        ollama::ListedModel m;
        m.name = "llama3.2:1b";
        m.size = 1'300'000'000;
        m.parameterSize = "1.2B";
        m.quantization = "Q8_0";
        m.where = "/store";
        ollama::ListedModel bare;
        bare.name = "x:latest";
        bare.size = 10;
        bare.where = "/store";
        const std::vector<ollama::ListedModel> rows{m, bare};

        const nlohmann::json j = sources::ollamaListJson(rows);
        QCOMPARE(j.size(), size_t(2));
        QCOMPARE(j[0]["parameter_size"].get<std::string>(), std::string("1.2B"));
        QCOMPARE(j[0]["size"].get<uint64_t>(), m.size);
        QCOMPARE(j[1]["where"].get<std::string>(), std::string("/store"));

        const std::string server = "http://127.0.0.1:11434";
        const std::string fromServer = sources::formatOllamaList(rows, true, server, {}, bracketed);
        QCOMPARE(QString::fromStdString(fromServer),
                 QString::fromStdString("Models of the Ollama server at http://127.0.0.1:11434:\n"
                                        "  <llama3.2:1b>     1.2 GiB  <1.2B> <Q8_0>\n"
                                        "  <x:latest>           10 B\n"
                                        "2 models\n"));
        // From the stores, each row says which one holds it.
        const std::string fromStores = sources::formatOllamaList(rows, false, server, {"/a", "/b"}, bracketed);
        QVERIFY(fromStores.starts_with("No Ollama server answers at http://127.0.0.1:11434; models in the stores /a "
                                       "/b:\n"));
        QVERIFY(fromStores.find("<Q8_0>  </store>\n") != std::string::npos);
        QCOMPARE(sources::formatOllamaList({}, true, server, {}, bracketed),
                 std::string("Models of the Ollama server at http://127.0.0.1:11434:\n"
                             "0 models; pull one with `ollama pull NAME`\n"));
    }

    void downloadSummaries()
    {
        hf::Snapshot snapshot;
        snapshot.commit = "0123456789abcdef0123456789abcdef01234567";
        snapshot.description = "safetensors (model.safetensors)";
        snapshot.filesCached = 1;
        snapshot.filesDownloaded = 2;
        snapshot.downloadedBytes = 3 * 1024 * 1024;
        QCOMPARE(sources::snapshotSummary("org/x", snapshot, bracketed),
                 std::string("org/x at commit 0123456789ab: <safetensors (model.safetensors)>; 1 file(s) from the "
                             "cache, 2 downloaded (3.0 MiB)"));
        snapshot.offline = true;
        QVERIFY(sources::snapshotSummary("org/x", snapshot, bracketed).ends_with("(3.0 MiB), offline"));

        sources::UrlDownload download;
        download.file = "/d/tiny.gguf";
        download.size = 2048;
        QCOMPARE(sources::urlDownloadSummary(download, ModelFormat::Gguf, bracketed),
                 "Downloaded </d/tiny.gguf> (2.0 KiB, " + std::string(formatName(ModelFormat::Gguf)) + ")");
        download.reused = true;
        QCOMPARE(sources::urlDownloadSummary(download, ModelFormat::Unknown, bracketed),
                 std::string("Using the earlier download </d/tiny.gguf> (2.0 KiB, format not recognized by content)"));
    }
};

QTEST_GUILESS_MAIN(TestSources)
#include "test_sources.moc"
