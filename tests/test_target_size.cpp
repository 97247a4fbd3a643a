// Issue 18, "make it fit": --target-size / --target-bits choose every tensor's preset so that
// the written file lands within 2% under the target, with the lowest predicted error. The
// plan is checked on the demo model at many targets (estimates), the written file for real
// at a few (stories260K is quick; one demo run), and the command line's refusals.

#include "test_support.h"

#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/planner.h"

#include <QFile>
#include <QObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <fstream>
#include <iterator>
#include <set>

using namespace novaq;
using novaq::test::demoModelDir;
using novaq::test::modelFor;
using novaq::test::modelsDir;
using novaq::test::storiesGguf;

namespace {

ModelReport compressTo(const std::filesystem::path& input, const std::filesystem::path& output, uint64_t bytes,
                       double bits, int threads, bool tokenizer = false)
{
    CompressOptions o;
    o.input = input;
    o.output = output;
    o.targetBytes = bytes;
    o.targetBits = bits;
    o.targetText = bytes ? "--target-size " + std::to_string(bytes) : "--target-bits " + std::to_string(bits);
    o.threads = threads;
    o.attachTokenizer = tokenizer;
    return compressModel(o, nullptr, nullptr);
}

std::string slurp(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

class TestTargetSize : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void planFillsTarget();
    void plannerPrefersImportantRoles();
    void everyPresetHasAMeasuredError();
    void writtenFileWithinTwoPercent_data();
    void writtenFileWithinTwoPercent();
    void sameFileAtAnyThreadCount();
    void targetBitsCountEverything();
    void outOfRangeNamesTheRange();
    void cliRefusesBadValues_data();
    void cliRefusesBadValues();
    void inspectShowsThePlan();
};

// Estimates on the demo model from just above the smallest to just below the largest file:
// every plan within 2% under its target, a larger target never a smaller file nor a larger
// predicted error.
void TestTargetSize::planFillsTarget()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const auto reader = openModel(demoModelDir());
    const TargetFit range = [&] {
        try {
            return fitToTarget(*reader, demoModelDir(), 1, 0, 4, "--target-size 1");
        } catch (const Error&) {
        }
        return fitToTarget(*reader, demoModelDir(), 2'000'000, 0, 4, "--target-size 2MB");
    }();
    QVERIFY(range.minBytes > 1'000'000 && range.maxBytes > 2 * range.minBytes);
    uint64_t previous = 0;
    double previousError = 1e9;
    for (int step = 1; step <= 24; ++step) {
        const uint64_t target = range.minBytes + (range.maxBytes - range.minBytes) * uint64_t(step) / 25;
        const TargetFit fit = fitToTarget(*reader, demoModelDir(), target, 0, 4, "t");
        const uint64_t est = fit.inspection.estimatedFileBytes();
        QVERIFY2(est <= target && est >= target * 98 / 100,
                 qPrintable(QString("target %1, estimate %2").arg(target).arg(est)));
        QVERIFY2(est >= previous, qPrintable(QString("target %1: %2 < %3").arg(target).arg(est).arg(previous)));
        QVERIFY(fit.inspection.predictedError <= previousError);
        previous = est;
        previousError = fit.inspection.predictedError;
    }
}

// The output layer weighs 8, the embedding and first block 2 (the role table): at a middle
// target the output layer gets at least the bits of any other block's matrix.
void TestTargetSize::plannerPrefersImportantRoles()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    QCOMPARE(roleWeight(TensorRole::Output), 8.0);
    QVERIFY(presetRelativeError(1.0) > presetRelativeError(2.0) && presetRelativeError(2.0) > presetRelativeError(4.0));
    const TargetFit fit = fitToTarget(demoModelDir(), 2'200'000, 0, 4, "--target-size 2.2MB");
    double outputBits = -1, otherMin = 1e9;
    for (size_t i = 0; i < fit.plans.size(); ++i) {
        const FitOption& o = fit.options[i][fit.choice[i]];
        const std::string& name = fit.inspection.tensors[i].info.name;
        if (tensorRole(name) == TensorRole::Output)
            outputBits = o.presetBits;
        else if (tensorRole(name) == TensorRole::Other && o.plan.quantize)
            otherMin = std::min(otherMin, o.presetBits);
    }
    QVERIFY2(outputBits >= otherMin, qPrintable(QString("output %1, others from %2").arg(outputBits).arg(otherMin)));
    QVERIFY(outputBits > bitsPresets().front().bits);
}

