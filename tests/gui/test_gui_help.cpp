// NOVAQ Studio for a non-expert: the explanations on table headers, result cards and the
// Advanced fields (one text each, from ui/explanations.h), Help > Guide (F1) with its
// sections, the English plural forms of counted texts ("1 token", "2 tokens"), charts and
// cards that follow a switch of the application palette, and the size and "fits in memory"
// hints of the Hugging Face and Ollama lists against a scripted Hub on 127.0.0.1.

#include "gui_test_support.h"
#include "http_test_server.h"
#include "ui/application.h"
#include "ui/charts.h"
#include "ui/explanations.h"
#include "ui/format.h"
#include "ui/help_page.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/results_page.h"
#include "ui/settings_page.h"
#include "ui/source_models.h"
#include "ui/source_tabs.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include "novaq/io/system_memory.h"

#include <QAbstractItemModelTester>
#include <QAction>
#include <QApplication>
#include <QChart>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QToolTip>

#include <nlohmann/json.hpp>

#include <cmath>
#include <initializer_list>
#include <tuple>

using namespace novaq;
using namespace novaq::ui;
using novaq::test::HttpTestServer;
using novaq::test::ScriptedResponse;
using novaq::test::SeenRequest;

namespace {

constexpr uint64_t kGiB = uint64_t(1) << 30;
constexpr const char* kCommit = "89abcdef0123456789abcdef0123456789abcdef";

nlohmann::json fileEntry(const std::string& path, uint64_t size)
{
    return {{"type", "file"}, {"path", path}, {"size", size}, {"oid", std::string(40, 'b')}};
}

// A scripted Hub: a search lists org/alpha (one 300 MB GGUF), org/big (a 40 GiB safetensors
// checkpoint) and org/quants (three GGUF files, none chosen); a search for "single" lists one
// model. Only the details are scripted: nothing is downloaded.
void scriptHub(HttpTestServer& hub)
{
    const std::vector<std::pair<std::string, nlohmann::json>> trees{
        {"org/alpha", nlohmann::json::array({fileEntry("alpha-Q8_0.gguf", 300'000'000)})},
        {"org/big", nlohmann::json::array({fileEntry("config.json", 700), fileEntry("model.safetensors", 40 * kGiB),
                                           fileEntry("README.md", 5000)})},
        {"org/quants", nlohmann::json::array({fileEntry("quants-Q2_K.gguf", 900'000'000),
                                              fileEntry("quants-Q4_K_M.gguf", 1'500'000'000),
                                              fileEntry("quants-Q8_0.gguf", 2'800'000'000)})},
    };
    for (const auto& [id, tree] : trees) {
        hub.route("/api/models/" + id + "/revision/", [id = id](const SeenRequest&) {
            return ScriptedResponse::json(nlohmann::json{{"id", id}, {"sha", kCommit}, {"gated", false}}.dump());
        });
        hub.route("/api/models/" + id + "/tree/",
                  [tree = tree](const SeenRequest&) { return ScriptedResponse::json(tree.dump()); });
    }
    hub.route("/api/models", [](const SeenRequest& r) {
        auto row = [](const char* id, int downloads, int likes) {
            return nlohmann::json{{"id", id},       {"downloads", downloads},
                                  {"likes", likes}, {"lastModified", "2026-01-02T03:04:05.000Z"},
                                  {"gated", false}, {"tags", {"gguf"}}};
        };
        if (r.target.find("search=single") != std::string::npos)
            return ScriptedResponse::json(nlohmann::json::array({row("org/alpha", 48210, 312)}).dump());
        return ScriptedResponse::json(
            nlohmann::json::array({row("org/alpha", 48210, 312), row("org/big", 9120, 87), row("org/quants", 1234, 5)})
                .dump());
    });
}

TensorResult tensor(const std::string& name, double relError)
{
    TensorResult r;
    r.name = name;
    r.shape = {64, 64};
    r.quantized = true;
    r.storedAs = "novaq d=8 8+4 K=4";
    r.relError = relError;
    r.sqnrDb = -10 * std::log10(relError);
    r.effectiveBits = 1.6;
    r.bytesIn = 8192;
    r.bytesOut = 900;
    r.seconds = 0.1;
    return r;
}

// The colour a few pixels inside the top-left corner of a card: its own background.
QColor backgroundOf(QWidget* w)
{
    const QImage image = w->grab().toImage();
    return image.pixelColor(QPoint(8, image.height() / 2));
}

// The colour just inside the top-left corner of a chart's plot area: the chart's background.
QColor backgroundOf(QChartView* view)
{
    const QImage image = view->grab().toImage();
    const QPoint p = view->mapFromScene(view->chart()->mapToScene(view->chart()->plotArea().topLeft())) + QPoint(3, 3);
    return image.pixelColor(p);
}

QString runSearch(HubTab& tab, const QString& text)
{
    QSignalSpy searched(&tab, &HubTab::searchFinished);
    tab.searchField()->setText(text);
    tab.search();
    if (!searched.wait(10000))
        return QStringLiteral("no answer");
    return tab.statusLabel()->text();
}

QLabel* totalLabel(HubTab& tab)
{
    for (QLabel* l : tab.findChildren<QLabel*>())
        if (l->accessibleName() == QStringLiteral("Total size"))
            return l;
    return nullptr;
}

bool showDetails(HubTab& tab, int row)
{
    QSignalSpy details(&tab, &HubTab::detailsShown);
    tab.resultsView()->setCurrentIndex(tab.results()->index(row, 0));
    return details.wait(10000);
}

} // namespace

class TestGuiHelp : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_home.isValid());
        const QByteArray home = QFile::encodeName(m_home.path());
        qputenv("XDG_CONFIG_HOME", home + "/config");
        qputenv("XDG_CACHE_HOME", home + "/cache");
        qputenv("HF_HOME", home + "/hf");
        qputenv("OLLAMA_HOST", "127.0.0.1:1");
        qputenv("OLLAMA_MODELS", home + "/no-ollama");
        for (const char* v : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HF_HUB_CACHE",
                              "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"})
            qunsetenv(v);
        setUpStudioForTests();
    }

    // ---- explanations

    void tableHeadersExplain_data()
    {
        QTest::addColumn<int>("column");
        QTest::addColumn<QString>("expected");
        QTest::newRow("relative error") << int(TensorResultModel::Error) << explain::relativeError();
        QTest::newRow("SQNR") << int(TensorResultModel::Sqnr) << explain::sqnr();
        QTest::newRow("bits per weight") << int(TensorResultModel::Bits) << explain::bitsPerWeight();
        QTest::newRow("stored as (the codec label)") << int(TensorResultModel::StoredAs) << explain::codecLabel();
    }
    void tableHeadersExplain()
    {
        QFETCH(int, column);
        QFETCH(QString, expected);
        TensorResultModel model;
        QCOMPARE(model.headerData(column, Qt::Horizontal, Qt::ToolTipRole).toString(), expected);
        // What is good and what is bad, not only a definition.
        QVERIFY2(expected.contains(QRegularExpression(QStringLiteral("fine|balance|kept"))), qPrintable(expected));
    }

    void explanationsSayWhatIsGood()
    {
        QVERIFY(explain::relativeError().contains(QStringLiteral("0.05")));
        QVERIFY(explain::relativeError().contains(QStringLiteral("under 0.1 is usually fine at 2 bits")));
        QVERIFY(explain::sqnr().contains(QStringLiteral("10 dB")));
        QVERIFY(explain::codecLabel().contains(QStringLiteral("novaq d=8 8+4 K=4")));
        TensorPlanModel plan;
        QCOMPARE(plan.headerData(TensorPlanModel::Why, Qt::Horizontal, Qt::ToolTipRole).toString(),
                 explain::codecLabel());
        // Every column of both tables has a header tooltip.
        TensorResultModel results;
        for (int c = 0; c < TensorResultModel::ColumnCount; ++c)
            QVERIFY2(!results.headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString().isEmpty(),
                     qPrintable(results.headerData(c, Qt::Horizontal).toString()));
        for (int c = 0; c < TensorPlanModel::ColumnCount; ++c)
            QVERIFY2(!plan.headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString().isEmpty(),
                     qPrintable(plan.headerData(c, Qt::Horizontal).toString()));
    }

    void codecLabelInWords_data()
    {
        QTest::addColumn<QString>("label");
        QTest::addColumn<QStringList>("words");
        QTest::newRow("compact preset") << QStringLiteral("novaq d=8 8+4 K=4")
                                        << QStringList{QStringLiteral("Groups of 8 weights"),
                                                       QStringLiteral("an 8-bit code plus a 4-bit correction"),
                                                       QStringLiteral("1.5 code bits per weight"),
                                                       QStringLiteral("in 4 column groups")};
        QTest::newRow("one stage") << QStringLiteral("novaq d=8 8+0 K=4")
                                   << QStringList{QStringLiteral("one 8-bit code"), QStringLiteral("1 code bits")};
        QTest::newRow("good quality") << QStringLiteral("novaq d=6 8+7 K=2")
                                      << QStringList{QStringLiteral("2.5 code bits"),
                                                     QStringLiteral("2 column groups")};
        QTest::newRow("kept f16") << QStringLiteral("f16") << QStringList{QStringLiteral("Kept as it was: 16-bit")};
        QTest::newRow("kept f32") << QStringLiteral("f32") << QStringList{QStringLiteral("32-bit")};
    }
    void codecLabelInWords()
    {
        QFETCH(QString, label);
        QFETCH(QStringList, words);
        const QString text = explain::codecLabelInWords(label);
        for (const QString& w : words)
            QVERIFY2(text.contains(w), qPrintable(text));
        QVERIFY(explain::codecLabelInWords(QStringLiteral("something else")).isEmpty());
    }

    void storedAsCellExplainsItself()
    {
        TensorResultModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.append(tensor("model.layers.0.mlp.up_proj.weight", 0.05));
        QCOMPARE(model.index(0, TensorResultModel::StoredAs).data(Qt::ToolTipRole).toString(),
                 explain::codecLabelInWords(QStringLiteral("novaq d=8 8+4 K=4")));
    }

    void resultCardsExplain()
    {
        ResultsPage page;
        QCOMPARE(page.cardCount(), 6);
        QVERIFY(page.card(1)->toolTip().contains(explain::ratio()));
        QCOMPARE(page.card(2)->toolTip(), explain::bitsPerWeight());
        QVERIFY(page.card(3)->toolTip().contains(explain::relativeError()));
        QVERIFY(page.card(4)->toolTip().contains(explain::relativeError()));
    }

    void advancedFieldsExplain_data()
    {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("expected");
        QTest::newRow("subspaces") << QStringLiteral("Subspaces") << explain::subspaces();
        QTest::newRow("vector length") << QStringLiteral("Vector length") << explain::vectorLength();
        QTest::newRow("seed") << QStringLiteral("Seed") << explain::seed();
        QTest::newRow("threads") << QStringLiteral("Threads") << explain::threads();
    }
    void advancedFieldsExplain()
    {
        QFETCH(QString, field);
        QFETCH(QString, expected);
        SettingsPage page;
        QSpinBox* box = nullptr;
        for (QSpinBox* b : page.findChildren<QSpinBox*>())
            if (b->accessibleName() == field)
                box = b;
        QVERIFY2(box, qPrintable(field));
        QCOMPARE(box->toolTip(), expected);
    }

    // ---- the Guide

    void f1OpensTheGuide()
    {
        MainWindow window;
        window.resize(1024, 640);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QVERIFY(!window.findChild<HelpDialog*>());
        QTest::keyClick(&window, Qt::Key_F1);
        HelpDialog* guide = nullptr;
        QTRY_VERIFY((guide = window.findChild<HelpDialog*>()) && guide->isVisible());
        const QString text = guide->browser()->toPlainText();
        for (const char* section : {"What compression does", "Which preset to pick", "What the numbers mean",
                                    "What to do with the .novaq file", "novaq chat", "novaq serve", "novaq export",
                                    "Try it", "Balanced (2 bits)"})
            QVERIFY2(text.contains(QLatin1String(section)), section);
        // The numbers are explained in the same words as the tooltips.
        QVERIFY(text.contains(explain::relativeError()));
        QVERIFY(text.contains(explain::sqnr()));
        QVERIFY(text.contains(explain::fitsInMemory()));
        QVERIFY(!guideHtml().contains(QStringLiteral("<!-- GLOSSARY -->")));
        // From a build the README is found and linked.
        QVERIFY(!readmePath().isEmpty());
        QVERIFY(guideHtml().contains(QUrl::fromLocalFile(readmePath()).toString(QUrl::FullyEncoded)));
        // F1 again raises the same guide; it fits the window.
        QTest::keyClick(&window, Qt::Key_F1);
        QCOMPARE(window.findChildren<HelpDialog*>().size(), 1);
        QVERIFY(guide->width() <= window.width() && guide->height() <= window.height());
        // The menu holds it too.
        auto* action = window.findChild<QAction*>(QStringLiteral("guideAction"));
        QVERIFY(action);
        QCOMPARE(action->shortcut(), QKeySequence(Qt::Key_F1));
        guide->close();
    }

    // ---- plurals

    void pluralForms_data()
    {
        QTest::addColumn<QString>("context");
        QTest::addColumn<QString>("source");
        QTest::addColumn<int>("n");
        QTest::addColumn<QString>("expected");
        const QString tokens = QStringLiteral("%n token(s) - %1 tokens/s - %2 in memory");
        QTest::newRow("1 token") << QStringLiteral("novaq::ui::TryItPage") << tokens << 1
                                 << QStringLiteral("1 token - %1 tokens/s - %2 in memory");
        QTest::newRow("2 tokens") << QStringLiteral("novaq::ui::TryItPage") << tokens << 2
                                  << QStringLiteral("2 tokens - %1 tokens/s - %2 in memory");
        QTest::newRow("0 tokens") << QStringLiteral("novaq::ui::TryItPage") << tokens << 0
                                  << QStringLiteral("0 tokens - %1 tokens/s - %2 in memory");
        QTest::newRow("1 tensor") << QStringLiteral("novaq::ui::CompressPage")
                                  << QStringLiteral("Started: %n tensor(s)") << 1
                                  << QStringLiteral("Started: 1 tensor");
        QTest::newRow("44 tensors") << QStringLiteral("novaq::ui::CompressPage")
                                    << QStringLiteral("Started: %n tensor(s)") << 44
                                    << QStringLiteral("Started: 44 tensors");
        QTest::newRow("1 thread") << QStringLiteral("novaq::ui::MainWindow") << QStringLiteral("%n thread(s)") << 1
                                  << QStringLiteral("1 thread");
        QTest::newRow("1 file") << QStringLiteral("novaq::ui::HubTab") << QStringLiteral("%n file(s), %1 in all") << 1
                                << QStringLiteral("1 file, %1 in all");
    }
    void pluralForms()
    {
        QFETCH(QString, context);
        QFETCH(QString, source);
        QFETCH(int, n);
        QFETCH(QString, expected);
        QCOMPARE(QCoreApplication::translate(context.toUtf8().constData(), source.toUtf8().constData(), nullptr, n),
                 expected);
    }

    // On screen: a search with one result says "1 model", with three "3 models".
    void pluralsOnScreen()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        HubTab tab;
        QCOMPARE(runSearch(tab, QStringLiteral("single")),
                 QStringLiteral("1 model found. Select one to see its files."));
        QCOMPARE(runSearch(tab, QStringLiteral("org")), QStringLiteral("3 models found. Select one to see its files."));
        QVERIFY(showDetails(tab, 0));
        QVERIFY2(totalLabel(tab)->text().startsWith(QStringLiteral("1 file, %1 in all").arg(sizeText(300'000'000))),
                 qPrintable(totalLabel(tab)->text()));
        qunsetenv("HF_ENDPOINT");
    }

