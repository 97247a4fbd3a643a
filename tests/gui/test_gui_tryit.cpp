// The Try it page (issue 12): the demo model and a .novaq file of it answer side by side,
// streamed, with token rates and memory; Stop (and Esc) ends both answers; Check quality gives
// evaluateFiles' figures on the same text, goes into the report, and a cancelled check leaves
// nothing; a model the runtime cannot run is named in words; the page fits 1024x600.

#include "gui_test_support.h"
#include "ui/main_window.h"
#include "ui/results_page.h"
#include "ui/try_it_jobs.h"
#include "ui/try_it_page.h"
#include "ui/widgets.h"

#include "novaq/pipeline/compress.h"
#include "novaq/runtime/generator.h"
#include "novaq/runtime/session.h"
#include "novaq/text/chat_template.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

namespace {

const QString kDemo = QStringLiteral(NOVAQ_DEMO_MODEL_DIR);
const QString kJohn = QStringLiteral(NOVAQ_TEST_DATA_DIR "/text/kjv_john.txt");
const QString kPrompt = QStringLiteral("In the beginning God created");

} // namespace

class TestGuiTryIt : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
        QVERIFY2(QFile::exists(kDemo + QStringLiteral("/model.safetensors")), qPrintable(kDemo));
        QVERIFY2(QFile::exists(kJohn), qPrintable(kJohn));
        qputenv("NOVAQ_DEMO_MODEL", kDemo.toUtf8());
        // A small .novaq of the demo model, fast settings.
        CompressOptions options;
        options.input = kDemo.toStdString();
        options.output = m_dir.filePath(QStringLiteral("demo.novaq")).toStdString();
        options.codec = CodecSpec::preset(2, 4);
        options.threads = 2;
        m_novaq = QString::fromStdString(compressModel(options, nullptr, nullptr).output.string());
        QVERIFY(QFile::exists(m_novaq));
    }

    // Both panes stream their answer; the original's is what the runtime's Generator gives for
    // the same chat prompt; each pane shows its token rate and memory; the demo (a base model)
    // gets the plain transcript and the page says so.
    void bothPanesStream()
    {
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.resize(1000, 560);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QVERIFY2(page.templateNote().contains(QStringLiteral("base model")), qPrintable(page.templateNote()));
        QVERIFY(page.templateNote().contains(QStringLiteral("plain transcript")));
        QVERIFY(page.statsText(TryItPage::Original).contains(QStringLiteral("in memory")));

        QSignalSpy original(page.streamJob(TryItPage::Original), &StreamJob::text);
        QSignalSpy compressed(page.streamJob(TryItPage::Compressed), &StreamJob::text);
        QSignalSpy done(&page, &TryItPage::answersFinished);
        page.promptEdit()->setFocus();
        QTest::keyClicks(page.promptEdit(), kPrompt);
        QTest::keyClick(page.promptEdit(), Qt::Key_Return);
        QVERIFY(page.stopButton()->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 120000);
        QVERIFY(original.count() >= 1);
        QVERIFY(compressed.count() >= 1);
        for (auto side : {TryItPage::Original, TryItPage::Compressed}) {
            const QString stats = page.statsText(side);
            QVERIFY2(stats.contains(QStringLiteral("tokens/s")) && stats.contains(QStringLiteral("in memory")),
                     qPrintable(stats));
            QVERIFY(page.transcript(side).startsWith(QStringLiteral("You: ") + kPrompt));
        }

        // The same answer straight from the engine.
        const RunnableModel model = openRunnable(kDemo.toStdString(), std::nullopt);
        const Tokenizer& tokenizer = tokenizerOf(model, nullptr);
        const ChatTemplate chat = chooseChatTemplate(*model.reader, kDemo.toStdString(), std::nullopt, nullptr);
        QCOMPARE(QString::fromStdString(chat.name()), QStringLiteral("plain"));
        const PromptEncoder encoder(model.model, tokenizer);
        const std::vector<ChatMessage> messages{{"user", kPrompt.toStdString()}};
        GenerationParams params;
        params.maxTokens = 160; // the page's default
        params.stop = chat.stopStrings();
        params.stopTokens = encoder.stopTokens(params.stop);
        Generator generator(model.model, tokenizer, tryItContextTokens(model.model));
        const GenerationResult expected =
            generator.generate(encoder.encodeChat(chat.render(messages, true), chat), params);
        QVERIFY(!expected.text.empty());
        QCOMPARE(page.transcript(TryItPage::Original),
                 QStringLiteral("You: ") + kPrompt + QLatin1Char('\n') + QString::fromStdString(expected.text));

        // A second turn continues the conversation; New chat clears it.
        QTest::keyClicks(page.promptEdit(), QStringLiteral("And then?"));
        QTest::keyClick(page.promptEdit(), Qt::Key_Return);
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 2, 120000);
        QVERIFY(page.transcript(TryItPage::Compressed).contains(QStringLiteral("You: And then?")));
        page.newChatButton()->click();
        QVERIFY(page.transcript(TryItPage::Original).isEmpty());
    }

    // A model that ships a chat template: both panes get the prompt in that format (the original's
    // answer is the engine's for the rendered template) and the page says whose format it is.
    void chatTemplateFromTheModel()
    {
        const QString fixture = QStringLiteral(NOVAQ_TEST_DATA_DIR "/architectures/llama3/hf");
        const QString dir = m_dir.filePath(QStringLiteral("chat-model"));
        QVERIFY(QDir().mkpath(dir));
        for (const QString& name :
             {QStringLiteral("config.json"), QStringLiteral("model.safetensors"), QStringLiteral("tokenizer.model")})
            QVERIFY2(QFile::copy(fixture + QLatin1Char('/') + name, dir + QLatin1Char('/') + name), qPrintable(name));
        QFile config(fixture + QStringLiteral("/tokenizer_config.json"));
        QVERIFY(config.open(QIODevice::ReadOnly));
        QJsonObject tokenizerConfig = QJsonDocument::fromJson(config.readAll()).object();
        tokenizerConfig.insert(
            QStringLiteral("chat_template"),
            QStringLiteral("{% for message in messages %}{{ '<|im_start|>' + message['role'] + "
                           "'\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
                           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"));
        QFile out(dir + QStringLiteral("/tokenizer_config.json"));
        QVERIFY(out.open(QIODevice::WriteOnly));
        out.write(QJsonDocument(tokenizerConfig).toJson());
        out.close();
        CompressOptions options;
        options.input = dir.toStdString();
        options.output = (dir + QStringLiteral(".novaq")).toStdString();
        options.codec = CodecSpec::preset(2, 4);
        options.threads = 2;
        compressModel(options, nullptr, nullptr);

        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(dir + QStringLiteral(".novaq"), dir, false);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QVERIFY2(page.templateNote().contains(QStringLiteral("own chat format")), qPrintable(page.templateNote()));
        QSignalSpy done(&page, &TryItPage::answersFinished);
        page.findChild<QSpinBox*>()->setValue(24);
        page.promptEdit()->setText(QStringLiteral("Hello"));
        page.sendButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 120000);

        const RunnableModel model = openRunnable(dir.toStdString(), std::nullopt);
        const Tokenizer& tokenizer = tokenizerOf(model, nullptr);
        const ChatTemplate chat = chooseChatTemplate(*model.reader, dir.toStdString(), std::nullopt, nullptr);
        QVERIFY(!chat.isBuiltin());
        const PromptEncoder encoder(model.model, tokenizer);
        const std::vector<ChatMessage> messages{{"user", "Hello"}};
        const std::string rendered = chat.render(messages, true);
        QVERIFY(rendered.find("<|im_start|>user\nHello<|im_end|>") != std::string::npos);
        GenerationParams params;
        params.maxTokens = 24;
        params.stop = chat.stopStrings();
        params.stopTokens = encoder.stopTokens(params.stop);
        Generator generator(model.model, tokenizer, tryItContextTokens(model.model));
        const GenerationResult expected = generator.generate(encoder.encodeChat(rendered, chat), params);
        QCOMPARE(page.transcript(TryItPage::Original),
                 QStringLiteral("You: Hello\n") + QString::fromStdString(expected.text));
    }

    // Esc (and Stop) ends both answers early.
    void stopCancelsBoth_data()
    {
        QTest::addColumn<bool>("escape");
        QTest::newRow("Esc") << true;
        QTest::newRow("Stop button") << false;
    }
    void stopCancelsBoth()
    {
        QFETCH(bool, escape);
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QSignalSpy original(page.streamJob(TryItPage::Original), &StreamJob::finished);
        QSignalSpy compressed(page.streamJob(TryItPage::Compressed), &StreamJob::finished);
        QSignalSpy firstText(page.streamJob(TryItPage::Compressed), &StreamJob::text);
        page.findChild<QSpinBox*>()->setValue(2048);
        page.promptEdit()->setText(kPrompt);
        page.sendButton()->click();
        QTRY_VERIFY_WITH_TIMEOUT(firstText.count() >= 1, 60000);
        if (escape)
            QTest::keyClick(page.focusWidget() ? page.focusWidget() : &page, Qt::Key_Escape);
        else
            page.stopButton()->click();
        QTRY_VERIFY_WITH_TIMEOUT(original.count() == 1 && compressed.count() == 1, 60000);
        for (QSignalSpy* spy : {&original, &compressed}) {
            const auto result = spy->first().at(0).value<GenerationResult>();
            QCOMPARE(int(result.finish), int(FinishReason::Cancelled));
            QVERIFY(result.completionTokens < 2048);
        }
        QVERIFY(page.statsText(TryItPage::Compressed).startsWith(QStringLiteral("Stopped")));
        QVERIFY(page.sendButton()->isEnabled() == false); // the prompt box is empty again
        QVERIFY(!page.stopButton()->isEnabled());
    }

    // Check quality gives exactly evaluateFiles' figures on the same text, in plain words.
    void qualityMatchesEval()
    {
        // The app's sample is the held-out text of the tests.
        QFile resource(QStringLiteral(":/text/kjv_john.txt"));
        QFile file(kJohn);
        QVERIFY(resource.open(QIODevice::ReadOnly) && file.open(QIODevice::ReadOnly));
        QCOMPARE(resource.readAll(), file.readAll());

        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QSignalSpy checked(&page, &TryItPage::qualityChecked);
        QSignalSpy progress(page.qualityJob(), &QualityJob::progress);
        page.checkButton()->click();
        QVERIFY(page.cancelCheckButton()->isVisible());
        QTRY_COMPARE_WITH_TIMEOUT(checked.count(), 1, 300000);
        QVERIFY(progress.count() >= 1);
        const QualityCheck got = checked.first().at(0).value<QualityCheck>();

        const EvalReport want =
            evaluateFiles(qualityRequest(m_novaq.toStdString(), kDemo.toStdString(), kJohn.toStdString()));
        QVERIFY(want.result.compared);
        QCOMPARE(got.tokens, want.result.scored);
        QCOMPARE(got.perplexity, want.result.perplexity);
        QCOMPARE(got.originalPerplexity, want.result.refPerplexity);
        QCOMPARE(got.meanKl, want.result.meanKl);
        QCOMPARE(got.top1, want.result.top1);
        QCOMPARE(got.ctx, kQualityContext);
        const QString verdict = QStringLiteral("Picks the same next word as the original %1 times in 100.")
                                    .arg(qRound(want.result.top1 * 100));
        QCOMPARE(page.verdictText(), verdict);
        QVERIFY(page.quality().has_value());
        QVERIFY(!page.cancelCheckButton()->isVisible());
    }

    // A text file of the person's is evaluated instead of the sample.
    void qualityOnAChosenText()
    {
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        const QString text = QStringLiteral(NOVAQ_TEST_DATA_DIR "/text/kjv_calibration.txt");
        page.setSampleTextFile(text);
        QSignalSpy checked(&page, &TryItPage::qualityChecked);
        page.checkQuality();
        QTRY_COMPARE_WITH_TIMEOUT(checked.count(), 1, 300000);
        const QualityCheck got = checked.first().at(0).value<QualityCheck>();
        const EvalReport want =
            evaluateFiles(qualityRequest(m_novaq.toStdString(), kDemo.toStdString(), text.toStdString()));
        QCOMPARE(got.top1, want.result.top1);
        QCOMPARE(got.perplexity, want.result.perplexity);
        QCOMPARE(QString::fromStdString(got.text), QStringLiteral("kjv_calibration.txt"));
    }

    // Cancel (Esc) during the check: no figures, no verdict, the report untouched.
    void cancelLeavesNoHalfResult()
    {
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QSignalSpy checked(&page, &TryItPage::qualityChecked);
        QSignalSpy cancelled(&page, &TryItPage::qualityCancelled);
        page.checkButton()->click();
        QVERIFY(page.qualityJob()->isRunning());
        QTest::keyClick(page.focusWidget() ? page.focusWidget() : &page, Qt::Key_Escape);
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 60000);
        QCOMPARE(checked.count(), 0);
        QVERIFY(!page.quality().has_value());
        QVERIFY(page.verdictText().isEmpty());
        QVERIFY(page.qualityStatus().contains(QStringLiteral("cancelled")));
        QVERIFY(page.checkButton()->isEnabled());
    }

    // Tab walks the page in order (prompt, Send, ..., Check quality) with a visible focus, and a
    // report without a quality check has no "quality" in its JSON.
    void keyboardAndReportJson()
    {
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, kDemo, true);
        page.show();
        QVERIFY(QTest::qWaitForWindowExposed(&page));
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        page.promptEdit()->setText(kPrompt);
        page.promptEdit()->setFocus();
        QTRY_VERIFY(page.promptEdit()->hasFocus());
        QList<QWidget*> order;
        for (int i = 0; i < 12 && !page.checkButton()->hasFocus(); ++i) {
            QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
            order << QApplication::focusWidget();
        }
        QVERIFY(page.checkButton()->hasFocus());
        QVERIFY(order.indexOf(page.sendButton()) >= 0);
        QVERIFY(order.indexOf(page.sendButton()) < order.indexOf(page.newChatButton()));
        QVERIFY(order.indexOf(page.newChatButton()) < order.indexOf(page.checkButton()));

        ModelReport report;
        QVERIFY(!report.toJson().contains("quality"));
        report.quality = QualityCheck{"sample.txt", 10, 256, 2.5, 2.25, 0.125, 0.75};
        QCOMPARE(report.toJson().at("quality").at("top1_agreement").get<double>(), 0.75);
        QCOMPARE(report.toJson().at("quality").at("text").get<std::string>(), std::string("sample.txt"));
    }

    // The original the file names is not on this computer: the compressed model answers alone,
    // the page says why, and choosing the original brings the comparison and the check back.
    void withoutTheOriginal()
    {
        TryItPage page;
        QSignalSpy loaded(&page, &TryItPage::loaded);
        page.setModels(m_novaq, m_dir.filePath(QStringLiteral("gone/kjv-llama-7m")), false);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);
        QVERIFY2(page.statsText(TryItPage::Original).contains(QStringLiteral("not available")),
                 qPrintable(page.statsText(TryItPage::Original)));
        QVERIFY(page.chooseOriginalButton()->isVisible());
        QVERIFY(!page.checkButton()->isEnabled());
        QSignalSpy done(&page, &TryItPage::answersFinished);
        page.promptEdit()->setText(kPrompt);
        page.sendButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 120000);
        QVERIFY(page.transcript(TryItPage::Original).isEmpty());
        QVERIFY(page.transcript(TryItPage::Compressed).size() > kPrompt.size() + 6);

        page.setOriginal(kDemo);
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 2, 60000);
        QVERIFY(!page.chooseOriginalButton()->isVisible());
        QVERIFY(page.checkButton()->isEnabled());
        QVERIFY(page.statsText(TryItPage::Original).contains(QStringLiteral("in memory")));
    }

    // A model the runtime cannot run: the engine's reason in the app's words, nothing to send.
    void unsupportedModelShowsWords()
    {
        const QString pt =
            QStringLiteral(NOVAQ_TEST_DATA_DIR "/models/stories260K/variants/stories260K_state_dict_f32.pt");
        QVERIFY2(QFile::exists(pt), qPrintable(pt));
        TryItPage page;
        QSignalSpy failed(&page, &TryItPage::loadFailed);
        page.setModels(pt, QString(), false);
        page.show();
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QCOMPARE(page.banner()->title(), QStringLiteral("NOVAQ Studio cannot run this model yet"));
        QVERIFY2(page.banner()->details().contains(QStringLiteral("configuration")),
                 qPrintable(page.banner()->details()));
        QVERIFY(page.banner()->message().contains(QStringLiteral("can still be compressed")));
        QVERIFY(!page.sendButton()->isEnabled());
        QVERIFY(!page.checkButton()->isEnabled());
    }

    // In the window, after File > Open of the .novaq: Try it opens from Results, the page fits
    // 1024x600 with its buttons in view, and the quality check goes into the saved report.
    void windowFlowAndReport()
    {
        MainWindow window;
        const QSize size(1024, 600);
        window.resize(size);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QSignalSpy opened(&window, &MainWindow::novaqOpened);
        window.openPath(m_novaq);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QVERIFY(window.isStepEnabled(MainWindow::Step::TryIt));
        TryItPage* page = window.tryItPage();
        QCOMPARE(page->originalPath(), kDemo); // the source the file names
        QSignalSpy loaded(page, &TryItPage::loaded);
        QPushButton* tryIt = nullptr;
        for (QPushButton* b : window.resultsPage()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Try it"))
                tryIt = b;
        QVERIFY(tryIt);
        tryIt->click();
        QCOMPARE(window.currentStep(), MainWindow::Step::TryIt);
        QTRY_COMPARE_WITH_TIMEOUT(loaded.count(), 1, 60000);

        QString why;
        const auto fits = [&](const QString& where, bool buttons) {
            QApplication::processEvents();
            QApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
            QApplication::processEvents();
            const QSize hint = window.minimumSizeHint();
            QVERIFY2(
                hint.width() <= 1024 && hint.height() <= 600,
                qPrintable(
                    QStringLiteral("%1: minimum size hint %2x%3").arg(where).arg(hint.width()).arg(hint.height())));
            QVERIFY2(window.size() == size, qPrintable(where + QStringLiteral(": the window grew")));
            if (buttons)
                for (QPushButton* b :
                     {page->sendButton(), page->stopButton(), page->newChatButton(), page->checkButton()})
                    QVERIFY2(wholeInWindow(&window, b, &why), qPrintable(where + QStringLiteral(": ") + why));
        };
        fits(QStringLiteral("loaded"), true);
        QSignalSpy done(page, &TryItPage::answersFinished);
        page->promptEdit()->setText(kPrompt);
        page->sendButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(done.count(), 1, 120000);
        fits(QStringLiteral("answered"), true);

        QSignalSpy checked(page, &TryItPage::qualityChecked);
        page->checkQuality();
        QTRY_COMPARE_WITH_TIMEOUT(checked.count(), 1, 300000);
        fits(QStringLiteral("quality shown"), false);
        const QualityCheck check = checked.first().at(0).value<QualityCheck>();
        ResultsPage* results = window.resultsPage();
        QVERIFY(results->report().quality.has_value());
        QVERIFY(results->qualityLine().contains(QStringLiteral("times in 100")));
        const QString json = m_dir.filePath(QStringLiteral("report.json"));
        QVERIFY(results->saveReport(json));
        QFile f(json);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject quality =
            QJsonDocument::fromJson(f.readAll()).object().value(QStringLiteral("quality")).toObject();
        QCOMPARE(quality.value(QStringLiteral("top1_agreement")).toDouble(), check.top1);
        QCOMPARE(quality.value(QStringLiteral("perplexity")).toDouble(), check.perplexity);
        QCOMPARE(quality.value(QStringLiteral("original_perplexity")).toDouble(), check.originalPerplexity);
        QCOMPARE(quality.value(QStringLiteral("mean_kl")).toDouble(), check.meanKl);

        // Opening another model's file frees this pair.
        page->setModels(QString(), QString(), false);
        QVERIFY(!page->isLoaded());
        QVERIFY(!page->streamJob(TryItPage::Original)->hasModel());
    }

private:
    QTemporaryDir m_dir;
    QString m_novaq;
};

QTEST_MAIN(TestGuiTryIt)
#include "test_gui_tryit.moc"
