// The `novaq` command line as a user meets it: exit codes and messages on good and bad
// input, and an end-to-end run on the demo model (compress, stats, validate, export,
// corruption, cancel).

#include "test_support.h"

#include "novaq/codec/codec_config.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/cluster.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

namespace {

using novaq::test::demoModelDir;

constexpr int kQuickTimeoutMs = 60'000;
constexpr int kCompressTimeoutMs = 600'000;

struct Result {
    int exitCode = -1;
    bool crashed = false;
    QString out;
    QString err;
};

} // namespace

class TestCli : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void usage_data();
    void usage();
    void sharedOptionsReadTheSame();

    // End to end, in this order: each step uses the file the first one wrote.
    void compressDemo();
    void statsJson();
    void validateAgainstSource();
    void exportSafetensors();
    void validateCorrupt();
    void outputFolderMissing();
    void stopSignalLeavesNothing_data();
    void stopSignalLeavesNothing();
    void ignoredHangupStaysIgnored();
    void staleTemporaryRemoved();
    void namesFromFilesEscaped_data();
    void namesFromFilesEscaped();
    void unboundedTextRefused_data();
    void unboundedTextRefused();
    void evalAndGenerate();
    void tokenize_data();
    void tokenize();
    void codecLimits_data();
    void codecLimits();
    void inspectPlansWhatLocalWrites();
    void networkCommandsNeedTheHelper_data();
    void networkCommandsNeedTheHelper();
    void networkCommandsReachTheHelper();

private:
    Result run(const QStringList& args, int timeoutMs = kQuickTimeoutMs, const QString& workDir = {});
    // Runs `program` with `environment` ("NAME=value") added to this process's.
    Result runProgram(const QString& program, const QStringList& args, const QStringList& environment,
                      int timeoutMs = kQuickTimeoutMs, const QString& workDir = {});
    QStringList expand(const QStringList& args) const;
    void requireCompressed();

    QTemporaryDir m_dir;
    QString m_novaq; // the file compressDemo() wrote
    bool m_compressed = false;
};

void TestCli::initTestCase()
{
    QVERIFY2(m_dir.isValid(), "cannot create a temporary folder");
    QVERIFY2(QFile::exists(QStringLiteral(NOVAQ_CLI_PATH)), "the novaq executable is missing; build target novaq");
    QFile text(m_dir.filePath(QStringLiteral("notes.txt")));
    QVERIFY(text.open(QIODevice::WriteOnly));
    text.write("These are notes, not a model. They are long enough to be sniffed as text, not weights.\n");
    text.close();
    m_novaq = m_dir.filePath(QStringLiteral("demo.novaq"));
}

QStringList TestCli::expand(const QStringList& args) const
{
    QStringList out;
    for (QString a : args) {
        a.replace(QStringLiteral("{tmp}"), m_dir.path());
        a.replace(QStringLiteral("{demo}"), QString::fromStdString(demoModelDir().string()));
        out << a;
    }
    return out;
}

Result TestCli::run(const QStringList& args, int timeoutMs, const QString& workDir)
{
    return runProgram(QStringLiteral(NOVAQ_CLI_PATH), args, {}, timeoutMs, workDir);
}

Result TestCli::runProgram(const QString& program, const QStringList& args, const QStringList& environment,
                           int timeoutMs, const QString& workDir)
{
    QProcess process;
    process.setWorkingDirectory(workDir.isEmpty() ? m_dir.path() : workDir);
    process.setStandardInputFile(QProcess::nullDevice());
    if (!environment.isEmpty())
        process.setEnvironment(QProcess::systemEnvironment() << environment);
    process.start(program, args);
    Result r;
    if (!process.waitForStarted() || !process.waitForFinished(timeoutMs)) {
        process.kill();
        process.waitForFinished();
        r.crashed = true;
    }
    r.crashed = r.crashed || process.exitStatus() != QProcess::NormalExit;
    r.exitCode = process.exitCode();
    r.out = QString::fromUtf8(process.readAllStandardOutput());
    r.err = QString::fromUtf8(process.readAllStandardError());
    return r;
}

