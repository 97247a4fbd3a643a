// The .novaq container: writer, reader, manifest records, corruption handling, and the
// consumers built on it (the NOVAQ model reader, safetensors export, validation).

#include "test_support.h"

#include "novaq/codec/quantized_tensor.h"
#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/novaq_model_reader.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/safetensors_writer.h"
#include "novaq/io/atomic_file.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/export.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/validate.h"
#include "novaq/tensor/dtype.h"

#include <QObject>
#include <QStringList>
#include <QTest>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <functional>

using namespace novaq;
using novaq::test::readAll;
using novaq::test::toPath;
using novaq::test::writeAll;

namespace {

std::span<const std::byte> asBytes(const std::string& s)
{
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string patternBytes(size_t n, unsigned seed)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed * 17 + 7) & 0xff);
    return s;
}

uint64_t getU64(const std::vector<char>& bytes, size_t at)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)])) << (8 * i);
    return v;
}

void putU64(std::vector<char>& bytes, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        bytes[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void putU16(std::vector<char>& bytes, size_t at, uint16_t v)
{
    bytes[at] = static_cast<char>(v & 0xff);
    bytes[at + 1] = static_cast<char>(v >> 8);
}

// Runs fn and checks that it throws Error of `kind` whose message holds every substring.
void expectError(const std::function<void()>& fn, ErrorKind kind, const QStringList& substrings)
{
    try {
        fn();
    } catch (const Error& e) {
        const QString message = QString::fromStdString(e.what());
        QVERIFY2(e.kind() == kind, qPrintable("wrong error kind for: " + message));
        for (const QString& s : substrings)
            QVERIFY2(message.contains(s), qPrintable("'" + s + "' not in: " + message));
        return;
    }
    QFAIL("no novaq::Error was thrown");
}

// A hand-made quantized tensor: every part filled from simple formulas.
QuantizedTensor makeQuantized(int64_t rows, int64_t cols, int subspaces, bool colScale)
{
    QuantizedTensor q;
    q.rows = rows;
    q.cols = cols;
    q.config = CodecConfig{8, 2, 1, subspaces};
    q.hasColScale = colScale;
    for (int64_t i = 0; i < rows; ++i) {
        q.rowMean.push_back(floatToHalf(0.1f * float(i) - 0.2f));
        q.rowScale.push_back(floatToHalf(0.5f + 0.25f * float(i)));
    }
    if (colScale)
        for (int64_t j = 0; j < cols; ++j)
            q.colScale.push_back(floatToHalf(1.0f + 0.5f * float(j % 3)));
    const size_t books = size_t(subspaces) * ((1u << q.config.b1) + (1u << q.config.b2)) * size_t(q.config.d);
    for (size_t k = 0; k < books; ++k)
        q.codebooks.push_back(floatToHalf(std::sin(0.37f * float(k) + 0.1f)));
    const uint64_t bits =
        uint64_t(rows) * uint64_t(vectorsPerRow(cols, q.config.d)) * uint64_t(q.config.b1 + q.config.b2);
    for (uint64_t b = 0; b < (bits + 7) / 8; ++b)
        q.codes.push_back(static_cast<uint8_t>((b * 37 + 11) & 0xff));
    return q;
}

std::vector<float> decoded(const QuantizedTensor& q)
{
    std::vector<float> out(size_t(q.rows * q.cols));
    decode(q, out);
    return out;
}

double relError(const std::vector<float>& w, const std::vector<float>& what)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < w.size(); ++i) {
        const double diff = double(w[i]) - double(what[i]);
        num += diff * diff;
        den += double(w[i]) * double(w[i]);
    }
    return den > 0 ? num / den : 0.0;
}

// A small .novaq model: one quantized matrix, one F16 vector, one I32 matrix.
struct TestModel {
    std::filesystem::path path;
    std::vector<std::string> names;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::vector<float>> values; // what a reader must return
    std::vector<float> original;            // the quantized tensor's source values
    std::vector<TensorRecord> records;
    nlohmann::json manifest;
};

TestModel writeTestModel(const std::filesystem::path& path, int64_t rows, int64_t cols, int subspaces, bool colScale,
                         double relErrorBias = 0.0)
{
    TestModel m;
    m.path = path;
    NovaqWriter writer(path);

    const QuantizedTensor q = makeQuantized(rows, cols, subspaces, colScale);
    const std::vector<std::byte> payload = serialize(q);
    m.original = novaq::test::gaussian(size_t(rows * cols), 7);
    TensorRecord quant;
    quant.name = "model.layers.0.self_attn.q_proj.weight";
    quant.shape = {rows, cols};
    quant.sourceDtype = "F32";
    quant.encoding = TensorEncoding::Novaq;
    quant.codec = q.config;
    quant.colScale = colScale;
    quant.relError = relError(m.original, decoded(q)) + relErrorBias;
    quant.sqnrDb = -10 * std::log10(quant.relError);
    quant.effectiveBits = 8.0 * double(payload.size()) / double(rows * cols);
    quant.bytesIn = uint64_t(rows * cols) * 4;
    quant.bytesOut = payload.size();

    // Raw F16 vector (writer order differs from name order on purpose).
    std::vector<float> norm;
    std::string normBytes;
    for (int j = 0; j < 16; ++j) {
        norm.push_back(0.75f + 0.125f * float(j));
        const uint16_t h = floatToHalf(norm.back());
        normBytes.push_back(static_cast<char>(h & 0xff));
        normBytes.push_back(static_cast<char>(h >> 8));
    }
    TensorRecord raw;
    raw.name = "model.norm.weight";
    raw.shape = {16};
    raw.sourceDtype = "F16";
    raw.encoding = TensorEncoding::Raw;
    raw.dtype = DType::F16;
    raw.effectiveBits = 16;
    raw.sqnrDb = 999;
    raw.bytesIn = raw.bytesOut = normBytes.size();

    std::vector<float> ids;
    std::string idsBytes;
    for (int32_t v = 0; v < 6; ++v) {
        ids.push_back(float(v * 1000 - 2000));
        const int32_t x = v * 1000 - 2000;
        char b[4];
        std::memcpy(b, &x, 4);
        idsBytes.append(b, 4);
    }
    TensorRecord ints;
    ints.name = "model.position_ids";
    ints.shape = {2, 3};
    ints.sourceDtype = "I32";
    ints.encoding = TensorEncoding::Raw;
    ints.dtype = DType::I32;
    ints.effectiveBits = 32;
    ints.sqnrDb = 999;
    ints.bytesIn = ints.bytesOut = idsBytes.size();

    raw.data = writer.writeSection(asBytes(normBytes));
    quant.data = writer.writeSection(payload);
    ints.data = writer.writeSection(asBytes(idsBytes));

    m.records = {raw, quant, ints};
    m.names = {raw.name, quant.name, ints.name};
    m.shapes = {raw.shape, quant.shape, ints.shape};
    m.values = {norm, decoded(q), ids};

    nlohmann::json tensors = nlohmann::json::array();
    for (const TensorRecord& r : m.records)
        tensors.push_back(r.toJson());
    m.manifest = {{"format", "novaq"},
                  {"version", {kNovaqMajor, kNovaqMinor}},
                  {"writer", "test_container"},
                  {"source", {{"label", "hand-made"}, {"format", "safetensors"}, {"files", {"model.safetensors"}}}},
                  {"architecture", "llama"},
                  {"config", {{"hidden_size", cols}, {"model_type", "llama"}}},
                  {"format_metadata", {{"format", "pt"}}},
                  {"settings", {{"d", 8}, {"b1", 2}, {"b2", 1}, {"subspaces", subspaces}}},
                  {"tensors", tensors}};
    writer.commit(m.manifest);
    return m;
}

