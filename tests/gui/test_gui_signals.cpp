// novaq-studio stopped by a signal (SIGTERM from `kill`, systemd or a logout; SIGHUP; Ctrl-C in
// the terminal that started it) while it compresses: it quits without asking, the running job
// is cancelled, its hidden temporary file is deleted, and the exit code is 128 + the signal.

#include <QDir>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QTest>

#include <csignal>

class TestGuiSignals : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void stopDuringCompression_data();
    void stopDuringCompression();
};

void TestGuiSignals::stopDuringCompression_data()
{
    QTest::addColumn<int>("signal");
    QTest::addColumn<int>("exitCode");
    QTest::newRow("SIGTERM") << int(SIGTERM) << 143;
    QTest::newRow("SIGHUP") << int(SIGHUP) << 129;
    QTest::newRow("SIGINT") << int(SIGINT) << 130;
}

void TestGuiSignals::stopDuringCompression()
{
    QFETCH(int, signal);
    QFETCH(int, exitCode);
    QTemporaryDir tmp; // the tour writes $TMPDIR/kjv-llama-7m.novaq
    QTemporaryDir home;
    QVERIFY(tmp.isValid() && home.isValid());
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.insert(QStringLiteral("TMPDIR"), tmp.path());
    env.insert(QStringLiteral("HOME"), home.path());
    env.insert(QStringLiteral("XDG_CONFIG_HOME"), home.filePath(QStringLiteral("config")));
    env.insert(QStringLiteral("XDG_CACHE_HOME"), home.filePath(QStringLiteral("cache")));
    env.insert(QStringLiteral("NOVAQ_DEMO_MODEL"), QStringLiteral(NOVAQ_DEMO_MODEL_DIR));
    // The screenshot tour opens the demo model and starts a compression on its own.
    env.insert(QStringLiteral("NOVAQ_STUDIO_SCREENSHOTS"), home.filePath(QStringLiteral("shots")));
    QProcess app;
    app.setProcessEnvironment(env);
    app.setStandardInputFile(QProcess::nullDevice());
    app.start(QStringLiteral(NOVAQ_STUDIO_PATH), {});
    QVERIFY(app.waitForStarted());

    const QDir dir(tmp.path());
    const QString partial = QStringLiteral(".kjv-llama-7m.novaq.partial-%1").arg(app.processId());
    while (!dir.exists(partial) && app.state() == QProcess::Running)
        app.waitForFinished(20);
    QVERIFY2(dir.exists(partial), qPrintable("the app ended before it wrote " + partial + ":\n" +
                                             QString::fromLocal8Bit(app.readAllStandardError())));
    QCOMPARE(::kill(pid_t(app.processId()), signal), 0);
    QVERIFY2(app.waitForFinished(120'000), "did not quit within 2 minutes of the signal");
    QCOMPARE(app.exitStatus(), QProcess::NormalExit);
    QCOMPARE(app.exitCode(), exitCode);
    // Neither the output nor its temporary file (Qt may keep its own runtime folder there).
    const QStringList left = dir.entryList({QStringLiteral("*kjv-llama-7m.novaq*")}, QDir::Files | QDir::Hidden);
    QVERIFY2(left.isEmpty(), qPrintable(left.join(", ")));
}

QTEST_GUILESS_MAIN(TestGuiSignals)
#include "test_gui_signals.moc"