void TestCli::usage_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QString>("stdoutHas"); // empty: not checked
    QTest::addColumn<QString>("stderrHas");

    const QString none;
    QTest::newRow("--help lists commands") << QStringList{"--help"} << 0 << "COMMANDS" << none;
    QTest::newRow("--help has the bits table") << QStringList{"--help"} << 0 << "b1+b2" << none;
    QTest::newRow("--help has the exit codes") << QStringList{"--help"} << 0 << "130" << none;
    QTest::newRow("--help has the SIGTERM exit code") << QStringList{"--help"} << 0 << "143" << none;
    QTest::newRow("help local") << QStringList{"help", "local"} << 0 << "--subspaces K" << none;
    QTest::newRow("local --help shows defaults")
        << QStringList{"local", "--help"} << 0 << "novaq_compressed.bin" << none;
    QTest::newRow("export --help") << QStringList{"export", "--help"} << 0 << "--dtype" << none;
    QTest::newRow("--version") << QStringList{"--version"} << 0 << "novaq " << none;
    QTest::newRow("no command") << QStringList{} << 2 << none << "no command given";
    QTest::newRow("unknown command") << QStringList{"compress"} << 2 << none << "novaq: unknown command 'compress'";
    QTest::newRow("command typo suggests") << QStringList{"lcoal"} << 2 << none << "(did you mean local?)";
    QTest::newRow("help of unknown command") << QStringList{"help", "frobnicate"} << 2 << none << "unknown command";
    QTest::newRow("unknown option suggests") << QStringList{"local", "--bitz", "2"} << 2 << none
                                             << "novaq local: unknown option '--bitz' (did you mean --bits?)";
    QTest::newRow("unknown option, no suggestion")
        << QStringList{"stats", "x.novaq", "--frobnicate"} << 2 << none << "novaq stats: unknown option '--frobnicate'";
    QTest::newRow("bad --bits lists presets")
        << QStringList{"local", "--bits", "1.7"} << 2 << none << "choose one of 1, 1.5, 2, 2.5, 3, 4";
    QTest::newRow("non-numeric --bits") << QStringList{"local", "--bits", "lots"} << 2 << none
                                        << "--bits expects a number, got 'lots'";
    QTest::newRow("missing value") << QStringList{"local", "--output"} << 2 << none << "option --output needs a value";
    QTest::newRow("non-numeric --threads")
        << QStringList{"local", "--threads", "many"} << 2 << none << "--threads expects a whole number, got 'many'";
    QTest::newRow("negative --threads") << QStringList{"local", "--threads", "-1"} << 2 << none
                                        << "--threads must be 0..4096, got '-1'";
    QTest::newRow("--subspaces 0") << QStringList{"local", "--subspaces", "0"} << 2 << none
                                   << "--subspaces must be 1..64";
    QTest::newRow("--subspaces 65") << QStringList{"local", "--subspaces=65"} << 2 << none
                                    << "--subspaces must be 1..64";
    QTest::newRow("expert override incomplete")
        << QStringList{"local", "--d", "8"} << 2 << none << "--d, --b1 and --b2 together";
    QTest::newRow("expert override with --bits")
        << QStringList{"local", "--d", "8", "--b1", "8", "--b2", "4", "--bits", "2"} << 2 << none << "either --bits or";
    QTest::newRow("flag given a value") << QStringList{"local", "--json=yes"} << 2 << none << "takes no value";
    QTest::newRow("two paths") << QStringList{"local", "a", "b"} << 2 << none << "too many arguments";
    QTest::newRow("validate without file") << QStringList{"validate"} << 2 << none << "missing the .novaq FILE";
    QTest::newRow("export without --output")
        << QStringList{"export", "x.novaq"} << 2 << none << "--output FILE is required";
    QTest::newRow("export bad --dtype") << QStringList{"export", "x.novaq", "--output", "y", "--dtype", "i8"} << 2
                                        << none << "--dtype must be f16 or f32";
    QTest::newRow("missing model") << QStringList{"local", "{tmp}/no-such-model.safetensors"} << 5 << none
                                   << "no-such-model.safetensors";
    QTest::newRow("missing .novaq") << QStringList{"stats", "{tmp}/no-such.novaq"} << 5 << none << "no-such.novaq";
    QTest::newRow("text file as model") << QStringList{"local", "{tmp}/notes.txt", "--output", "{tmp}/t.novaq"} << 3
                                        << none << "notes.txt";
    // The download commands fail on bad names before any request (their network paths are in
    // test_huggingface, test_ollama and test_net, against local servers).
    QTest::newRow("hf bad id") << QStringList{"hf", "not a repo"} << 2 << none << "is not a Hugging Face model id";
    QTest::newRow("hf two ids") << QStringList{"hf", "a/b", "c/d"} << 2 << none << "too many arguments";
    QTest::newRow("ollama bad name") << QStringList{"ollama", "a/b/c/d"} << 2 << none << "not an Ollama model name";
    QTest::newRow("ollama --list with a name")
        << QStringList{"ollama", "x", "--list"} << 2 << none << "--list takes no NAME";
    QTest::newRow("url not http") << QStringList{"url", "ftp://example.com/m.gguf"} << 2 << none
                                  << "novaq url: 'ftp://example.com/m.gguf' is not an http:// or https:// URL";
    QTest::newRow("search without query") << QStringList{"search"} << 2 << none << "missing a search QUERY";
    QTest::newRow("eval without --text") << QStringList{"eval", "{demo}"} << 2 << none << "missing --text FILE";
    QTest::newRow("eval without model") << QStringList{"eval"} << 2 << none << "missing the MODEL to evaluate";
    QTest::newRow("eval bad --split") << QStringList{"eval", "{demo}", "--text", "{tmp}/notes.txt", "--split", "words"}
                                      << 2 << none << "--split must be 'lines' or 'paragraphs'";
    QTest::newRow("eval text too short") << QStringList{"eval", "{demo}", "--text", "{tmp}/notes.txt"} << 2 << none
                                         << "fewer than one window of --ctx 256";
    QTest::newRow("eval missing text") << QStringList{"eval", "{demo}", "--text", "{tmp}/none.txt"} << 5 << none
                                       << "none.txt";
    QTest::newRow("eval bad --protocol") << QStringList{"eval",       "{demo}", "--text", "{tmp}/notes.txt",
                                                        "--protocol", "llama"}
                                         << 2 << none << "--protocol must be 'novaq' or 'llama.cpp', got 'llama'";
    QTest::newRow("eval --split with --protocol llama.cpp")
        << QStringList{"eval", "{demo}", "--text", "{tmp}/notes.txt", "--protocol", "llama.cpp", "--split", "lines"}
        << 2 << none << "--split does not apply to --protocol llama.cpp";
    QTest::newRow("generate without --prompt")
        << QStringList{"generate", "{demo}"} << 2 << none << "missing --prompt TEXT";
    QTest::newRow("calibration without file") << QStringList{"local", "--calibration-tokens", "64"} << 2 << none
                                              << "--calibration-tokens needs --calibration FILE";
    QTest::newRow("tokenize without --text") << QStringList{"tokenize", "{demo}"} << 2 << none << "missing --text FILE";
    QTest::newRow("tokenize without model") << QStringList{"tokenize", "--text", "{tmp}/notes.txt"} << 2 << none
                                            << "missing the MODEL whose tokenizer to use";
    QTest::newRow("tokenize missing text")
        << QStringList{"tokenize", "{demo}", "--text", "{tmp}/none.txt"} << 5 << none << "none.txt";
    QTest::newRow("search bad sort") << QStringList{"search", "x", "--sort", "stars"} << 2 << none
                                     << "--sort stars is not an order; choose one of downloads, likes";
}

