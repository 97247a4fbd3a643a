// The whole window: open the demo model, compress it, read the results; cancel mid-run; a bad
// file shows the error banner and the app keeps working; File > Open of a .novaq file.

#include "gui_test_support.h"
#include "ui/application.h"
#include "ui/charts.h"
#include "ui/compress_page.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/results_page.h"
#include "ui/settings_page.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLineEdit>
#include <QPushButton>
#include <QScreen>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>

using namespace novaq;
using namespace novaq::ui;

class TestGuiEndToEnd : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
    }

    void opensDemoCompressesAndShowsTheEngineFigures()
    {
        MainWindow window;
        window.show();
        // 1280 x 800 when the screen has room, else the screen's available size (the offscreen
        // platform's screen is 800 x 600); never larger than the screen unless below the minimum.
        const QSize expected = MainWindow::initialSize(window.screen()->availableGeometry());
        QCOMPARE(window.size(), expected.expandedTo(window.minimumSizeHint()));
        QVERIFY(!window.isStepEnabled(MainWindow::Step::Settings));
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openDemoModel();
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);
        QVERIFY(window.modelChipText().contains(QStringLiteral("kjv-llama-7m")));

        SettingsPage* settings = window.settingsPage();
        QTRY_VERIFY_WITH_TIMEOUT(settings->estimatesReady(), 60000);
        QCOMPARE(settings->cards().size(), bitsPresets().size());
        for (const ChoiceCard* card : settings->cards())
            QVERIFY(card->estimate().contains(QStringLiteral("smaller")));
        QVERIFY(settings->planModel()->rowCount() > 0);
        settings->setBits(1.5);
        QVERIFY(settings->options().codec == CodecSpec::preset(1.5, 4));
        // Advanced > Vector length turns into the engine's expert override (preset codebooks, new d).
        QSpinBox* vectorLength = nullptr;
        for (QSpinBox* spin : settings->findChildren<QSpinBox*>())
            if (spin->accessibleName() == QStringLiteral("Vector length"))
                vectorLength = spin;
        QVERIFY(vectorLength && vectorLength->accessibleName() == QStringLiteral("Vector length"));
        vectorLength->setValue(6);
        QVERIFY(!settings->options().codec.isPreset());
        QCOMPARE(settings->options().codec.resolve().d, 6);
        QCOMPARE(settings->options().codec.resolve().b1, presetForBits(1.5)->b1);
        QCOMPARE(settings->options().codec.resolve().b2, presetForBits(1.5)->b2);
        QTRY_VERIFY_WITH_TIMEOUT(settings->estimatesReady(), 60000);
        vectorLength->setValue(0);
        QVERIFY(settings->options().codec.isPreset());
        QTRY_VERIFY_WITH_TIMEOUT(settings->estimatesReady(), 60000);
        const QString output = m_dir.filePath(QStringLiteral("demo.novaq"));
        settings->setOutputPath(output);

        QSignalSpy finished(window.job(), &CompressJob::finished);
        QTest::mouseClick(settings->compressButton(), Qt::LeftButton);
        QCOMPARE(window.currentStep(), MainWindow::Step::Compress);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 600000);
        QTRY_COMPARE_WITH_TIMEOUT(window.currentStep(), MainWindow::Step::Results, 10000);
        const auto report = finished.at(0).at(0).value<ModelReport>();
        QVERIFY(QFile::exists(output));

        // The live chart holds one bar per compressed (quantized) tensor; the table every tensor.
        int quantized = 0;
        for (const TensorResult& r : report.tensors)
            quantized += r.quantized ? 1 : 0;
        QVERIFY(quantized > 0);
        QCOMPARE(window.compressPage()->errorChart()->pointCount(), quantized);
        QCOMPARE(window.compressPage()->resultModel()->rowCount(), int(report.tensors.size()));
        QCOMPARE(window.compressPage()->ratioChart()->pointCount(), int(report.tensors.size()));
        QCOMPARE(window.resultsPage()->errorChart()->pointCount(), quantized);

        // The results page shows the engine's own figures, formatted as the app formats them.
        ResultsPage* results = window.resultsPage();
        QCOMPARE(results->card(0)->value(),
                 QStringLiteral("%1 -> %2").arg(sizeText(report.sourceBytes), sizeText(report.fileBytes)));
        QCOMPARE(results->card(1)->value(), QStringLiteral("%1 smaller").arg(ratioText(report.ratioVsSource())));
        QVERIFY(results->card(1)->caption().contains(ratioText(report.ratioVs16Bit())));
        QCOMPARE(results->card(2)->value(), bitsText(report.effectiveBits()));
        QCOMPARE(results->card(3)->value(), errorText(report.meanRelError()));
        QCOMPARE(results->card(4)->value(), errorText(report.worstRelError()));
        QVERIFY(results->card(4)->caption().contains(QString::fromStdString(report.worstTensor())));
        QCOMPARE(results->card(5)->value(), durationText(report.seconds));

        // Validate runs on a worker and reports in the banner.
        QSignalSpy validated(results, &ResultsPage::validated);
        QTest::mouseClick(results->validateButton(), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(validated.count(), 1, 120000);
        QCOMPARE(validated.at(0).at(0).toBool(), true);
        QVERIFY(results->banner()->isVisible());

        // File > Open of the .novaq file shows the same figures (time is not stored).
        MainWindow reader;
        reader.show();
        QSignalSpy novaqOpened(&reader, &MainWindow::novaqOpened);
        reader.openPath(output);
        QTRY_COMPARE_WITH_TIMEOUT(novaqOpened.count(), 1, 60000);
        QCOMPARE(reader.currentStep(), MainWindow::Step::Results);
        QCOMPARE(reader.resultsPage()->card(0)->value(), results->card(0)->value());
        QCOMPARE(reader.resultsPage()->card(3)->value(), results->card(3)->value());
        QCOMPARE(reader.resultsPage()->errorChart()->pointCount(), quantized);
    }

    // Settings > Advanced > Calibration text reaches the engine's CompressOptions; a missing
    // file is refused on the page, in words, before anything starts; a calibrated run records
    // the engine's output errors.
    void calibrationTextGoesToTheEngine()
    {
        MainWindow window;
        window.show();
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openDemoModel();
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        SettingsPage* settings = window.settingsPage();
        QVERIFY(settings->options().calibration.empty());
        QLineEdit* field = nullptr;
        for (QLineEdit* edit : settings->findChildren<QLineEdit*>())
            if (edit->accessibleName() == QStringLiteral("Calibration text"))
                field = edit;
        QVERIFY(field);
        QVERIFY(field->toolTip().contains(QStringLiteral("Llama, Mistral, Qwen, Gemma and Phi-3")));

        const QString output = m_dir.filePath(QStringLiteral("calibrated.novaq"));
        settings->setOutputPath(output);
        settings->setCalibrationPath(m_dir.filePath(QStringLiteral("no-such-text.txt")));
        QSignalSpy requested(settings, &SettingsPage::compressRequested);
        QTest::mouseClick(settings->compressButton(), Qt::LeftButton);
        QCOMPARE(requested.count(), 0);
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);
        QVERIFY(settings->banner()->isVisible());
        QVERIFY(settings->banner()->message().contains(QStringLiteral("no-such-text.txt")));
        QVERIFY(field->isVisible()); // Advanced opened to show the field

        // The first 8 KB (about 2000 tokens) of the calibration text: enough for the engine to
        // calibrate every matrix, short enough for a GUI test.
        QFile source(QStringLiteral(NOVAQ_TEST_DATA_DIR "/text/kjv_calibration.txt"));
        QVERIFY2(source.open(QIODevice::ReadOnly), qPrintable("missing test data " + source.fileName()));
        QByteArray head = source.read(8192);
        head.truncate(head.lastIndexOf('\n') + 1);
        const QString text = m_dir.filePath(QStringLiteral("calibration.txt"));
        {
            QFile out(text);
            QVERIFY(out.open(QIODevice::WriteOnly));
            QCOMPARE(out.write(head), qint64(head.size()));
        }
        settings->setCalibrationPath(text);
        QCOMPARE(settings->options().calibration, std::filesystem::path(QFile::encodeName(text).toStdString()));
        QSignalSpy finished(window.job(), &CompressJob::finished);
        QSignalSpy failed(window.job(), &CompressJob::failed);
        QTest::mouseClick(settings->compressButton(), Qt::LeftButton);
        QCOMPARE(requested.count(), 1);
        QCOMPARE(requested.at(0).at(0).value<CompressOptions>().calibration, settings->options().calibration);
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() + failed.count() == 1, 600000);
        QCOMPARE(failed.count(), 0);
        const auto report = finished.at(0).at(0).value<ModelReport>();
        QVERIFY(report.settings.contains("calibration"));
        int calibrated = 0;
        for (const TensorResult& r : report.tensors)
            calibrated += r.outputError >= 0 ? 1 : 0;
        QVERIFY(calibrated > 0);
    }

    void cancelMidRunLeavesNoFile()
    {
        MainWindow window;
        window.show();
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openDemoModel();
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        const QString output = m_dir.filePath(QStringLiteral("cancelled.novaq"));
        window.settingsPage()->setOutputPath(output);
        QSignalSpy tensorFinished(window.job(), &CompressJob::tensorFinished);
        QSignalSpy cancelled(window.job(), &CompressJob::cancelled);
        QTest::mouseClick(window.settingsPage()->compressButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(tensorFinished.count() >= 2, 300000);
        QVERIFY(window.compressPage()->statusLine().startsWith(QStringLiteral("Tensor ")));
        QTest::keyClick(window.compressPage()->cancelButton(), Qt::Key_Escape);
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 10000);
        QVERIFY(!QFile::exists(output));
        QVERIFY(window.compressPage()->banner()->isVisible());
        QCOMPARE(window.currentStep(), MainWindow::Step::Compress);
        QVERIFY(!window.isStepEnabled(MainWindow::Step::Results));
    }

    void badFileShowsTheBannerAndTheAppKeepsWorking()
    {
        MainWindow window;
        window.show();
        const QString bad = m_dir.filePath(QStringLiteral("broken.safetensors"));
        {
            QFile f(bad);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all", 24);
        }
        QSignalSpy failed(&window, &MainWindow::openFailed);
        window.openPath(bad);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QCOMPARE(window.currentStep(), MainWindow::Step::Model);
        ErrorBanner* banner = window.modelPage()->banner();
        QVERIFY(banner->isVisible());
        QVERIFY(!banner->title().isEmpty());
        QCOMPARE(banner->details(), failed.at(0).at(0).toString()); // the engine's words, behind Show details
        QVERIFY(!window.isStepEnabled(MainWindow::Step::Settings));

        // A missing path, then a good model: the window still works.
        window.openPath(m_dir.filePath(QStringLiteral("missing-folder")));
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 2, 60000);
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        QTest::mouseClick(window.modelPage()->demoButton(), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QVERIFY(!banner->isVisible());
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);
    }

private:
    QTemporaryDir m_dir;
};

QTEST_MAIN(TestGuiEndToEnd)
#include "test_gui_e2e.moc"
