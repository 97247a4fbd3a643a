#include "ui/application.h"

#include "ui/compress_page.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/settings_page.h"
#include "ui/table_models.h"
#include "ui/try_it_page.h"

#include <QApplication>
#include <QDir>
#include <QEvent>
#include <QFile>
#include <QIcon>
#include <QLineEdit>
#include <QPalette>
#include <QPushButton>
#include <QStyle>
#include <QStyleFactory>
#include <QTimer>
#include <QToolTip>
#include <QTranslator>

#include <memory>

namespace novaq::ui {

namespace {

void applyAccent(QPalette& pal)
{
    pal.setColor(QPalette::Highlight, accentColor());
    pal.setColor(QPalette::HighlightedText, Qt::white);
    pal.setColor(QPalette::Link, accentTextColor(pal));
    pal.setColor(QPalette::LinkVisited, accentTextColor(pal));
}

// Follows a switch of the application palette (the desktop going dark or light, or
// QApplication::setPalette). The app's style sheet makes every widget's palette its own when
// it is polished, so without a repolish the widgets, the cards and the charts (which restyle
// on PaletteChange and StyleChange) would keep the old colours. The accent-dependent link
// colours and the tooltips' palette are set again too.
class PaletteFollower : public QObject {
public:
    using QObject::QObject;

protected:
    bool eventFilter(QObject* watched, QEvent* event) override
    {
        if (watched == qApp && event->type() == QEvent::ApplicationPaletteChange && !m_busy) {
            m_busy = true; // setPalette below sends the event again
            QPalette pal = QApplication::palette();
            applyAccent(pal);
            if (pal != QApplication::palette())
                QApplication::setPalette(pal);
            QToolTip::setPalette(QApplication::palette());
            qApp->setStyleSheet(qApp->styleSheet()); // repolishes every widget
            m_busy = false;
        }
        return QObject::eventFilter(watched, event);
    }

private:
    bool m_busy = false;
};

} // namespace

bool installPluralForms(QCoreApplication& app)
{
    // The app speaks English only; its English "translation" holds just the plural forms of
    // the counted texts (tr("%n token(s)", nullptr, n) -> "1 token", "2 tokens"). Loaded
    // whatever the locale: without it every count would read "(s)".
    if (app.findChild<QTranslator*>(QStringLiteral("novaqPluralForms")))
        return true;
    auto* translator = new QTranslator(&app);
    translator->setObjectName(QStringLiteral("novaqPluralForms"));
    if (!translator->load(QStringLiteral(":/i18n/novaq_studio_en.qm"))) {
        delete translator;
        return false;
    }
    return QCoreApplication::installTranslator(translator);
}

Theme themeFromEnvironment()
{
    const QString theme = qEnvironmentVariable("NOVAQ_STUDIO_THEME").trimmed().toLower();
    if (theme == QStringLiteral("dark"))
        return Theme::Dark;
    if (theme == QStringLiteral("light"))
        return Theme::Light;
    return Theme::System;
}

QPalette lightPalette()
{
    const std::unique_ptr<QStyle> fusion(QStyleFactory::create(QStringLiteral("Fusion")));
    QPalette pal = fusion ? fusion->standardPalette() : QPalette();
    applyAccent(pal);
    return pal;
}

QPalette darkPalette()
{
    const QColor window(0x26, 0x27, 0x2b);
    const QColor base(0x1d, 0x1e, 0x21);
    const QColor text(0xe6, 0xe6, 0xea);
    const QColor dimmed(0x80, 0x82, 0x8a);
    QPalette pal(window);
    pal.setColor(QPalette::Window, window);
    pal.setColor(QPalette::WindowText, text);
    pal.setColor(QPalette::Base, base);
    pal.setColor(QPalette::AlternateBase, QColor(0x2a, 0x2b, 0x30));
    pal.setColor(QPalette::ToolTipBase, QColor(0x34, 0x35, 0x3b));
    pal.setColor(QPalette::ToolTipText, text);
    pal.setColor(QPalette::PlaceholderText, dimmed);
    pal.setColor(QPalette::Text, text);
    pal.setColor(QPalette::Button, QColor(0x33, 0x34, 0x3a));
    pal.setColor(QPalette::ButtonText, text);
    pal.setColor(QPalette::BrightText, QColor(0xff, 0x6b, 0x6b));
    pal.setColor(QPalette::Light, QColor(0x44, 0x45, 0x4c));
    pal.setColor(QPalette::Midlight, QColor(0x36, 0x37, 0x3d));
    pal.setColor(QPalette::Mid, QColor(0x55, 0x57, 0x5f));
    pal.setColor(QPalette::Dark, QColor(0x18, 0x19, 0x1c));
    pal.setColor(QPalette::Shadow, QColor(0x0e, 0x0e, 0x10));
    for (QPalette::ColorRole role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        pal.setColor(QPalette::Disabled, role, dimmed);
    pal.setColor(QPalette::Disabled, QPalette::Base, window);
    applyAccent(pal);
    return pal;
}

void setupApplication(QApplication& app, Theme theme)
{
    QCoreApplication::setOrganizationName(QStringLiteral("NOVAQ"));
    QCoreApplication::setOrganizationDomain(QStringLiteral("novaq.org"));
    QCoreApplication::setApplicationName(QStringLiteral("NOVAQ Studio"));
    QCoreApplication::setApplicationVersion(QStringLiteral(NOVAQ_VERSION));
    QGuiApplication::setDesktopFileName(QStringLiteral("org.novaq.Studio"));
    installPluralForms(app);
    app.setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
    // The system palette (light or dark) with our one accent colour, or one of ours.
    QPalette pal = app.palette();
    if (theme == Theme::Dark)
        pal = darkPalette();
    else if (theme == Theme::Light)
        pal = lightPalette();
    else
        applyAccent(pal);
    app.setPalette(pal);
    QToolTip::setPalette(pal);
    app.setWindowIcon(QIcon(QStringLiteral(":/icons/novaq-studio-256.png")));
    app.setStyleSheet(QStringLiteral("QPushButton#primary { background: %1; color: white; border: none;"
                                     " border-radius: 6px; padding: 6px 18px; font-weight: bold; }"
                                     "QPushButton#primary:hover { background: %2; }"
                                     "QPushButton#primary:disabled { background: palette(mid); }"
                                     // A visible focus ring on the accent-coloured buttons too.
                                     "QPushButton#primary:focus { border: 2px solid palette(text); }"
                                     "QProgressBar { border: 1px solid palette(mid); border-radius: 6px;"
                                     " text-align: center; }"
                                     "QProgressBar::chunk { background: %1; border-radius: 5px; }")
                          .arg(accentColor().name(), accentColor().lighter(115).name()));
    if (!app.findChild<QObject*>(QStringLiteral("novaqPaletteFollower"), Qt::FindDirectChildrenOnly)) {
        auto* follower = new PaletteFollower(&app);
        follower->setObjectName(QStringLiteral("novaqPaletteFollower"));
        app.installEventFilter(follower);
    }
}

QString screenshotPath(const QString& folder, const QString& page)
{
    const QString suffix = isDark(QApplication::palette()) ? QStringLiteral("-dark") : QString();
    return QDir(folder).filePath(page + suffix + QStringLiteral(".png"));
}

void runScreenshotTour(MainWindow* window, const QString& folder)
{
    QDir().mkpath(folder);
    auto grab = [window, folder](const QString& name) { window->grab().save(screenshotPath(folder, name)); };
    auto step = std::make_shared<int>(0);
    auto* timer = new QTimer(window);
    timer->setInterval(250);
    const QString output = QDir(QDir::tempPath()).filePath(QStringLiteral("kjv-llama-7m.novaq"));
    QObject::connect(timer, &QTimer::timeout, window, [=] {
        switch (*step) {
        case 0:
            grab(QStringLiteral("model"));
            window->openDemoModel();
            ++*step;
            break;
        case 1:
            if (window->settingsPage()->estimatesReady()) {
                window->settingsPage()->setBits(1.5);
                window->settingsPage()->setOutputPath(output);
                ++*step;
            }
            break;
        case 2:
            grab(QStringLiteral("settings"));
            window->settingsPage()->setAdvancedVisible(true);
            ++*step;
            break;
        case 3:
            grab(QStringLiteral("settings-advanced"));
            window->settingsPage()->setAdvancedVisible(false);
            QFile::remove(output);
            window->settingsPage()->compressButton()->click();
            ++*step;
            break;
        case 4:
            if (window->compressPage()->resultModel()->rowCount() >= 30) {
                grab(QStringLiteral("compress"));
                ++*step;
            }
            break;
        case 5:
            if (window->currentStep() == MainWindow::Step::Results) {
                grab(QStringLiteral("results"));
                window->goTo(MainWindow::Step::TryIt); // loads the demo model and its .novaq
                ++*step;
            }
            break;
        case 6:
            if (window->tryItPage()->isLoaded()) {
                window->tryItPage()->promptEdit()->setText(QStringLiteral("In the beginning God created"));
                window->tryItPage()->send();
                ++*step;
            }
            break;
        case 7:
            if (!window->tryItPage()->isBusy()) {
                window->tryItPage()->checkQuality();
                ++*step;
            }
            break;
        case 8:
            if (!window->tryItPage()->isBusy()) {
                grab(QStringLiteral("try-it"));
                window->goTo(MainWindow::Step::Compress);
                ++*step;
            }
            break;
        case 9:
            grab(QStringLiteral("compress-done"));
            QFile::remove(output);
            timer->stop();
            QCoreApplication::quit();
            break;
        default:
            break;
        }
    });
    timer->start();
}

} // namespace novaq::ui
