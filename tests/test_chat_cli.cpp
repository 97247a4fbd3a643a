// `novaq chat` driven through its stdin (not a terminal): replies on stdout, the rates on
// stderr, /reset and /exit, the KV cache kept between turns, Ctrl-C (SIGINT) stopping a reply
// or, twice at the prompt, the program.

#include "test_support.h"

#include <QProcess>
#include <QTest>

#include <signal.h>

using namespace novaq;
using namespace novaq::test;
namespace fs = std::filesystem;

namespace {

struct ChatRun {
    int exitCode = -1;
    QString out, err;
};

QStringList chatArgs(const QStringList& extra)
{
    return QStringList{"chat", QString::fromStdString((modelsDir() / "kjv-llama-7m").string()), "--threads", "2"} +
           extra;
}

ChatRun runChat(const QStringList& extra, const QByteArray& input)
{
    QProcess p;
    p.start(QStringLiteral(NOVAQ_CLI_PATH), chatArgs(extra));
    if (!p.waitForStarted())
        return {};
    p.write(input);
    p.closeWriteChannel();
    p.waitForFinished(600000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

// "[prompt 12 tokens (5 new), ..." lines of stderr: (prompt tokens, new tokens) per reply.
QList<QPair<int, int>> promptFigures(const QString& err)
{
    QList<QPair<int, int>> figures;
    const QRegularExpression re(
        R"(\[prompt (\d+) tokens \((\d+) new\), [0-9.]+ tokens/s; reply (\d+) tokens, [0-9.]+ tokens/s; (stop|length|cancelled)\])");
    for (auto it = re.globalMatch(err); it.hasNext();) {
        const auto m = it.next();
        figures.append({m.captured(1).toInt(), m.captured(2).toInt()});
    }
    return figures;
}

} // namespace

class TestChatCli : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(QFile::exists(QStringLiteral(NOVAQ_CLI_PATH)), "the novaq executable is missing; build target novaq");
        NOVAQ_REQUIRE_DATA(modelsDir() / "kjv-llama-7m" / "model.safetensors");
    }

    // Greedy replies are the same after /reset; the second turn runs only its new tokens; the
    // rates come after each reply; /exit ends with 0 and nothing after it is read.
    void conversation()
    {
        const ChatRun r = runChat({"--temperature", "0", "--max-tokens", "12", "--system", "Speak as the scripture."},
                                  "In the beginning\nAnd God said\n/reset\nIn the beginning\n/exit\nnever read\n");
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        const QStringList replies = r.out.split('\n', Qt::SkipEmptyParts);
        QVERIFY2(replies.size() >= 3, qPrintable(r.out));
        const QList<QPair<int, int>> figures = promptFigures(r.err);
        QCOMPARE(figures.size(), 3);
        QVERIFY2(r.err.contains("(conversation cleared)"), qPrintable(r.err));
        // Turn 2 extends turn 1: the cache holds turn 1's prompt.
        QVERIFY2(figures[1].second < figures[1].first, qPrintable(r.err));
        QVERIFY(figures[1].first > figures[0].first);
        // After /reset the first prompt again, run from scratch, and the same greedy reply.
        QCOMPARE(figures[2].first, figures[0].first);
        QCOMPARE(figures[2].second, figures[2].first);
        QVERIFY(!r.out.contains("never read"));
        // The replies (the output is only replies, one block per turn).
        const ChatRun again = runChat(
            {"--temperature", "0", "--max-tokens", "12", "--system", "Speak as the scripture."}, "In the beginning\n");
        QVERIFY(again.exitCode == 0);
        QVERIFY2(r.out.trimmed().startsWith(again.out.trimmed()), qPrintable(r.out + " / " + again.out));
        QVERIFY(r.out.count(again.out.trimmed()) >= 2);
    }

    // The same seed gives the same sampled reply.
    void seeded()
    {
        const QStringList args = {"--temperature", "0.9",    "--top-k", "20",           "--top-p",
                                  "0.9",           "--seed", "7",       "--max-tokens", "16"};
        const ChatRun a = runChat(args, "And God said\n");
        const ChatRun b = runChat(args, "And God said\n");
        QVERIFY2(a.exitCode == 0, qPrintable(a.err));
        QVERIFY(!a.out.trimmed().isEmpty());
        QCOMPARE(a.out, b.out);
    }

    void badOptions_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("mentions");
        QTest::newRow("unknown template") << QStringList{"--chat-template", "nonesuch"} << "--chat-template";
        QTest::newRow("negative temperature") << QStringList{"--temperature", "-1"} << "--temperature";
        QTest::newRow("top-p 0") << QStringList{"--top-p", "0"} << "--top-p";
    }
    void badOptions()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, mentions);
        const ChatRun r = runChat(args, "hello\n");
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains(mentions), qPrintable(r.err));
        QVERIFY(r.out.isEmpty());
    }

    // Ctrl-C at the prompt warns and keeps going; a message is still answered; Ctrl-C twice quits
    // with 130. A Ctrl-C during a reply never ends the program.
    void interrupt()
    {
        QProcess p;
        p.start(QStringLiteral(NOVAQ_CLI_PATH), chatArgs({"--temperature", "0", "--max-tokens", "0"}));
        QVERIFY(p.waitForStarted());
        QByteArray err;
        QTRY_VERIFY_WITH_TIMEOUT((err += p.readAllStandardError()).contains("Ctrl-C stops a reply"), 120000);
        const auto pid = static_cast<pid_t>(p.processId());
        ::kill(pid, SIGINT);
        QTRY_VERIFY_WITH_TIMEOUT((err += p.readAllStandardError()).contains("Ctrl-C again to quit"), 60000);
        QCOMPARE(p.state(), QProcess::Running);
        // A reply, interrupted as soon as it starts (or, when it is already done, at the prompt).
        p.write("In the beginning\n");
        QByteArray out;
        QTRY_VERIFY_WITH_TIMEOUT(!(out += p.readAllStandardOutput()).isEmpty(), 60000);
        ::kill(pid, SIGINT);
        QTRY_VERIFY_WITH_TIMEOUT((err += p.readAllStandardError()).contains("[prompt"), 60000);
        // Usually the reply (up to the full context) is still being written and stops here.
        if (err.contains("[stopped]"))
            QVERIFY2(err.contains("; cancelled]"), err.constData());
        else
            qInfo("the reply had ended before the Ctrl-C arrived; it was taken at the prompt");
        QTest::qWait(200);
        QCOMPARE(p.state(), QProcess::Running);
        // Still answering.
        const int before = QString::fromUtf8(err).count("[prompt");
        p.write("And God said\n");
        QTRY_VERIFY_WITH_TIMEOUT(QString::fromUtf8(err += p.readAllStandardError()).count("[prompt") > before, 60000);
        // Twice at the prompt: the end.
        const int warned = QString::fromUtf8(err).count("Ctrl-C again to quit");
        ::kill(pid, SIGINT);
        QTRY_VERIFY_WITH_TIMEOUT(
            QString::fromUtf8(err += p.readAllStandardError()).count("Ctrl-C again to quit") > warned, 60000);
        QCOMPARE(p.state(), QProcess::Running);
        ::kill(pid, SIGINT);
        QVERIFY(p.waitForFinished(60000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 130);
    }
};

QTEST_GUILESS_MAIN(TestChatCli)
#include "test_chat_cli.moc"
