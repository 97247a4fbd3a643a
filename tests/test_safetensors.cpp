// The safetensors reader: values round-trip, the demo model opens, every malformed header
// is rejected with a message naming the file and the field or tensor, and sharded
// checkpoints are checked against their index.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/safetensors_reader.h"
#include "novaq/io/error.h"
#include "novaq/tensor/dtype.h"

#include <QTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

using novaq::test::f32Bytes;
using novaq::test::failureOf;
using novaq::test::indexByName;
using novaq::test::le;
using novaq::test::makeSafetensors;
using novaq::test::readTensor;
using novaq::test::toPath;
using novaq::test::writeAll;
namespace fs = std::filesystem;

namespace {

std::string u16Bytes(std::initializer_list<uint16_t> values)
{
    std::string out;
    for (uint16_t v : values)
        out += le(v, 2);
    return out;
}

// A file whose 8-byte header length is given as is (not derived from the header).
std::string rawFile(uint64_t headerLength, const std::string& rest) { return le(headerLength, 8) + rest; }

QByteArray toQBytes(const std::string& s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }

#define QCOMPARE_JSON(actual, expected)                                                                                \
    QVERIFY2((actual) == (expected), qPrintable(QString::fromStdString((actual).dump() + " != " + (expected).dump())))

const char* kTensorA = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void roundTripValues();
    void emptyHeaderIsValid();
    void configBesideFile();
    void malformedConfigIsNamed();
    void demoModel();
    void sniffer_data();
    void sniffer();
    void corruption_data();
    void corruption();
    void sharded();
    void shardedBroken_data();
    void shardedBroken();
};

void TestSafetensors::roundTripValues()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string header = R"({"__metadata__":{"format":"pt"},)"
                               R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                               R"("h":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
                               R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[32,36]},)"
                               R"("scalar":{"dtype":"F32","shape":[],"data_offsets":[36,40]},)"
                               R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[40,40]}})";
    const std::string data = f32Bytes({1.0f, -2.5f, 3.0f, 0.125f, -0.0f, 1e-3f}) +
                             u16Bytes({0x3C00, 0xC000, 0x7BFF, 0x0001}) + u16Bytes({0x3F80, 0x4049}) +
                             f32Bytes({42.0f});
    const std::string file = makeSafetensors(header, data);
    const fs::path path = toPath(dir.filePath("model.safetensors"));
    writeAll(path, file);
    const uint64_t dataStart = file.size() - data.size();

    auto reader = novaq::openSafetensors(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Safetensors);
    QCOMPARE(reader->files().size(), size_t(1));
    QCOMPARE(reader->files()[0], path);
    const auto& tensors = reader->tensors();
    QCOMPARE(tensors.size(), size_t(5));

    // In file offset order, with absolute offsets.
    const char* names[] = {"w", "h", "b", "scalar", "empty"};
    const uint64_t begins[] = {0, 24, 32, 36, 40};
    for (size_t i = 0; i < 5; ++i) {
        QCOMPARE(tensors[i].name, std::string(names[i]));
        QCOMPARE(tensors[i].offset, dataStart + begins[i]);
        QCOMPARE(tensors[i].fileIndex, 0u);
    }
    QCOMPARE(tensors[0].shape, (std::vector<int64_t>{2, 3}));
    QCOMPARE(tensors[0].dtype, novaq::DType::F32);
    QCOMPARE(tensors[1].dtype, novaq::DType::F16);
    QCOMPARE(tensors[2].dtype, novaq::DType::BF16);
    QVERIFY(tensors[3].shape.empty());
    QCOMPARE(tensors[3].numel(), int64_t(1));
    QCOMPARE(tensors[4].numel(), int64_t(0));
    QCOMPARE(tensors[4].nbytes, uint64_t(0));
    QCOMPARE(reader->tensorBytes(), uint64_t(data.size()));

    std::vector<float> w(6);
    reader->readFloat(0, w);
    QCOMPARE(w, (std::vector<float>{1.0f, -2.5f, 3.0f, 0.125f, -0.0f, 1e-3f}));
    std::vector<float> h(4);
    reader->readFloat(1, h);
    QCOMPARE(h, (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));
    std::vector<float> b(2);
    reader->readFloat(2, b);
    QCOMPARE(b, (std::vector<float>{1.0f, 3.140625f}));
    std::vector<float> scalar(1);
    reader->readFloat(3, scalar);
    QCOMPARE(scalar[0], 42.0f);
    std::vector<float> empty;
    reader->readFloat(4, empty);

    const auto raw = reader->rawBytes(1);
    QCOMPARE(raw.size(), size_t(8));
    QVERIFY(std::memcmp(raw.data(), data.data() + 24, 8) == 0);
    QVERIFY(reader->rawBytes(4).empty());
    for (size_t i = 0; i < tensors.size(); ++i)
        reader->release(i);
    reader->readFloat(0, w); // released pages come back from the file
    QCOMPARE(w[1], -2.5f);

    // A wrong output size and a bad index are caller errors, named.
    std::vector<float> wrong(5);
    const auto sizeFailure = failureOf([&] { reader->readFloat(0, wrong); });
    QVERIFY(sizeFailure);
    QCOMPARE(sizeFailure->kind, novaq::ErrorKind::InvalidArgument);
    QVERIFY2(sizeFailure->message.contains("\"w\""), qPrintable(sizeFailure->message));
    QVERIFY(failureOf([&] { reader->rawBytes(99); }));

    const nlohmann::json& meta = reader->metadata();
    QCOMPARE_JSON(meta.at("format_metadata"), nlohmann::json({{"format", "pt"}}));
    QVERIFY(meta.at("config").is_null());
    QCOMPARE(reader->architecture(), std::string("unknown"));
}