// The source model of TestModel as safetensors (F32 quantized source, exact raw tensors).
void writeSourceModel(const TestModel& m, const std::filesystem::path& path)
{
    nlohmann::ordered_json header;
    std::string data;
    for (size_t t = 0; t < m.names.size(); ++t) {
        const std::vector<float>& v = m.records[t].encoding == TensorEncoding::Novaq ? m.original : m.values[t];
        const size_t begin = data.size();
        data.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
        header[m.names[t]] = {{"dtype", "F32"}, {"shape", m.shapes[t]}, {"data_offsets", {begin, data.size()}}};
    }
    writeAll(path, novaq::test::makeSafetensors(header.dump(), data));
}

class RecordingSink : public ProgressSink {
public:
    void onEvent(const ProgressEvent& event) override
    {
        kinds.push_back(event.kind);
        if (event.kind == ProgressEvent::Kind::TensorFinished) {
            QVERIFY(event.result != nullptr);
            finished.push_back(event.result->name);
        }
    }
    std::vector<ProgressEvent::Kind> kinds;
    std::vector<std::string> finished;
};

bool noPartialFiles(const std::filesystem::path& dir)
{
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().filename().string().find(".partial-") != std::string::npos)
            return false;
    return true;
}

} // namespace

class TestContainer : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void checksumIsXxh3();
    void writerRoundTrip_data();
    void writerRoundTrip();
    void writerWithoutCommitLeavesTargetUntouched();
    void commitReplacesTarget();
    void commitFailureRemovesTemporary();
    void writerInMissingFolder();
    void headerSniff();
    void corruptFile_data();
    void corruptFile();
    void newerMinorIsAccepted();
    void sectionRefJson_data();
    void sectionRefJson();
    void recordRoundTrip_data();
    void recordRoundTrip();
    void recordFieldErrors_data();
    void recordFieldErrors();
    void tensorRecordChecks_data();
    void tensorRecordChecks();
    void novaqModelReader_data();
    void novaqModelReader();
    void flippedSectionNamesTensor();
    void exportSafetensors_data();
    void exportSafetensors();
    void exportRefuses();
    void exportCancelled();
    void safetensorsWriterOrder();
    void validateGood();
    void validateFlippedSection();
    void validateStructureProblem();
    void validateMissingFile();
    void validateAgainst_data();
    void validateAgainst();
};

void TestContainer::checksumIsXxh3()
{
    // XXH3-64 of the empty input and of "abc" (reference values of xxHash 0.8).
    QCOMPARE(checksum({}), uint64_t(0x2D06800538D394C2ull));
    QCOMPARE(checksum(asBytes("abc")), uint64_t(0x78AF5F94892F3950ull));
}

void TestContainer::writerRoundTrip_data()
{
    QTest::addColumn<QList<int>>("lengths");
    QTest::newRow("one small section") << QList<int>{1};
    QTest::newRow("aligned lengths") << QList<int>{64, 128};
    QTest::newRow("odd lengths") << QList<int>{3, 100, 65, 1000};
    QTest::newRow("empty section between") << QList<int>{10, 0, 7};
    QTest::newRow("no sections") << QList<int>{};
}

void TestContainer::writerRoundTrip()
{
    QFETCH(QList<int>, lengths);
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "out.novaq";
    std::vector<std::string> contents;
    std::vector<SectionRef> refs;
    nlohmann::json manifest = {{"format", "novaq"}, {"note", "héllo ✓"}, {"tensors", nlohmann::json::array()}};
    {
        NovaqWriter writer(path);
        QCOMPARE(writer.temporaryPath().filename().string(), ".out.novaq.partial-" + std::to_string(::getpid()));
        QVERIFY(std::filesystem::exists(writer.temporaryPath()));
        for (int i = 0; i < lengths.size(); ++i) {
            contents.push_back(patternBytes(size_t(lengths[i]), unsigned(i)));
            refs.push_back(writer.writeSection(asBytes(contents.back())));
            manifest["sections"].push_back(refs.back().toJson());
        }
        writer.commit(manifest);
        QVERIFY(!std::filesystem::exists(writer.temporaryPath()));
    }
    QVERIFY(std::filesystem::exists(path));
    QVERIFY(noPartialFiles(path.parent_path()));

    NovaqFile file(path);
    QVERIFY(file.manifest() == manifest);
    QCOMPARE(file.major(), kNovaqMajor);
    QCOMPARE(file.minor(), kNovaqMinor);
    QCOMPARE(file.fileSize(), uint64_t(std::filesystem::file_size(path)));
    QCOMPARE(file.fileSize() % kNovaqAlign, uint64_t(0));
    QCOMPARE(file.path(), path);
    uint64_t previousEnd = 64;
    for (size_t i = 0; i < refs.size(); ++i) {
        QCOMPARE(refs[i].offset % kNovaqAlign, uint64_t(0));
        QVERIFY(refs[i].offset >= previousEnd);
        QVERIFY(refs[i].offset - previousEnd < kNovaqAlign);
        previousEnd = refs[i].offset + refs[i].length;
        QCOMPARE(refs[i].length, uint64_t(contents[i].size()));
        QCOMPARE(refs[i].xxh3, checksum(asBytes(contents[i])));
        const auto bytes = file.section(refs[i], "section " + std::to_string(i));
        QCOMPARE(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), contents[i]);
        QCOMPARE(SectionRef::fromJson(file.manifest()["sections"][i], "s").offset, refs[i].offset);
    }
    // Padding between sections is zero.
    const std::vector<char> raw = readAll(path);
    for (size_t i = 0; i + 1 < refs.size(); ++i)
        for (uint64_t p = refs[i].offset + refs[i].length; p < refs[i + 1].offset; ++p)
            QCOMPARE(raw[p], char(0));
    QVERIFY(isNovaqHeader(std::as_bytes(std::span(raw))));
}