    // Every counted text in ui/ has its English forms: a "(s)" in a tr() string that the .ts
    // does not hold would show "(s)" on screen.
    void everyCountedTextHasItsForms()
    {
        const QDir source(QStringLiteral(NOVAQ_TEST_DATA_DIR "/../.."));
        QFile ts(source.filePath(QStringLiteral("resources/translations/novaq_studio_en.ts")));
        QVERIFY2(ts.open(QIODevice::ReadOnly), qPrintable(ts.fileName()));
        QString translations = QString::fromUtf8(ts.readAll());
        translations.replace(QStringLiteral("&apos;"), QStringLiteral("'"))
            .replace(QStringLiteral("&quot;"), QStringLiteral("\""));
        const QRegularExpression literal(QString::fromLatin1(R"re("((?:[^"\\\n]|\\.)*\(s\)(?:[^"\\\n]|\\.)*)")re"));
        int found = 0;
        for (const QFileInfo& file :
             QDir(source.filePath(QStringLiteral("ui"))).entryInfoList({QStringLiteral("*.cpp")})) {
            QFile f(file.filePath());
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QString code = QString::fromUtf8(f.readAll());
            for (auto it = literal.globalMatch(code); it.hasNext();) {
                const QString text = it.next().captured(1).replace(QStringLiteral("\\\""), QStringLiteral("\""));
                ++found;
                QVERIFY2(translations.contains(text), qPrintable(file.fileName() + QStringLiteral(": ") + text));
            }
        }
        QVERIFY(found >= 8);
    }

