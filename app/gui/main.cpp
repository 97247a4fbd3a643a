// novaq-studio [PATH]: the desktop app. Opens PATH (a model file or folder, or a .novaq file)
// when given; everything else lives in novaq_ui.

#include "ui/application.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QCommandLineParser>

int main(int argc, char** argv)
{
    Q_INIT_RESOURCE(novaq_studio);
    QApplication app(argc, argv);
    novaq::ui::setupApplication(app);

    QCommandLineParser parser;
    parser.setApplicationDescription(QApplication::translate("main", "Compress large language models with NOVAQ."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("path"),
                                 QApplication::translate("main", "A model file or folder, or a .novaq file, to open."),
                                 QStringLiteral("[PATH]"));
    parser.process(app);

    novaq::ui::MainWindow window;
    window.show();
    if (!parser.positionalArguments().isEmpty())
        window.openPath(parser.positionalArguments().first());
    if (const QByteArray dir = qgetenv("NOVAQ_STUDIO_SCREENSHOTS"); !dir.isEmpty())
        novaq::ui::runScreenshotTour(&window, QString::fromLocal8Bit(dir));
    return app.exec();
}