void TestContainer::writerWithoutCommitLeavesTargetUntouched()
{
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "model.novaq";
    writeAll(path, std::string("old contents"));
    std::filesystem::path temporary;
    {
        NovaqWriter writer(path);
        temporary = writer.temporaryPath();
        QCOMPARE(temporary.parent_path(), path.parent_path());
        writer.writeSection(asBytes(patternBytes(1000, 1)));
        QVERIFY(std::filesystem::exists(temporary));
        const std::vector<char> old = readAll(path);
        QCOMPARE(std::string(old.begin(), old.end()), std::string("old contents"));
    }
    QVERIFY(!std::filesystem::exists(temporary));
    QVERIFY(noPartialFiles(path.parent_path()));
    const std::vector<char> old = readAll(path);
    QCOMPARE(std::string(old.begin(), old.end()), std::string("old contents"));
}

void TestContainer::commitReplacesTarget()
{
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "model.novaq";
    writeAll(path, std::string("old contents"));
    NovaqWriter writer(path);
    const SectionRef ref = writer.writeSection(asBytes("payload"));
    writer.commit({{"format", "novaq"}, {"tensors", nlohmann::json::array()}});
    NovaqFile file(path);
    const auto bytes = file.section(ref, "payload");
    QCOMPARE(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), std::string("payload"));
    expectError([&] { writer.commit({{"format", "novaq"}}); }, ErrorKind::InvalidArgument, {"commit"});
}

void TestContainer::commitFailureRemovesTemporary()
{
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "taken";
    std::filesystem::create_directory(path);
    writeAll(path / "inside", std::string("x")); // a non-empty folder cannot be renamed over
    NovaqWriter writer(path);
    const std::filesystem::path temporary = writer.temporaryPath();
    writer.writeSection(asBytes("abc"));
    expectError([&] { writer.commit({{"format", "novaq"}}); }, ErrorKind::Io, {"taken"});
    QVERIFY(!std::filesystem::exists(temporary));
    QVERIFY(std::filesystem::is_directory(path));
}

void TestContainer::writerInMissingFolder()
{
    QTemporaryDir dir;
    const auto folder = toPath(dir.path()) / "no" / "such";
    expectError([&] { NovaqWriter writer(folder / "x.novaq"); }, ErrorKind::Io,
                {QString::fromStdString(folder.string()), "No such file"});
}

void TestContainer::headerSniff()
{
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "m.novaq";
    NovaqWriter writer(path);
    writer.commit({{"format", "novaq"}});
    const std::vector<char> bytes = readAll(path);
    QVERIFY(isNovaqHeader(std::as_bytes(std::span(bytes)).first(8)));
    QVERIFY(!isNovaqHeader(std::as_bytes(std::span(bytes)).first(7)));
    QVERIFY(!isNovaqHeader(asBytes("\x89NOVAQ\r\t and more")));
    QVERIFY(!isNovaqHeader({}));
}

void TestContainer::corruptFile_data()
{
    QTest::addColumn<QString>("mutation");
    QTest::addColumn<QStringList>("expected");
    QTest::newRow("truncated by 100 bytes") << "truncate" << QStringList{"truncated"};
    QTest::newRow("trailer size larger than the file")
        << "trailer-size" << QStringList{"truncated: expected ", " bytes, found "};
    QTest::newRow("too small") << "tiny" << QStringList{"truncated", "128"};
    QTest::newRow("cut by one byte: no trailer")
        << "cut1" << QStringList{"truncated or incomplete: no trailer in the last 64 bytes"};
    QTest::newRow("cut inside the header") << "cut-header" << QStringList{"at least 128 bytes, found 14"};
    QTest::newRow("cut inside the trailer")
        << "cut-trailer" << QStringList{"truncated or incomplete: no trailer in the last 64 bytes"};
    QTest::newRow("not a novaq file") << "garbage" << QStringList{"not a .novaq file"};
    QTest::newRow("bad magic") << "magic" << QStringList{"bad magic", "offset 0"};
    QTest::newRow("bad header size") << "header-size" << QStringList{"header size"};
    QTest::newRow("future major version")
        << "major"
        << QStringList{"written by a newer NOVAQ (format 2.3)", "this build reads 1.x", "update NOVAQ Studio"};
    QTest::newRow("older major version") << "major0" << QStringList{"0.9", "not supported"};
    QTest::newRow("trailer version differs") << "trailer-version" << QStringList{"trailer version"};
    QTest::newRow("bad trailer magic") << "trailer-magic" << QStringList{"trailer"};
    QTest::newRow("manifest offset out of bounds") << "manifest-offset" << QStringList{"manifest offset", "outside"};
    QTest::newRow("manifest length out of bounds") << "manifest-length" << QStringList{"manifest", "outside"};
    QTest::newRow("flipped manifest byte") << "manifest-flip" << QStringList{"manifest checksum mismatch"};
    QTest::newRow("manifest not JSON") << "manifest-text" << QStringList{"not valid JSON"};
    QTest::newRow("manifest not an object") << "manifest-array" << QStringList{"not a JSON object"};
    QTest::newRow("manifest format not novaq") << "manifest-format" << QStringList{"\"format\"", "novaq"};
}