    // ---- palette

    void chartsAndCardsFollowThePalette()
    {
        const QPalette light = lightPalette();
        const QPalette dark = darkPalette();
        QApplication::setPalette(light);
        QWidget window;
        window.resize(800, 400);
        auto* chart = new ErrorBarChart(&window);
        chart->setGeometry(0, 0, 500, 300);
        chart->setTensors({tensor("model.layers.0.self_attn.q_proj.weight", 0.1)});
        auto* card = new SummaryCard(QStringLiteral("mean relative error"), &window);
        card->setGeometry(520, 0, 240, 120);
        card->setValue(QStringLiteral("0.1"));
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QCOMPARE(chart->chart()->backgroundBrush().color(), light.color(QPalette::Base));
        QCOMPARE(backgroundOf(chart), light.color(QPalette::Base));
        QCOMPARE(backgroundOf(card), light.color(QPalette::Base));

        QApplication::setPalette(dark);
        QTRY_COMPARE(chart->chart()->backgroundBrush().color(), dark.color(QPalette::Base));
        QCOMPARE(chart->chart()->theme(), QChart::ChartThemeDark);
        QTRY_COMPARE(backgroundOf(chart), dark.color(QPalette::Base));
        QTRY_COMPARE(backgroundOf(card), dark.color(QPalette::Base));
        // The tooltips follow too.
        QCOMPARE(QToolTip::palette().color(QPalette::ToolTipBase), dark.color(QPalette::ToolTipBase));

        QApplication::setPalette(light);
        QTRY_COMPARE(backgroundOf(chart), light.color(QPalette::Base));
        QTRY_COMPARE(backgroundOf(card), light.color(QPalette::Base));
    }