void TestCli::usage()
{
    QFETCH(QStringList, args);
    QFETCH(int, exitCode);
    QFETCH(QString, stdoutHas);
    QFETCH(QString, stderrHas);

    const Result r = run(expand(args));
    QVERIFY2(!r.crashed, qPrintable("crashed or hung; stderr: " + r.err));
    QVERIFY2(r.exitCode == exitCode,
             qPrintable(QStringLiteral("exit %1, expected %2; stderr: %3").arg(r.exitCode).arg(exitCode).arg(r.err)));
    if (!stdoutHas.isEmpty())
        QVERIFY2(r.out.contains(stdoutHas), qPrintable("stdout lacks '" + stdoutHas + "':\n" + r.out));
    if (!stderrHas.isEmpty())
        QVERIFY2(r.err.contains(stderrHas), qPrintable("stderr lacks '" + stderrHas + "':\n" + r.err));
    if (exitCode != 0) {
        // One line naming the command, nothing on stdout.
        QVERIFY2(r.err.startsWith(QStringLiteral("novaq")) || args.isEmpty(), qPrintable(r.err));
        if (!args.isEmpty())
            QVERIFY2(r.out.isEmpty(), qPrintable("stdout should be empty on error:\n" + r.out));
    }
    // Nothing is left in the working folder by a failed command.
    QVERIFY(!QFile::exists(m_dir.filePath(QStringLiteral("novaq_compressed.bin"))));
    QVERIFY(!QFile::exists(m_dir.filePath(QStringLiteral("t.novaq"))));
}

// An option several commands take is declared once: its help line (text and default) is the
// same in every command's --help. Options that mean different things in different commands
// (--seed, --ctx, --max-tokens, --output, ...) are not in the list.
void TestCli::sharedOptionsReadTheSame()
{
    const Result general = run({QStringLiteral("--help")});
    QCOMPARE(general.exitCode, 0);
    QStringList commands;
    bool inList = false;
    for (const QString& line : general.out.split('\n')) {
        if (line == QLatin1String("COMMANDS")) {
            inList = true;
            continue;
        }
        if (inList && line.trimmed().isEmpty())
            break;
        if (inList)
            commands << line.trimmed().section(' ', 0, 0);
    }
    QVERIFY2(commands.size() >= 10, qPrintable(general.out));

    const QStringList shared{"--threads", "--decode", "--chat-template", "--tables", "--bits", "--subspaces", "--d",
                             "--b1",      "--b2",     "--context",       "--json",   "--help"};
    const QRegularExpression row(QStringLiteral("^  (--\\S+)(?: \\S+)?\\s{2,}(.*)$"));
    QMap<QString, QMap<QString, QString>> helpOf; // option -> command -> help line
    for (const QString& command : commands) {
        const Result r = run({QStringLiteral("help"), command});
        QCOMPARE(r.exitCode, 0);
        const QString options = r.out.section(QStringLiteral("\nOPTIONS\n"), 1).section(QStringLiteral("\n\n"), 0, 0);
        for (const QString& line : options.split('\n')) {
            const QRegularExpressionMatch m = row.match(line);
            if (m.hasMatch())
                helpOf[m.captured(1)][command] = m.captured(2);
        }
    }
    for (const QString& option : shared) {
        QVERIFY2(helpOf[option].size() >= 2, qPrintable(option + " is in fewer than two commands"));
        const QString first = helpOf[option].first();
        for (auto it = helpOf[option].cbegin(); it != helpOf[option].cend(); ++it)
            QVERIFY2(it.value() == first,
                     qPrintable(option + " in `" + it.key() + "`: '" + it.value() + "'\n  elsewhere: '" + first + "'"));
    }
    // --tokenizer: eval and generate add their fallback (the --against model's) to the one line.
    const QString tokenizer = helpOf["--tokenizer"]["serve"];
    QVERIFY(!tokenizer.isEmpty());
    for (const char* command : {"eval", "generate", "chat"})
        QVERIFY2(helpOf["--tokenizer"][command].startsWith(tokenizer), qPrintable(helpOf["--tokenizer"][command]));
}

void TestCli::requireCompressed()
{
    if (!m_compressed)
        QFAIL("the demo model was not compressed (see compressDemo)");
}

void TestCli::compressDemo()
{
    const Result r = run(expand({"local", "{demo}", "--output", m_novaq, "--threads", "2"}), kCompressTimeoutMs);
    QVERIFY2(!r.crashed, qPrintable("crashed or timed out; stderr: " + r.err));
    QVERIFY2(r.exitCode == 0, qPrintable(QStringLiteral("exit %1; stderr: %2").arg(r.exitCode).arg(r.err)));
    QVERIFY2(r.out.contains(QStringLiteral("effective bits")), qPrintable(r.out));
    QVERIFY2(r.out.contains(QStringLiteral("ratio vs 16-bit")), qPrintable(r.out));
    QVERIFY2(r.out.contains(QStringLiteral("model.layers.0.mlp.up_proj.weight")), qPrintable(r.out));
    // Not a terminal: one plain progress line per finished tensor.
    QVERIFY2(r.err.contains(QStringLiteral("compressed model.layers.0.mlp.up_proj.weight")), qPrintable(r.err));
    QVERIFY(QFile::exists(m_novaq));
    const QDir dir(m_dir.path());
    QVERIFY2(dir.entryList({"*.partial-*"}, QDir::Files | QDir::Hidden).isEmpty(), "temporary file left behind");
    m_compressed = true;
}

void TestCli::statsJson()
{
    requireCompressed();
    const Result r = run({"stats", m_novaq, "--json"});
    QCOMPARE(r.exitCode, 0);
    QJsonParseError error{};
    const QJsonDocument doc = QJsonDocument::fromJson(r.out.toUtf8(), &error);
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString() + "\n" + r.out));
    const QJsonObject root = doc.object();
    const QJsonArray tensors = root.value(QStringLiteral("tensors")).toArray();
    QVERIFY(!tensors.isEmpty());
    const QJsonObject first = tensors.first().toObject();
    for (const char* key :
         {"name", "shape", "stored_as", "rel_error", "sqnr_db", "effective_bits", "params", "bytes_in", "bytes_out"})
        QVERIFY2(first.contains(QLatin1String(key)), key);
    const QJsonObject totals = root.value(QStringLiteral("totals")).toObject();
    QCOMPARE(qint64(totals.value(QStringLiteral("file_bytes")).toDouble()), QFileInfo(m_novaq).size());
    QVERIFY(totals.value(QStringLiteral("params")).toDouble() > 6e6);
    QVERIFY(totals.value(QStringLiteral("effective_bits")).toDouble() > 0);

    const Result table = run({"stats", m_novaq});
    QCOMPARE(table.exitCode, 0);
    QVERIFY(table.out.contains(QStringLiteral("effective bits")));
    QVERIFY(table.out.contains(QStringLiteral("settings")));
}