void TestSafetensors::emptyHeaderIsValid()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("nothing.safetensors"));
    writeAll(path, makeSafetensors("{}", ""));
    auto reader = novaq::openSafetensors(path);
    QVERIFY(reader->tensors().empty());
    QCOMPARE(reader->tensorBytes(), uint64_t(0));
    QCOMPARE_JSON(reader->metadata().at("format_metadata"), nlohmann::json::object());
}

void TestSafetensors::configBesideFile()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("weights.safetensors"));
    writeAll(path, makeSafetensors(std::string("{") + kTensorA + "}", f32Bytes({1, 2})));
    writeAll(toPath(dir.filePath("config.json")), std::string(R"({"model_type":"mistral","hidden_size":8})"));
    auto reader = novaq::openSafetensors(path);
    QCOMPARE_JSON(reader->metadata().at("config").at("hidden_size"), nlohmann::json(8));
    QCOMPARE_JSON(reader->metadata().at("architecture"), nlohmann::json("mistral"));
    QCOMPARE(reader->architecture(), std::string("mistral"));
}

void TestSafetensors::malformedConfigIsNamed()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("weights.safetensors"));
    writeAll(path, makeSafetensors(std::string("{") + kTensorA + "}", f32Bytes({1, 2})));
    writeAll(toPath(dir.filePath("config.json")), std::string(R"({"model_type": llama})"));
    const auto failure = failureOf([&] { novaq::openSafetensors(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains("config.json"), qPrintable(failure->message));
    QVERIFY2(failure->message.contains("near byte 15"), qPrintable(failure->message));
}

void TestSafetensors::demoModel()
{
    const fs::path folder = novaq::test::demoModelDir();
    const fs::path file = folder / "model.safetensors";
    QVERIFY2(fs::exists(file), qPrintable(QString::fromStdString(file.string())));

    auto reader = novaq::openModel(folder);
    QCOMPARE(reader->format(), novaq::ModelFormat::Safetensors);
    const auto& tensors = reader->tensors();
    // 6 layers x 9 tensors (4 attention, 3 MLP, 2 norms) + embeddings, final norm, lm_head.
    QCOMPARE(tensors.size(), size_t(57));
    QCOMPARE(reader->architecture(), std::string("llama"));
    QVERIFY(reader->metadata().at("config").is_object());
    QCOMPARE_JSON(reader->metadata().at("config").at("hidden_size"), nlohmann::json(256));
    QCOMPARE_JSON(reader->metadata().at("format_metadata").at("format"), nlohmann::json("pt"));

    // Offsets increase and the tensors fill the data exactly.
    uint64_t sum = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (i > 0)
            QCOMPARE(tensors[i].offset, tensors[i - 1].offset + tensors[i - 1].nbytes);
        sum += tensors[i].nbytes;
    }
    QCOMPARE(tensors.back().offset + tensors.back().nbytes, uint64_t(fs::file_size(file)));
    QCOMPARE(reader->tensorBytes(), sum);

    bool sawEmbedding = false;
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (tensors[i].name != "model.embed_tokens.weight")
            continue;
        sawEmbedding = true;
        QCOMPARE(tensors[i].shape, (std::vector<int64_t>{4096, 256}));
        QCOMPARE(tensors[i].dtype, novaq::DType::F16);
        std::vector<float> values(static_cast<size_t>(tensors[i].numel()));
        reader->readFloat(i, values);
        double sumSquares = 0;
        for (float v : values) {
            QVERIFY(std::isfinite(v));
            sumSquares += double(v) * v;
        }
        QVERIFY(sumSquares > 0);
    }
    QVERIFY(sawEmbedding);

    // The file itself opens the same way.
    auto direct = novaq::openModel(file);
    QCOMPARE(direct->tensors().size(), tensors.size());
    QCOMPARE(novaq::detectFileFormat(file), novaq::ModelFormat::Safetensors);
}