void TestContainer::corruptFile()
{
    QFETCH(QString, mutation);
    QFETCH(QStringList, expected);
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "model.novaq";
    writeTestModel(path, 4, 16, 2, false);
    std::vector<char> bytes = readAll(path);
    const size_t trailer = bytes.size() - 64;
    const uint64_t manifestOffset = getU64(bytes, trailer + 8);
    const uint64_t manifestLength = getU64(bytes, trailer + 16);
    auto replaceManifest = [&](const std::string& text) {
        QVERIFY(text.size() <= manifestLength);
        std::memcpy(bytes.data() + manifestOffset, text.data(), text.size());
        putU64(bytes, trailer + 16, text.size());
        putU64(bytes, trailer + 24, checksum(asBytes(text)));
    };

    if (mutation == "truncate")
        bytes.resize(bytes.size() - 100);
    else if (mutation == "trailer-size")
        putU64(bytes, trailer + 32, bytes.size() + 128);
    else if (mutation == "tiny")
        bytes.resize(100);
    else if (mutation == "cut1")
        bytes.resize(bytes.size() - 1);
    else if (mutation == "cut-header")
        bytes.resize(14); // inside the header size field
    else if (mutation == "cut-trailer")
        bytes.resize(trailer + 36); // inside the file size field
    else if (mutation == "garbage")
        bytes.assign(10, 'x');
    else if (mutation == "magic")
        bytes[1] = 'X';
    else if (mutation == "header-size")
        bytes[12] = 32;
    else if (mutation == "major") {
        putU16(bytes, 8, 2);
        putU16(bytes, 10, 3);
    } else if (mutation == "major0") {
        putU16(bytes, 8, 0);
        putU16(bytes, 10, 9);
    } else if (mutation == "trailer-version")
        putU16(bytes, trailer + 40, 7);
    else if (mutation == "trailer-magic")
        bytes[trailer + 2] = 'x';
    else if (mutation == "manifest-offset")
        putU64(bytes, trailer + 8, bytes.size());
    else if (mutation == "manifest-length")
        putU64(bytes, trailer + 16, ~uint64_t(0) - 10);
    else if (mutation == "manifest-flip")
        bytes[manifestOffset + manifestLength / 2] ^= 0x20;
    else if (mutation == "manifest-text")
        replaceManifest("this is not json {");
    else if (mutation == "manifest-array")
        replaceManifest("[1, 2, 3]");
    else if (mutation == "manifest-format")
        replaceManifest(R"({"format": "gguf", "tensors": []})");
    else
        QFAIL("unknown mutation");
    writeAll(path, bytes);

    QStringList withPath = expected;
    withPath << QString::fromStdString(path.string());
    expectError([&] { NovaqFile file(path); }, ErrorKind::Corrupt, withPath);
    expectError([&] { openNovaqModel(path); }, ErrorKind::Corrupt, withPath);
}

void TestContainer::newerMinorIsAccepted()
{
    QTemporaryDir dir;
    const auto path = toPath(dir.path()) / "model.novaq";
    writeTestModel(path, 4, 16, 1, false);
    std::vector<char> bytes = readAll(path);
    putU16(bytes, 10, 7);
    putU16(bytes, bytes.size() - 64 + 42, 7);
    writeAll(path, bytes);
    NovaqFile file(path);
    QCOMPARE(file.major(), uint16_t(1));
    QCOMPARE(file.minor(), uint16_t(7));
}

void TestContainer::sectionRefJson_data()
{
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("error"); // empty: valid
    QTest::newRow("valid") << R"({"offset":64,"length":3,"xxh3":"0123456789abcdef"})"
                           << "";
    QTest::newRow("upper-case hex") << R"({"offset":64,"length":3,"xxh3":"0123456789ABCDEF"})"
                                    << "";
    QTest::newRow("short hex") << R"({"offset":64,"length":3,"xxh3":"0123"})"
                               << "what.xxh3";
    QTest::newRow("not hex") << R"({"offset":64,"length":3,"xxh3":"0123456789abcdeg"})"
                             << "what.xxh3";
    QTest::newRow("hash as number") << R"({"offset":64,"length":3,"xxh3":5})"
                                    << "what.xxh3";
    QTest::newRow("negative offset") << R"({"offset":-64,"length":3,"xxh3":"0123456789abcdef"})"
                                     << "what.offset";
    QTest::newRow("length as string") << R"({"offset":64,"length":"3","xxh3":"0123456789abcdef"})"
                                      << "what.length";
    QTest::newRow("missing length") << R"({"offset":64,"xxh3":"0123456789abcdef"})"
                                    << "what.length: missing";
    QTest::newRow("not an object") << R"([64, 3])"
                                   << "what";
}

void TestContainer::sectionRefJson()
{
    QFETCH(QString, json);
    QFETCH(QString, error);
    const nlohmann::json j = nlohmann::json::parse(json.toStdString());
    if (error.isEmpty()) {
        const SectionRef ref = SectionRef::fromJson(j, "what");
        QCOMPARE(ref.offset, uint64_t(64));
        QCOMPARE(ref.length, uint64_t(3));
        QCOMPARE(ref.xxh3, uint64_t(0x0123456789abcdefull));
        QCOMPARE(ref.toJson()["xxh3"].get<std::string>(), std::string("0123456789abcdef"));
        const SectionRef small{0, 0, 0xabull};
        QCOMPARE(small.toJson()["xxh3"].get<std::string>(), std::string("00000000000000ab"));
    } else {
        expectError([&] { SectionRef::fromJson(j, "what"); }, ErrorKind::Corrupt, {error});
    }
}

