// Issue 13 on the Settings page: the preset cards show what each preset produces on this model
// (expected size and bits with everything counted, from the engine's estimate), come ordered by
// it with words to match, say when a preset gains nothing and why the bits exceed the chosen
// ones; an already compressed source shows its bits per weight, and a result no smaller than
// the source is a warning on the page and a question before Compress.
//
// With NOVAQ_SCREENSHOTS=folder set, the Settings page of the demo model is saved there at
// 1280x800 (settings.png) and 1024x640 (small/settings.png), and with Advanced open
// (settings-advanced.png), as in docs/screenshots.

#include "gui_test_support.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/settings_page.h"
#include "ui/widgets.h"

#include "novaq/codec/codec_config.h"
#include "novaq/codec/codec_spec.h"
#include "novaq/container/open_model.h"
#include "novaq/pipeline/compress.h"

#include <QDir>
#include <QLabel>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

namespace {

const QString kData = QStringLiteral(NOVAQ_TEST_DATA_DIR "/models");

QString storiesQ4KM() { return kData + QStringLiteral("/stories260K/variants/stories260K-Q4_K_M-llamaquantize.gguf"); }
QString kjvQ4KM() { return kData + QStringLiteral("/kjv-llama-7m/kjv-llama-7m-Q4_K_M.gguf"); }
QString storiesF32() { return kData + QStringLiteral("/stories260K/stories260K.gguf"); }

// The label texts of a widget and its children, joined.
QString allText(QWidget* w)
{
    QStringList texts;
    for (QLabel* l : w->findChildren<QLabel*>())
        if (l->isVisibleTo(w))
            texts << l->text();
    return texts.join(QLatin1Char('\n'));
}

// Opens a model and waits for its estimates; false when it does not get there in a minute.
bool openModel(MainWindow& window, const QString& path)
{
    if (!QFile::exists(path)) {
        qWarning("missing test data %s", qPrintable(path));
        return false;
    }
    QSignalSpy opened(&window, &MainWindow::modelOpened);
    window.openPath(path);
    for (int waited = 0; waited < 60000; waited += 50) {
        if (opened.count() == 1 && window.settingsPage()->estimatesReady())
            return true;
        QTest::qWait(50);
    }
    return false;
}

} // namespace