void TestSafetensors::sniffer_data()
{
    QTest::addColumn<QByteArray>("head");
    QTest::addColumn<quint64>("fileSize");
    QTest::addColumn<bool>("isSafetensors");
    const std::string good = makeSafetensors("{}", "");
    QTest::newRow("minimal file") << toQBytes(good) << quint64(good.size()) << true;
    QTest::newRow("too short") << QByteArray("\x02\0\0\0\0\0\0\0", 8) << quint64(8) << false;
    QTest::newRow("header past end") << toQBytes(rawFile(100, "{}")) << quint64(10) << false;
    QTest::newRow("no brace") << toQBytes(rawFile(2, "[]")) << quint64(10) << false;
    QTest::newRow("GGUF magic") << QByteArray("GGUF\x03\0\0\0\0\0\0\0", 12) << quint64(1000) << false;
    QTest::newRow("text") << QByteArray("hello, world") << quint64(12) << false;
}

void TestSafetensors::sniffer()
{
    QFETCH(QByteArray, head);
    QFETCH(quint64, fileSize);
    QFETCH(bool, isSafetensors);
    const auto* bytes = reinterpret_cast<const std::byte*>(head.constData());
    QCOMPARE(novaq::sniffSafetensors({bytes, static_cast<size_t>(head.size())}, fileSize), isSafetensors);
}

