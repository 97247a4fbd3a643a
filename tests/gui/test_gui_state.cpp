// The window's state stays consistent (issue 13): after File > Open of a .novaq file the
// Settings and Compress steps no longer compress the model opened before; an output file that
// cannot be written is named on the Settings page, with Compress disabled, before anything runs.

#include "gui_test_support.h"
#include "ui/application.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/settings_page.h"
#include "ui/widgets.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

namespace {

const QString kStories = QStringLiteral(NOVAQ_TEST_DATA_DIR "/models/stories260K/stories260K.bin");

QLineEdit* outputField(SettingsPage* settings)
{
    for (QLineEdit* edit : settings->findChildren<QLineEdit*>())
        if (edit->accessibleName() == QStringLiteral("Output file"))
            return edit;
    return nullptr;
}

} // namespace

class TestGuiState : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
        QVERIFY2(QFile::exists(kStories), qPrintable(QStringLiteral("missing test data ") + kStories));
    }

    void openingANovaqFileLeavesNothingToCompress()
    {
        MainWindow window;
        window.show();
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openPath(kStories);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        SettingsPage* settings = window.settingsPage();
        QTRY_VERIFY_WITH_TIMEOUT(settings->estimatesReady(), 60000);
        const QString novaq = m_dir.filePath(QStringLiteral("stories.novaq"));
        settings->setOutputPath(novaq);
        QSignalSpy finished(window.job(), &CompressJob::finished);
        settings->compressButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
        QVERIFY(window.isStepEnabled(MainWindow::Step::Compress));

        // A model is open again, then File > Open of the .novaq file.
        window.openPath(kStories);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 2, 60000);
        QVERIFY(settings->compressButton()->isEnabled());
        QSignalSpy novaqOpened(&window, &MainWindow::novaqOpened);
        window.openPath(novaq);
        QTRY_COMPARE_WITH_TIMEOUT(novaqOpened.count(), 1, 60000);
        QVERIFY(window.modelChipText().contains(QStringLiteral("stories.novaq")));
        QCOMPARE(window.currentStep(), MainWindow::Step::Results);
        // Nothing would compress the model opened before.
        QVERIFY(!window.isStepEnabled(MainWindow::Step::Settings));
        QVERIFY(!window.isStepEnabled(MainWindow::Step::Compress));
        QVERIFY(!settings->hasModel());
        QVERIFY(!settings->compressButton()->isEnabled());
        QSignalSpy requested(settings, &SettingsPage::compressRequested);
        QTest::keyClick(settings, Qt::Key_Return, Qt::ControlModifier);
        settings->compressButton()->click();
        QCOMPARE(requested.count(), 0);

        // Opening a model again makes Settings whole again.
        window.openPath(kStories);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 3, 60000);
        QVERIFY(window.isStepEnabled(MainWindow::Step::Settings));
        QVERIFY(settings->hasModel());
        QVERIFY(window.modelChipText().contains(QStringLiteral("stories260K.bin")));
    }

    // Tests run as root, for whom permissions do not stop writes: the cases are a folder that is
    // a regular file, a missing folder and a folder given as the file.
    void unwritableOutputIsNamedOnSettings_data()
    {
        QTest::addColumn<QString>("relative");
        QTest::addColumn<QString>("named");
        QTest::newRow("parent is a file") << QStringLiteral("plain-file/out.novaq") << QStringLiteral("plain-file");
        QTest::newRow("missing folder") << QStringLiteral("no-such-folder/out.novaq")
                                        << QStringLiteral("no-such-folder");
        QTest::newRow("a folder") << QStringLiteral("a-folder") << QStringLiteral("a-folder");
    }
    void unwritableOutputIsNamedOnSettings()
    {
        QFETCH(QString, relative);
        QFETCH(QString, named);
        {
            QFile plain(m_dir.filePath(QStringLiteral("plain-file")));
            QVERIFY(plain.open(QIODevice::WriteOnly));
            plain.write("not a folder");
        }
        QVERIFY(QDir(m_dir.path()).mkpath(QStringLiteral("a-folder")));

        MainWindow window;
        window.show();
        QSignalSpy opened(&window, &MainWindow::modelOpened);
        window.openPath(kStories);
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        SettingsPage* settings = window.settingsPage();
        settings->setOutputPath(m_dir.filePath(QStringLiteral("fine.novaq")));
        QVERIFY(settings->compressButton()->isEnabled());
        QVERIFY(settings->banner()->isHidden());

        // Typed into the field: checked as it changes, before Compress.
        QLineEdit* field = outputField(settings);
        QVERIFY(field);
        field->clear();
        QTest::keyClicks(field, m_dir.filePath(relative));
        QVERIFY(!settings->compressButton()->isEnabled());
        QVERIFY(settings->banner()->isVisible());
        QVERIFY2(settings->banner()->message().contains(m_dir.filePath(named)),
                 qPrintable(settings->banner()->message()));
        QVERIFY(!settings->outputProblem().isEmpty());
        QSignalSpy requested(settings, &SettingsPage::compressRequested);
        QTest::keyClick(field, Qt::Key_Return, Qt::ControlModifier);
        QCOMPARE(requested.count(), 0);
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);

        // A good file again: the banner goes and Compress comes back.
        settings->setOutputPath(m_dir.filePath(QStringLiteral("fine.novaq")));
        QVERIFY(settings->compressButton()->isEnabled());
        QVERIFY(settings->banner()->isHidden());
    }

private:
    QTemporaryDir m_dir;
};

QTEST_MAIN(TestGuiState)
#include "test_gui_state.moc"
