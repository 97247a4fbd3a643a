// One compression across MPI ranks (core/novaq/pipeline/cluster.h): `mpirun -n N novaq local`
// writes the same bytes as one process, with and without calibration; a failed rank ends the
// job and leaves no file; a build without MPI refuses a multi-rank launch.
//
// The runs go through Open MPI's mpirun (openmpi-bin) with --oversubscribe (CI has 2 cores)
// and as root where CI runs them (OMPI_ALLOW_RUN_AS_ROOT). In a build without MPI only the
// launch refusal and the pure functions are tested.

#include "test_support.h"

#include "novaq/pipeline/cluster.h"
#include "novaq/pipeline/compress.h"

#include <QProcess>
#include <QProcessEnvironment>
#include <QStandardPaths>
#include <QTest>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <numeric>

using namespace novaq;
namespace fs = std::filesystem;

namespace {

struct Run {
    int exitCode = -1;
    QByteArray out, err;
};

QProcessEnvironment cleanEnvironment()
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    // Not started by a launcher ourselves: none of its variables may leak into the child.
    for (const QString& name : env.keys())
        if (name.startsWith(QLatin1String("OMPI_")) || name.startsWith(QLatin1String("PMI")) ||
            name.startsWith(QLatin1String("PMIX_")))
            env.remove(name);
    env.insert(QStringLiteral("OMPI_ALLOW_RUN_AS_ROOT"), QStringLiteral("1"));
    env.insert(QStringLiteral("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"), QStringLiteral("1"));
    // Containers forbid the cross-memory attach Open MPI's shared-memory transport tries first.
    env.insert(QStringLiteral("OMPI_MCA_btl_vader_single_copy_mechanism"), QStringLiteral("none"));
    return env;
}

Run runProgram(const QString& program, const QStringList& args, const QProcessEnvironment& env)
{
    QProcess process;
    process.setProcessEnvironment(env);
    process.setStandardInputFile(QProcess::nullDevice());
    process.start(program, args);
    Run r;
    if (!process.waitForStarted(60000))
        return r;
    process.waitForFinished(-1);
    r.exitCode = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    r.out = process.readAllStandardOutput();
    r.err = process.readAllStandardError();
    return r;
}

QString q(const fs::path& p) { return QString::fromStdString(p.string()); }

// `novaq ARGS` alone (ranks 0) or under `mpirun -n ranks`.
Run runNovaq(int ranks, const QStringList& args, QProcessEnvironment env = cleanEnvironment())
{
    const QString cli = QStringLiteral(NOVAQ_CLI_PATH);
    if (ranks == 0)
        return runProgram(cli, args, env);
    const QString mpirun = QStandardPaths::findExecutable(QStringLiteral("mpirun"));
    return runProgram(mpirun,
                      QStringList{QStringLiteral("--oversubscribe"), QStringLiteral("--allow-run-as-root"),
                                  QStringLiteral("-n"), QString::number(ranks), cli} +
                          args,
                      env);
}

QStringList compressArgs(const fs::path& output, bool calibrated)
{
    // stories260K with small expert codebooks: its block matrices are quantized (at the default
    // bits they are too small and kept), so the decoded matrices travel between ranks.
    QStringList args{QStringLiteral("local"),
                     q(test::modelsDir() / "stories260K" / "stories260K.gguf"),
                     QStringLiteral("--d"),
                     QStringLiteral("4"),
                     QStringLiteral("--b1"),
                     QStringLiteral("6"),
                     QStringLiteral("--b2"),
                     QStringLiteral("4"),
                     QStringLiteral("--subspaces"),
                     QStringLiteral("1"),
                     QStringLiteral("--threads"),
                     QStringLiteral("1"),
                     QStringLiteral("--json"),
                     QStringLiteral("--output"),
                     q(output)};
    if (calibrated)
        args << QStringLiteral("--calibration") << q(test::textDir() / "tinystories_valid.txt")
             << QStringLiteral("--calibration-tokens") << QStringLiteral("2048");
    return args;
}