void TestSafetensors::corruption_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QString>("expected"); // a substring of the message
    QTest::addColumn<QString>("field");    // the field or tensor the message must name

    auto row = [](const char* name, const std::string& file, const QString& expected, const QString& field) {
        QTest::newRow(name) << toQBytes(file) << expected << field;
    };
    auto one = [](const std::string& entry) { return "{\"w\":" + entry + "}"; };
    const std::string eight = f32Bytes({1, 2});

    row("file shorter than 8 bytes", "abc", "shorter than the 8-byte", "header length");
    row("header length past end of file", rawFile(1000, "{}"), "runs past the end of the file", "header length");
    row("header length over 100 MB", rawFile(200'000'000, "{}"), "exceeds the limit", "header length");
    // A good file cut short at each of its parts (read through io/byte_cursor.h).
    const std::string good = makeSafetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), eight);
    const std::string goodHeaderBytes = std::to_string(good.size() - 8 - 8);
    row("cut inside the header length", good.substr(0, 5), "the file is 5 bytes, shorter than the 8-byte",
        "header length");
    row("cut inside the JSON header", good.substr(0, 8 + 10),
        QString::fromStdString("header length " + goodHeaderBytes +
                               " (file offset 0) runs past the end of the file (18 bytes)"),
        "header length");
    row("cut at the end of the JSON header", good.substr(0, good.size() - 8),
        "ends at file offset " + QString::number(good.size()) + ", past the end of the file (" +
            QString::number(good.size() - 8) + " bytes)",
        "data_offsets");
    row("cut inside the tensor data", good.substr(0, good.size() - 2),
        "ends at file offset " + QString::number(good.size()) + ", past the end of the file (" +
            QString::number(good.size() - 2) + " bytes)",
        "\"w\"");
    row("header not starting with brace", makeSafetensors("[1,2]", ""), "does not start with '{'", "header");
    row("header not JSON", makeSafetensors("{nope", ""), "not valid JSON in UTF-8: error near byte 2",
        "file offset 10");
    row("header not UTF-8", makeSafetensors("{\"w\xff\":1}", ""), "not valid JSON in UTF-8", "header");
    row("duplicate tensor name",
        makeSafetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        eight),
        "appears twice", "\"w\"");
    row("duplicate field in a tensor",
        makeSafetensors(one(R"({"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]})"), eight),
        "\"dtype\" appears twice inside \"w\"", "dtype");
    row("__metadata__ not an object", makeSafetensors(R"({"__metadata__":[1]})", ""), "must be an object",
        "__metadata__");
    row("__metadata__ value not a string", makeSafetensors(R"({"__metadata__":{"format":1}})", ""), "must be a string",
        "\"format\"");
    row("tensor not an object", makeSafetensors(one("5"), ""), "must be an object", "\"w\"");
    row("tensor with an unknown field",
        makeSafetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"foo":1})"), eight), "unexpected field",
        "\"foo\"");
    row("missing dtype", makeSafetensors(one(R"({"shape":[2],"data_offsets":[0,8]})"), eight), "missing field",
        "\"dtype\"");
    row("missing shape", makeSafetensors(one(R"({"dtype":"F32","data_offsets":[0,8]})"), eight), "missing field",
        "\"shape\"");
    row("missing data_offsets", makeSafetensors(one(R"({"dtype":"F32","shape":[2]})"), eight), "missing field",
        "\"data_offsets\"");
    row("dtype not a string", makeSafetensors(one(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})"), eight),
        "must be a string", "dtype");
    row("unknown dtype names supported ones",
        makeSafetensors(one(R"({"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]})"), eight),
        "is not supported (supported: F32, F16, BF16", "F8_E4M3");
    row("shape not an array", makeSafetensors(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), eight),
        "must be an array", "shape");
    row("negative dimension", makeSafetensors(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), eight),
        "must be a non-negative integer", "shape[0]");
    row("fractional dimension", makeSafetensors(one(R"({"dtype":"F32","shape":[2,1.5],"data_offsets":[0,8]})"), eight),
        "must be a non-negative integer", "shape[1]");
    row("rank 9", makeSafetensors(one(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]})"), eight),
        "rank 9", "shape");
    row("element count overflows",
        makeSafetensors(one(R"({"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]})"), eight),
        "more elements than fit in 64 bits", "shape");
    row("byte count overflows",
        makeSafetensors(one(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]})"), eight),
        "needs more bytes than fit in 64 bits", "shape");
    row("data_offsets with one number",
        makeSafetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8]})"), eight), "must be [begin, end]",
        "data_offsets");
    row("negative data_offsets", makeSafetensors(one(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), eight),
        "must be [begin, end]", "data_offsets");
    row("begin after end", makeSafetensors(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})"), eight),
        "begins after it ends", "data_offsets");
    row("size does not match shape", makeSafetensors(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), eight),
        "spans 8 bytes, but shape [3] of F32 needs 12 bytes", "data_offsets");
    row("offsets out of bounds", makeSafetensors(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), eight),
        "past the end of the file", "data_offsets");
    row("overlapping tensors",
        makeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        f32Bytes({1, 2, 3})),
        "\"a\" (data_offsets [0, 8]) and \"b\" (data_offsets [4, 12]) overlap", "data_offsets");
    row("hole between tensors",
        makeSafetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                        f32Bytes({1, 2, 3})),
        "belong to no tensor: a hole between tensor \"a\" and tensor \"b\"", "data_offsets");
    row("hole before the first tensor",
        makeSafetensors(one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), eight), "before the first tensor",
        "\"w\"");
    row("trailing bytes", makeSafetensors(one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})"), eight),
        "4 trailing bytes", "\"w\"");
    row("data but no tensors", makeSafetensors("{}", eight), "8 trailing bytes", "lists no tensors");
}

