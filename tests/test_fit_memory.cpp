// Issue 18, "make it fit" to memory: --fit-memory SIZE [--context N]. The runtime's accounting
// (runtime/llama.h: weightBytes, KvCache::memoryBytes, forwardScratchBytes) against what it
// really allocates (glibc's heap counters around loading and inside a forward pass), the
// planner's prediction (pipeline/fit_memory.h) against compressed models loaded for real, the
// search for the largest plan that fits, and the command line's output and refusals.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/fit_memory.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/runtime/llama.h"

#include <QFile>
#include <QObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <malloc.h>

using namespace novaq;
using novaq::test::demoModelDir;
using novaq::test::modelFor;
using novaq::test::modelsDir;
using novaq::test::storiesGguf;

namespace {

// Bytes the heap holds now (main arena and large mapped blocks): loading and forward passes
// allocate on the calling thread.
uint64_t heapInUse()
{
    const struct mallinfo2 info = mallinfo2();
    return uint64_t(info.uordblks) + uint64_t(info.hblkhd);
}

double relative(double a, double b) { return std::abs(a - b) / b; }

// The planned model: a preset (bits > 0) or a file target.
ModelInspection planFor(const ModelReader& reader, const std::filesystem::path& path, double bits, uint64_t target)
{
    if (target > 0)
        return fitToTarget(reader, path, target, 0, 4, "--target-size").inspection;
    return inspectModel(reader, path, CodecSpec::preset(bits, 4));
}

} // namespace

class TestFitMemory : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void predictionMatchesLoadedModel_data();
    void predictionMatchesLoadedModel();
    void scratchCoversForwardBuffers();
    void fitIsLargestThatFits_data();
    void fitIsLargestThatFits();
    void longerContextLeavesLessForWeights();
    void tooSmallNamesWhatWouldFit();
    void contextLongerThanModelRefused();
    void sizesParseAsTheCliDoes_data();
    void sizesParseAsTheCliDoes();
    void cliShowsAndRefuses_data();
    void cliShowsAndRefuses();
    void localWritesAFileThatFits();
};

