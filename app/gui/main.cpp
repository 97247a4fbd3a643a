// novaq-studio [PATH]: the desktop app. Opens PATH (a model file or folder, or a .novaq file)
// when given; everything else lives in novaq_ui.

#include "ui/application.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QScreen>
#include <QSocketNotifier>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace {

// The self-pipe: the signal handler writes the signal's number into it, the event loop reads it.
int g_signalPipe[2] = {-1, -1};

// Async-signal-safe: one write(2) into a non-blocking pipe, errno preserved.
extern "C" void onStopSignal(int signal)
{
    const int saved = errno;
    const auto byte = static_cast<unsigned char>(signal);
    [[maybe_unused]] const ssize_t written = ::write(g_signalPipe[1], &byte, 1);
    errno = saved;
}

// SIGTERM (kill, systemd, a logout), SIGHUP and SIGINT end the app as quitting does, without
// the "stop the compression?" question: the event loop ends, the window and its jobs are
// destroyed, and a job's destructor cancels it and waits for its worker, so the hidden
// `.OUT.partial-PID` file is deleted. The signal's number lands in *stopSignal.
void installStopHandlers(QApplication& app, int* stopSignal)
{
    if (::pipe2(g_signalPipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return; // without the pipe the signals keep their default action
    auto* notifier = new QSocketNotifier(g_signalPipe[0], QSocketNotifier::Read, &app);
    QObject::connect(notifier, &QSocketNotifier::activated, &app, [stopSignal] {
        unsigned char byte = 0;
        while (::read(g_signalPipe[0], &byte, 1) == 1) {
            if (*stopSignal == 0) {
                *stopSignal = byte;
                QApplication::exit(128 + byte); // also ends a modal dialog's loop
            }
        }
    });
    struct sigaction action {};
    action.sa_handler = onStopSignal;
    sigemptyset(&action.sa_mask);
    // SA_RESETHAND: a second signal gets the default action, in case quitting hangs.
    action.sa_flags = SA_RESETHAND | SA_RESTART;
    for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
        // A signal ignored when we started stays ignored: `nohup` ignores SIGHUP, a shell
        // ignores SIGINT for a background job (`novaq local &` in a script).
        struct sigaction previous {};
        if (sigaction(signal, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN)
            continue;
        sigaction(signal, &action, nullptr);
    }
}

} // namespace

int main(int argc, char** argv)
{
    Q_INIT_RESOURCE(novaq_studio);
    QApplication app(argc, argv);
    novaq::ui::setupApplication(app);
    int stopSignal = 0;
    installStopHandlers(app, &stopSignal);

    QCommandLineParser parser;
    parser.setApplicationDescription(QApplication::translate("main", "Compress large language models with NOVAQ."));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("path"),
                                 QApplication::translate("main", "A model file or folder, or a .novaq file, to open."),
                                 QStringLiteral("[PATH]"));
    parser.process(app);

    novaq::ui::MainWindow window;
    // On a screen smaller than 1280 x 800 the window opens at the screen's available size
    // (novaq::ui::MainWindow::initialSize); maximized, so that its title bar does not push it off-screen.
    const QScreen* screen = window.screen();
    if (screen && novaq::ui::MainWindow::initialSize(screen->availableGeometry()) != QSize(1280, 800))
        window.showMaximized();
    else
        window.show();
    if (!parser.positionalArguments().isEmpty())
        window.openPath(parser.positionalArguments().first());
    if (const QByteArray dir = qgetenv("NOVAQ_STUDIO_SCREENSHOTS"); !dir.isEmpty())
        novaq::ui::runScreenshotTour(&window, QString::fromLocal8Bit(dir));
    const int code = app.exec();
    // The window (and with it any running job) is destroyed after this: cancelled and joined.
    return stopSignal > 0 ? 128 + stopSignal : code;
}