void TestSafetensors::corruption()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QString, expected);
    QFETCH(QString, field);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path path = toPath(dir.filePath("broken-model.safetensors"));
    writeAll(path, std::vector<char>(bytes.begin(), bytes.end()));

    const auto check = [&](const std::function<void()>& open) {
        const auto failure = failureOf(open);
        QVERIFY2(failure, "the file was accepted");
        QVERIFY2(failure->kind == novaq::ErrorKind::InvalidInput, qPrintable(failure->message));
        QVERIFY2(failure->message.contains("broken-model.safetensors"), qPrintable(failure->message));
        QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
        QVERIFY2(failure->message.contains(field), qPrintable(failure->message));
    };
    check([&] { novaq::openSafetensors(path); });
    if (QTest::currentTestFailed())
        return;
    check([&] { novaq::openModel(path); }); // by extension, the damaged file reaches the reader
    if (QTest::currentTestFailed())
        return;
    check([&] { novaq::openModel(path.parent_path()); });
}

namespace {

struct ShardedCheckpoint {
    fs::path folder;
    fs::path index;
};

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// Two shards: shard 1 holds "a" (2 x F32) and "c" (F16 [2]); shard 2 holds "b" (F32 [1]) and,
// optionally, a second copy of "a".
ShardedCheckpoint writeSharded(const QTemporaryDir& dir, const std::string& weightMap, bool shard2HasA = false)
{
    const fs::path folder = toPath(dir.path());
    writeAll(folder / kShard1, makeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                               R"("c":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}})",
                                               f32Bytes({1.0f, 2.0f}) + u16Bytes({0x3C00, 0xC000})));
    if (shard2HasA)
        writeAll(folder / kShard2, makeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                                   f32Bytes({1.0f, 2.0f, 3.0f})));
    else
        writeAll(folder / kShard2,
                 makeSafetensors(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32Bytes({3.0f})));
    const fs::path index = folder / "model.safetensors.index.json";
    writeAll(index, R"({"metadata":{"total_size":24},"weight_map":)" + weightMap + "}");
    return {folder, index};
}

std::string goodWeightMap()
{
    return std::string(R"({"b":")") + kShard2 + R"(","a":")" + kShard1 + R"(","c":")" + kShard1 + R"("})";
}

} // namespace

void TestSafetensors::sharded()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const ShardedCheckpoint checkpoint = writeSharded(dir, goodWeightMap());
    writeAll(checkpoint.folder / "config.json", std::string(R"({"model_type":"llama"})"));

    for (const fs::path& target : {checkpoint.folder, checkpoint.index}) {
        auto reader = novaq::openModel(target);
        QCOMPARE(reader->format(), novaq::ModelFormat::Safetensors);
        QCOMPARE(reader->files().size(), size_t(2));
        QCOMPARE(reader->files()[0].filename().string(), std::string(kShard1));
        QCOMPARE(reader->files()[1].filename().string(), std::string(kShard2));
        const auto& tensors = reader->tensors();
        QCOMPARE(tensors.size(), size_t(3));
        QCOMPARE(tensors[0].name, std::string("a")); // shard order, then offset
        QCOMPARE(tensors[1].name, std::string("c"));
        QCOMPARE(tensors[2].name, std::string("b"));
        QCOMPARE(tensors[0].fileIndex, 0u);
        QCOMPARE(tensors[1].fileIndex, 0u);
        QCOMPARE(tensors[2].fileIndex, 1u);
        std::vector<float> a(2), c(2), b(1);
        reader->readFloat(0, a);
        reader->readFloat(1, c);
        reader->readFloat(2, b);
        QCOMPARE(a, (std::vector<float>{1.0f, 2.0f}));
        QCOMPARE(c, (std::vector<float>{1.0f, -2.0f}));
        QCOMPARE(b, (std::vector<float>{3.0f}));
        QCOMPARE(reader->tensorBytes(), uint64_t(16));
        QCOMPARE(reader->architecture(), std::string("llama"));
        QCOMPARE_JSON(reader->metadata().at("index_metadata").at("total_size"), nlohmann::json(24));
    }
}