void TestContainer::recordRoundTrip_data()
{
    QTest::addColumn<bool>("quantized");
    QTest::addColumn<bool>("colScale");
    QTest::newRow("novaq") << true << false;
    QTest::newRow("novaq with column scales") << true << true;
    QTest::newRow("raw") << false << false;
}

void TestContainer::recordRoundTrip()
{
    QFETCH(bool, quantized);
    QFETCH(bool, colScale);
    TensorRecord r;
    r.name = "model.layers.3.mlp.down_proj.weight";
    r.shape = {128, 344};
    r.sourceDtype = "BF16";
    r.encoding = quantized ? TensorEncoding::Novaq : TensorEncoding::Raw;
    r.dtype = DType::BF16;
    r.codec = CodecConfig{8, 6, 3, 2};
    r.colScale = colScale;
    r.data = SectionRef{640, 12345, 0xfedcba9876543210ull};
    r.relError = 0.0123;
    r.sqnrDb = 19.1;
    r.effectiveBits = 1.61;
    r.bytesIn = 88064;
    r.bytesOut = 9999;

    const nlohmann::json j = nlohmann::json::parse(r.toJson().dump());
    QCOMPARE(j.contains("codec"), quantized);
    QCOMPARE(j.contains("dtype"), !quantized);
    QCOMPARE(j["encoding"].get<std::string>(), std::string(quantized ? "novaq" : "raw"));
    const TensorRecord back = TensorRecord::fromJson(j, "tensors[0]");
    QCOMPARE(back.name, r.name);
    QCOMPARE(back.shape, r.shape);
    QCOMPARE(back.sourceDtype, r.sourceDtype);
    QVERIFY(back.encoding == r.encoding);
    if (quantized) {
        QVERIFY(back.codec == r.codec);
        QCOMPARE(back.colScale, r.colScale);
    } else {
        QVERIFY(back.dtype == r.dtype);
    }
    QCOMPARE(back.data.offset, r.data.offset);
    QCOMPARE(back.data.length, r.data.length);
    QCOMPARE(back.data.xxh3, r.data.xxh3);
    QCOMPARE(back.relError, r.relError);
    QCOMPARE(back.sqnrDb, r.sqnrDb);
    QCOMPARE(back.effectiveBits, r.effectiveBits);
    QCOMPARE(back.bytesIn, r.bytesIn);
    QCOMPARE(back.bytesOut, r.bytesOut);

    // An exact tensor's infinite SQNR is stored as 999 (JSON has no infinity).
    r.sqnrDb = std::numeric_limits<double>::infinity();
    QCOMPARE(TensorRecord::fromJson(nlohmann::json::parse(r.toJson().dump()), "t").sqnrDb, 999.0);
}

void TestContainer::recordFieldErrors_data()
{
    QTest::addColumn<QString>("pointer"); // JSON pointer into a valid novaq record
    QTest::addColumn<QString>("value");   // JSON text, or "<remove>"
    QTest::addColumn<QString>("expected");
    QTest::newRow("b1 missing") << "/codec/b1"
                                << "<remove>"
                                << "tensors[3].codec.b1: missing";
    // The codec's fields are read against kCodecLimits (codec_config.h), the writer's limits.
    QTest::newRow("b1 a string") << "/codec/b1"
                                 << "\"8\""
                                 << "tensors[3].codec.b1: expected an integer 1..12, found \"8\"";
    QTest::newRow("b1 too large") << "/codec/b1"
                                  << "13"
                                  << "tensors[3].codec.b1: expected an integer 1..12, found 13";
    QTest::newRow("b1 zero") << "/codec/b1"
                             << "0"
                             << "tensors[3].codec.b1: expected an integer 1..12, found 0";
    QTest::newRow("d above the limit") << "/codec/d"
                                       << "33"
                                       << "tensors[3].codec.d: expected an integer 1..32, found 33";
    QTest::newRow("b2 above the limit") << "/codec/b2"
                                        << "13"
                                        << "tensors[3].codec.b2: expected an integer 0..12, found 13";
    QTest::newRow("subspaces above the limit") << "/codec/subspaces"
                                               << "65"
                                               << "tensors[3].codec.subspaces: expected an integer 1..64, found 65";
    QTest::newRow("b1 fractional") << "/codec/b1"
                                   << "2.5"
                                   << "tensors[3].codec.b1";
    QTest::newRow("d zero") << "/codec/d"
                            << "0"
                            << "tensors[3].codec.d";
    QTest::newRow("col_scale not bool") << "/codec/col_scale"
                                        << "1"
                                        << "tensors[3].codec.col_scale";
    QTest::newRow("codec missing") << "/codec"
                                   << "<remove>"
                                   << "tensors[3].codec: missing";
    QTest::newRow("name missing") << "/name"
                                  << "<remove>"
                                  << "tensors[3].name: missing";
    QTest::newRow("name a number") << "/name"
                                   << "5"
                                   << "tensors[3].name: expected a string";
    QTest::newRow("shape a string") << "/shape"
                                    << "\"4x16\""
                                    << "tensors[3].shape";
    QTest::newRow("shape fractional") << "/shape/1"
                                      << "1.5"
                                      << "tensors[3].shape[1]";
    QTest::newRow("encoding unknown") << "/encoding"
                                      << "\"zip\""
                                      << "tensors[3].encoding";
    QTest::newRow("source dtype missing") << "/source_dtype"
                                          << "<remove>"
                                          << "tensors[3].source_dtype";
    QTest::newRow("data missing") << "/data"
                                  << "<remove>"
                                  << "tensors[3].data: missing";
    QTest::newRow("data offset negative") << "/data/offset"
                                          << "-1"
                                          << "tensors[3].data.offset";
    QTest::newRow("data hash bad") << "/data/xxh3"
                                   << "\"xyz\""
                                   << "tensors[3].data.xxh3";
    QTest::newRow("stats missing") << "/stats"
                                   << "<remove>"
                                   << "tensors[3].stats: missing";
    QTest::newRow("rel_error a string") << "/stats/rel_error"
                                        << "\"a\""
                                        << "tensors[3].stats.rel_error";
    QTest::newRow("rel_error null") << "/stats/rel_error"
                                    << "null"
                                    << "tensors[3].stats.rel_error";
    QTest::newRow("bytes_out negative") << "/stats/bytes_out"
                                        << "-5"
                                        << "tensors[3].stats.bytes_out";
    QTest::newRow("raw dtype unknown") << "/encoding"
                                       << "\"raw\""
                                       << "tensors[3].dtype: missing";
    QTest::newRow("not an object") << ""
                                   << "[1]"
                                   << "tensors[3]: expected an object";
}

