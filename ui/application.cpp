#include "ui/application.h"

#include "ui/compress_page.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/main_window.h"
#include "ui/model_page.h"
#include "ui/settings_page.h"
#include "ui/table_models.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QIcon>
#include <QPalette>
#include <QPushButton>
#include <QStyleFactory>
#include <QTimer>

#include <memory>

namespace novaq::ui {

void setupApplication(QApplication& app)
{
    QCoreApplication::setOrganizationName(QStringLiteral("NOVAQ"));
    QCoreApplication::setOrganizationDomain(QStringLiteral("novaq.org"));
    QCoreApplication::setApplicationName(QStringLiteral("NOVAQ Studio"));
    QCoreApplication::setApplicationVersion(QStringLiteral(NOVAQ_VERSION));
    QGuiApplication::setDesktopFileName(QStringLiteral("org.novaq.Studio"));
    app.setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
    // The system palette (light or dark) with our one accent colour.
    QPalette pal = app.palette();
    pal.setColor(QPalette::Highlight, accentColor());
    pal.setColor(QPalette::HighlightedText, Qt::white);
    pal.setColor(QPalette::Link, accentColor());
    app.setPalette(pal);
    app.setWindowIcon(QIcon(QStringLiteral(":/icons/novaq-studio-256.png")));
    app.setStyleSheet(QStringLiteral("QPushButton#primary { background: %1; color: white; border: none;"
                                     " border-radius: 6px; padding: 6px 18px; font-weight: bold; }"
                                     "QPushButton#primary:hover { background: %2; }"
                                     "QPushButton#primary:disabled { background: palette(mid); }"
                                     "QProgressBar { border: 1px solid palette(mid); border-radius: 6px;"
                                     " text-align: center; }"
                                     "QProgressBar::chunk { background: %1; border-radius: 5px; }")
                          .arg(accentColor().name(), accentColor().lighter(115).name()));
}

void runScreenshotTour(MainWindow* window, const QString& folder)
{
    QDir().mkpath(folder);
    auto grab = [window, folder](const QString& name) {
        window->grab().save(QDir(folder).filePath(name + QStringLiteral(".png")));
    };
    auto step = std::make_shared<int>(0);
    auto* timer = new QTimer(window);
    timer->setInterval(250);
    const QString output = QDir(folder).filePath(QStringLiteral("tour-demo.novaq"));
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
            QFile::remove(output);
            window->settingsPage()->compressButton()->click();
            ++*step;
            break;
        case 3:
            if (window->compressPage()->resultModel()->rowCount() >= 30) {
                grab(QStringLiteral("compress"));
                ++*step;
            }
            break;
        case 4:
            if (window->currentStep() == MainWindow::Step::Results) {
                grab(QStringLiteral("results"));
                window->goTo(MainWindow::Step::Compress);
                ++*step;
            }
            break;
        case 5:
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
