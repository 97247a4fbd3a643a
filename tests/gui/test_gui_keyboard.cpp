// The app from the keyboard alone (issue 13): Esc cancels a compression whatever has the
// focus; Tab reaches every preset card and the arrow keys move between them; a focused card
// looks focused, not selected, in light and dark palettes; Return presses the focused button;
// Tab leaves the Compress page's table; and a walk Settings -> Compress -> Esc -> back to
// Settings with Tab, Return and Esc only.

#include "gui_test_support.h"
#include "ui/application.h"
#include "ui/compress_page.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/settings_page.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include <QApplication>
#include <QFile>
#include <QListWidget>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

using namespace novaq;
using namespace novaq::ui;

namespace {

// Presses Tab on the focused widget until `target` has the focus; false after `limit` presses.
bool tabTo(QWidget* window, QWidget* target, int limit = 60)
{
    for (int i = 0; i < limit; ++i) {
        if (QApplication::focusWidget() == target)
            return true;
        QWidget* focused = QApplication::focusWidget() ? QApplication::focusWidget() : window;
        QTest::keyClick(focused, Qt::Key_Tab);
    }
    return QApplication::focusWidget() == target;
}

QImage look(QWidget* w)
{
    QApplication::processEvents();
    return w->grab().toImage();
}

} // namespace