void TestSafetensors::shardedBroken_data()
{
    QTest::addColumn<QString>("weightMap");
    QTest::addColumn<bool>("shard2HasA");
    QTest::addColumn<bool>("removeShard2");
    QTest::addColumn<int>("kind");
    QTest::addColumn<QStringList>("expected");

    const int invalid = int(novaq::ErrorKind::InvalidInput);
    const QString s1 = kShard1;
    const QString s2 = kShard2;
    auto map = [](const QString& a, const QString& b, const QString& c) {
        return QStringLiteral(R"({"a":"%1","b":"%2","c":"%3"})").arg(a, b, c);
    };
    QTest::newRow("tensor put in the wrong shard")
        << map(s1, s1, s1) << false << false << invalid << QStringList{"\"b\"", "weight_map", s1, "does not hold it"};
    QTest::newRow("weight_map lists a tensor no shard holds")
        << QStringLiteral(R"({"a":"%1","b":"%2","c":"%1","z":"%2"})").arg(s1, s2) << false << false << invalid
        << QStringList{"\"z\"", "does not hold it"};
    QTest::newRow("shard holds a tensor the weight_map omits")
        << QStringLiteral(R"({"a":"%1","b":"%2"})").arg(s1, s2) << false << false << invalid
        << QStringList{"\"c\"", "does not list", s1};
    QTest::newRow("tensor stored in two shards")
        << map(s1, s2, s1) << true << false << invalid << QStringList{"\"a\"", "stored twice", s1, s2};
    QTest::newRow("missing shard file") << map(s1, s2, s1) << false << true << int(novaq::ErrorKind::Io)
                                        << QStringList{s2, "missing", "\"b\""};
    QTest::newRow("shard outside the folder with ..") << map(s1, "../evil.safetensors", s1) << false << false << invalid
                                                      << QStringList{"../evil.safetensors", "refusing"};
    QTest::newRow("absolute shard path") << map(s1, "/etc/passwd", s1) << false << false << invalid
                                         << QStringList{"/etc/passwd", "refusing"};
    QTest::newRow("shard in a subfolder") << map(s1, "sub/x.safetensors", s1) << false << false << invalid
                                          << QStringList{"sub/x.safetensors", "not a plain file name"};
    QTest::newRow("shard name not a string") << QStringLiteral(R"({"a":1})") << false << false << invalid
                                             << QStringList{"weight_map[\"a\"]", "shard file name"};
    QTest::newRow("duplicate weight_map key")
        << QStringLiteral(R"({"a":"%1","a":"%1","b":"%2","c":"%1"})").arg(s1, s2) << false << false << invalid
        << QStringList{"\"a\" appears twice inside \"weight_map\""};
    QTest::newRow("weight_map not an object")
        << QStringLiteral("[]") << false << false << invalid << QStringList{"weight_map", "must be an object"};
    QTest::newRow("index not JSON") << QStringLiteral("{") << false << false << invalid
                                    << QStringList{"not valid JSON in UTF-8"};
}

void TestSafetensors::shardedBroken()
{
    QFETCH(QString, weightMap);
    QFETCH(bool, shard2HasA);
    QFETCH(bool, removeShard2);
    QFETCH(int, kind);
    QFETCH(QStringList, expected);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const ShardedCheckpoint checkpoint = writeSharded(dir, weightMap.toStdString(), shard2HasA);
    if (removeShard2)
        fs::remove(checkpoint.folder / kShard2);

    for (const fs::path& target : {checkpoint.folder, checkpoint.index}) {
        const auto failure = failureOf([&] { novaq::openModel(target); });
        QVERIFY2(failure, "the checkpoint was accepted");
        QVERIFY2(int(failure->kind) == kind, qPrintable(failure->message));
        QVERIFY2(failure->message.contains("model.safetensors.index.json"), qPrintable(failure->message));
        for (const QString& part : expected)
            QVERIFY2(failure->message.contains(part), qPrintable(part + " missing in: " + failure->message));
    }
}

QTEST_APPLESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