void TestCli::validateAgainstSource()
{
    requireCompressed();
    const Result r = run(expand({"validate", m_novaq, "--against", "{demo}"}), kCompressTimeoutMs);
    QVERIFY2(r.exitCode == 0, qPrintable(QStringLiteral("exit %1\n%2\n%3").arg(r.exitCode).arg(r.out, r.err)));
    QVERIFY2(r.out.contains(QStringLiteral("OK: ")), qPrintable(r.out));
    QVERIFY(r.out.contains(QStringLiteral("all checksums and decodes good")));
}

void TestCli::exportSafetensors()
{
    requireCompressed();
    const QString out = m_dir.filePath(QStringLiteral("y.safetensors"));
    const Result r = run({"export", m_novaq, "--output", out}, kCompressTimeoutMs);
    QVERIFY2(r.exitCode == 0, qPrintable(QStringLiteral("exit %1; stderr: %2").arg(r.exitCode).arg(r.err)));
    QVERIFY(QFile::exists(out));
    QVERIFY(QFileInfo(out).size() > 6'000'000 * 2); // F16: at least 2 bytes per parameter

    // The export reads back as a model: compressing it must work (checked cheaply via stats of
    // the header is not available, so just check it starts like a safetensors file).
    QFile f(out);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray head = f.read(9);
    QCOMPARE(head.at(8), '{');
}

void TestCli::validateCorrupt()
{
    requireCompressed();
    const QString copy = m_dir.filePath(QStringLiteral("corrupt.novaq"));
    QVERIFY(QFile::copy(m_novaq, copy));
    QVERIFY(QFile::setPermissions(copy, QFile::ReadOwner | QFile::WriteOwner));

    // Find the first tensor's data section through the trailer and the manifest, then flip
    // a byte in its middle: only a section checksum can notice.
    std::vector<char> bytes = novaq::test::readAll(novaq::test::toPath(copy));
    QVERIFY(bytes.size() > 128);
    auto u64At = [&](size_t offset) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; --i)
            v = (v << 8) | uint8_t(bytes[offset + size_t(i)]);
        return v;
    };
    const size_t trailer = bytes.size() - 64;
    QCOMPARE(QByteArray(bytes.data() + trailer, 8), QByteArray("NOVAQIDX"));
    const uint64_t manifestOffset = u64At(trailer + 8);
    const uint64_t manifestLength = u64At(trailer + 16);
    QVERIFY(manifestOffset + manifestLength <= bytes.size());
    const QJsonDocument manifest =
        QJsonDocument::fromJson(QByteArray(bytes.data() + manifestOffset, qsizetype(manifestLength)));
    const QJsonObject data = manifest.object().value("tensors").toArray().first().toObject().value("data").toObject();
    const auto offset = uint64_t(data.value("offset").toDouble());
    const auto length = uint64_t(data.value("length").toDouble());
    QVERIFY(length > 0 && offset + length <= manifestOffset);
    bytes[offset + length / 2] = char(bytes[offset + length / 2] ^ 0x5a);
    novaq::test::writeAll(novaq::test::toPath(copy), bytes);

    const Result r = run({"validate", copy}, kCompressTimeoutMs);
    QVERIFY2(r.exitCode == 6, qPrintable(QStringLiteral("exit %1\n%2\n%3").arg(r.exitCode).arg(r.out, r.err)));
    QVERIFY(!r.out.contains(QStringLiteral("OK: ")));
    QVERIFY2(r.err.startsWith(QStringLiteral("novaq validate: ")), qPrintable(r.err));
}

void TestCli::outputFolderMissing()
{
    const QString out = m_dir.filePath(QStringLiteral("no/such/folder/x.novaq"));
    const Result r = run(expand({"local", "{demo}", "--output", out}));
    QCOMPARE(r.exitCode, 5);
    QVERIFY2(r.err.contains(QStringLiteral("does not exist")), qPrintable(r.err));
    QVERIFY(!QFileInfo::exists(m_dir.filePath(QStringLiteral("no"))));
}

// SIGTERM (kill, timeout, systemd, containers) and SIGHUP cancel a run like Ctrl-C: the hidden
// temporary file is deleted, and the exit code is the shell's 128 + signal number.
void TestCli::stopSignalLeavesNothing_data()
{
    QTest::addColumn<int>("signal");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QString>("message");
    QTest::newRow("SIGTERM") << int(SIGTERM) << 143 << "novaq local: cancelled by SIGTERM";
    QTest::newRow("SIGHUP") << int(SIGHUP) << 129 << "novaq local: cancelled by SIGHUP";
    QTest::newRow("SIGINT") << int(SIGINT) << 130 << "novaq local: cancelled;";
}

void TestCli::stopSignalLeavesNothing()
{
    QFETCH(int, signal);
    QFETCH(int, exitCode);
    QFETCH(QString, message);
    QTemporaryDir work;
    QVERIFY(work.isValid());
    const QDir dir(work.path());
    QProcess process;
    process.setWorkingDirectory(work.path());
    process.setStandardInputFile(QProcess::nullDevice());
    process.start(QStringLiteral(NOVAQ_CLI_PATH), {"local", "--threads", "1", "--output", "out.novaq"});
    QVERIFY(process.waitForStarted());
    // The signal comes once the run is writing: when its temporary file exists.
    QStringList partial;
    while (partial.isEmpty() && process.state() == QProcess::Running) {
        process.waitForReadyRead(20);
        partial = dir.entryList({".out.novaq.partial-*"}, QDir::Files | QDir::Hidden);
    }
    QVERIFY2(!partial.isEmpty(), "the run ended before it created its temporary file");
    QCOMPARE(partial.first(), QStringLiteral(".out.novaq.partial-%1").arg(process.processId()));
    QCOMPARE(::kill(pid_t(process.processId()), signal), 0);
    QVERIFY2(process.waitForFinished(120'000), "did not stop within 2 minutes of the signal");
    const QByteArray err = process.readAllStandardError();
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QVERIFY2(process.exitCode() == exitCode,
             qPrintable(QStringLiteral("exit %1, expected %2\n%3").arg(process.exitCode()).arg(exitCode).arg(err)));
    QVERIFY2(QString::fromUtf8(err).contains(message), err.constData());
    QVERIFY2(dir.entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot).isEmpty(),
             qPrintable(dir.entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot).join(", ")));
}