class TestGuiPresets : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
    }

    void cardsOrderedByWhatTheyProduce_data()
    {
        QTest::addColumn<QString>("model");
        QTest::newRow("demo model") << QString();
        QTest::newRow("stories260K F32") << storiesF32();
        QTest::newRow("stories260K Q4_K_M") << storiesQ4KM();
    }
    // The cards as shown: smallest expected file first among the useful ones, each card's figures
    // from the engine's estimate of its preset, "no gain here" cards last with a warning note.
    void cardsOrderedByWhatTheyProduce()
    {
        QFETCH(QString, model);
        MainWindow window;
        window.resize(1280, 800);
        window.show();
        if (model.isEmpty()) {
            window.openDemoModel();
            QTRY_VERIFY_WITH_TIMEOUT(window.settingsPage()->estimatesReady(), 60000);
        } else {
            QVERIFY(openModel(window, model));
        }
        SettingsPage* settings = window.settingsPage();
        const std::vector<PresetEstimate>& estimates = settings->presetEstimates();
        QCOMPARE(estimates.size(), bitsPresets().size());
        const std::vector<ChoiceCard*> shown = settings->cardsInDisplayOrder();
        QCOMPARE(shown.size(), settings->cards().size());
        uint64_t previous = 0;
        bool gainedNothing = false;
        QApplication::processEvents();
        for (size_t k = 0; k < shown.size(); ++k) {
            const size_t i = size_t(std::find(settings->cards().begin(), settings->cards().end(), shown[k]) -
                                    settings->cards().begin());
            const PresetEstimate& e = estimates[i];
            QCOMPARE(e.rank, k);
            // The card says the size and the bits with everything counted.
            QVERIFY2(shown[k]->estimate().contains(sizeText(e.fileBytes)), qPrintable(shown[k]->estimate()));
            QVERIFY2(shown[k]->detail().contains(bitsText(e.effectiveBits) + QStringLiteral(" in all")),
                     qPrintable(shown[k]->detail()));
            if (e.dominatedBy >= 0) {
                gainedNothing = true;
                QCOMPARE(shown[k]->title(), QStringLiteral("No gain here"));
                QVERIFY(shown[k]->noteIsWarning());
                QVERIFY2(shown[k]->note().startsWith(QStringLiteral("Gains nothing")), qPrintable(shown[k]->note()));
                continue;
            }
            QVERIFY2(!gainedNothing, "a useful card after one that gains nothing");
            QVERIFY(e.fileBytes > previous);
            previous = e.fileBytes;
            if (k == 0 && estimates.size() > 1)
                QCOMPARE(shown[k]->title(), QStringLiteral("Smallest"));
            // Shown left to right, top to bottom, in this order.
            if (k > 0) {
                const QPoint a = shown[k - 1]->mapTo(&window, QPoint(0, 0));
                const QPoint b = shown[k]->mapTo(&window, QPoint(0, 0));
                QVERIFY(a.y() < b.y() || (a.y() == b.y() && a.x() < b.x()));
            }
        }
        if (model == storiesF32()) {
            // Issue 13 B: "Smallest" (1 bit) is no longer first nor called so; a preset of 3 bits
            // or more is (3 bits before the d = 2 presets of 5 and 6 bits, whose codebooks are
            // tiny, came in; on this model's 64-wide matrices they make the smaller file).
            QVERIFY(gainedNothing);
            const auto smallest = std::find_if(settings->cards().begin(), settings->cards().end(),
                                               [](auto* c) { return c->title() == QStringLiteral("Smallest"); });
            QVERIFY(smallest != settings->cards().end());
            QVERIFY(bitsPresets()[size_t(smallest - settings->cards().begin())].bits >= 3.0);
            QVERIFY(settings->cards()[0]->title() != QStringLiteral("Smallest"));
        }
        // The preview says why 1.5 bits become more.
        settings->setBits(1.5);
        QApplication::processEvents();
        QVERIFY2(settings->previewText().contains(QStringLiteral("1.5 bits chosen:")),
                 qPrintable(settings->previewText()));
    }

    // A llama.cpp Q4_K_M file: the page says how many bits per weight it already has; with a
    // preset whose file would be no smaller it warns, and Compress asks before it starts.
    void alreadyCompressedSourceWarns()
    {
        MainWindow window;
        window.resize(1280, 800);
        window.show();
        QVERIFY(openModel(window, storiesQ4KM()));
        SettingsPage* settings = window.settingsPage();
        settings->setOutputPath(m_dir.filePath(QStringLiteral("q4.novaq")));
        settings->setBits(1.0);
        QApplication::processEvents();
        QVERIFY2(settings->previewText().contains(QStringLiteral("This model is already 7.9 bits per weight")),
                 qPrintable(settings->previewText()));
        const QString warning = settings->sizeWarning();
        QVERIFY2(warning.contains(QStringLiteral("not smaller than the source")), qPrintable(warning));
        auto* banner = settings->findChild<ErrorBanner*>(QStringLiteral("sizeWarning"));
        QVERIFY(banner);
        QVERIFY(banner->isVisible());
        QCOMPARE(banner->message(), warning);
        QVERIFY(allText(settings->cards()[0]).contains(QStringLiteral("not smaller than the source")));
        if (const QByteArray folder = qgetenv("NOVAQ_SCREENSHOTS"); !folder.isEmpty()) { // to look at, not for docs
            QDir().mkpath(QString::fromLocal8Bit(folder));
            QVERIFY(window.grab().save(QDir(QString::fromLocal8Bit(folder)).filePath(QStringLiteral("q4km.png"))));
        }

        // Compress asks; "no" starts nothing, "yes" starts the run.
        QSignalSpy requested(settings, &SettingsPage::compressRequested);
        QStringList asked;
        bool answer = false;
        settings->setConfirmLargerOutput([&](const QString& question) {
            asked << question;
            return answer;
        });
        QTest::mouseClick(settings->compressButton(), Qt::LeftButton);
        QCOMPARE(asked.size(), 1);
        QVERIFY(asked.front().contains(warning));
        QCOMPARE(requested.count(), 0);
        answer = true;
        QTest::mouseClick(settings->compressButton(), Qt::LeftButton);
        QCOMPARE(asked.size(), 2);
        QCOMPARE(requested.count(), 1);
        QTRY_VERIFY_WITH_TIMEOUT(window.currentStep() == MainWindow::Step::Results, 120000);

        // A preset that makes it smaller: no warning, no question.
        window.goTo(MainWindow::Step::Settings);
        settings->setBits(3.0);
        QApplication::processEvents();
        QVERIFY(settings->sizeWarning().isEmpty());
        QVERIFY(!banner->isVisible());
    }

    // The demo model's Q4_K_M (what Ollama gives): already 5.0 bits per weight, said on the page;
    // every preset makes it smaller, so nothing warns.
    void quantizedDemoModelShowsSourceBits()
    {
        MainWindow window;
        window.resize(1280, 800);
        window.show();
        QVERIFY(openModel(window, kjvQ4KM()));
        SettingsPage* settings = window.settingsPage();
        for (const BitsPreset& p : bitsPresets()) {
            settings->setBits(p.bits);
            QApplication::processEvents();
            QVERIFY2(settings->previewText().contains(QStringLiteral("This model is already 5.0 bits per weight")),
                     qPrintable(settings->previewText()));
            // Up to the source's 5.0 bits the file is smaller; the 6-bit preset is not, and says so.
            if (p.bits <= 5.0)
                QVERIFY2(settings->sizeWarning().isEmpty(), qPrintable(settings->sizeWarning()));
            else
                QVERIFY2(settings->sizeWarning().contains(QStringLiteral("not smaller than the source")),
                         qPrintable(settings->sizeWarning()));
        }
    }

    // Optional: the README's Settings screenshots, at the two sizes of docs/screenshots.
    void screenshots_data()
    {
        QTest::addColumn<QSize>("size");
        QTest::addColumn<QString>("file");
        QTest::newRow("1280x800") << QSize(1280, 800) << QStringLiteral("settings.png");
        QTest::newRow("1024x640") << QSize(1024, 640) << QStringLiteral("small/settings.png");
    }
    void screenshots()
    {
        QFETCH(QSize, size);
        QFETCH(QString, file);
        MainWindow window;
        window.resize(size);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        window.openDemoModel();
        QTRY_VERIFY_WITH_TIMEOUT(window.settingsPage()->estimatesReady(), 60000);
        window.settingsPage()->setBits(1.5);
        window.settingsPage()->setOutputPath(QStringLiteral("/tmp/kjv-llama-7m.novaq"));
        QApplication::processEvents();
        QTest::qWait(300);
        QString why;
        QVERIFY2(wholeInWindow(&window, window.settingsPage()->compressButton(), &why), qPrintable(why));
        for (ChoiceCard* card : window.settingsPage()->cards())
            QVERIFY(!card->note().isEmpty() || !card->estimate().isEmpty());
        const QByteArray folder = qgetenv("NOVAQ_SCREENSHOTS");
        const QString path = folder.isEmpty() ? m_dir.filePath(QFileInfo(file).fileName())
                                              : QDir(QString::fromLocal8Bit(folder)).filePath(file);
        QDir().mkpath(QFileInfo(path).absolutePath());
        QVERIFY(window.grab().save(path));
        // And with Advanced open, as the tour of the README does.
        window.settingsPage()->setAdvancedVisible(true);
        QTest::qWait(300);
        QVERIFY(window.grab().save(
            QString(path).replace(QStringLiteral("settings.png"), QStringLiteral("settings-advanced.png"))));
    }

    // Subspaces and Advanced > Vector length offer exactly kCodecLimits (codec_config.h), the
    // limits the engine applies (test_codec_spec), and every value they offer makes settings the
    // engine accepts: the preset's codebooks at that vector length.
    void codecFieldsOfferTheCodecLimits()
    {
        SettingsPage page;
        QSpinBox* subspaces = nullptr;
        QSpinBox* vectorLength = nullptr;
        for (QSpinBox* box : page.findChildren<QSpinBox*>()) {
            if (box->accessibleName() == QStringLiteral("Subspaces"))
                subspaces = box;
            if (box->accessibleName() == QStringLiteral("Vector length"))
                vectorLength = box;
        }
        QVERIFY(subspaces && vectorLength);
        QCOMPARE(subspaces->minimum(), kCodecLimits.subspaces.min);
        QCOMPARE(subspaces->maximum(), kCodecLimits.subspaces.max);
        QCOMPARE(vectorLength->minimum(), 0); // "As the preset"
        QCOMPARE(vectorLength->maximum(), kCodecLimits.d.max);
        for (int k : {subspaces->minimum(), subspaces->maximum()})
            for (int d = vectorLength->minimum(); d <= vectorLength->maximum(); ++d) {
                subspaces->setValue(k);
                vectorLength->setValue(d);
                const CodecSpec spec = page.options().codec;
                QCOMPARE(spec.isPreset(), d == 0); // a length, even the preset's own, is expert settings
                QCOMPARE(spec.subspaces(), k);
                QCOMPARE(spec.resolve().d, d > 0 ? d : presetForBits(page.bits())->d);
            }
    }

private:
    QTemporaryDir m_dir;
};

QTEST_MAIN(TestGuiPresets)
#include "test_gui_presets.moc"