void TestContainer::recordFieldErrors()
{
    QFETCH(QString, pointer);
    QFETCH(QString, value);
    QFETCH(QString, expected);
    TensorRecord r;
    r.name = "w";
    r.shape = {4, 16};
    r.sourceDtype = "F32";
    r.encoding = TensorEncoding::Novaq;
    r.codec = CodecConfig{8, 2, 1, 1};
    nlohmann::json j = r.toJson();
    TensorRecord::fromJson(j, "tensors[3]"); // valid before the change
    const nlohmann::json::json_pointer ptr(pointer.toStdString());
    if (value == "<remove>")
        j[ptr.parent_pointer()].erase(ptr.back());
    else
        j[ptr] = nlohmann::json::parse(value.toStdString());
    expectError([&] { TensorRecord::fromJson(j, "tensors[3]"); }, ErrorKind::Corrupt, {expected});
}

void TestContainer::tensorRecordChecks_data()
{
    QTest::addColumn<QString>("change");
    QTest::addColumn<QString>("expected");
    QTest::newRow("valid") << ""
                           << "";
    QTest::newRow("duplicate name") << "duplicate"
                                    << "duplicate tensor name";
    QTest::newRow("zero dimension of a quantized tensor") << "zero-dim"
                                                          << ".shape[0]: expected a positive size";
    QTest::newRow("section before the header end") << "offset-low"
                                                   << "outside";
    QTest::newRow("section past the data area") << "offset-high"
                                                << "outside";
    QTest::newRow("unaligned section") << "unaligned"
                                       << "multiple of 64";
    QTest::newRow("raw length mismatch") << "raw-length"
                                         << "tensors[0] (\"model.norm.weight\").data.length";
    QTest::newRow("novaq length mismatch") << "novaq-length"
                                           << "tensors[1]";
    QTest::newRow("codec settings invalid") << "codec"
                                            << "tensors[1].codec.subspaces: expected an integer 1..64, found 1000";
    QTest::newRow("tensors missing") << "no-tensors"
                                     << "tensors: missing";
    QTest::newRow("tensors not an array") << "tensors-object"
                                          << "tensors: expected an array";
}

void TestContainer::tensorRecordChecks()
{
    QFETCH(QString, change);
    QFETCH(QString, expected);
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, true);
    const uint64_t size = std::filesystem::file_size(m.path);
    nlohmann::json manifest = m.manifest;
    nlohmann::json& t = manifest["tensors"];
    if (change == "duplicate")
        t[2]["name"] = t[0]["name"];
    else if (change == "zero-dim")
        t[1]["shape"][0] = 0;
    else if (change == "offset-low")
        t[0]["data"]["offset"] = 0;
    else if (change == "offset-high")
        t[0]["data"]["offset"] = size - 64;
    else if (change == "unaligned")
        t[0]["data"]["offset"] = t[0]["data"]["offset"].get<uint64_t>() + 2;
    else if (change == "raw-length")
        t[0]["data"]["length"] = 30;
    else if (change == "novaq-length")
        t[1]["data"]["length"] = t[1]["data"]["length"].get<uint64_t>() - 1;
    else if (change == "codec")
        t[1]["codec"]["subspaces"] = 1000;
    else if (change == "no-tensors")
        manifest.erase("tensors");
    else if (change == "tensors-object")
        manifest["tensors"] = nlohmann::json::object();

    if (expected.isEmpty()) {
        const std::vector<TensorRecord> records = tensorRecords(manifest, size);
        QCOMPARE(records.size(), size_t(3));
        QCOMPARE(records[1].name, m.names[1]);
        QCOMPARE(records[1].data.length, payloadBytes(4, 16, records[1].codec, true));
    } else {
        expectError([&] { tensorRecords(manifest, size); }, ErrorKind::Corrupt, {expected});
    }
}

void TestContainer::novaqModelReader_data()
{
    QTest::addColumn<int>("rows");
    QTest::addColumn<int>("cols");
    QTest::addColumn<int>("subspaces");
    QTest::addColumn<bool>("colScale");
    QTest::newRow("4x16 K=1") << 4 << 16 << 1 << false;
    QTest::newRow("4x16 K=2 column scales") << 4 << 16 << 2 << true;
    QTest::newRow("3x20 K=2 partial last vector") << 3 << 20 << 2 << false;
}

void TestContainer::novaqModelReader()
{
    QFETCH(int, rows);
    QFETCH(int, cols);
    QFETCH(int, subspaces);
    QFETCH(bool, colScale);
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", rows, cols, subspaces, colScale);

    const std::unique_ptr<ModelReader> reader = openNovaqModel(m.path);
    QVERIFY(reader->format() == ModelFormat::Novaq);
    QCOMPARE(reader->files(), std::vector<std::filesystem::path>{m.path});
    QCOMPARE(reader->tensors().size(), m.names.size());
    QVERIFY(reader->metadata()["architecture"] == nlohmann::json("llama"));
    QVERIFY(reader->metadata()["config"] == m.manifest["config"]);
    QVERIFY(reader->metadata()["format_metadata"] == m.manifest["format_metadata"]);
    QVERIFY(reader->metadata()["novaq"]["settings"] == m.manifest["settings"]);
    QVERIFY(reader->metadata()["novaq"]["source"] == m.manifest["source"]);
    for (size_t t = 0; t < m.names.size(); ++t) {
        const TensorInfo& info = reader->tensors()[t];
        QCOMPARE(info.name, m.names[t]);
        QCOMPARE(info.shape, m.shapes[t]);
        QVERIFY(info.dtype == DType::F32);
        QCOMPARE(info.offset, m.records[t].data.offset);
        QCOMPARE(info.nbytes, m.records[t].data.length);
        std::vector<float> out(m.values[t].size());
        reader->readFloat(t, out);
        QCOMPARE(out, m.values[t]);
        QCOMPARE(reader->rawBytes(t).size(), size_t(m.records[t].data.length));
        reader->release(t);
    }
    std::vector<float> wrongSize(3);
    expectError([&] { reader->readFloat(1, wrongSize); }, ErrorKind::InvalidArgument, {"buffer"});

    // openModel recognizes .novaq files by content.
    const std::unique_ptr<ModelReader> viaTable = openModel(m.path);
    QVERIFY(viaTable->format() == ModelFormat::Novaq);
    QCOMPARE(viaTable->tensors().size(), m.names.size());
}