// Under `nohup` (SIGHUP ignored when novaq starts) novaq leaves SIGHUP ignored, and still
// stops cleanly on SIGTERM.
void TestCli::ignoredHangupStaysIgnored()
{
    QTemporaryDir work;
    QVERIFY(work.isValid());
    QProcess process;
    process.setWorkingDirectory(work.path());
    process.setStandardInputFile(QProcess::nullDevice());
    // `trap '' HUP` is what nohup does before it runs the command.
    process.start(QStringLiteral("sh"),
                  {"-c", QStringLiteral("trap '' HUP; exec '%1' local --threads 1 --output out.novaq")
                             .arg(QStringLiteral(NOVAQ_CLI_PATH))});
    QVERIFY(process.waitForStarted());
    const QDir dir(work.path());
    while (dir.entryList({".out.novaq.partial-*"}, QDir::Files | QDir::Hidden).isEmpty() &&
           process.state() == QProcess::Running)
        process.waitForFinished(20);
    QVERIFY2(process.state() == QProcess::Running, "the run ended before it created its temporary file");
    // The kernel's view of the running novaq: SIGHUP in the ignored set, SIGTERM caught.
    QFile status(QStringLiteral("/proc/%1/status").arg(process.processId()));
    QVERIFY(status.open(QIODevice::ReadOnly));
    quint64 ignored = 0;
    quint64 caught = 0;
    for (const QByteArray& line : status.readAll().split('\n')) {
        if (line.startsWith("SigIgn:"))
            ignored = line.mid(7).trimmed().toULongLong(nullptr, 16);
        if (line.startsWith("SigCgt:"))
            caught = line.mid(7).trimmed().toULongLong(nullptr, 16);
    }
    QVERIFY2(ignored & (quint64(1) << (SIGHUP - 1)), "SIGHUP is no longer ignored");
    QVERIFY2(caught & (quint64(1) << (SIGTERM - 1)), "SIGTERM is not handled");
    QCOMPARE(::kill(pid_t(process.processId()), SIGTERM), 0);
    QVERIFY(process.waitForFinished(120'000));
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(process.exitCode(), 143);
    QVERIFY(dir.entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot).isEmpty());
}

// A temporary file a crashed run left (its process is gone) is deleted by the next run that
// writes the same output; a live process's, other outputs' and look-alikes are kept.
void TestCli::staleTemporaryRemoved()
{
    QTemporaryDir work;
    QVERIFY(work.isValid());
    const std::filesystem::path dir = novaq::test::toPath(work.path());
    novaq::test::writeAll(dir / "m.safetensors",
                          novaq::test::makeSafetensors(R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}})",
                                                       novaq::test::f32Bytes({1, -2, 3, -4, 5, -6, 7, -8})));
    // A process id that no longer exists: a child that has exited and been reaped.
    QProcess child;
    child.start(QStringLiteral("true"), {});
    QVERIFY(child.waitForStarted());
    const auto dead = pid_t(child.processId());
    QVERIFY(child.waitForFinished());
    QVERIFY2(::kill(dead, 0) == -1 && errno == ESRCH, "the finished child's process id is in use again");
    const std::string deadPid = std::to_string(dead);
    const std::string livePid = std::to_string(::getpid());

    const std::string stale = ".out.novaq.partial-" + deadPid;
    const std::vector<std::string> kept{
        ".out.novaq.partial-" + livePid,       // a run still going (this test)
        ".other.novaq.partial-" + deadPid,     // another output's
        ".out.novaq.partial-" + deadPid + "x", // not a process id
        "out.novaq.partial-" + deadPid,        // not hidden: not one of ours
        ".out.novaq.partial-0" + deadPid,      // not the decimal form of a pid
    };
    novaq::test::writeAll(dir / stale, std::string("half a file"));
    for (const std::string& name : kept)
        novaq::test::writeAll(dir / name, std::string("keep me"));

    const Result r = run({"local", "m.safetensors", "--output", "out.novaq"}, kQuickTimeoutMs, work.path());
    QVERIFY2(!r.crashed && r.exitCode == 0, qPrintable(r.err));
    QVERIFY(std::filesystem::exists(dir / "out.novaq"));
    QVERIFY2(!std::filesystem::exists(dir / stale), stale.c_str());
    for (const std::string& name : kept)
        QVERIFY2(std::filesystem::exists(dir / name), name.c_str());
}

// Names from files reach the terminal escaped: a newline cannot forge a `novaq:` line of its
// own, no escape sequence (ESC, or the C1 CSI) gets through, and other UTF-8 text stays as it
// is. JSON output is escaped by the JSON library.
void TestCli::namesFromFilesEscaped_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("exitCode");
    QTest::newRow("inspect") << QStringList{"inspect", "{tmp}/evil/m.safetensors"} << 0;
    QTest::newRow("local") << QStringList{"local", "{tmp}/evil/m.safetensors", "--output", "{tmp}/evil/m.novaq"} << 0;
    QTest::newRow("stats") << QStringList{"stats", "{tmp}/evil/m.novaq"} << 0;
    QTest::newRow("validate") << QStringList{"validate", "{tmp}/evil/m.novaq"} << 0;
    QTest::newRow("inspect, error naming the tensor") << QStringList{"inspect", "{tmp}/evil/bad.safetensors"} << 3;
    QTest::newRow("local, error naming the tensor")
        << QStringList{"local", "{tmp}/evil/bad.safetensors", "--output", "{tmp}/evil/bad.novaq"} << 3;
}

