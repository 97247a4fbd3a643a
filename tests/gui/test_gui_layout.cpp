// The window fits small and large screens (issue 13): at 1024x600 and 1920x1080, with the demo
// model and stories260K, every step page (Model with each tab, Settings with Advanced open,
// Compress during and after a run, Results) keeps the window's minimum size within 1024x600,
// never grows the window, and shows every key button whole inside the window.

#include "gui_test_support.h"
#include "ui/application.h"
#include "ui/compress_page.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/results_page.h"
#include "ui/settings_page.h"
#include "ui/source_tabs.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include <QAbstractScrollArea>
#include <QApplication>
#include <QFile>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

namespace {

const QSize kSmallest(1024, 600);

QPushButton* buttonNamed(QWidget* root, const QString& text)
{
    for (QPushButton* b : root->findChildren<QPushButton*>())
        if (b->text() == text && b->isVisible())
            return b;
    for (QPushButton* b : root->findChildren<QPushButton*>())
        if (b->text() == text)
            return b;
    return nullptr;
}

} // namespace

class TestGuiLayout : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
    }

    // The window opens at 1280x800 when the screen has room, else no larger than the screen.
    void opensNoLargerThanTheScreen_data()
    {
        QTest::addColumn<QRect>("available");
        QTest::addColumn<QSize>("expected");
        QTest::newRow("1920x1080") << QRect(0, 0, 1920, 1050) << QSize(1280, 800);
        QTest::newRow("1280x800") << QRect(0, 0, 1280, 770) << QSize(1280, 770);
        QTest::newRow("1024x600") << QRect(0, 24, 1024, 576) << QSize(1024, 576);
    }
    void opensNoLargerThanTheScreen()
    {
        QFETCH(QRect, available);
        QFETCH(QSize, expected);
        QCOMPARE(MainWindow::initialSize(available), expected);
    }

    // Cards rewrap into the columns that fit, but a width below one card (the default size a
    // widget has for a moment when first shown) does not turn them into one tall column: that
    // made the window grow past a 1024 x 640 screen when Results was first shown.
    void cardGridIgnoresPassingTinyWidths()
    {
        QWidget holder;
        auto* grid = new CardGrid(3, 120, &holder);
        for (int i = 0; i < 6; ++i)
            grid->addCard(new QLabel(QStringLiteral("card %1").arg(i)));
        holder.show();
        QVERIFY(QTest::qWaitForWindowExposed(&holder));
        grid->resize(420, 300);
        QCOMPARE(grid->columns(), 3);
        grid->resize(100, 30);
        QCOMPARE(grid->columns(), 3);
        grid->resize(260, 300);
        QCOMPARE(grid->columns(), 2);
        grid->resize(120, 300);
        QCOMPARE(grid->columns(), 1);
    }

    void everyPageFits_data()
    {
        QTest::addColumn<QSize>("size");
        QTest::addColumn<QString>("model");
        const QString demo = QStringLiteral(NOVAQ_DEMO_MODEL_DIR);
        const QString stories = QStringLiteral(NOVAQ_TEST_DATA_DIR "/models/stories260K/stories260K.bin");
        QTest::newRow("1024x600 demo") << QSize(1024, 600) << demo;
        QTest::newRow("1024x600 stories260K") << QSize(1024, 600) << stories;
        QTest::newRow("1920x1080 demo") << QSize(1920, 1080) << demo;
        QTest::newRow("1920x1080 stories260K") << QSize(1920, 1080) << stories;
    }
    void everyPageFits()
    {
        QFETCH(QSize, size);
        QFETCH(QString, model);
        QVERIFY2(QFile::exists(model), qPrintable(QStringLiteral("missing test data ") + model));
        MainWindow window;
        window.resize(size);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));

        QString why;
        const auto fits = [&](const QString& where) {
            QApplication::processEvents();
            QApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
            QApplication::processEvents();
            const QSize hint = window.minimumSizeHint();
            QVERIFY2(
                hint.width() <= kSmallest.width() && hint.height() <= kSmallest.height(),
                qPrintable(
                    QStringLiteral("%1: minimum size hint %2x%3").arg(where).arg(hint.width()).arg(hint.height())));
            const QSize min = window.minimumSize();
            QVERIFY2(
                min.width() <= kSmallest.width() && min.height() <= kSmallest.height(),
                qPrintable(QStringLiteral("%1: minimum size %2x%3").arg(where).arg(min.width()).arg(min.height())));
            QVERIFY2(window.size() == size, qPrintable(QStringLiteral("%1: the window grew to %2x%3")
                                                           .arg(where)
                                                           .arg(window.width())
                                                           .arg(window.height())));
        };
        const auto shows = [&](QWidget* page, const QStringList& buttons) {
            for (const QString& text : buttons) {
                QPushButton* b = buttonNamed(page, text);
                QVERIFY2(b, qPrintable(QStringLiteral("no button ") + text));
                QVERIFY2(wholeInWindow(&window, b, &why), qPrintable(why));
            }
        };

        // Model, each tab.
        ModelPage* modelPage = window.modelPage();
        const QList<QStringList> tabButtons{{QStringLiteral("Search"), QStringLiteral("Use this model")},
                                            {QStringLiteral("Pull"), QStringLiteral("Use")},
                                            {QStringLiteral("Open a file..."), QStringLiteral("Open a folder..."),
                                             QStringLiteral("Use the demo model")},
                                            {QStringLiteral("Fetch")}};
        for (int t = 0; t < modelPage->tabs()->count(); ++t) {
            modelPage->tabs()->setCurrentIndex(t);
            fits(QStringLiteral("Model tab %1").arg(t));
            shows(modelPage->tabs()->currentWidget(), tabButtons.value(t));
        }

        // Settings, with and without Advanced.
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openPath(model);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        SettingsPage* settings = window.settingsPage();
        QTRY_VERIFY_WITH_TIMEOUT(settings->estimatesReady(), 120000);
        fits(QStringLiteral("Settings"));
        shows(settings, {QStringLiteral("Compress")});
        settings->setAdvancedVisible(true);
        fits(QStringLiteral("Settings, Advanced"));
        shows(settings, {QStringLiteral("Compress")});
        // The model chip names the model in full, even when it is elided.
        QVERIFY(window.modelChipText().contains(QFileInfo(model).fileName()));

        // Compress, during the run and after.
        const QString output = m_dir.filePath(QStringLiteral("layout.novaq"));
        QFile::remove(output);
        settings->setOutputPath(output);
        QSignalSpy finished(window.job(), &CompressJob::finished);
        QSignalSpy failed(window.job(), &CompressJob::failed);
        settings->compressButton()->click();
        QCOMPARE(window.currentStep(), MainWindow::Step::Compress);
        fits(QStringLiteral("Compress, running"));
        shows(window.compressPage(), {QStringLiteral("Cancel")});
        QTRY_COMPARE_WITH_TIMEOUT(finished.count() + failed.count(), 1, 600000);
        QVERIFY2(failed.isEmpty(), qPrintable(failed.isEmpty() ? QString() : failed.first().at(1).toString()));
        QTRY_COMPARE_WITH_TIMEOUT(window.currentStep(), MainWindow::Step::Results, 10000);
        fits(QStringLiteral("Results"));
        shows(window.resultsPage(), {QStringLiteral("Validate"), QStringLiteral("Export..."),
                                     QStringLiteral("Show in folder"), QStringLiteral("Compress another")});
        window.goTo(MainWindow::Step::Compress);
        fits(QStringLiteral("Compress, done"));
        shows(window.compressPage(), {QStringLiteral("Back to settings")});

        // A long tensor name in the status line of a running page does not widen it.
        CompressPage* page = window.compressPage();
        page->begin(QStringLiteral("a-model-with-a-very-long-name-that-goes-on-and-on-and-on-and-on.safetensors"),
                    output);
        CompressProgress p;
        p.tensorIndex = 3;
        p.tensorCount = 400;
        p.tensorName = QStringLiteral("model.layers.31.mlp.experts.127.gate_up_proj.weight.with.a.long.suffix.that."
                                      "never.ends.at.all.really");
        p.overallFraction = 0.01;
        p.remainingSeconds = 4000;
        page->onProgress(p);
        fits(QStringLiteral("Compress, long status line"));
        shows(page, {QStringLiteral("Cancel")});
        QVERIFY(page->statusLine().contains(p.tensorName)); // the full text stays available
        page->onCancelled();

        // File > Open of the .novaq in a new window: the Results page is shown for the first
        // time straight away, and the window does not grow.
        MainWindow reader;
        reader.resize(size);
        reader.show();
        QVERIFY(QTest::qWaitForWindowExposed(&reader));
        QSignalSpy novaqOpened(&reader, &MainWindow::novaqOpened);
        reader.openPath(output);
        QTRY_COMPARE_WITH_TIMEOUT(novaqOpened.count(), 1, 60000);
        QApplication::processEvents();
        QApplication::sendPostedEvents(nullptr, QEvent::LayoutRequest);
        QApplication::processEvents();
        QVERIFY2(
            reader.size() == size,
            qPrintable(QStringLiteral("reading: the window grew to %1x%2").arg(reader.width()).arg(reader.height())));
        for (const QString& text : {QStringLiteral("Validate"), QStringLiteral("Compress another")}) {
            QPushButton* b = buttonNamed(reader.resultsPage(), text);
            QVERIFY(b);
            QVERIFY2(wholeInWindow(&reader, b, &why), qPrintable(why));
        }
        QFile::remove(output);
    }

private:
    QTemporaryDir m_dir;
};

QTEST_MAIN(TestGuiLayout)
#include "test_gui_layout.moc"