void TestFitMemory::predictionMatchesLoadedModel_data()
{
    QTest::addColumn<QString>("model");
    QTest::addColumn<double>("bits");
    QTest::addColumn<qulonglong>("target");
    QTest::newRow("stories 1.5 bits") << "stories" << 1.5 << qulonglong(0);
    QTest::newRow("stories 2 bits") << "stories" << 2.0 << qulonglong(0);
    QTest::newRow("stories 4 bits") << "stories" << 4.0 << qulonglong(0);
    QTest::newRow("stories 340kB plan") << "stories" << 0.0 << qulonglong(340'000);
    QTest::newRow("demo 2 bits") << "demo" << 2.0 << qulonglong(0);
}

// Compress, load the file as the runtime does, and compare: the predicted weights within 1% of
// what the loaded model reports, that report within 3% of the heap the load really took (the
// reader's own small allocations come on top), and the KV cache exactly.
void TestFitMemory::predictionMatchesLoadedModel()
{
    QFETCH(QString, model);
    QFETCH(double, bits);
    QFETCH(qulonglong, target);
    const std::filesystem::path source = modelFor(model);
    NOVAQ_REQUIRE_DATA(model == "demo" ? source / "model.safetensors" : source);
    const auto reader = openModel(source);
    const ModelInspection plan = planFor(*reader, source, bits, target);
    const RunMemory predicted = predictRunMemory(*reader, plan, 0);

    QTemporaryDir dir;
    CompressOptions o;
    o.input = source;
    o.output = dir.filePath("m.novaq").toStdString();
    o.threads = 2;
    if (target > 0) {
        o.targetBytes = target;
        o.targetText = "--target-size";
    } else {
        o.codec = CodecSpec::preset(bits, 4);
    }
    compressModel(o, nullptr, nullptr);

    const auto file = openModel(o.output);
    malloc_trim(0);
    const uint64_t before = heapInUse();
    LlamaModel loaded = loadLlama(*file);
    const uint64_t heldByLoad = heapInUse() - before;
    const KvCache cache(loaded.config, predicted.context);
    const RuntimeMemory measured = runtimeMemory(loaded, cache);

    // A preset's plan is the file's; a target's is re-planned as the file is written (the
    // planner's headroom, kWeightHeadroom, covers the difference).
    const double tolerance = target > 0 ? kWeightHeadroom : 0.01;
    QVERIFY2(relative(double(predicted.weights), double(measured.weights)) < tolerance,
             qPrintable(QString("predicted %1, loaded %2").arg(predicted.weights).arg(measured.weights)));
    QVERIFY2(relative(double(measured.weights), double(heldByLoad)) < 0.03,
             qPrintable(QString("reported %1, heap grew by %2").arg(measured.weights).arg(heldByLoad)));
    QCOMPARE(measured.kvCache, predicted.kvCache);
    QCOMPARE(predicted.context, std::min<int64_t>(loaded.config.maxSeq, kDefaultFitContext));
    // The file's quantized matrices: the loaded form is not the file's bytes.
    QVERIFY(measured.weights > 0);
    QVERIFY2(relative(double(predicted.scratch), double(measured.scratch)) < 0.01,
             qPrintable(QString("predicted %1, loaded %2").arg(predicted.scratch).arg(measured.scratch)));
}

// Inside a block's MLP (the observer runs after gate and up are made, before down), the heap
// holds the forward pass's buffers at their peak (H and the block's activations): within 10%
// of what forwardScratchBytes counts without the linear layers' scratch.
void TestFitMemory::scratchCoversForwardBuffers()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const auto reader = openModel(demoModelDir());
    LoadOptions options;
    const LlamaModel model = loadLlama(*reader, options);
    const int64_t T = 64, context = 128;
    KvCache cache(model.config, context);
    std::vector<int32_t> tokens(size_t(T), 5);
    malloc_trim(0);
    const uint64_t before = heapInUse();
    uint64_t atMlp = 0;
    const InputObserver observer = [&](int, LinearInput site, const float*, int64_t, int64_t) {
        if (site == LinearInput::MlpDown)
            atMlp = std::max(atMlp, heapInUse() - before);
    };
    forward(model, cache, tokens, nullptr, &observer);
    const uint64_t predicted = forwardScratchBytes(model.config, T, context, 0);
    QVERIFY2(relative(double(atMlp), double(predicted)) < 0.1,
             qPrintable(QString("held %1 inside the MLP, predicted %2").arg(atMlp).arg(predicted)));
}

void TestFitMemory::fitIsLargestThatFits_data()
{
    QTest::addColumn<QString>("memory");
    QTest::addColumn<qlonglong>("context");
    QTest::newRow("12MB") << "12MB" << qlonglong(0);
    QTest::newRow("13MB") << "13MB" << qlonglong(0);
    QTest::newRow("14MiB") << "14MiB" << qlonglong(0);
    QTest::newRow("12MB at 128 tokens") << "12MB" << qlonglong(128);
    QTest::newRow("1GB (everything fits)") << "1GB" << qlonglong(0);
}

// The plan's predicted run fits, and a file 1% larger (when there is one) would not.
void TestFitMemory::fitIsLargestThatFits()
{
    QFETCH(QString, memory);
    QFETCH(qlonglong, context);
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const auto reader = openModel(demoModelDir());
    const uint64_t bytes = parseByteSize("--fit-memory", memory.toStdString());
    const MemoryTarget t =
        fitToMemory(*reader, demoModelDir(), bytes, context, 4, "--fit-memory " + memory.toStdString());
    QVERIFY(memoryNeeded(t.memory) <= bytes);
    QCOMPARE(t.fit.inspection.runMemory.limit, bytes);
    QCOMPARE(t.memory.context, context > 0 ? context : 512);
    const uint64_t larger = t.fit.targetBytes + t.fit.targetBytes / 100;
    if (larger <= t.fit.maxBytes) {
        const TargetFit next = fitToTarget(*reader, demoModelDir(), larger, 0, 4, "next");
        QVERIFY2(memoryNeeded(predictRunMemory(*reader, next.inspection, t.memory.context)) > bytes,
                 "a plan 1% larger would also fit: the search stopped short");
    } else {
        QCOMPARE(t.fit.targetBytes, t.fit.maxBytes);
    }
}