void TestCli::namesFromFilesEscaped()
{
    QFETCH(QStringList, args);
    QFETCH(int, exitCode);
    const std::filesystem::path evil = novaq::test::toPath(m_dir.filePath(QStringLiteral("evil")));
    std::filesystem::create_directories(evil);
    // "w\n novaq: forged\x1b[31m café\u009b2J": a newline, ESC, UTF-8 text and the C1 CSI.
    const std::string name = R"(w\n novaq: forged\u001b[31m caf\u00e9\u009b2J)";
    const std::string data = novaq::test::f32Bytes({1, -2, 3, -4, 5, -6, 7, -8});
    novaq::test::writeAll(evil / "m.safetensors",
                          novaq::test::makeSafetensors(
                              R"({")" + name + R"(":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}})", data));
    novaq::test::writeAll(evil / "bad.safetensors",
                          novaq::test::makeSafetensors(
                              R"({")" + name + R"(":{"dtype":"F32","shape":[2,4],"data_offsets":[0,36]}})", data));
    if (args.first() == "stats" || args.first() == "validate")
        QVERIFY(run(expand({"local", "{tmp}/evil/m.safetensors", "--output", "{tmp}/evil/m.novaq"})).exitCode == 0);

    const Result r = run(expand(args));
    QVERIFY2(!r.crashed && r.exitCode == exitCode,
             qPrintable(QStringLiteral("exit %1, expected %2\n%3").arg(r.exitCode).arg(exitCode).arg(r.err)));
    const QString both = r.out + r.err;
    QVERIFY2(!both.contains(QChar(0x1b)), qPrintable(both));
    QVERIFY2(!both.contains(QChar(0x9b)), qPrintable(both));
    for (const QString& line : both.split(QLatin1Char('\n')))
        QVERIFY2(!line.trimmed().startsWith(QStringLiteral("novaq: forged")), qPrintable(both));
    QVERIFY2(both.contains(QString::fromUtf8("w\\n novaq: forged\\x1b[31m caf\u00e9\\u009b2J")), qPrintable(both));
}

// An evaluation or calibration text that never ends (/dev/zero) or is over the 1 GiB limit is
// refused by name before anything is allocated for it (exit 3: malformed input).
void TestCli::unboundedTextRefused_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("expected");
    QTest::newRow("eval --text /dev/zero")
        << QStringList{"eval", "{tmp}/notes.txt", "--text", "/dev/zero"} << "/dev/zero: not a regular file";
    QTest::newRow("eval --text over 1 GiB (sparse)")
        << QStringList{"eval", "{tmp}/notes.txt", "--text", "{tmp}/huge.txt"}
        << "huge.txt: the text is 1073741825 bytes";
    QTest::newRow("local --calibration /dev/zero")
        << QStringList{"local", "{demo}", "--calibration", "/dev/zero", "--output", "{tmp}/calibrated.novaq"}
        << "/dev/zero: not a regular file";
}

void TestCli::unboundedTextRefused()
{
    QFETCH(QStringList, args);
    QFETCH(QString, expected);
    QFile huge(m_dir.filePath(QStringLiteral("huge.txt")));
    QVERIFY(huge.open(QIODevice::WriteOnly));
    QVERIFY(huge.resize((qint64(1) << 30) + 1)); // sparse: no gigabyte is written
    huge.close();
    const Result r = run(expand(args), kCompressTimeoutMs);
    QVERIFY(QFile::remove(huge.fileName()));
    QVERIFY2(!r.crashed && r.exitCode == 3,
             qPrintable(QStringLiteral("exit %1, expected 3\n%2").arg(r.exitCode).arg(r.err)));
    QVERIFY2(r.err.contains(expected), qPrintable(r.err));
    QVERIFY(!QFile::exists(m_dir.filePath(QStringLiteral("calibrated.novaq"))));
    QVERIFY2(QDir(m_dir.path()).entryList({"*.partial-*"}, QDir::Files | QDir::Hidden).isEmpty(),
             "temporary file left behind");
}

// The compressed demo model runs: eval against the original (text, perplexities, KL, top-1 in
// JSON), and generate continues a prompt with both; the tokenizer is found through the
// source folder the manifest names.
void TestCli::evalAndGenerate()
{
    requireCompressed();
    QFile text(m_dir.filePath(QStringLiteral("verses.txt")));
    QVERIFY(text.open(QIODevice::WriteOnly));
    for (int i = 0; i < 30; ++i)
        text.write("And God said, Let there be light: and there was light. And God saw the light, that it was good.\n");
    text.close();
    const Result r =
        run(expand({"eval", m_novaq, "--against", "{demo}", "--text", "{tmp}/verses.txt", "--ctx", "64", "--json"}),
            kCompressTimeoutMs);
    QVERIFY2(!r.crashed && r.exitCode == 0, qPrintable(r.err));
    const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
    QCOMPARE(j.value("ctx").toInt(), 64);
    QVERIFY(j.value("windows").toInt() >= 10);
    QCOMPARE(j.value("scored").toInt(), 64 * j.value("windows").toInt());
    QVERIFY(j.value("perplexity").toDouble() > 1.0);
    QVERIFY(j.value("against_perplexity").toDouble() > 1.0);
    QVERIFY(j.value("kl").toDouble() > 0.0 && j.value("kl").toDouble() < 1.0);
    QVERIFY(j.value("top1").toDouble() > 0.3 && j.value("top1").toDouble() <= 1.0);
    QCOMPARE(j.value("tokenizer").toString(), QStringLiteral("sentencepiece-bpe"));

    const Result g = run(
        expand({"generate", m_novaq, "--prompt", "And God said", "--max-tokens", "8", "--against", "{demo}", "--json"}),
        kCompressTimeoutMs);
    QVERIFY2(!g.crashed && g.exitCode == 0, qPrintable(g.err));
    const QJsonArray results = QJsonDocument::fromJson(g.out.toUtf8()).object().value("results").toArray();
    QCOMPARE(results.size(), 2);
    for (const QJsonValue& v : results) {
        QVERIFY(!v.toObject().value("ids").toArray().isEmpty());
        QVERIFY(!v.toObject().value("text").toString().trimmed().isEmpty());
    }
    // A model the runtime cannot run is refused by name (exit 4: unsupported).
    const Result bad = run(expand({"eval", "{tmp}/notes.txt", "--text", "{tmp}/verses.txt"}));
    QVERIFY2(bad.exitCode == 3 || bad.exitCode == 4, qPrintable(bad.err));
    QVERIFY(bad.err.contains("notes.txt"));
}