    // ---- sizes and memory hints

    void memoryHintTexts()
    {
        const MemoryHint fits = memoryHint(300'000'000, 16 * kGiB);
        QCOMPARE(fits.text, QStringLiteral("fits in memory"));
        QVERIFY(!fits.tooLarge);
        QVERIFY(fits.tooltip.contains(sizeText(16 * kGiB)));
        const MemoryHint large = memoryHint(40 * kGiB, 16 * kGiB);
        QCOMPARE(large.text, QStringLiteral("larger than this computer's memory (%1)").arg(sizeText(16 * kGiB)));
        QVERIFY(large.tooLarge);
        QVERIFY(large.tooltip.contains(sizeText(expectedRunMemory(40 * kGiB))));
        QVERIFY(memoryHint(0, 16 * kGiB).text.isEmpty());
        QVERIFY(memoryHint(kGiB, std::nullopt).text.isEmpty());
    }

    void hubListShowsSizesAfterDetails()
    {
        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        HubTab tab;
        QAbstractItemModelTester tester(tab.results(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        tab.results()->setPhysicalMemory(16 * kGiB);
        QCOMPARE(runSearch(tab, QStringLiteral("org")), QStringLiteral("3 models found. Select one to see its files."));
        auto cell = [&](int row, int column, int role = Qt::DisplayRole) {
            return tab.results()->index(row, column).data(role).toString();
        };
        // The listing gives no size: a dash that says how to get it.
        QCOMPARE(cell(0, HubResultsModel::Size), QStringLiteral("-"));
        QVERIFY(cell(0, HubResultsModel::Size, Qt::ToolTipRole).contains(QStringLiteral("Select the model")));
        QVERIFY(cell(0, HubResultsModel::Memory).isEmpty());
        QCOMPARE(tab.results()->headerData(HubResultsModel::Memory, Qt::Horizontal, Qt::ToolTipRole).toString(),
                 explain::fitsInMemory());

        QSignalSpy changed(tab.results(), &QAbstractItemModel::dataChanged);
        QVERIFY(showDetails(tab, 0));
        QVERIFY(changed.count() > 0);
        QCOMPARE(cell(0, HubResultsModel::Size), sizeText(300'000'000));
        QCOMPARE(cell(0, HubResultsModel::Memory), QStringLiteral("fits"));
        QVERIFY(
            cell(0, HubResultsModel::Memory, Qt::ToolTipRole).startsWith(QStringLiteral("Fits in this computer's")));
        QVERIFY(totalLabel(tab)->text().endsWith(QStringLiteral(" - fits in memory")));
        QVERIFY(totalLabel(tab)->toolTip().contains(sizeText(16 * kGiB)));

        QVERIFY(showDetails(tab, 1)); // 40 GiB of safetensors, config.json and a README
        QCOMPARE(cell(1, HubResultsModel::Size), sizeText(40 * kGiB + 700));
        QCOMPARE(cell(1, HubResultsModel::Memory), QStringLiteral("too large"));
        QVERIFY(cell(1, HubResultsModel::Memory, Qt::ToolTipRole)
                    .startsWith(QStringLiteral("Larger than this computer's memory (%1)").arg(sizeText(16 * kGiB))));
        QVERIFY2(totalLabel(tab)->text().endsWith(
                     QStringLiteral(" - larger than this computer's memory (%1)").arg(sizeText(16 * kGiB))),
                 qPrintable(totalLabel(tab)->text()));
        QVERIFY(tab.results()->index(1, HubResultsModel::Memory).data(Qt::ForegroundRole).isValid());
        QVERIFY(cell(1, HubResultsModel::Memory, Qt::ToolTipRole).contains(QStringLiteral("compressed")));
        QCOMPARE(cell(0, HubResultsModel::Size), sizeText(300'000'000)); // the first row keeps its size

        QVERIFY(showDetails(tab, 2)); // three GGUF files: the smallest is a floor
        QCOMPARE(cell(2, HubResultsModel::Size), QStringLiteral("from %1").arg(sizeText(900'000'000)));
        QCOMPARE(cell(2, HubResultsModel::Memory), QStringLiteral("fits"));

        // A smaller computer: the hints change with it.
        tab.results()->setPhysicalMemory(kGiB / 2);
        QCOMPARE(cell(0, HubResultsModel::Memory), QStringLiteral("too large"));
        QVERIFY(cell(0, HubResultsModel::Memory, Qt::ToolTipRole).contains(sizeText(kGiB / 2)));
        qunsetenv("HF_ENDPOINT");
    }

    void ollamaListShowsTheMemoryHint()
    {
        OllamaModelsModel models;
        QAbstractItemModelTester tester(&models, QAbstractItemModelTester::FailureReportingMode::QtTest);
        models.setPhysicalMemory(8 * kGiB);
        ollama::ListedModel small;
        small.name = "tiny:latest";
        small.size = 700'000'000;
        ollama::ListedModel large;
        large.name = "huge:70b";
        large.size = 40 * kGiB;
        models.setModels({small, large});
        QCOMPARE(models.index(0, OllamaModelsModel::Size).data().toString(), sizeText(700'000'000));
        QCOMPARE(models.index(0, OllamaModelsModel::Memory).data().toString(), QStringLiteral("fits"));
        QCOMPARE(models.index(1, OllamaModelsModel::Memory).data().toString(), QStringLiteral("too large"));
        QVERIFY(models.index(1, OllamaModelsModel::Memory).data(Qt::ForegroundRole).isValid());
        QVERIFY(models.index(1, OllamaModelsModel::Memory)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .startsWith(QStringLiteral("Larger than this computer's memory (%1)").arg(sizeText(8 * kGiB))));
        QVERIFY(models.index(1, OllamaModelsModel::Memory)
                    .data(Qt::ToolTipRole)
                    .toString()
                    .contains(sizeText(expectedRunMemory(40 * kGiB))));
        // By default the hint uses this computer's memory.
        OllamaModelsModel here;
        here.setModels({small});
        QCOMPARE(here.index(0, OllamaModelsModel::Memory).data().toString(),
                 memoryHint(small.size, physicalMemoryBytes()).shortText);
    }

    // The Guide at 1024 x 640 and the Hugging Face list with sizes at 1280 x 800, saved as PNGs
    // (NOVAQ_STUDIO_SCREENSHOTS=folder: there, for the README; otherwise a scratch folder).
    void screenshots()
    {
        QTemporaryDir scratch;
        QVERIFY(scratch.isValid());
        const QString requested = qEnvironmentVariable("NOVAQ_STUDIO_SCREENSHOTS");
        const QString folder = requested.isEmpty() ? scratch.path() : requested;
        const QString small = QDir(folder).filePath(QStringLiteral("small"));
        QDir().mkpath(small);
        QApplication::setPalette(lightPalette());
        setupApplication(*qApp);

        HttpTestServer hub;
        scriptHub(hub);
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.url()));
        MainWindow window;
        window.resize(1280, 800);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        ModelPage* page = window.modelPage();
        HubTab* hubTab = page->hubTab();
        page->tabs()->setCurrentWidget(hubTab);
        hubTab->results()->setPhysicalMemory(16 * kGiB); // the names are made up; so is this computer
        QCOMPARE(runSearch(*hubTab, QStringLiteral("llama")),
                 QStringLiteral("3 models found. Select one to see its files."));
        for (int row : {2, 1, 0})
            QVERIFY(showDetails(*hubTab, row));
        QTest::qWait(200);
        QVERIFY(window.grab().save(screenshotPath(folder, QStringLiteral("model-huggingface"))));
        qunsetenv("HF_ENDPOINT");

        window.resize(1024, 640);
        QTRY_COMPARE(window.size(), QSize(1024, 640));
        // The menu's action (a key press needs an active window, which a bare X server without a
        // window manager does not give; f1OpensTheGuide presses F1).
        window.findChild<QAction*>(QStringLiteral("guideAction"))->trigger();
        HelpDialog* guide = nullptr;
        QTRY_VERIFY((guide = window.findChild<HelpDialog*>()) && guide->isVisible());
        guide->resize(1024, 640);
        QTest::qWait(200);
        QVERIFY(guide->grab().save(screenshotPath(small, QStringLiteral("guide"))));
        guide->close();
    }

private:
    QTemporaryDir m_home;
};

QTEST_MAIN(TestGuiHelp)
#include "test_gui_help.moc"