void TestFitMemory::longerContextLeavesLessForWeights()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const auto reader = openModel(demoModelDir());
    const uint64_t bytes = 13'000'000;
    const MemoryTarget shortContext = fitToMemory(*reader, demoModelDir(), bytes, 64, 4, "m");
    const MemoryTarget longContext = fitToMemory(*reader, demoModelDir(), bytes, 512, 4, "m");
    QVERIFY(longContext.memory.kvCache == 8 * shortContext.memory.kvCache);
    QVERIFY(longContext.fit.inspection.estimatedFileBytes() < shortContext.fit.inspection.estimatedFileBytes());
    QVERIFY(longContext.fit.inspection.predictedError > shortContext.fit.inspection.predictedError);
}

// The message names the value and the smallest memory that works; that memory then works.
void TestFitMemory::tooSmallNamesWhatWouldFit()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    const auto reader = openModel(demoModelDir());
    try {
        fitToMemory(*reader, demoModelDir(), 5'000'000, 0, 4, "--fit-memory 5MB");
        QFAIL("5 MB was accepted for a model that needs more");
    } catch (const Error& e) {
        QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
        const std::string what = e.what();
        QVERIFY2(what.find("--fit-memory 5MB (5,000,000 bytes)") != std::string::npos, e.what());
        const size_t at = what.find("give at least ");
        QVERIFY2(at != std::string::npos, e.what());
        const std::string least = what.substr(at + 14, what.find(',', at) - at - 14);
        const uint64_t bytes = parseByteSize("m", least);
        const MemoryTarget t = fitToMemory(*reader, demoModelDir(), bytes, 0, 4, "m");
        QVERIFY(memoryNeeded(t.memory) <= bytes);
        QVERIFY2(bytes - t.smallestBytes < 100'000, "rounded up by more than 0.1 MB");
        QVERIFY_THROWS_EXCEPTION(Error, fitToMemory(*reader, demoModelDir(), t.smallestBytes - 1, 0, 4, "m"));
    }
}

void TestFitMemory::contextLongerThanModelRefused()
{
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    try {
        fitToMemory(demoModelDir(), 1'000'000'000, 100'000, 4, "--fit-memory 1GB");
        QFAIL("a context longer than the model's was accepted");
    } catch (const Error& e) {
        QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
        QVERIFY2(std::string(e.what()).find("--context 100000") != std::string::npos, e.what());
        QVERIFY2(std::string(e.what()).find("512") != std::string::npos, e.what());
    }
}

void TestFitMemory::sizesParseAsTheCliDoes_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<qulonglong>("bytes"); // 0: refused
    QTest::newRow("bytes") << "1234" << qulonglong(1234);
    QTest::newRow("SI") << "2.2MB" << qulonglong(2'200'000);
    QTest::newRow("binary, space") << "8 GiB" << qulonglong(8ull << 30);
    QTest::newRow("lower case") << "4gb" << qulonglong(4'000'000'000ull);
    QTest::newRow("unknown unit") << "12 XB" << qulonglong(0);
    QTest::newRow("empty") << "" << qulonglong(0);
    QTest::newRow("zero") << "0" << qulonglong(0);
    QTest::newRow("negative") << "-1GB" << qulonglong(0);
}

void TestFitMemory::sizesParseAsTheCliDoes()
{
    QFETCH(QString, text);
    QFETCH(qulonglong, bytes);
    try {
        QCOMPARE(qulonglong(parseByteSize("--fit-memory", text.toStdString())), bytes);
        QVERIFY(bytes != 0);
    } catch (const Error& e) {
        QCOMPARE(bytes, qulonglong(0));
        QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
        QVERIFY2(std::string(e.what()).find("got '" + text.toStdString() + "'") != std::string::npos, e.what());
    }
}

