// The app's own wording of engine errors (ui/error_wording): one row per case, the error
// banner's Show details / Copy details, real pages that show them (a truncated GGUF, an empty
// folder, a web address without http://), and banners that go when a new action starts.

#include "gui_test_support.h"
#include "ui/error_wording.h"
#include "ui/jobs.h" // Q_DECLARE_METATYPE(novaq::ErrorKind)
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/results_page.h"
#include "ui/settings_page.h"
#include "ui/source_tabs.h"
#include "ui/widgets.h"

#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/report.h"

#include <QAbstractButton>
#include <QApplication>
#include <QClipboard>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

Q_DECLARE_METATYPE(novaq::ui::ErrorContext)

namespace {

// What the app's own words must never hold: command-line flags and commands, environment
// variables, byte offsets and the engine's placeholder for an address.
QString commandLineLeftover(const QString& text)
{
    static const QRegularExpression leftovers(QStringLiteral(
        "(--[a-z])|((?<![.\\w])novaq [a-z])|(`)|(\\b(HF|HUGGING_FACE|OLLAMA|XDG|NOVAQ)_[A-Z_]+)|(\\$[A-Z])|"
        "(\\boffset)|(\\b\\d+ bytes\\b)|(an invalid URL)"));
    const QRegularExpressionMatch m = leftovers.match(text);
    return m.hasMatch() ? m.captured(0) : QString();
}

// A small GGUF from tests/data cut to `keep` bytes: the file a stopped download leaves.
QString truncatedGguf(const QDir& dir, qint64 keep)
{
    QFile source(QStringLiteral(NOVAQ_TEST_DATA_DIR "/architectures/llama3/model.gguf"));
    if (!source.open(QIODevice::ReadOnly))
        return {};
    const QString path = dir.filePath(QStringLiteral("llama3-cut.gguf"));
    QFile out(path);
    if (!out.open(QIODevice::WriteOnly) || out.write(source.read(keep)) != keep)
        return {};
    return path;
}

} // namespace