void TestContainer::flippedSectionNamesTensor()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, false);
    std::vector<char> bytes = readAll(m.path);
    bytes[m.records[1].data.offset + 5] ^= 0x01;
    writeAll(m.path, bytes);
    const std::unique_ptr<ModelReader> reader = openNovaqModel(m.path); // structure still fine
    std::vector<float> out(m.values[1].size());
    expectError([&] { reader->readFloat(1, out); }, ErrorKind::Corrupt,
                {"checksum mismatch", QString::fromStdString(m.names[1]), QString::fromStdString(m.path.string())});
    std::vector<float> norm(16);
    reader->readFloat(0, norm); // other tensors still read
    QCOMPARE(norm, m.values[0]);
}

void TestContainer::exportSafetensors_data()
{
    QTest::addColumn<bool>("half");
    QTest::newRow("F32") << false;
    QTest::newRow("F16") << true;
}

void TestContainer::exportSafetensors()
{
    QFETCH(bool, half);
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, true);
    const auto out = toPath(dir.path()) / "exported.safetensors";
    RecordingSink sink;
    novaq::exportSafetensors(m.path, out, half ? DType::F16 : DType::F32, &sink, nullptr);
    QVERIFY(noPartialFiles(out.parent_path()));

    QVERIFY(!sink.kinds.empty());
    QVERIFY(sink.kinds.front() == ProgressEvent::Kind::JobStarted);
    QVERIFY(sink.kinds.back() == ProgressEvent::Kind::JobFinished);
    QCOMPARE(std::count(sink.kinds.begin(), sink.kinds.end(), ProgressEvent::Kind::TensorStarted), 3);
    QCOMPARE(sink.finished, m.names);

    const std::unique_ptr<ModelReader> reader = openModel(out);
    QVERIFY(reader->format() == ModelFormat::Safetensors);
    QCOMPARE(reader->tensors().size(), m.names.size());
    QVERIFY(reader->metadata()["format_metadata"]["format"] == nlohmann::json("pt"));
    QVERIFY(reader->metadata()["format_metadata"]["exported_by"] == nlohmann::json("novaq-studio"));
    for (size_t t = 0; t < m.names.size(); ++t) {
        const TensorInfo& info = reader->tensors()[t];
        QCOMPARE(info.name, m.names[t]);
        QCOMPARE(info.shape, m.shapes[t]);
        QVERIFY(info.dtype == (half ? DType::F16 : DType::F32));
        std::vector<float> values(m.values[t].size());
        reader->readFloat(t, values);
        std::vector<float> expected = m.values[t];
        if (half)
            for (float& x : expected)
                x = halfToFloat(floatToHalf(x));
        QCOMPARE(values, expected);
    }

    // Header layout: 8-byte length, "__metadata__" first, padded to 8, offsets back to back.
    const std::vector<char> bytes = readAll(out);
    const uint64_t headerLength = getU64(bytes, 0);
    QCOMPARE(headerLength % 8, uint64_t(0));
    const std::string header(bytes.data() + 8, headerLength);
    QVERIFY(header.rfind("{\"__metadata__\":", 0) == 0);
    const nlohmann::ordered_json h = nlohmann::ordered_json::parse(header);
    uint64_t end = 0;
    for (const auto& [name, entry] : h.items()) {
        if (name == "__metadata__")
            continue;
        QCOMPARE(entry["data_offsets"][0].get<uint64_t>(), end);
        end = entry["data_offsets"][1].get<uint64_t>();
    }
    QCOMPARE(uint64_t(bytes.size()), 8 + headerLength + end);
}

void TestContainer::exportRefuses()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 1, false);
    expectError([&] { novaq::exportSafetensors(m.path, m.path, DType::F32, nullptr, nullptr); },
                ErrorKind::InvalidArgument, {"input"});
    expectError([&] { novaq::exportSafetensors(m.path, toPath(dir.path()) / "o", DType::BF16, nullptr, nullptr); },
                ErrorKind::InvalidArgument, {"BF16", "F32 or F16"});
    NovaqFile file(m.path); // the input is untouched
    QVERIFY(!std::filesystem::exists(toPath(dir.path()) / "o"));
}

void TestContainer::exportCancelled()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 1, false);
    const auto out = toPath(dir.path()) / "out.safetensors";
    writeAll(out, std::string("previous export"));

    // Cancel after the first tensor finished: the half-written file must vanish.
    struct CancelAfterFirst : ProgressSink {
        CancelToken token;
        void onEvent(const ProgressEvent& event) override
        {
            if (event.kind == ProgressEvent::Kind::TensorFinished)
                token.cancel();
        }
    } sink;
    expectError([&] { novaq::exportSafetensors(m.path, out, DType::F32, &sink, &sink.token); }, ErrorKind::Cancelled,
                {"cancelled"});
    QVERIFY(noPartialFiles(out.parent_path()));
    const std::vector<char> old = readAll(out);
    QCOMPARE(std::string(old.begin(), old.end()), std::string("previous export"));
}