class TestGuiKeyboard : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase()
    {
        setUpStudioForTests();
        QVERIFY(m_dir.isValid());
    }

    void init()
    {
        m_window = std::make_unique<MainWindow>();
        m_window->resize(1280, 800);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QApplication::setActiveWindow(m_window.get());
        QSignalSpy opened(m_window.get(), &MainWindow::modelOpened);
        m_window->openDemoModel();
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 60000);
        QTRY_VERIFY_WITH_TIMEOUT(m_window->settingsPage()->estimatesReady(), 120000);
        m_window->settingsPage()->setOutputPath(m_dir.filePath(QStringLiteral("keyboard.novaq")));
    }

    void cleanup() { m_window.reset(); }

    // Esc cancels whatever has the focus on the Compress step: the step list, the table, a
    // chart; Esc on another step does nothing.
    void escapeCancelsWhateverHasTheFocus_data()
    {
        QTest::addColumn<QString>("focus");
        QTest::newRow("step list") << QStringLiteral("steps");
        QTest::newRow("table") << QStringLiteral("table");
        QTest::newRow("nothing") << QString();
    }
    void escapeCancelsWhateverHasTheFocus()
    {
        QFETCH(QString, focus);
        MainWindow& window = *m_window;
        // Esc on Settings does not start or stop anything.
        QTest::keyClick(&window, Qt::Key_Escape);
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);

        QSignalSpy tensorFinished(window.job(), &CompressJob::tensorFinished);
        QSignalSpy cancelled(window.job(), &CompressJob::cancelled);
        window.settingsPage()->compressButton()->click();
        QTRY_VERIFY_WITH_TIMEOUT(tensorFinished.count() >= 1 || !window.job()->isRunning(), 300000);
        QVERIFY(window.job()->isRunning());
        QWidget* target = &window;
        if (focus == QStringLiteral("steps"))
            target = window.findChild<QListWidget*>();
        else if (focus == QStringLiteral("table"))
            target = window.compressPage()->findChild<QTableView*>();
        QVERIFY(target);
        if (target != &window) {
            target->setFocus(Qt::MouseFocusReason);
            QTRY_COMPARE(QApplication::focusWidget(), target);
        } else if (QApplication::focusWidget()) {
            QApplication::focusWidget()->clearFocus();
        }
        QTest::keyClick(target, Qt::Key_Escape);
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 30000);
        QCOMPARE(window.currentStep(), MainWindow::Step::Compress);
        QVERIFY(!QFile::exists(m_dir.filePath(QStringLiteral("keyboard.novaq"))));
    }

    // Tab reaches every card in turn, the arrow keys move between them, Return picks one.
    void everyCardByTabAndArrows()
    {
        SettingsPage* settings = m_window->settingsPage();
        const auto& cards = settings->cards();
        QVERIFY(cards.size() >= 3);
        cards[0]->setFocus(Qt::TabFocusReason);
        QTRY_COMPARE(QApplication::focusWidget(), cards[0]);
        for (size_t i = 1; i < cards.size(); ++i) {
            QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
            QCOMPARE(QApplication::focusWidget(), cards[i]);
        }
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Left);
        QCOMPARE(QApplication::focusWidget(), cards[cards.size() - 2]);
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Right);
        QCOMPARE(QApplication::focusWidget(), cards.back());
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Return);
        QVERIFY(cards.back()->isChecked());
        QCOMPARE(settings->bits(), bitsPresets().back().bits);
        for (size_t i = 0; i + 1 < cards.size(); ++i)
            QVERIFY(!cards[i]->isChecked());
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Up);
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Enter);
        QVERIFY(cards[cards.size() - 2]->isChecked());
    }

    // A focused card looks different from an unfocused one and from the selected one, in the
    // light and the dark palette.
    void focusRingIsVisibleAndNotTheSelection_data()
    {
        QTest::addColumn<bool>("dark");
        QTest::newRow("light") << false;
        QTest::newRow("dark") << true;
    }
    void focusRingIsVisibleAndNotTheSelection()
    {
        QFETCH(bool, dark);
        const QPalette before = QApplication::palette();
        QApplication::setPalette(dark ? darkPalette() : lightPalette());
        const auto& cards = m_window->settingsPage()->cards();
        m_window->settingsPage()->setBits(bitsPresets().front().bits);
        QVERIFY(cards[0]->isChecked());
        ChoiceCard* card = cards[1];
        QVERIFY(!card->isChecked());
        m_window->settingsPage()->compressButton()->setFocus();
        const QImage plain = look(card);
        const QImage selected = look(cards[0]);
        card->setFocus(Qt::TabFocusReason);
        QTRY_VERIFY(card->hasFocus());
        const QImage focused = look(card);
        QVERIFY(focused != plain);
        QVERIFY(focused != selected);
        // The primary button shows a ring too.
        QPushButton* compress = m_window->settingsPage()->compressButton();
        const QImage button = look(compress);
        compress->setFocus(Qt::TabFocusReason);
        QTRY_VERIFY(compress->hasFocus());
        QVERIFY(look(compress) != button);
        QApplication::setPalette(before);
    }

    // Settings -> Compress (Return on the Compress button) -> Esc -> Back to settings (Tab,
    // Return) with the keyboard only; on the Compress page Tab leaves the table.
    void keyboardOnlyWalk()
    {
        MainWindow& window = *m_window;
        SettingsPage* settings = window.settingsPage();
        settings->cards()[0]->setFocus(Qt::TabFocusReason);
        QVERIFY(tabTo(&window, settings->compressButton()));
        QSignalSpy tensorFinished(window.job(), &CompressJob::tensorFinished);
        QSignalSpy cancelled(window.job(), &CompressJob::cancelled);
        QTest::keyClick(QApplication::focusWidget(), Qt::Key_Return);
        QCOMPARE(window.currentStep(), MainWindow::Step::Compress);
        QTRY_VERIFY_WITH_TIMEOUT(tensorFinished.count() >= 1 || !window.job()->isRunning(), 300000);
        QVERIFY(window.job()->isRunning());

        auto* table = window.compressPage()->findChild<QTableView*>();
        QVERIFY(table);
        QVERIFY(!table->tabKeyNavigation());
        table->setFocus(Qt::TabFocusReason);
        QTRY_COMPARE(QApplication::focusWidget(), table);
        QTest::keyClick(table, Qt::Key_Tab);
        QVERIFY(QApplication::focusWidget() != table);

        QTest::keyClick(QApplication::focusWidget() ? QApplication::focusWidget() : &window, Qt::Key_Escape);
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 30000);
        QPushButton* back = nullptr;
        for (QPushButton* b : window.compressPage()->findChildren<QPushButton*>())
            if (b->text() == QStringLiteral("Back to settings"))
                back = b;
        QVERIFY(back && back->isVisible());
        QVERIFY(tabTo(&window, back));
        QTest::keyClick(back, Qt::Key_Return);
        QCOMPARE(window.currentStep(), MainWindow::Step::Settings);
    }

private:
    QTemporaryDir m_dir;
    std::unique_ptr<MainWindow> m_window;
};

QTEST_MAIN(TestGuiKeyboard)
#include "test_gui_keyboard.moc"