// Regression: the 5 and 6-bit presets were added without a row in the measured-error table,
// so a fit counted them as error-free and spent the budget on them (--target-size 4333376 on
// the demo model: KL 0.00158 on John). Every preset
// needs a measured error, and more bits must mean less error.
void TestTargetSize::everyPresetHasAMeasuredError()
{
    double previous = 1e9;
    for (const BitsPreset& p : bitsPresets()) {
        const double e = presetRelativeError(p.bits);
        QVERIFY2(e > 0 && e < previous, qPrintable(QString("--bits %1: error %2").arg(p.bits).arg(e)));
        previous = e;
    }
}

void TestTargetSize::writtenFileWithinTwoPercent_data()
{
    QTest::addColumn<QString>("model");
    QTest::addColumn<qulonglong>("target");
    QTest::addColumn<bool>("tokenizer");
    QTest::newRow("stories260K 300kB") << QString("stories") << qulonglong(300'000) << false;
    QTest::newRow("stories260K 350kB") << QString("stories") << qulonglong(350'000) << false;
    QTest::newRow("kjv-llama-7m 1.6MB") << QString("demo") << qulonglong(1'600'000) << false;
    // Found: the attached tokenizer (300 KB on the demo model) was left out of the budget.
    QTest::newRow("kjv-llama-7m 2MB --with-tokenizer") << QString("demo") << qulonglong(2'000'000) << true;
}

// Compressed for real: the file on disk, not the estimate, lands within 2% under the target,
// and its settings (what `novaq stats` shows) record the target.
void TestTargetSize::writtenFileWithinTwoPercent()
{
    QFETCH(QString, model);
    QFETCH(qulonglong, target);
    QFETCH(bool, tokenizer);
    NOVAQ_REQUIRE_DATA(modelFor(model));
    QTemporaryDir dir;
    const std::filesystem::path out = dir.filePath("out.novaq").toStdString();
    compressTo(modelFor(model), out, target, 0, 2, tokenizer);
    const uint64_t size = std::filesystem::file_size(out);
    QVERIFY2(size <= target && size >= target * 98 / 100,
             qPrintable(QString("target %1, file %2").arg(target).arg(size)));
    const NovaqFile file(out);
    const nlohmann::json& settings = file.manifest()["settings"];
    QCOMPARE(settings["allocation"].get<std::string>(), std::string("target"));
    QCOMPARE(settings["target"]["bytes"].get<uint64_t>(), uint64_t(target));
    QCOMPARE(file.manifest().contains("attachments"), tokenizer);
    // On the demo model (many matrices of several sizes) the plan mixes presets.
    std::set<std::string> codecs;
    for (const auto& t : file.manifest()["tensors"])
        if (t.contains("codec"))
            codecs.insert(t["codec"].dump());
    QVERIFY(!codecs.empty());
    if (model == "demo")
        QVERIFY(codecs.size() >= 2);
}

void TestTargetSize::sameFileAtAnyThreadCount()
{
    NOVAQ_REQUIRE_DATA(storiesGguf());
    QTemporaryDir dir;
    const std::filesystem::path one = dir.filePath("one.novaq").toStdString();
    const std::filesystem::path two = dir.filePath("two.novaq").toStdString();
    compressTo(storiesGguf(), one, 330'000, 0, 1);
    compressTo(storiesGguf(), two, 330'000, 0, 2);
    QVERIFY(slurp(one) == slurp(two));
}

// --target-bits B is --target-size B * parameters / 8: the same plan, and the written file's
// effective bits (8 * file bytes / parameters, as stats reports them) within 2% under B.
void TestTargetSize::targetBitsCountEverything()
{
    NOVAQ_REQUIRE_DATA(storiesGguf());
    const double bits = 9.0;
    const TargetFit byBits = fitToTarget(storiesGguf(), 0, bits, 4, "--target-bits 9");
    const uint64_t params = byBits.inspection.params();
    const TargetFit bySize = fitToTarget(storiesGguf(), uint64_t(bits * double(params) / 8.0), 0, 4, "size");
    QCOMPARE(byBits.choice, bySize.choice);
    QTemporaryDir dir;
    const std::filesystem::path out = dir.filePath("bits.novaq").toStdString();
    const ModelReport report = compressTo(storiesGguf(), out, 0, bits, 2);
    const double effective = 8.0 * double(std::filesystem::file_size(out)) / double(params);
    QVERIFY2(effective <= bits && effective >= 0.98 * bits, qPrintable(QString::number(effective)));
    QCOMPARE(report.settings["target"]["bits"].get<double>(), bits);
}

void TestTargetSize::outOfRangeNamesTheRange()
{
    NOVAQ_REQUIRE_DATA(storiesGguf());
    for (const uint64_t target : {uint64_t(1000), uint64_t(100'000'000)}) {
        try {
            fitToTarget(storiesGguf(), target, 0, 4, "--target-size X");
            QFAIL("a target outside the reachable range was accepted");
        } catch (const Error& e) {
            QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
            const std::string what = e.what();
            QVERIFY2(what.find("--target-size X") != std::string::npos, e.what());
            QVERIFY2(what.find("reachable range is") != std::string::npos, e.what());
        }
    }
}

void TestTargetSize::cliRefusesBadValues_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    QTest::newRow("unknown unit") << QStringList{"--target-size", "2.2XB"} << QString("got '2.2XB'");
    QTest::newRow("negative") << QStringList{"--target-size", "-1"} << QString("got '-1'");
    QTest::newRow("zero") << QStringList{"--target-size", "0"} << QString("got '0'");
    QTest::newRow("too small") << QStringList{"--target-size", "100kB"} << QString("smaller than this model can be");
    QTest::newRow("too large") << QStringList{"--target-size", "4GiB"} << QString("larger than this model can be");
    QTest::newRow("bits zero") << QStringList{"--target-bits", "0"} << QString("got '0'");
    QTest::newRow("bits too small") << QStringList{"--target-bits", "2.3"} << QString("reachable range is");
    QTest::newRow("with --bits") << QStringList{"--target-size", "300kB", "--bits", "2"} << QString("leave out --bits");
}

// Exit 2 (bad usage), the message names the value, and no file is written.
void TestTargetSize::cliRefusesBadValues()
{
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    NOVAQ_REQUIRE_DATA(storiesGguf());
    QVERIFY2(QFile::exists(QStringLiteral(NOVAQ_CLI_PATH)), "the novaq executable is missing; build target novaq");
    QTemporaryDir dir;
    for (const char* command : {"local", "inspect"}) {
        QStringList all{command, QString::fromStdString(storiesGguf().string())};
        all << args;
        if (QString(command) == "local")
            all << "--output" << dir.filePath("out.novaq");
        QProcess process;
        process.setStandardInputFile(QProcess::nullDevice());
        process.start(QStringLiteral(NOVAQ_CLI_PATH), all);
        QVERIFY(process.waitForFinished(120000));
        const QString err = QString::fromUtf8(process.readAllStandardError());
        QVERIFY2(process.exitCode() == 2,
                 qPrintable(QString("%1: exit %2: %3").arg(command).arg(process.exitCode()).arg(err)));
        QVERIFY2(err.contains(message), qPrintable(err));
        QVERIFY(!QFile::exists(dir.filePath("out.novaq")));
    }
}

void TestTargetSize::inspectShowsThePlan()
{
    NOVAQ_REQUIRE_DATA(storiesGguf());
    QProcess process;
    process.setStandardInputFile(QProcess::nullDevice());
    process.start(QStringLiteral(NOVAQ_CLI_PATH),
                  {"inspect", QString::fromStdString(storiesGguf().string()), "--target-size", "340kB"});
    QVERIFY(process.waitForFinished(120000));
    QCOMPARE(process.exitCode(), 0);
    const QString out = QString::fromUtf8(process.readAllStandardOutput());
    QVERIFY2(out.contains("target                  --target-size 340kB: 340,000 bytes"), qPrintable(out));
    QVERIFY2(out.contains("(fit to target)"), qPrintable(out));
    const TargetFit fit = fitToTarget(storiesGguf(), 340'000, 0, 4, "--target-size 340kB");
    QVERIFY2(out.contains(QString::fromStdString(withThousands(fit.inspection.estimatedFileBytes()))), qPrintable(out));
}

QTEST_GUILESS_MAIN(TestTargetSize)
#include "test_target_size.moc"