// `novaq tokenize` gives the reference ids (tests/data/tokenizers: transformers.js on Qwen3's
// tokenizer.json) for the whole fixture text, from the tokenizer file as MODEL or --tokenizer;
// the text form has one "id<TAB>text" line per token, escaped, and the count.
void TestCli::tokenize_data()
{
    QTest::addColumn<QStringList>("args");
    const QString dir = QString::fromStdString((novaq::test::testDataDir() / "tokenizers").string());
    QTest::newRow("tokenizer.json as MODEL") << QStringList{dir + "/qwen3/tokenizer.json"};
    QTest::newRow("folder of tokenizer files as MODEL") << QStringList{dir + "/qwen3"};
    QTest::newRow("--tokenizer") << QStringList{"--tokenizer", dir + "/qwen3/tokenizer.json"};
}

void TestCli::tokenize()
{
    QFETCH(QStringList, args);
    const std::filesystem::path data = novaq::test::testDataDir() / "tokenizers";
    NOVAQ_REQUIRE_DATA(data / "text.txt");
    NOVAQ_REQUIRE_DATA(data / "expected-qwen3.json");
    const QString text = QString::fromStdString((data / "text.txt").string());
    QFile expectedFile(QString::fromStdString((data / "expected-qwen3.json").string()));
    QVERIFY(expectedFile.open(QIODevice::ReadOnly));
    const QJsonArray expected = QJsonDocument::fromJson(expectedFile.readAll()).object().value("whole").toArray();
    QVERIFY(expected.size() > 4000);

    const Result j = run(QStringList{"tokenize"} << args << "--text" << text << "--json");
    QVERIFY2(!j.crashed && j.exitCode == 0, qPrintable(j.err));
    const QJsonObject out = QJsonDocument::fromJson(j.out.toUtf8()).object();
    QCOMPARE(out.value("tokenizer").toString(), QStringLiteral("bpe-byte-level"));
    QCOMPARE(out.value("ids").toArray(), expected);
    QCOMPARE(out.value("count").toInt(), expected.size());
    const QJsonArray pieces = out.value("pieces").toArray();
    QCOMPARE(pieces.size(), expected.size());
    QVERIFY(pieces.contains(QStringLiteral("<|im_start|>")));
    QVERIFY(pieces.contains(QStringLiteral("\u010a"))); // "\n" in the byte alphabet

    const Result t = run(QStringList{"tokenize"} << args << "--text" << text);
    QVERIFY2(!t.crashed && t.exitCode == 0, qPrintable(t.err));
    const QStringList lines = t.out.split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), expected.size() + 1);
    QCOMPARE(lines.last(), QString("%1 tokens (bpe-byte-level)").arg(expected.size()));
    for (qsizetype i = 0; i < expected.size(); ++i)
        QVERIFY2(lines[i].startsWith(QString::number(expected[i].toInt()) + "\t"), qPrintable(lines[i]));
    QVERIFY(lines.contains(QStringLiteral("151644\t<|im_start|>")));
    QVERIFY(lines.contains(QStringLiteral("198\t\\n"))); // a newline token, escaped
    QVERIFY(lines.contains(QString::fromUtf8("9707\tHello")));
}

// --d, --b1, --b2 and --subspaces take exactly kCodecLimits (codec_config.h), the limits the
// validator, CodecSpec and the manifest reader apply (test_codec_spec): the least and the most
// are accepted, one beyond is refused naming the option, the range and the value.
void TestCli::codecLimits_data()
{
    QTest::addColumn<QString>("option");
    QTest::addColumn<int>("value");
    QTest::addColumn<bool>("allowed");
    QTest::addColumn<QString>("range");
    const novaq::CodecLimits& l = novaq::kCodecLimits;
    const std::pair<const char*, const novaq::CodecLimit*> fields[] = {
        {"--d", &l.d}, {"--b1", &l.b1}, {"--b2", &l.b2}, {"--subspaces", &l.subspaces}};
    for (const auto& [option, limit] : fields) {
        const QString range = QString::fromStdString(limit->rangeText());
        QTest::addRow("%s %d", option, limit->min - 1) << option << limit->min - 1 << false << range;
        QTest::addRow("%s %d", option, limit->min) << option << limit->min << true << range;
        QTest::addRow("%s %d", option, limit->max) << option << limit->max << true << range;
        QTest::addRow("%s %d", option, limit->max + 1) << option << limit->max + 1 << false << range;
    }
}

void TestCli::codecLimits()
{
    QFETCH(QString, option);
    QFETCH(int, value);
    QFETCH(bool, allowed);
    QFETCH(QString, range);
    QMap<QString, int> settings{{"--d", 8}, {"--b1", 8}, {"--b2", 4}, {"--subspaces", 4}};
    settings[option] = value;
    QStringList args{"inspect", "{demo}"};
    for (auto it = settings.cbegin(); it != settings.cend(); ++it)
        args << it.key() << QString::number(it.value());
    const Result r = run(expand(args));
    QVERIFY2(!r.crashed, qPrintable(r.err));
    if (allowed) {
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains(QString("d=%1 b1=%2 b2=%3 subspaces=%4")
                                    .arg(settings["--d"])
                                    .arg(settings["--b1"])
                                    .arg(settings["--b2"])
                                    .arg(settings["--subspaces"])),
                 qPrintable(r.out));
    } else {
        QCOMPARE(r.exitCode, 2);
        const QString expected = QString("%1 must be %2, got '%3'").arg(option, range).arg(value);
        QVERIFY2(r.err.contains(expected), qPrintable("stderr lacks '" + expected + "':\n" + r.err));
    }
}