void TestContainer::safetensorsWriterOrder()
{
    QTemporaryDir dir;
    const auto out = toPath(dir.path()) / "w.safetensors";
    std::vector<SafetensorsWriter::Entry> entries = {{"a", {2}, DType::F32}, {"b", {1, 3}, DType::BF16}};
    {
        SafetensorsWriter writer(out, entries, {});
        const std::vector<float> two = {1, 2}, three = {1, 2, 3};
        expectError([&] { writer.writeTensor(1, three); }, ErrorKind::InvalidArgument, {"order"});
        expectError([&] { writer.writeTensor(0, three); }, ErrorKind::InvalidArgument, {"'a'"});
        writer.writeTensor(0, two);
        expectError([&] { writer.commit(); }, ErrorKind::InvalidArgument, {"1 of 2"});
    }
    QVERIFY(!std::filesystem::exists(out));
    QVERIFY(noPartialFiles(out.parent_path()));

    {
        SafetensorsWriter writer(out, entries, {});
        writer.writeTensor(0, std::vector<float>{1.5f, -2});
        writer.writeTensor(1, std::vector<float>{0.5f, 3, -7});
        writer.commit();
    }
    const std::unique_ptr<ModelReader> reader = openModel(out);
    QCOMPARE(reader->tensors().size(), size_t(2));
    QVERIFY(reader->tensors()[1].dtype == DType::BF16);
    std::vector<float> b(3);
    reader->readFloat(1, b);
    QCOMPARE(b, (std::vector<float>{0.5f, 3, -7}));

    expectError([&] { SafetensorsWriter w(out, {{"x", {1}, DType::I32}}, {}); }, ErrorKind::InvalidArgument, {"I32"});
    expectError(
        [&] {
            SafetensorsWriter w(out, {{"x", {1}, DType::F32}, {"x", {1}, DType::F32}}, {});
        },
        ErrorKind::InvalidArgument, {"twice"});
}

void TestContainer::validateGood()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, true);
    RecordingSink sink;
    const ValidateReport report = validateNovaq(m.path, std::nullopt, &sink, nullptr);
    QVERIFY(report.ok);
    QCOMPARE(report.major, kNovaqMajor);
    QCOMPARE(report.tensorCount, size_t(3));
    QCOMPARE(report.tensors.size(), size_t(3));
    QVERIFY(report.problems.empty());
    for (const TensorCheck& c : report.tensors) {
        QVERIFY2(c.ok, c.problem.c_str());
        QVERIFY(!c.recomputedRelError);
    }
    QCOMPARE(sink.finished, m.names);
    QVERIFY(sink.kinds.back() == ProgressEvent::Kind::JobFinished);

    CancelToken cancel;
    cancel.cancel();
    expectError([&] { validateNovaq(m.path, std::nullopt, nullptr, &cancel); }, ErrorKind::Cancelled, {"cancelled"});
}

void TestContainer::validateFlippedSection()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, false);
    std::vector<char> bytes = readAll(m.path);
    bytes[m.records[1].data.offset + m.records[1].data.length - 1] ^= 0x40;
    writeAll(m.path, bytes);
    const ValidateReport report = validateNovaq(m.path, std::nullopt, nullptr, nullptr);
    QVERIFY(!report.ok);
    QCOMPARE(report.tensors.size(), size_t(3));
    QVERIFY(report.tensors[0].ok);
    QVERIFY(!report.tensors[1].ok);
    QCOMPARE(report.tensors[1].name, m.names[1]);
    QVERIFY(report.tensors[1].problem.find(m.names[1]) != std::string::npos);
    QVERIFY(report.tensors[1].problem.find("checksum") != std::string::npos);
    QVERIFY(report.tensors[2].ok);
}

void TestContainer::validateStructureProblem()
{
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, false);
    std::vector<char> bytes = readAll(m.path);
    bytes.resize(bytes.size() - 1);
    writeAll(m.path, bytes);
    const ValidateReport report = validateNovaq(m.path, std::nullopt, nullptr, nullptr);
    QVERIFY(!report.ok);
    QCOMPARE(report.problems.size(), size_t(1));
    QVERIFY(report.problems[0].find("truncated") != std::string::npos);
}

void TestContainer::validateMissingFile()
{
    QTemporaryDir dir;
    expectError([&] { validateNovaq(toPath(dir.path()) / "none.novaq", std::nullopt, nullptr, nullptr); },
                ErrorKind::Io, {"none.novaq"});
}

void TestContainer::validateAgainst_data()
{
    QTest::addColumn<double>("bias");
    QTest::addColumn<bool>("ok");
    QTest::newRow("recorded error matches") << 0.0 << true;
    QTest::newRow("recorded error off by 1%") << 0.01 << false;
}

void TestContainer::validateAgainst()
{
    QFETCH(double, bias);
    QFETCH(bool, ok);
    QTemporaryDir dir;
    const TestModel m = writeTestModel(toPath(dir.path()) / "m.novaq", 4, 16, 2, true, bias);
    const auto source = toPath(dir.path()) / "source.safetensors";
    writeSourceModel(m, source);
    const ValidateReport report = validateNovaq(m.path, source, nullptr, nullptr);
    QCOMPARE(report.ok, ok);
    QCOMPARE(report.tensors.size(), size_t(3));
    for (size_t t = 0; t < 3; ++t) {
        QVERIFY(report.tensors[t].recomputedRelError.has_value());
        QCOMPARE(report.tensors[t].ok, t == 1 ? ok : true);
    }
    QVERIFY(std::abs(*report.tensors[1].recomputedRelError - relError(m.original, m.values[1])) < 1e-9);
    QCOMPARE(*report.tensors[0].recomputedRelError, 0.0);
    if (!ok)
        QVERIFY(report.tensors[1].problem.find("recomputed") != std::string::npos);

    // A tensor missing from the source is a problem of that tensor.
    const auto partial = toPath(dir.path()) / "partial.safetensors";
    writeAll(partial,
             novaq::test::makeSafetensors(R"({"model.norm.weight":{"dtype":"F32","shape":[16],"data_offsets":[0,64]}})",
                                          std::string(reinterpret_cast<const char*>(m.values[0].data()), 64)));
    const ValidateReport missing = validateNovaq(m.path, partial, nullptr, nullptr);
    QVERIFY(!missing.ok);
    QVERIFY(missing.tensors[0].ok);
    QVERIFY(!missing.tensors[1].ok);
    QVERIFY(missing.tensors[1].problem.find("not in the source") != std::string::npos);
}

QTEST_APPLESS_MAIN(TestContainer)
#include "test_container.moc"