class TestGuiErrors : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
    }

    void wording_data()
    {
        QTest::addColumn<ErrorKind>("kind");
        QTest::addColumn<ErrorContext>("context");
        QTest::addColumn<QString>("engine");
        QTest::addColumn<QString>("typed");
        QTest::addColumn<QString>("titleWords");       // the title holds this
        QTest::addColumn<QStringList>("messageWords"); // the message holds each of these

        using K = ErrorKind;
        using C = ErrorContext;
        // The engine's messages as its throw sites write them (paths and figures made up).
        QTest::newRow("truncated GGUF: offsets, no 'download it again'")
            << K::InvalidInput << C::OpenModel
            << "/home/ann/models/m.gguf: metadata key 19 'tokenizer.ggml.tokens' element 307 at offset 4998: string "
               "length (8 bytes) runs past the end of the file (5000 bytes); the file is truncated, download or copy "
               "it again"
            << "/home/ann/models/m.gguf"
            << "incomplete" << QStringList{"m.gguf", "Download it again"};
        QTest::newRow("truncated GGUF, older wording: offset after the verdict")
            << K::InvalidInput << C::OpenModel
            << "/home/ann/models/m.gguf: metadata key 19 'tokenizer.ggml.tokens' element 307: string length (8 "
               "bytes) runs past the end of the file (5000 bytes); the file is truncated at offset 4998"
            << "/home/ann/models/m.gguf"
            << "incomplete" << QStringList{"m.gguf", "Download it again"};
        QTest::newRow("GGUF header cut short")
            << K::InvalidInput << C::OpenModel
            << "/tmp/t.gguf: header: tensor_count 21 needs at least 672 bytes, but only 84 remain in the file at "
               "offset 8"
            << "/tmp/t.gguf"
            << "incomplete" << QStringList{"t.gguf", "Download it again"};
        QTest::newRow("truncated safetensors from a Hugging Face download")
            << K::InvalidInput << C::OpenModel
            << "/c/model.safetensors: tensor 'w' needs bytes 0 to 4096 of the data (the file has 100 bytes); the "
               "file is truncated, download it again"
            << "/c"
            << "incomplete" << QStringList{"model.safetensors", "Download it again"};
        QTest::newRow("truncated .novaq on Validate")
            << K::Corrupt << C::Validate << "/o/m.novaq: tensor 3 runs past the end of the file at offset 123456"
            << "/o/m.novaq"
            << "incomplete" << QStringList{"m.novaq", "Compress the model again"};
        QTest::newRow("truncated .novaq opened with File > Open")
            << K::Corrupt << C::OpenModel << "/o/m.novaq: the tensor index runs past the end of the file (812 bytes)"
            << "/o/m.novaq"
            << "incomplete" << QStringList{"m.novaq", "Compress the model again"};
        QTest::newRow("empty folder is not 'this file'")
            << K::InvalidInput << C::OpenModel
            << "the folder /home/ann/empty is empty; put the model's files in it, or name the folder or file that "
               "holds the model"
            << "/home/ann/empty"
            << "folder is empty" << QStringList{"empty", "Open a folder...", "Open a file..."};
        QTest::newRow("folder without a model")
            << K::InvalidInput << C::OpenModel
            << "no model found in the folder /d (2 files, none of them a model). Supported formats: GGUF, "
               "safetensors, PyTorch, ONNX, NOVAQ, llama2.c (a folder may hold ...)."
            << "/d"
            << "no model" << QStringList{"Open a file..."};
        QTest::newRow("folder with two models")
            << K::InvalidInput << C::OpenModel
            << "the folder /d holds several models:\n  x (GGUF)\n  y (GGUF)\nName "
               "the file to open."
            << "/d"
            << "more than one model" << QStringList{"Open a file...", "Show details"};
        QTest::newRow("missing file") << K::Io << C::OpenModel << "no such file or folder: /gone/m.gguf"
                                      << "/gone/m.gguf"
                                      << "not found" << QStringList{"m.gguf", "Open a file..."};
        QTest::newRow("demo model missing: 'novaq local PATH'")
            << K::Io << C::OpenModel
            << "the embedded demo model was not found (looked in /a, /b); name a model instead: novaq local PATH"
            << ""
            << "demo model" << QStringList{"Open a file..."};
        QTest::newRow("Git LFS pointer: 'git lfs pull'")
            << K::InvalidInput << C::OpenModel
            << "/m/model.safetensors is not a model file we can read: it is a Git LFS pointer (the real file was not "
               "downloaded; run `git lfs pull`). Supported formats: GGUF."
            << "/m/model.safetensors"
            << "placeholder" << QStringList{"model.safetensors"};
        QTest::newRow("ONNX damage at byte offsets")
            << K::InvalidInput << C::OpenModel
            << "/m/x.onnx: ModelProto.graph (GraphProto at file offset 120): field 1 at file offset 130 has wire "
               "type 7"
            << "/m/x.onnx"
            << "not a model" << QStringList{"x.onnx", "Download it again"};
        QTest::newRow("web address without a scheme: '(an invalid URL)', 'novaq local PATH'")
            << K::InvalidArgument << C::UrlDownload
            << "'(an invalid URL)' is not an http:// or https:// URL; for a file on disk use `novaq local PATH`"
            << "example.com/model.gguf"
            << "not a web address" << QStringList{"example.com/model.gguf", "http://", "This computer"};
        QTest::newRow("web address unreachable")
            << K::Network << C::UrlDownload
            << "http://127.0.0.1:1/x.gguf: could not connect (Failed to connect to 127.0.0.1 port 1)"
            << "http://127.0.0.1:1/x.gguf"
            << "could not be reached" << QStringList{"http://127.0.0.1:1/x.gguf", "Fetch again"};
        QTest::newRow("web address answers 404")
            << K::Network << C::UrlDownload << "http://h/x.gguf answered HTTP 404 (Not Found)"
            << "http://h/x.gguf"
            << "download failed" << QStringList{"http://h/x.gguf", "Fetch again"};
        QTest::newRow("Ollama registry: 'pass --insecure'")
            << K::Network << C::OllamaPull
            << "cannot reach the registry registry.ollama.ai: could not connect (timeout); for a plain-http registry "
               "pass --insecure"
            << "llama3.2:1b"
            << "Ollama library" << QStringList{"Pull again", "internet"};
        QTest::newRow("Ollama name not in the registry")
            << K::InvalidArgument << C::OllamaPull
            << "library/nope:1b is not in the registry registry.ollama.ai; check the name and tag "
               "(https://ollama.com/library lists the public ones)"
            << "nope:1b"
            << "no model with this name" << QStringList{"nope:1b", "llama3.2:1b"};
        QTest::newRow("Ollama weights gone") << K::InvalidInput << C::OllamaOpen
                                             << "the weights of llama3.2:1b are not in an Ollama store on this computer"
                                             << "llama3.2:1b"
                                             << "missing" << QStringList{"llama3.2:1b", "Pull it again"};
        QTest::newRow("disk full: HF_HUB_CACHE, --download-dir")
            << K::Io << C::HubDownload
            << "model.safetensors needs 4.2 GB but only 1.0 GB is free in /home/ann/.cache/huggingface; free some "
               "space or choose another folder (HF_HUB_CACHE, --download-dir)"
            << "org/model"
            << "disk space" << QStringList{"4.2 GB", "1.0 GB", "File > Settings...", "Use this model"};
        QTest::newRow("Hugging Face token rejected: HF_TOKEN")
            << K::Network << C::HubDownload
            << "the Hugging Face token was rejected (invalid or expired); create a new one at "
               "https://huggingface.co/settings/tokens and set HF_TOKEN, or unset it for public models"
            << "org/model"
            << "token" << QStringList{"File > Settings..."};
        QTest::newRow("gated model: HF_TOKEN, $HF_HOME")
            << K::Network << C::HubDownload
            << "org/model is a gated model: log in at https://huggingface.co/org/model and accept its terms, then "
               "set HF_TOKEN to a token of that account (or save it in $HF_HOME/token)"
            << "org/model"
            << "permission" << QStringList{"Request access", "File > Settings..."};
        QTest::newRow("gated model, not approved yet")
            << K::Network << C::HubDownload
            << "org/model is a gated model and your token's account has no access yet: request access at "
               "https://huggingface.co/org/model and wait for approval"
            << "org/model"
            << "not approved" << QStringList{"org/model", "Use this model again"};
        QTest::newRow("Hugging Face model not found: HF_TOKEN")
            << K::InvalidArgument << C::HubDetails
            << "model org/nope not found on https://huggingface.co; check the id, or set HF_TOKEN if it is a private "
               "model"
            << "org/nope"
            << "no model with this name" << QStringList{"org/nope", "File > Settings..."};
        QTest::newRow("file gone from the model: 'novaq hf --list'")
            << K::InvalidArgument << C::HubDownload
            << "'m.Q4.gguf' not found in org/model at revision main; run `novaq hf org/model --list` to see its files"
            << "org/model"
            << "not in the model" << QStringList{"Select the model again", "Use this model"};
        QTest::newRow("several GGUF files: '--file'")
            << K::InvalidArgument << C::HubDownload
            << "org/model has 3 GGUF files; pick one with --file (a name or a quant such as Q8_0):\n  a.gguf\n  b.gguf"
            << "org/model"
            << "Choose which file" << QStringList{"org/model", "list of files", "Use this model"};
        QTest::newRow("no weights at the top level: '--list', '--file'")
            << K::InvalidArgument << C::HubDownload
            << "org/model has no model weights NOVAQ reads at its top level (safetensors, PyTorch or GGUF); run "
               "`novaq hf org/model --list` and pick a file with --file"
            << "org/model"
            << "No model file" << QStringList{"list of files"};
        QTest::newRow("Hub offline: HF_HUB_OFFLINE")
            << K::Network << C::HubSearch << "search needs the network, but HF_HUB_OFFLINE is set; unset it to search"
            << "llama"
            << "offline" << QStringList{"offline mode"};
        QTest::newRow("Hub answers oddly: HF_ENDPOINT")
            << K::Network << C::HubSearch << "the Hub's search answer is not a list; is HF_ENDPOINT a Hub?"
            << "llama"
            << "Hugging Face" << QStringList{"search again"};
        QTest::newRow("Hub rate limit: HF_TOKEN")
            << K::Network << C::HubSearch
            << "the Hub is rate-limiting requests (HTTP 429); wait 30 s and run again, or set HF_TOKEN for a higher "
               "limit"
            << "llama"
            << "limiting" << QStringList{"File > Settings...", "search again"};
        QTest::newRow("Hub unreachable: HF_ENDPOINT, HF_HUB_OFFLINE=1")
            << K::Network << C::HubSearch
            << "cannot reach https://huggingface.co: could not resolve host (x); check the network or proxy, or set "
               "HF_ENDPOINT to a mirror (HF_HUB_OFFLINE=1 uses the cache only)"
            << "llama"
            << "could not be reached" << QStringList{"internet connection", "search again"};
        QTest::newRow("Hub search, other answer")
            << K::Network << C::HubSearch << "https://huggingface.co answered HTTP 400 for https://huggingface.co/api"
            << "broken"
            << "could not be searched" << QStringList{"broken", "search again"};
        QTest::newRow("compress: '--output ... is the input model'")
            << K::InvalidArgument << C::Compress
            << "--output /m/model.safetensors is the input model; choose another file name"
            << ""
            << "model itself" << QStringList{"Settings page"};
        QTest::newRow("compress: '--bits is not a preset'")
            << K::InvalidArgument << C::Compress << "--bits 7 is not a preset; choose one of 1, 1.5, 2, 2.5, 3"
            << ""
            << "bits per weight" << QStringList{"Settings page"};
        QTest::newRow("compress: 'choose another --output'")
            << K::Io << C::Compress
            << "cannot write /nope/m.novaq: the folder /nope does not exist; create it or choose another --output"
            << ""
            << "folder does not exist" << QStringList{"Settings page"};
        QTest::newRow("compress: '--threads'")
            << K::InvalidArgument << C::Compress << "--threads must be 0 (all cores) or more"
            << ""
            << "threads" << QStringList{"Settings page"};
        QTest::newRow("compress: a write error")
            << K::Io << C::Compress << "cannot write /o/m.novaq.tmp: No space left on device"
            << ""
            << "written" << QStringList{"Settings page"};
        QTest::newRow("export: '--dtype f32'")
            << K::Unsupported << C::Export
            << "/o/m.novaq: tensor 'w' holds 1e+06 (element 12), beyond the F16 range of +-65504; export with --dtype "
               "f32"
            << "/o/m.safetensors"
            << "16-bit" << QStringList{".novaq file itself is fine"};
        QTest::newRow("quality check: '--ctx'")
            << K::InvalidArgument << C::QualityCheck
            << "the text gives 40 tokens, fewer than one window of --ctx 128 needs (129); use a longer text or a "
               "smaller --ctx"
            << "/t/short.txt"
            << "too short" << QStringList{"40", "129", "longer text"};
        QTest::newRow("Try it: an architecture it cannot run")
            << K::Unsupported << C::TryIt << "the model's configuration names architecture 'mamba'; runs: llama"
            << ""
            << "cannot run" << QStringList{"can still be compressed"};
        QTest::newRow("validate: checksum")
            << K::Corrupt << C::Validate << "/o/m.novaq: tensor 3 'w': checksum mismatch (xxh64 1 != 2)"
            << "/o/m.novaq"
            << "damaged" << QStringList{"Compress the model again"};
        QTest::newRow("open: not a model")
            << K::Unsupported << C::OpenModel << "/m/x.gguf: GGUF tensor type 39 is not supported"
            << "/m/x.gguf"
            << "not supported" << QStringList{"x.gguf", "Show details"};
        QTest::newRow("cancelled") << K::Cancelled << C::HubDownload << "cancelled"
                                   << "org/model"
                                   << "Cancelled" << QStringList{"nothing was changed"};
    }

    void wording()
    {
        QFETCH(ErrorKind, kind);
        QFETCH(ErrorContext, context);
        QFETCH(QString, engine);
        QFETCH(QString, typed);
        QFETCH(QString, titleWords);
        QFETCH(QStringList, messageWords);

        const ErrorWording w = wordError(kind, engine, context, typed);
        QVERIFY2(w.title.contains(titleWords, Qt::CaseInsensitive), qPrintable(w.title));
        for (const QString& word : messageWords)
            QVERIFY2(w.message.contains(word), qPrintable(QStringLiteral("'%1' not in: %2").arg(word, w.message)));
        for (const QString& text : {w.title, w.message})
            QVERIFY2(commandLineLeftover(text).isEmpty(),
                     qPrintable(QStringLiteral("'%1' in: %2").arg(commandLineLeftover(text), text)));
        QVERIFY2(!w.message.contains(engine), "the engine's message belongs in the details");
        QCOMPARE(w.details, engine); // as the engine wrote it, for a bug report
    }

    // The check above is only as good as its list: each leftover it knows is found.
    void leftoversAreFound()
    {
        for (const char* text : {"pass --insecure", "use novaq local PATH", "set HF_TOKEN", "$HF_HOME/token",
                                 "at offset 4998", "(5000 bytes)", "(an invalid URL)", "run `git lfs pull`"})
            QVERIFY2(!commandLineLeftover(QString::fromLatin1(text)).isEmpty(), text);
        QVERIFY(commandLineLeftover(QStringLiteral("Choose another file in File > Settings...")).isEmpty());
    }

    void bannerShowsDetailsOnRequest()
    {
        ErrorBanner banner;
        banner.resize(700, 200);
        banner.show();
        const QString engine = QStringLiteral("/m/t.gguf: header: ... at offset 8; the file is truncated");
        banner.showError(
            wordError(ErrorKind::InvalidInput, engine, ErrorContext::OpenModel, QStringLiteral("/m/t.gguf")));
        QVERIFY(banner.isVisible());
        QCOMPARE(banner.details(), engine);
        QVERIFY(!banner.message().contains(engine));
        QAbstractButton* toggle = banner.detailsButton();
        QVERIFY(toggle->isVisible());
        QVERIFY(banner.copyButton()->isVisible());
        auto* detailsLabel = [&]() -> QLabel* {
            for (QLabel* l : banner.findChildren<QLabel*>())
                if (l->text() == engine)
                    return l;
            return nullptr;
        }();
        QVERIFY(detailsLabel);
        QVERIFY(!detailsLabel->isVisible()); // short first
        QVERIFY(!banner.detailsShown());

        QTest::mouseClick(toggle, Qt::LeftButton);
        QVERIFY(banner.detailsShown());
        QVERIFY(detailsLabel->isVisible());
        QCOMPARE(toggle->text(), QStringLiteral("Hide details"));
        QTest::mouseClick(toggle, Qt::LeftButton);
        QVERIFY(!detailsLabel->isVisible());
        QCOMPARE(toggle->text(), QStringLiteral("Show details"));

        QTest::mouseClick(banner.copyButton(), Qt::LeftButton);
        const QString copied = QGuiApplication::clipboard()->text();
        QVERIFY2(copied.contains(engine) && copied.contains(banner.title()), qPrintable(copied));

        // A new message starts with its details hidden; the app's own messages have none.
        banner.setDetailsShown(true);
        banner.showError(QStringLiteral("The compressed file cannot be written there"), QStringLiteral("Choose."));
        QVERIFY(!toggle->isVisible());
        QVERIFY(!banner.copyButton()->isVisible());
        QVERIFY(banner.details().isEmpty());
        banner.showError(wordError(ErrorKind::Network, QStringLiteral("x"), ErrorContext::UrlDownload));
        QVERIFY(!banner.detailsShown());
        banner.clear();
        QVERIFY(!banner.isVisible());
        QVERIFY(banner.details().isEmpty());
    }

    // The Model page, end to end: a GGUF cut short, then an empty folder.
    void modelPageWordsTruncatedAndEmpty()
    {
        const QString cut = truncatedGguf(QDir(m_dir.path()), 5000);
        QVERIFY2(!cut.isEmpty(), "tests/data/architectures/llama3/model.gguf is missing");
        MainWindow window;
        window.show();
        QSignalSpy failed(&window, &MainWindow::openFailed);
        window.openPath(cut);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        ErrorBanner* banner = window.modelPage()->banner();
        QVERIFY(banner->isVisible());
        QCOMPARE(banner->title(), QStringLiteral("The file is incomplete"));
        QVERIFY2(banner->message().contains(QStringLiteral("\u201cllama3-cut.gguf\u201d")),
                 qPrintable(banner->message()));
        QVERIFY2(banner->message().contains(QStringLiteral("Download it again")), qPrintable(banner->message()));
        QVERIFY2(commandLineLeftover(banner->message()).isEmpty(), qPrintable(banner->message()));
        QCOMPARE(banner->details(), failed.at(0).at(0).toString());
        QVERIFY2(banner->details().contains(QStringLiteral("truncated")), qPrintable(banner->details()));

        QDir(m_dir.path()).mkdir(QStringLiteral("empty"));
        const QString empty = m_dir.filePath(QStringLiteral("empty"));
        window.openPath(empty);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 2, 60000);
        QCOMPARE(banner->title(), QStringLiteral("This folder is empty"));
        QVERIFY2(!banner->title().contains(QStringLiteral("file")), qPrintable(banner->title()));
        QVERIFY2(banner->message().contains(QStringLiteral("\u201cempty\u201d holds no files")),
                 qPrintable(banner->message()));
        QVERIFY2(banner->details().contains(empty + QStringLiteral(" is empty")), qPrintable(banner->details()));
        QVERIFY(!banner->detailsShown());
    }

    // The URL tab: the address is echoed as typed, and the app's tab is named, not a command.
    void urlTabEchoesTheAddress()
    {
        ModelPage page;
        page.show();
        page.tabs()->setCurrentWidget(page.urlTab());
        QSignalSpy failed(page.urlTab(), &UrlTab::failed);
        page.urlTab()->urlField()->setText(QStringLiteral("example.com/model.gguf"));
        page.urlTab()->fetchButton()->click();
        QVERIFY(failed.wait(15000));
        QVERIFY(page.banner()->isVisible());
        QCOMPARE(page.banner()->title(), QStringLiteral("This is not a web address"));
        QVERIFY2(page.banner()->message().contains(QStringLiteral("\u201cexample.com/model.gguf\u201d")),
                 qPrintable(page.banner()->message()));
        QVERIFY2(commandLineLeftover(page.banner()->message()).isEmpty(), qPrintable(page.banner()->message()));
        // The engine now echoes it too (it used to say "(an invalid URL)").
        QVERIFY2(page.banner()->details().contains(QStringLiteral("'example.com/model.gguf'")),
                 qPrintable(page.banner()->details()));
    }

    // Settings: an estimate's error goes when a new estimate starts.
    void settingsEstimateErrorGoesOnANewEstimate()
    {
        const QString cut = truncatedGguf(QDir(m_dir.path()), 5000);
        QVERIFY(!cut.isEmpty());
        SettingsPage page;
        page.show();
        ModelInspection bogus;
        bogus.path = cut.toStdString();
        page.setModel(bogus, QStringLiteral("llama3-cut.gguf"));
        QTRY_VERIFY_WITH_TIMEOUT(page.banner()->isVisible(), 60000);
        QCOMPARE(page.banner()->title(), QStringLiteral("The file is incomplete"));
        page.setThreads(3); // a new estimate
        QVERIFY(!page.banner()->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(page.banner()->isVisible(), 60000); // and it fails again
    }

    // Results: Validate clears the last message as it starts.
    void resultsValidateClearsTheOldError()
    {
        ResultsPage page;
        page.show();
        ModelReport report;
        report.output = m_dir.filePath(QStringLiteral("gone.novaq")).toStdString();
        page.showReport(report);
        QSignalSpy validated(&page, &ResultsPage::validated);
        page.validate();
        QVERIFY(validated.wait(30000));
        QVERIFY(page.banner()->isVisible());
        QVERIFY2(commandLineLeftover(page.banner()->message()).isEmpty(), qPrintable(page.banner()->message()));
        QVERIFY(!page.banner()->details().isEmpty());
        page.validate();
        QVERIFY(!page.banner()->isVisible());
        QVERIFY(validated.wait(30000));
        QVERIFY(page.banner()->isVisible());
    }

    // A banner with its details open still fits the smallest window (1024 x 600, as
    // test_gui_layout): the details scroll within a few lines, the window does not grow.
    void bannerWithDetailsFitsTheSmallestWindow()
    {
        const QSize smallest(1024, 600);
        MainWindow window;
        window.resize(smallest);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        ErrorBanner* banner = window.modelPage()->banner();
        const QString engine =
            QStringLiteral("/tmp/a-rather-long-folder-name/llama3-cut.gguf: metadata key 19 'tokenizer.ggml.tokens' "
                           "element 307: string length (8 bytes) runs past the end of the file (5000 bytes); the "
                           "file is truncated at offset 4998\n")
                .repeated(4);
        banner->showError(wordError(ErrorKind::InvalidInput, engine, ErrorContext::OpenModel,
                                    QStringLiteral("/tmp/a-rather-long-folder-name/llama3-cut.gguf")));
        for (bool open : {false, true}) {
            banner->setDetailsShown(open);
            QApplication::processEvents();
            QApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
            QApplication::processEvents();
            const QSize hint = window.minimumSizeHint();
            QVERIFY2(hint.height() <= smallest.height() && hint.width() <= smallest.width(),
                     qPrintable(QStringLiteral("details %1: minimum size %2x%3")
                                    .arg(open ? "open" : "closed")
                                    .arg(hint.width())
                                    .arg(hint.height())));
            QCOMPARE(window.size(), smallest);
            QString why;
            QVERIFY2(wholeInWindow(&window, banner->detailsButton(), &why), qPrintable(why));
            QVERIFY2(wholeInWindow(&window, window.modelPage()->demoButton(), &why), qPrintable(why));
        }
    }

private:
    QTemporaryDir m_dir;
};

QTEST_MAIN(TestGuiErrors)
#include "test_gui_errors.moc"