// `novaq inspect` plans what `novaq local` writes at the same settings. Found in review: expert
// settings equal to the 1-bit preset's fields were planned as the preset (the embedding, output
// and first block at higher presets) but compressed as given for every tensor.
void TestCli::inspectPlansWhatLocalWrites()
{
    const QStringList settings{"--d", "8", "--b1", "8", "--b2", "0", "--subspaces", "4", "--json"};
    const Result inspected = run(expand(QStringList{"inspect", "{demo}"} << settings));
    QVERIFY2(!inspected.crashed && inspected.exitCode == 0, qPrintable(inspected.err));
    const QString output = m_dir.filePath(QStringLiteral("expert-1bit.novaq"));
    const Result compressed = run(
        expand(QStringList{"local", "{demo}", "--output", output, "--threads", "2"} << settings), kCompressTimeoutMs);
    QVERIFY2(!compressed.crashed && compressed.exitCode == 0, qPrintable(compressed.err));
    const QJsonObject plan = QJsonDocument::fromJson(inspected.out.toUtf8()).object();
    const QJsonObject report = QJsonDocument::fromJson(compressed.out.toUtf8()).object();
    const QJsonArray planned = plan.value(QStringLiteral("tensors")).toArray();
    const QJsonArray written = report.value(QStringLiteral("tensors")).toArray();
    QVERIFY(!planned.isEmpty());
    QCOMPARE(planned.size(), written.size());
    int quantized = 0;
    for (qsizetype i = 0; i < planned.size(); ++i) {
        const QJsonObject p = planned[i].toObject(), w = written[i].toObject();
        QCOMPARE(p.value(QStringLiteral("name")).toString(), w.value(QStringLiteral("name")).toString());
        QCOMPARE(p.value(QStringLiteral("planned_as")).toString(), w.value(QStringLiteral("stored_as")).toString());
        quantized += w.value(QStringLiteral("quantized")).toBool() ? 1 : 0;
    }
    QVERIFY(quantized > 0);
    QCOMPARE(report.value(QStringLiteral("settings")).toObject().value(QStringLiteral("allocation")).toString(),
             QStringLiteral("uniform"));
    const double estimated =
        plan.value(QStringLiteral("totals")).toObject().value(QStringLiteral("estimated_file_bytes")).toDouble();
    const double bytes =
        report.value(QStringLiteral("totals")).toObject().value(QStringLiteral("file_bytes")).toDouble();
    QVERIFY2(estimated >= bytes && estimated < 1.05 * bytes,
             qPrintable(QStringLiteral("%1 for %2").arg(estimated).arg(bytes)));
}

// `novaq` links no network library (app/cli/net_helper.h): search, hf, ollama, url, serve and
// MPI-launched runs are handed to novaq-net beside it. A `novaq` without its helper says so,
// naming the helper and where it looked, and still shows the help of those commands.
void TestCli::networkCommandsNeedTheHelper_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QStringList>("environment");
    QTest::newRow("search") << QStringList{"search", "llama"} << QStringList{};
    QTest::newRow("hf") << QStringList{"hf", "someone/model"} << QStringList{};
    QTest::newRow("ollama") << QStringList{"ollama", "llama3.2:1b"} << QStringList{};
    QTest::newRow("url") << QStringList{"url", "http://127.0.0.1:9/model.gguf"} << QStringList{};
    QTest::newRow("serve") << QStringList{"serve", "{tmp}/demo.novaq"} << QStringList{};
    if (novaq::builtWithMpi())
        QTest::newRow("mpirun -n 2 novaq local")
            << QStringList{"local", "{demo}"} << QStringList{"OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=0"};
}

void TestCli::networkCommandsNeedTheHelper()
{
    QFETCH(QStringList, args);
    QFETCH(QStringList, environment);
    const QString lone = m_dir.filePath(QStringLiteral("lone"));
    const QString program = lone + QStringLiteral("/novaq");
    if (!QFile::exists(program)) {
        QVERIFY(QDir().mkpath(lone));
        QVERIFY(QFile::copy(QStringLiteral(NOVAQ_CLI_PATH), program));
        QVERIFY(QFile::setPermissions(program, QFile::permissions(program) | QFileDevice::ExeOwner));
    }
    const Result r = runProgram(program, expand(args), environment);
    QVERIFY(!r.crashed);
    QCOMPARE(r.exitCode, novaq::exitCodeFor(novaq::ErrorKind::Unsupported));
    QVERIFY2(r.err.contains(QStringLiteral("needs novaq-net")), qPrintable(r.err));
    QVERIFY2(r.err.contains(lone + QStringLiteral("/novaq-net")), qPrintable(r.err));
    QVERIFY2(r.err.contains(QStringLiteral("libexec/novaq/novaq-net")), qPrintable(r.err));

    const Result help = runProgram(program, {args.front(), QStringLiteral("--help")}, environment);
    if (environment.isEmpty()) {
        QCOMPARE(help.exitCode, 0);
        QVERIFY2(help.out.contains(QStringLiteral("novaq ") + args.front()), qPrintable(help.out));
    }
}

// With novaq-net beside it, `novaq` runs those commands there: a search of a hub on a closed
// port fails with the hub client's own message, not the helper's.
void TestCli::networkCommandsReachTheHelper()
{
    const Result r = runProgram(QStringLiteral(NOVAQ_CLI_PATH), {QStringLiteral("search"), QStringLiteral("llama")},
                                {QStringLiteral("HF_ENDPOINT=http://127.0.0.1:9")});
    QVERIFY(!r.crashed);
    QVERIFY(r.exitCode != 0);
    QVERIFY2(r.err.startsWith(QStringLiteral("novaq search: cannot reach http://127.0.0.1:9")), qPrintable(r.err));
    QVERIFY2(!r.err.contains(QStringLiteral("novaq-net")), qPrintable(r.err));
}

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