void TestFitMemory::cliShowsAndRefuses_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("exit");
    QTest::addColumn<QString>("message");
    QTest::newRow("fits") << QStringList{"--fit-memory", "13MB", "--context", "256"} << 0
                          << QString("fit memory              --fit-memory 13MB: runs in about");
    QTest::newRow("unknown unit") << QStringList{"--fit-memory", "12XB"} << 2 << QString("got '12XB'");
    QTest::newRow("too small") << QStringList{"--fit-memory", "5MB"} << 2 << QString("give at least");
    QTest::newRow("context alone") << QStringList{"--context", "256"} << 2 << QString("give it with --fit-memory");
    QTest::newRow("context zero") << QStringList{"--fit-memory", "13MB", "--context", "0"} << 2 << QString("--context");
    QTest::newRow("with --bits") << QStringList{"--fit-memory", "13MB", "--bits", "2"} << 2
                                 << QString("leave out --bits");
    QTest::newRow("with --target-size") << QStringList{"--fit-memory", "13MB", "--target-size", "2MB"} << 2
                                        << QString("leave out --target-size");
}

void TestFitMemory::cliShowsAndRefuses()
{
    QFETCH(QStringList, args);
    QFETCH(int, exit);
    QFETCH(QString, message);
    NOVAQ_REQUIRE_DATA(demoModelDir() / "model.safetensors");
    QVERIFY2(QFile::exists(QStringLiteral(NOVAQ_CLI_PATH)), "the novaq executable is missing; build target novaq");
    QProcess process;
    process.setStandardInputFile(QProcess::nullDevice());
    process.start(QStringLiteral(NOVAQ_CLI_PATH),
                  QStringList{"inspect", QString::fromStdString(demoModelDir().string())} + args);
    QVERIFY(process.waitForFinished(120000));
    const QString out = QString::fromUtf8(process.readAllStandardOutput() + process.readAllStandardError());
    QVERIFY2(process.exitCode() == exit, qPrintable(QString("exit %1: %2").arg(process.exitCode()).arg(out)));
    QVERIFY2(out.contains(message), qPrintable(out));
}

// `novaq local --fit-memory` on stories260K: the written file, loaded, holds no more than the memory.
void TestFitMemory::localWritesAFileThatFits()
{
    NOVAQ_REQUIRE_DATA(storiesGguf());
    const auto reader = openModel(storiesGguf());
    const MemoryTarget range = fitToMemory(*reader, storiesGguf(), 1ull << 40, 0, 4, "all");
    const uint64_t memory = range.smallestBytes + (range.memory.total() - range.smallestBytes) / 2;
    QTemporaryDir dir;
    const QString out = dir.filePath("fit.novaq");
    QProcess process;
    process.setStandardInputFile(QProcess::nullDevice());
    process.start(QStringLiteral(NOVAQ_CLI_PATH),
                  {"local", QString::fromStdString(storiesGguf().string()), "--fit-memory", QString::number(memory),
                   "--output", out, "--threads", "2"});
    QVERIFY(process.waitForFinished(300000));
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QVERIFY2(process.exitCode() == 0, qPrintable(err));
    QVERIFY2(err.contains("Fit to memory: --fit-memory " + QString::number(memory)), qPrintable(err));
    const auto file = openModel(out.toStdString());
    const LlamaModel loaded = loadLlama(*file);
    const KvCache cache(loaded.config, range.memory.context);
    const RuntimeMemory measured = runtimeMemory(loaded, cache);
    QVERIFY2(measured.total() <= memory, qPrintable(QString("%1 > %2").arg(measured.total()).arg(memory)));
    QVERIFY(measured.total() > range.smallestBytes);
}

QTEST_GUILESS_MAIN(TestFitMemory)
#include "test_fit_memory.moc"