std::vector<fs::path> filesIn(const fs::path& dir)
{
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename());
    return out;
}

bool requireMpi()
{
    if (!builtWithMpi())
        return false;
    return !QStandardPaths::findExecutable(QStringLiteral("mpirun")).isEmpty();
}

} // namespace

class TestMpi : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void byteIdenticalAtAnyRankCount_data()
    {
        QTest::addColumn<bool>("calibrated");
        QTest::newRow("without calibration") << false;
        QTest::newRow("with calibration") << true;
    }

    // A GGUF source whose small tensors stay in their blocks ("encoding": "gguf"): the records
    // computed on another rank carry no block type pointer; rank 0 writes the same bytes.
    void keptGgufBlocksAtTwoRanks()
    {
        if (!builtWithMpi())
            NOVAQ_SKIP_MISSING_TOOL("MPI (this build has no NOVAQ_WITH_MPI)");
        QVERIFY2(requireMpi(), "this build has MPI but mpirun is not on PATH (Debian: openmpi-bin)");
        const fs::path model = test::modelsDir() / "kjv-llama-7m" / "kjv-llama-7m-Q4_K_M.gguf";
        NOVAQ_REQUIRE_DATA(model);
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        auto args = [&](const fs::path& out) {
            return QStringList{QStringLiteral("local"),     q(model),
                               QStringLiteral("--bits"),    QStringLiteral("4"),
                               QStringLiteral("--threads"), QStringLiteral("1"),
                               QStringLiteral("--output"),  q(out)};
        };
        const Run single = runNovaq(0, args(dir / "single.novaq"));
        QVERIFY2(single.exitCode == 0, single.err.constData());
        const std::vector<char> expected = test::readAll(dir / "single.novaq");
        QVERIFY(std::string(expected.begin(), expected.end()).find("\"encoding\":\"gguf\"") != std::string::npos);
        const Run two = runNovaq(2, args(dir / "two.novaq"));
        QVERIFY2(two.exitCode == 0, two.err.constData());
        QVERIFY2(test::readAll(dir / "two.novaq") == expected, "2 ranks wrote other bytes");
    }

    // 1, 2 and 3 ranks write the bytes of a single process: manifest, checksums, sections.
    void byteIdenticalAtAnyRankCount()
    {
        if (!builtWithMpi())
            NOVAQ_SKIP_MISSING_TOOL("MPI (this build has no NOVAQ_WITH_MPI)");
        QVERIFY2(requireMpi(), "this build has MPI but mpirun is not on PATH (Debian: openmpi-bin)");
        QFETCH(bool, calibrated);
        NOVAQ_REQUIRE_DATA(test::modelsDir() / "stories260K" / "stories260K.gguf");
        NOVAQ_REQUIRE_DATA(test::textDir() / "tinystories_valid.txt");
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());

        const Run single = runNovaq(0, compressArgs(dir / "single.novaq", calibrated));
        QVERIFY2(single.exitCode == 0, single.err.constData());
        const std::vector<char> expected = test::readAll(dir / "single.novaq");
        QVERIFY(!expected.empty());
        const nlohmann::json singleReport = nlohmann::json::parse(single.out.toStdString());
        QVERIFY(!singleReport.contains("ranks")); // one process reports as before
        size_t quantized = 0;
        for (const auto& t : singleReport["tensors"])
            quantized += t.value("quantized", false) ? 1 : 0;
        QVERIFY2(quantized > 10, "the test model must have quantized matrices to pass between ranks");

        for (int ranks : {1, 2, 3}) {
            const fs::path out = dir / ("ranks" + std::to_string(ranks) + ".novaq");
            const Run run = runNovaq(ranks, compressArgs(out, calibrated));
            QVERIFY2(run.exitCode == 0, run.err.constData());
            QVERIFY2(test::readAll(out) == expected,
                     qPrintable(QStringLiteral("%1 ranks wrote other bytes").arg(ranks)));
            const nlohmann::json report = nlohmann::json::parse(run.out.toStdString()); // rank 0 alone prints
            QCOMPARE(report["tensors"].size(), singleReport["tensors"].size());
            if (ranks == 1) {
                QVERIFY(!report.contains("ranks"));
                continue;
            }
            QVERIFY(report.contains("ranks"));
            QCOMPARE(report["ranks"].size(), size_t(ranks));
            size_t tensors = 0;
            double share = 0;
            for (const auto& r : report["ranks"]) {
                QVERIFY2(r["tensors"].get<size_t>() > 0, "every rank gets work");
                tensors += r["tensors"].get<size_t>();
                share += r["cost_share"].get<double>();
            }
            QCOMPARE(tensors, singleReport["tensors"].size());
            QVERIFY(std::abs(share - 1.0) < 1e-9);
        }
    }

    void failedRankLeavesNoFile_data()
    {
        QTest::addColumn<int>("ranks");
        QTest::addColumn<int>("failing");
        QTest::addColumn<bool>("calibrated");
        QTest::newRow("rank 1 of 2") << 2 << 1 << false;
        QTest::newRow("rank 0 of 3 (the writer)") << 3 << 0 << false;
        QTest::newRow("rank 2 of 3, calibrated") << 3 << 2 << true;
    }

    // A rank that fails after its first tensor ends every rank: mpirun exits nonzero, and
    // neither the .novaq file nor rank 0's temporary file is left.
    void failedRankLeavesNoFile()
    {
        if (!builtWithMpi())
            NOVAQ_SKIP_MISSING_TOOL("MPI (this build has no NOVAQ_WITH_MPI)");
        QVERIFY2(requireMpi(), "this build has MPI but mpirun is not on PATH (Debian: openmpi-bin)");
        QFETCH(int, ranks);
        QFETCH(int, failing);
        QFETCH(bool, calibrated);
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path()) / "out";
        fs::create_directories(dir);
        QProcessEnvironment env = cleanEnvironment();
        env.insert(QStringLiteral("NOVAQ_TEST_MPI_FAIL_RANK"), QString::number(failing));
        const Run run = runNovaq(ranks, compressArgs(dir / "model.novaq", calibrated), env);
        QVERIFY2(run.exitCode != 0, run.err.constData());
        QVERIFY2(run.err.contains("fails on purpose"), run.err.constData());
        const std::vector<fs::path> left = filesIn(dir);
        QVERIFY2(left.empty(),
                 qPrintable(QStringLiteral("left behind: %1").arg(left.empty() ? QString() : q(left.front()))));
    }

    void launcherRanks_data()
    {
        QTest::addColumn<QStringList>("variables");
        QTest::addColumn<int>("ranks");
        QTest::newRow("no launcher") << QStringList{} << 1;
        QTest::newRow("mpirun -n 1") << QStringList{"OMPI_COMM_WORLD_SIZE=1", "OMPI_COMM_WORLD_RANK=0"} << 1;
        QTest::newRow("mpirun -n 4") << QStringList{"OMPI_COMM_WORLD_SIZE=4", "OMPI_COMM_WORLD_RANK=2"} << 4;
        QTest::newRow("MPICH / Slurm PMI") << QStringList{"PMI_SIZE=3", "PMI_RANK=0"} << 3;
        QTest::newRow("PMIx, a second rank") << QStringList{"PMIX_RANK=1"} << 2;
        QTest::newRow("garbage") << QStringList{"OMPI_COMM_WORLD_SIZE=lots"} << 1;
    }

    void launcherRanks()
    {
        QFETCH(QStringList, variables);
        QFETCH(int, ranks);
        std::map<std::string, std::string> values;
        for (const QString& v : variables)
            values[v.section(QLatin1Char('='), 0, 0).toStdString()] = v.section(QLatin1Char('='), 1).toStdString();
        const auto env = [&](const char* name) -> const char* {
            const auto it = values.find(name);
            return it == values.end() ? nullptr : it->second.c_str();
        };
        QCOMPARE(novaq::launcherRanks(env), ranks);
        // Refused only without MPI and with more than one rank.
        QCOMPARE(launchWithoutMpiProblem(env, true).empty(), true);
        QCOMPARE(launchWithoutMpiProblem(env, false).empty(), ranks == 1);
        if (ranks > 1)
            QVERIFY(launchWithoutMpiProblem(env, false).find("built without MPI") != std::string::npos);
    }

    // A build without MPI that mpirun started as several ranks refuses to run (exit 4) rather
    // than compress the model once per rank.
    void nonMpiBuildRefusesSeveralRanks()
    {
        if (builtWithMpi()) {
            // This build joins the MPI job instead; the refusal is the pure function above.
            QVERIFY(launchWithoutMpiProblem([](const char*) { return "2"; }, true).empty());
            return;
        }
        QTemporaryDir tmp;
        QProcessEnvironment env = cleanEnvironment();
        env.insert(QStringLiteral("OMPI_COMM_WORLD_SIZE"), QStringLiteral("2"));
        env.insert(QStringLiteral("OMPI_COMM_WORLD_RANK"), QStringLiteral("0"));
        const fs::path out = test::toPath(tmp.path()) / "m.novaq";
        const Run run = runNovaq(0, {QStringLiteral("local"), QStringLiteral("--output"), q(out)}, env);
        QCOMPARE(run.exitCode, 4);
        QVERIFY2(run.err.contains("built without MPI support"), run.err.constData());
        QVERIFY(!fs::exists(out));
    }

    void splitByCost_data()
    {
        QTest::addColumn<QList<double>>("costs");
        QTest::addColumn<int>("ranks");
        QTest::addColumn<QList<int>>("owners");
        QTest::newRow("largest first, to the least loaded")
            << QList<double>{1, 5, 3, 3, 2} << 2 << QList<int>{1, 0, 1, 1, 0};
        QTest::newRow("one rank") << QList<double>{4, 1} << 1 << QList<int>{0, 0};
        QTest::newRow("more ranks than items") << QList<double>{2, 7} << 3 << QList<int>{1, 0};
    }

    void splitByCost()
    {
        QFETCH(QList<double>, costs);
        QFETCH(int, ranks);
        QFETCH(QList<int>, owners);
        std::vector<double> load(static_cast<size_t>(ranks), 0.0);
        const std::vector<double> c(costs.begin(), costs.end());
        const std::vector<int> got = novaq::splitByCost(c, load);
        QCOMPARE(QList<int>(got.begin(), got.end()), owners);
        QCOMPARE(std::accumulate(load.begin(), load.end(), 0.0), std::accumulate(c.begin(), c.end(), 0.0));
    }

    // Found while testing the cluster runs: calibration stopped with "calibration out of model
    // order" when a block's matrices were all kept (stories260K at the default bits: they are
    // too small to quantize), because nothing moved the hidden states to that block.
    void calibratingBlocksThatAreAllKept()
    {
        NOVAQ_REQUIRE_DATA(test::modelsDir() / "stories260K" / "stories260K.gguf");
        NOVAQ_REQUIRE_DATA(test::textDir() / "tinystories_valid.txt");
        QTemporaryDir tmp;
        CompressOptions o;
        o.input = test::modelsDir() / "stories260K" / "stories260K.gguf";
        o.output = test::toPath(tmp.path()) / "m.novaq";
        o.calibration = test::textDir() / "tinystories_valid.txt";
        o.calibrationTokens = 512;
        o.threads = 1;
        const ModelReport r = compressModel(o, nullptr, nullptr);
        size_t keptBlockMatrices = 0;
        for (const TensorResult& t : r.tensors)
            if (t.name.find("blk.") == 0 && t.shape.size() == 2 && !t.quantized)
                ++keptBlockMatrices;
        QVERIFY(keptBlockMatrices > 0);
        QVERIFY(fs::exists(o.output));
    }
};

QTEST_GUILESS_MAIN(TestMpi)
#include "test_mpi.moc"
