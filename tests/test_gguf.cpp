// The GGUF reader and the ggml dequantizers: every value type and the reversed dimension
// order round-trip through a small in-memory writer; each malformed input is rejected with
// a message naming the file and the field; the production dequantizers equal the scalar
// references on random blocks; and the real files in tests/data/models read, with the
// rows256 K-quant errors reproducing llama.cpp's own figures to the fourth digit.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/gguf_quants.h"
#include "novaq/formats/gguf_reader.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/tensor/dtype.h"

#include <QTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>

using nlohmann::json;
using novaq::test::f32Bytes;
using novaq::test::failureOf;
using novaq::test::indexByName;
using novaq::test::le;
using novaq::test::readTensor;
using novaq::test::toPath;
using novaq::test::writeAll;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------
// A small GGUF writer for tests: values are given as raw bytes so broken files are easy.

// GGUF metadata value types.
constexpr uint32_t kU8 = 0;
constexpr uint32_t kI8 = 1;
constexpr uint32_t kU16 = 2;
constexpr uint32_t kI16 = 3;
constexpr uint32_t kU32 = 4;
constexpr uint32_t kI32 = 5;
constexpr uint32_t kF32 = 6;
constexpr uint32_t kBool = 7;
constexpr uint32_t kString = 8;
constexpr uint32_t kArray = 9;
constexpr uint32_t kU64 = 10;
constexpr uint32_t kI64 = 11;
constexpr uint32_t kF64 = 12;

// ggml type ids used below.
constexpr uint32_t kTypeF32 = 0;
constexpr uint32_t kTypeF16 = 1;
constexpr uint32_t kTypeQ4_0 = 2;
constexpr uint32_t kTypeQ8_0 = 8;
constexpr uint32_t kTypeIq4Nl = 20;
constexpr uint32_t kTypeIq2Xxs = 16; // a type we list but do not dequantize
constexpr uint32_t kTypeBf16 = 30;

std::string str(std::string_view s) { return le(s.size(), 8) + std::string(s); }
std::string f32(float v) { return le(std::bit_cast<uint32_t>(v), 4); }
std::string f64(double v) { return le(std::bit_cast<uint64_t>(v), 8); }

struct GgufBuilder {
    std::string magic = "GGUF";
    uint32_t version = 3;
    std::optional<uint64_t> tensorCount; // overrides the number of tensor infos
    std::optional<uint64_t> kvCount;
    uint64_t alignment = 32; // used to pad; set general.alignment yourself to change the file's
    std::string kvs;
    uint64_t kvEntries = 0;
    std::string infos;
    uint64_t infoEntries = 0;
    std::string data;

    GgufBuilder& kv(std::string_view key, uint32_t type, const std::string& value)
    {
        kvs += str(key) + le(type, 4) + value;
        ++kvEntries;
        return *this;
    }
    GgufBuilder& kvString(std::string_view key, std::string_view value) { return kv(key, kString, str(value)); }
    GgufBuilder& kvU32(std::string_view key, uint32_t value) { return kv(key, kU32, le(value, 4)); }

    // A tensor info as given (ne in GGUF order, innermost first).
    GgufBuilder& info(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset)
    {
        infos += str(name) + le(ne.size(), 4);
        for (uint64_t d : ne)
            infos += le(d, 8);
        infos += le(type, 4) + le(offset, 8);
        ++infoEntries;
        return *this;
    }

    // A tensor info plus its bytes, appended to the data section at the next aligned offset.
    GgufBuilder& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, const std::string& bytes)
    {
        while (data.size() % alignment != 0)
            data.push_back('\0');
        info(name, std::move(ne), type, data.size());
        data += bytes;
        return *this;
    }

    std::string header() const
    {
        return magic + le(version, 4) + le(tensorCount.value_or(infoEntries), 8) + le(kvCount.value_or(kvEntries), 8);
    }

    std::string build() const
    {
        std::string out = header() + kvs + infos;
        while (out.size() % alignment != 0)
            out.push_back('\0');
        return out + data;
    }
};

QByteArray toQBytes(const std::string& s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); }

#define QCOMPARE_JSON(actual, expected)                                                                                \
    QVERIFY2((actual) == (expected), qPrintable(QString::fromStdString((actual).dump() + " != " + (expected).dump())))

// sqrt(sum (a-b)^2 / sum b^2) over the tensors of `a` with at least `minElements` elements
// that `reference` also holds (pooled over tensors). `compared` counts them.
double relativeRms(const novaq::ModelReader& a, const novaq::ModelReader& reference, int64_t minElements,
                   size_t& compared)
{
    const auto refIndex = indexByName(reference);
    double diff = 0;
    double norm = 0;
    compared = 0;
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const novaq::TensorInfo& t = a.tensors()[i];
        if (t.numel() < minElements)
            continue;
        const auto it = refIndex.find(t.name);
        if (it == refIndex.end() || reference.tensors()[it->second].shape != t.shape)
            continue;
        const std::vector<float> x = readTensor(a, i);
        const std::vector<float> y = readTensor(reference, it->second);
        for (size_t k = 0; k < x.size(); ++k) {
            const double d = static_cast<double>(x[k]) - static_cast<double>(y[k]);
            diff += d * d;
            norm += static_cast<double>(y[k]) * y[k];
        }
        ++compared;
    }
    return std::sqrt(diff / norm);
}

// Half-precision scale fields of each block type (byte offsets within a block).
struct BlockLayout {
    const char* name;
    std::vector<uint32_t> halfOffsets;
};

const std::vector<BlockLayout>& blockLayouts()
{
    static const std::vector<BlockLayout> kLayouts = {
        {"F32", {}},      {"F16", {0}},     {"BF16", {}},    {"Q4_0", {0}},      {"Q4_1", {0, 2}},
        {"Q5_0", {0}},    {"Q5_1", {0, 2}}, {"Q8_0", {0}},   {"Q2_K", {80, 82}}, {"Q3_K", {108}},
        {"Q4_K", {0, 2}}, {"Q5_K", {0, 2}}, {"Q6_K", {208}},
    };
    return kLayouts;
}

} // namespace

class TestGguf : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void typeTable();
    void roundTrip();
    void knownBlocks();
    void unsupportedTypeListsButDoesNotRead();
    void openedByContent();
    void bigEndianIsNamed();
    void malformed_data();
    void malformed();
    void blocksMatchReference_data();
    void blocksMatchReference();
    void realFilesRead_data();
    void realFilesRead();
    void rows256Error_data();
    void rows256Error();
    void variantsAgreeWithF32_data();
    void variantsAgreeWithF32();
    void kjvQ4KM();
    void compressEndToEnd();
};

void TestGguf::typeTable()
{
    // One row per type, ids unique; the supported float and block types are the list
    // (integer element types convert too, as plain numbers).
    QStringList supported;
    for (const novaq::GgmlTypeTraits& row : novaq::ggmlTypeTable()) {
        QCOMPARE(novaq::ggmlTypeTraits(row.id), &row);
        QCOMPARE(novaq::ggmlTypeByName(row.name), &row);
        QVERIFY(row.blockSize > 0 && row.blockBytes > 0);
        QCOMPARE(row.reference == nullptr, row.dequantize == nullptr);
        if (row.supported() && !(row.dtype && row.dtype != novaq::DType::F32 && row.dtype != novaq::DType::F16 &&
                                 row.dtype != novaq::DType::BF16))
            supported << QString::fromUtf8(row.name.data(), static_cast<qsizetype>(row.name.size()));
    }
    QCOMPARE(supported, QStringList({"F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
                                     "Q5_K", "Q6_K", "IQ4_NL", "BF16"}));
    QCOMPARE(novaq::ggmlTypeTraits(12)->blockBytes, 144u);
    QCOMPARE(novaq::ggmlTypeTraits(12)->blockSize, 256u);
    QCOMPARE(novaq::ggmlTypeTraits(14)->blockBytes, 210u);
    QCOMPARE(novaq::ggmlTypeTraits(8)->blockBytes, 34u);
    QVERIFY(novaq::ggmlTypeTraits(kTypeIq4Nl)->supported());
    QCOMPARE(novaq::ggmlTypeTraits(kTypeIq4Nl)->blockBytes, 18u);
    QVERIFY(!novaq::ggmlTypeTraits(kTypeIq2Xxs)->supported());
    QCOMPARE(novaq::ggmlTypeTraits(kTypeIq2Xxs)->blockBytes, 66u);
    QVERIFY(novaq::ggmlTypeTraits(4) == nullptr); // Q4_2, removed
    QVERIFY(novaq::ggmlTypeTraits(99) == nullptr);
}

void TestGguf::roundTrip()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());

    // A Q8_0 block: d = 0.5, qs = -16..15.
    std::string q8 = le(novaq::floatToHalf(0.5f), 2);
    for (int j = 0; j < 32; ++j)
        q8.push_back(static_cast<char>(j - 16));
    std::string w; // F32 ne = [3, 2]: two rows of three
    for (float v : {1.0f, 2.0f, 3.0f, -4.0f, 5.5f, -0.25f})
        w += f32(v);

    GgufBuilder b;
    b.alignment = 64;
    b.kvString("general.architecture", "llama")
        .kv("general.alignment", kU32, le(64, 4))
        .kv("v.u8", kU8, le(200, 1))
        .kv("v.i8", kI8, le(static_cast<uint8_t>(-5), 1))
        .kv("v.u16", kU16, le(65000, 2))
        .kv("v.i16", kI16, le(static_cast<uint16_t>(-300), 2))
        .kv("v.u32", kU32, le(4000000000u, 4))
        .kv("v.i32", kI32, le(static_cast<uint32_t>(-70000), 4))
        .kv("v.f32", kF32, f32(1.5f))
        .kv("v.bool", kBool, le(1, 1))
        .kvString("v.string", "h\xC3\xA9llo")
        .kv("v.u64", kU64, le(18000000000000000000ull, 8))
        .kv("v.i64", kI64, le(static_cast<uint64_t>(-9000000000ll), 8))
        .kv("v.f64", kF64, f64(-2.25))
        .kv("v.strings", kArray, le(kString, 4) + le(3, 8) + str("a") + str("") + str("<0x0A>"))
        .kv("v.floats", kArray, le(kF32, 4) + le(2, 8) + f32(0.5f) + f32(-1.0f))
        .kv("v.nested", kArray,
            le(kArray, 4) + le(2, 8) + le(kI32, 4) + le(2, 8) + le(1, 4) + le(2, 4) + le(kI32, 4) + le(0, 8))
        .kv("v.bad_utf8", kString,
            str("a\xFF"
                "b"))
        .tensor("w", {3, 2}, kTypeF32, w)
        .tensor("h", {4}, kTypeF16, le(0x3C00, 2) + le(0xC000, 2) + le(0x7BFF, 2) + le(0x0001, 2))
        .tensor("b", {2, 1, 1}, kTypeBf16, le(0x3F80, 2) + le(0x4049, 2))
        .tensor("q", {32, 1}, kTypeQ8_0, q8);
    const std::string file = b.build();
    const fs::path path = toPath(dir.filePath("model.gguf"));
    writeAll(path, file);

    auto reader = novaq::openGguf(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Gguf);
    QCOMPARE(reader->files(), std::vector<fs::path>{path});
    const auto& t = reader->tensors();
    QCOMPARE(t.size(), size_t(4));
    QCOMPARE(t[0].name, std::string("w"));
    QCOMPARE(t[0].shape, (std::vector<int64_t>{2, 3})); // GGUF ne reversed
    QCOMPARE(t[0].dtype, novaq::DType::F32);
    QVERIFY(t[0].storage.empty());
    QCOMPARE(t[0].nbytes, uint64_t(24));
    QCOMPARE(t[1].shape, (std::vector<int64_t>{4}));
    QCOMPARE(t[1].dtype, novaq::DType::F16);
    QCOMPARE(t[2].shape, (std::vector<int64_t>{1, 1, 2}));
    QCOMPARE(t[2].dtype, novaq::DType::BF16);
    QCOMPARE(t[3].shape, (std::vector<int64_t>{1, 32}));
    QCOMPARE(t[3].dtype, novaq::DType::F32);
    QCOMPARE(t[3].storage, std::string("Q8_0"));
    QCOMPARE(t[3].nbytes, uint64_t(34));

    // Offsets are absolute, aligned to general.alignment from the data section start.
    const uint64_t dataStart = file.size() - b.data.size();
    QCOMPARE(dataStart % 64, uint64_t(0));
    QCOMPARE(t[0].offset, dataStart);
    QCOMPARE(t[1].offset, dataStart + 64);
    QCOMPARE(t[3].offset, dataStart + 192);
    QCOMPARE(reader->tensorBytes(), uint64_t(24 + 8 + 4 + 34));

    QCOMPARE(readTensor(*reader, 0), (std::vector<float>{1.0f, 2.0f, 3.0f, -4.0f, 5.5f, -0.25f}));
    QCOMPARE(readTensor(*reader, 1), (std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)}));
    QCOMPARE(readTensor(*reader, 2), (std::vector<float>{1.0f, 3.140625f}));
    const std::vector<float> q = readTensor(*reader, 3);
    for (int j = 0; j < 32; ++j)
        QCOMPARE(q[static_cast<size_t>(j)], 0.5f * static_cast<float>(j - 16));

    const auto raw = reader->rawBytes(3);
    QCOMPARE(raw.size(), size_t(34));
    QVERIFY(std::memcmp(raw.data(), q8.data(), 34) == 0);
    for (size_t i = 0; i < t.size(); ++i)
        reader->release(i);
    QCOMPARE(readTensor(*reader, 0)[4], 5.5f);

    std::vector<float> wrong(5);
    const auto sizeFailure = failureOf([&] { reader->readFloat(0, wrong); });
    QVERIFY(sizeFailure);
    QCOMPARE(sizeFailure->kind, novaq::ErrorKind::InvalidArgument);
    QVERIFY(failureOf([&] { reader->rawBytes(4); }));

    const json& meta = reader->metadata();
    QCOMPARE_JSON(meta.at("architecture"), json("llama"));
    QCOMPARE(reader->architecture(), std::string("llama"));
    QVERIFY(meta.at("config").is_null());
    QCOMPARE_JSON(meta.at("gguf_version"), json(3));
    const json& kv = meta.at("format_metadata");
    QCOMPARE(kv.size(), size_t(18));
    QCOMPARE_JSON(kv.at("general.alignment"), json(64));
    QCOMPARE_JSON(kv.at("v.u8"), json(200));
    QCOMPARE_JSON(kv.at("v.i8"), json(-5));
    QCOMPARE_JSON(kv.at("v.u16"), json(65000));
    QCOMPARE_JSON(kv.at("v.i16"), json(-300));
    QCOMPARE_JSON(kv.at("v.u32"), json(4000000000u));
    QCOMPARE_JSON(kv.at("v.i32"), json(-70000));
    QCOMPARE_JSON(kv.at("v.f32"), json(1.5));
    QCOMPARE_JSON(kv.at("v.bool"), json(true));
    QCOMPARE_JSON(kv.at("v.string"), json("h\xC3\xA9llo"));
    QCOMPARE_JSON(kv.at("v.u64"), json(18000000000000000000ull));
    QVERIFY(kv.at("v.u64").is_number_unsigned());
    QCOMPARE_JSON(kv.at("v.i64"), json(-9000000000ll));
    QCOMPARE_JSON(kv.at("v.f64"), json(-2.25));
    QCOMPARE_JSON(kv.at("v.strings"), json({"a", "", "<0x0A>"}));
    QCOMPARE_JSON(kv.at("v.floats"), json({0.5, -1.0}));
    QCOMPARE_JSON(kv.at("v.nested"), json::parse("[[1, 2], []]"));
    QCOMPARE_JSON(kv.at("v.bad_utf8"), json("a\xEF\xBF\xBD"
                                            "b")); // invalid bytes become U+FFFD
    QVERIFY(!meta.dump().empty());                 // the metadata can be written as JSON

    // Version 2 reads the same way.
    GgufBuilder v2 = b;
    v2.version = 2;
    writeAll(path, v2.build());
    QCOMPARE_JSON(novaq::openGguf(path)->metadata().at("gguf_version"), json(2));
}

void TestGguf::knownBlocks()
{
    // Hand-computed values, independent of the implementation.
    // Q4_0: d = 2, qs[j] = (j & 15) | (15 - j) << 4: y[j] = ((j & 15) - 8) * 2, y[16+j] = (7 - j) * 2.
    std::string q40 = le(novaq::floatToHalf(2.0f), 2);
    for (int j = 0; j < 16; ++j)
        q40.push_back(static_cast<char>((j & 15) | ((15 - j) << 4)));
    std::vector<float> y(32);
    novaq::dequantizeGgml(*novaq::ggmlTypeTraits(kTypeQ4_0), reinterpret_cast<const std::byte*>(q40.data()), 32,
                          y.data());
    for (int j = 0; j < 16; ++j) {
        QCOMPARE(y[static_cast<size_t>(j)], static_cast<float>((j - 8) * 2));
        QCOMPARE(y[static_cast<size_t>(16 + j)], static_cast<float>((7 - j) * 2));
    }

    // Q4_K: d = 1, dmin = 0.5, scales: sub-block 0 scale 3 min 2, sub-block 1 scale 5 min 1, others
    // 0; qs[l] = 0x97 (low nibble 7, high 9) for the first chunk.
    std::string q4k = le(novaq::floatToHalf(1.0f), 2) + le(novaq::floatToHalf(0.5f), 2);
    std::string scales(12, '\0');
    scales[0] = 3;
    scales[1] = 5;
    scales[4] = 2;
    scales[5] = 1;
    q4k += scales + std::string(32, '\x97') + std::string(96, '\0');
    QCOMPARE(q4k.size(), size_t(144));
    std::vector<float> k(256);
    novaq::dequantizeGgml(*novaq::ggmlTypeTraits(12), reinterpret_cast<const std::byte*>(q4k.data()), 256, k.data());
    QCOMPARE(k[0], 3.0f * 7 - 0.5f * 2);
    QCOMPARE(k[31], 3.0f * 7 - 0.5f * 2);
    QCOMPARE(k[32], 5.0f * 9 - 0.5f * 1);
    QCOMPARE(k[64], 0.0f);
}

void TestGguf::unsupportedTypeListsButDoesNotRead()
{
    QTemporaryDir dir;
    GgufBuilder b;
    b.tensor("norm", {4}, kTypeF32, f32(1) + f32(2) + f32(3) + f32(4))
        .tensor("blk.0.attn_q.weight", {256, 1}, kTypeIq2Xxs, std::string(66, '\x11'));
    const fs::path path = toPath(dir.filePath("iq.gguf"));
    writeAll(path, b.build());
    auto reader = novaq::openGguf(path);
    QCOMPARE(reader->tensors().size(), size_t(2));
    const novaq::TensorInfo& t = reader->tensors()[1];
    QCOMPARE(t.storage, std::string("IQ2_XXS"));
    QCOMPARE(t.dtype, novaq::DType::F32);
    QCOMPARE(t.nbytes, uint64_t(66));
    QCOMPARE(t.shape, (std::vector<int64_t>{1, 256}));
    QCOMPARE(reader->rawBytes(1).size(), size_t(66));
    QCOMPARE(readTensor(*reader, 0)[3], 4.0f);
    const auto failure = failureOf([&] { readTensor(*reader, 1); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::Unsupported);
    QVERIFY2(failure->message.contains("iq.gguf"), qPrintable(failure->message));
    QVERIFY2(failure->message.contains("'blk.0.attn_q.weight'"), qPrintable(failure->message));
    QVERIFY2(failure->message.contains("IQ2_XXS"), qPrintable(failure->message));
}

void TestGguf::openedByContent()
{
    QTemporaryDir dir;
    GgufBuilder b;
    b.kvString("general.architecture", "gpt2").tensor("x", {2}, kTypeF32, f32(1) + f32(2));
    // A misleading extension does not matter: the reader is chosen by content.
    const fs::path path = toPath(dir.filePath("weights.bin"));
    writeAll(path, b.build());
    QCOMPARE(novaq::detectFileFormat(path), novaq::ModelFormat::Gguf);
    auto reader = novaq::openModel(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Gguf);
    QCOMPARE(reader->architecture(), std::string("gpt2"));
    // A folder holding one GGUF file opens it.
    auto fromFolder = novaq::openModel(toPath(dir.path()));
    QCOMPARE(fromFolder->format(), novaq::ModelFormat::Gguf);
    QCOMPARE(fromFolder->tensors().size(), size_t(1));
}

void TestGguf::bigEndianIsNamed()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("be.gguf"));
    writeAll(path, std::string("GGUF") + std::string("\0\0\0\x03", 4) + std::string(16, '\0'));
    const auto failure = failureOf([&] { novaq::openGguf(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::Unsupported);
    QVERIFY2(failure->message.contains("be.gguf") && failure->message.contains("big-endian"),
             qPrintable(failure->message));
}

void TestGguf::malformed_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QStringList>("expected"); // substrings the message must hold

    const auto row = [](const char* name, const std::string& bytes, QStringList expected) {
        QTest::newRow(name) << toQBytes(bytes) << expected;
    };
    const std::string f32x4 = f32(1) + f32(2) + f32(3) + f32(4);

    row("empty file", "", {"magic", "offset 0", "truncated"});
    // The offset locates the field (before the verdict), and the verdict says what to do.
    row("truncated header", std::string("GGUF\x03\0\0\0\x01\0", 10),
        {"tensor_count", "at offset 8: ", "truncated, download or copy it again"});
    {
        GgufBuilder b;
        b.magic = "GGUX";
        row("bad magic", b.build(), {"magic", "not a GGUF file", "offset 0"});
    }
    for (uint32_t version : {1u, 99u, 0u}) {
        GgufBuilder b;
        b.version = version;
        const std::string name = "version " + std::to_string(version);
        QTest::newRow(name.c_str()) << toQBytes(b.build()) << QStringList{QString::fromStdString(name), "offset 4"};
    }
    {
        GgufBuilder b;
        b.tensorCount = uint64_t{1} << 40;
        row("tensor_count absurd", b.build(), {"tensor_count 1099511627776", "offset 8"});
    }
    {
        GgufBuilder b;
        b.tensorCount = 5;
        row("tensor_count past end", b.build(), {"tensor_count 5", "offset 8", "truncated or damaged"});
    }
    {
        GgufBuilder b;
        b.kvCount = ~uint64_t{0};
        row("metadata_kv_count absurd", b.build(), {"metadata_kv_count", "offset 16"});
    }
    {
        GgufBuilder b;
        b.kvs = le(1000, 8) + "general.name";
        b.kvEntries = 1;
        row("key length past end", b.build(), {"metadata key 0", "key length 1000", "offset 24"});
    }
    {
        GgufBuilder b;
        b.kv("general.name", kString, le(1000, 8) + "short");
        row("string length past end", b.build(),
            {"metadata key 0 'general.name'", "string length 1000", "past the end", "offset 48"});
    }
    {
        GgufBuilder b;
        b.kv("general.name", kString, le(~uint64_t{0}, 8));
        row("string length absurd", b.build(), {"'general.name'", "string length 18446744073709551615", "limit"});
    }
    {
        GgufBuilder b;
        b.kv("tokenizer.ggml.tokens", kArray, le(kString, 4) + le(uint64_t{1} << 40, 8));
        row("array count absurd", b.build(), {"'tokenizer.ggml.tokens'", "array count 1099511627776"});
    }
    {
        GgufBuilder b;
        b.kv("tokenizer.ggml.scores", kArray, le(kF32, 4) + le(1000, 8) + f32(1) + f32(2));
        row("array count past end", b.build(), {"'tokenizer.ggml.scores'", "array count 1000", "remain"});
    }
    {
        GgufBuilder b;
        b.kv("tokenizer.ggml.tokens", kArray, le(kString, 4) + le(2, 8) + str("ok") + le(500, 8) + "x");
        row("array element past end", b.build(), {"'tokenizer.ggml.tokens' element 1", "string length 500"});
    }
    {
        std::string value;
        for (int depth = 0; depth < 9; ++depth)
            value += le(kArray, 4) + le(1, 8);
        value += le(kU8, 4) + le(1, 8) + le(7, 1);
        GgufBuilder b;
        b.kv("deep", kArray, value);
        row("nested array depth", b.build(), {"'deep'", "nested deeper than 8"});
    }
    {
        GgufBuilder b;
        b.kv("x", 13, le(0, 4));
        row("unknown value type", b.build(), {"'x'", "value type 13"});
    }
    {
        GgufBuilder b;
        b.kv("x", kArray, le(77, 4) + le(0, 8));
        row("unknown array element type", b.build(), {"'x'", "array element type 77"});
    }
    {
        GgufBuilder b;
        b.kv("flag", kBool, le(2, 1));
        row("bool not 0 or 1", b.build(), {"'flag'", "bool value 2"});
    }
    {
        GgufBuilder b;
        b.kvString("general.name", "a").kvString("general.name", "b");
        row("duplicate keys", b.build(), {"metadata key 1 'general.name'", "duplicate keys"});
    }
    for (uint32_t alignment : {0u, 3u, 48u}) {
        GgufBuilder b;
        b.kvU32("general.alignment", alignment);
        const std::string name = "alignment " + std::to_string(alignment);
        QTest::newRow(name.c_str()) << toQBytes(b.build())
                                    << QStringList{"general.alignment is " + QString::number(alignment), "power of two",
                                                   "offset 53"};
    }
    {
        GgufBuilder b;
        b.kvString("general.alignment", "32");
        row("alignment not a number", b.build(), {"general.alignment must be an unsigned integer"});
    }
    {
        GgufBuilder b;
        b.info("blk.0.attn_q.weight", {}, kTypeF32, 0);
        row("n_dims 0", b.build(), {"tensor 0 'blk.0.attn_q.weight'", "n_dims is 0"});
    }
    {
        GgufBuilder b;
        b.info("blk.0.attn_q.weight", {1, 1, 1, 1, 1}, kTypeF32, 0);
        row("n_dims 5", b.build(), {"tensor 0 'blk.0.attn_q.weight'", "n_dims is 5"});
    }
    {
        GgufBuilder b;
        b.tensor("a", {4}, kTypeF32, f32x4).info("blk.0.attn_q.weight", {4, 0}, kTypeF32, 32);
        // tensor 1's info starts at 24 + (8+1+4+8+4+8) = 57; its dimension 1 at 57 + 8 + 19 + 4 + 8 = 96.
        row("dimension 0", b.build(), {"tensor 1 'blk.0.attn_q.weight'", "dimension 1 is 0", "offset 96"});
    }
    {
        GgufBuilder b;
        b.info("w", {uint64_t{1} << 32, uint64_t{1} << 32}, kTypeF32, 0);
        row("dimension product overflow", b.build(), {"tensor 0 'w'", "dimension 1", "overflow"});
    }
    {
        GgufBuilder b;
        b.info("w", {uint64_t{1} << 31, uint64_t{1} << 31}, kTypeF32, 0);
        row("byte size overflow", b.build(), {"tensor 0 'w'", "byte size", "overflows"});
    }
    {
        GgufBuilder b;
        b.info("w", {~uint64_t{0}}, kTypeF32, 0);
        row("dimension too large", b.build(), {"tensor 0 'w'", "dimension 0 is 18446744073709551615"});
    }
    {
        GgufBuilder b;
        b.info("w", {4}, 99, 0);
        row("unknown type id 99", b.build(), {"tensor 0 'w'", "ggml type id 99 is unknown"});
    }
    {
        GgufBuilder b;
        b.tensor("w", {20}, kTypeQ4_0, std::string(18, '\0'));
        row("ne0 not a multiple of the block", b.build(), {"tensor 0 'w'", "not a multiple of the Q4_0 block size 32"});
    }
    {
        GgufBuilder b;
        b.tensor("a", {4}, kTypeF32, f32x4).info("b", {4}, kTypeF32, 4096);
        row("offset past end", b.build(), {"tensor 1 'b'", "data offset 4096", "past the end"});
    }
    {
        GgufBuilder b;
        b.tensor("a", {8}, kTypeF32, f32x4); // 16 of its 32 bytes
        row("data truncated", b.build(), {"tensor 0 'a'", "past the end", "truncated"});
    }
    {
        GgufBuilder b;
        b.tensor("a", {16}, kTypeF32, f32x4 + f32x4 + f32x4 + f32x4).info("b", {16}, kTypeF32, 32);
        b.data += std::string(64, '\0');
        row("overlapping tensors", b.build(), {"tensor 1 'b'", "overlaps tensor 0 'a'"});
    }
    {
        GgufBuilder b;
        b.tensor("a", {4}, kTypeF32, f32x4).info("b", {4}, kTypeF32, 20);
        b.data += std::string(64, '\0');
        row("misaligned offset", b.build(), {"tensor 1 'b'", "data offset 20 is not a multiple of the alignment 32"});
    }
    {
        GgufBuilder b;
        b.tensor("w", {4}, kTypeF32, f32x4).tensor("w", {4}, kTypeF32, f32x4);
        row("duplicate tensor names", b.build(), {"tensor 1 'w'", "tensor 0", "duplicate tensor names"});
    }
    {
        GgufBuilder b;
        b.tensor("", {4}, kTypeF32, f32x4);
        row("empty tensor name", b.build(), {"tensor 0", "name is empty"});
    }
    {
        GgufBuilder b;
        b.tensor("w\xFF", {4}, kTypeF32, f32x4);
        row("tensor name not UTF-8", b.build(), {"tensor 0", "not valid UTF-8"});
    }
    {
        GgufBuilder b;
        b.tensor("blk.0.attn_q.weight", {4}, kTypeF32, f32x4);
        const std::string full = b.build();
        // Cut inside dimension 0 (at 24 + 8 + 19 + 4), after enough bytes for one tensor info.
        row("truncated tensor info", full.substr(0, 24 + 8 + 19 + 4 + 4),
            {"tensor 0 'blk.0.attn_q.weight'", "dimension 0", "offset 55", "truncated"});
    }
}

void TestGguf::malformed()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QStringList, expected);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path path = toPath(dir.filePath("bad.gguf"));
    writeAll(path, std::vector<char>(bytes.begin(), bytes.end()));
    const auto failure = failureOf([&] { novaq::openGguf(path); });
    QVERIFY2(failure, "a malformed file was opened");
    QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains(QString::fromStdString(path.string())), qPrintable(failure->message));
    for (const QString& part : expected)
        QVERIFY2(failure->message.contains(part), qPrintable("missing \"" + part + "\" in: " + failure->message));
    // Opened by content, the same file gives the same error (when it looks like GGUF at all).
    if (bytes.startsWith("GGUF")) {
        const auto viaModel = failureOf([&] { novaq::openModel(path); });
        QVERIFY(viaModel);
        QCOMPARE(viaModel->message, failure->message);
    }
}

void TestGguf::blocksMatchReference_data()
{
    QTest::addColumn<QString>("type");
    for (const BlockLayout& layout : blockLayouts())
        QTest::newRow(layout.name) << QString(layout.name);
}

void TestGguf::blocksMatchReference()
{
    QFETCH(QString, type);
    const novaq::GgmlTypeTraits* traits = novaq::ggmlTypeByName(type.toStdString());
    QVERIFY(traits && traits->supported());
    const BlockLayout* layout = nullptr;
    for (const BlockLayout& l : blockLayouts())
        if (type == l.name)
            layout = &l;
    QVERIFY(layout);

    // Enough weights that the production path splits the work across threads.
    const size_t weights = size_t{1} << 20;
    const size_t blocks = weights / traits->blockSize;
    std::mt19937_64 rng(0x5eed + traits->id);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    std::vector<std::byte> src(blocks * traits->blockBytes);
    for (std::byte& x : src)
        x = static_cast<std::byte>(byte(rng));
    for (size_t b = 0; b < blocks; ++b) {
        for (uint32_t offset : layout->halfOffsets) {
            const uint16_t h = novaq::floatToHalf(scale(rng));
            src[b * traits->blockBytes + offset] = static_cast<std::byte>(h & 0xFF);
            src[b * traits->blockBytes + offset + 1] = static_cast<std::byte>(h >> 8);
        }
    }
    if (type == "F32" || type == "BF16") { // finite values: random exponent bytes could be NaN
        const size_t width = traits->blockBytes;
        for (size_t i = 0; i < blocks; ++i)
            src[i * width + width - 1] &= std::byte{0x3F};
    }

    std::vector<float> production(weights);
    std::vector<float> reference(weights);
    novaq::dequantizeGgml(*traits, src.data(), weights, production.data());
    traits->reference(src.data(), blocks, reference.data());
    QVERIFY(std::memcmp(production.data(), reference.data(), weights * sizeof(float)) == 0);
    for (float v : production)
        QVERIFY(std::isfinite(v));
}

void TestGguf::realFilesRead_data()
{
    QTest::addColumn<QString>("file");
    const fs::path folder = novaq::test::modelsDir() / "stories260K";
    std::vector<fs::path> files;
    for (const fs::path& sub : {folder, folder / "variants"})
        for (const auto& entry : fs::directory_iterator(sub))
            if (entry.path().extension() == ".gguf")
                files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files)
        QTest::newRow(f.filename().string().c_str()) << QString::fromStdString(f.string());
}

void TestGguf::realFilesRead()
{
    QFETCH(QString, file);
    const fs::path path = toPath(file);
    NOVAQ_REQUIRE_DATA(path);

    auto reader = novaq::openModel(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Gguf);
    QCOMPARE(reader->architecture(), std::string("llama"));
    QVERIFY(reader->tensors().size() >= 40);
    const json& kv = reader->metadata().at("format_metadata");
    if (kv.contains("tokenizer.ggml.tokens")) {
        QVERIFY(kv.at("tokenizer.ggml.tokens").is_array());
        QCOMPARE(kv.at("tokenizer.ggml.tokens").size(), size_t(512));
    }
    QVERIFY(!reader->metadata().dump().empty());
    size_t unsupported = 0;
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
        const novaq::TensorInfo& t = reader->tensors()[i];
        QVERIFY(!t.shape.empty());
        const novaq::GgmlTypeTraits* type = t.storage.empty() ? novaq::ggmlTypeByName(novaq::dtypeInfo(t.dtype).name)
                                                              : novaq::ggmlTypeByName(t.storage);
        QVERIFY(type);
        QCOMPARE(t.nbytes, static_cast<uint64_t>(t.numel()) / type->blockSize * type->blockBytes);
        QCOMPARE(reader->rawBytes(i).size(), static_cast<size_t>(t.nbytes));
        if (!type->supported()) {
            ++unsupported;
            const auto failure = failureOf([&] { readTensor(*reader, i); });
            QVERIFY(failure);
            QCOMPARE(failure->kind, novaq::ErrorKind::Unsupported);
            QVERIFY2(failure->message.contains(QString::fromStdString("'" + t.name + "'")) &&
                         failure->message.contains(QString::fromStdString(t.storage)),
                     qPrintable(failure->message));
            continue;
        }
        QVERIFY2(type->supported(), t.storage.c_str());
        const std::vector<float> v = readTensor(*reader, i);
        for (float x : v)
            QVERIFY2(std::isfinite(x), t.name.c_str());
        reader->release(i);
    }
    QCOMPARE(unsupported, size_t(0)); // every type in these files is one we dequantize
}

void TestGguf::rows256Error_data()
{
    // llama.cpp's own figures (tests/data/models/README.md).
    QTest::addColumn<QString>("type");
    QTest::addColumn<double>("expected");
    QTest::newRow("Q2_K") << "Q2_K" << 0.3244;
    QTest::newRow("Q3_K") << "Q3_K" << 0.1521;
    QTest::newRow("Q4_K") << "Q4_K" << 0.0753;
    QTest::newRow("Q5_K") << "Q5_K" << 0.0371;
    QTest::newRow("Q6_K") << "Q6_K" << 0.0175;
    QTest::newRow("Q8_0") << "Q8_0" << 0.0054;
    QTest::newRow("Q4_0") << "Q4_0" << 0.0861;
    QTest::newRow("IQ4_NL") << "IQ4_NL" << 0.0785;
}

void TestGguf::rows256Error()
{
    QFETCH(QString, type);
    QFETCH(double, expected);
    const fs::path folder = novaq::test::modelsDir() / "stories260K" / "variants";
    const fs::path f32Path = folder / "stories260K-rows256-F32.gguf";
    const fs::path quantPath = folder / ("stories260K-rows256-" + type.toStdString() + ".gguf");
    NOVAQ_REQUIRE_DATA(f32Path);
    NOVAQ_REQUIRE_DATA(quantPath);

    auto reference = novaq::openGguf(f32Path);
    auto quant = novaq::openGguf(quantPath);
    bool hasType = false;
    for (const novaq::TensorInfo& t : quant->tensors())
        hasType = hasType || t.storage == type.toStdString();
    QVERIFY2(hasType, "the file holds no tensor of its type");
    size_t compared = 0;
    const double rms = relativeRms(*quant, *reference, 4096, compared);
    qInfo("%s: relative RMS error %.6f over %zu tensors (llama.cpp: %.4f)", qPrintable(type), rms, compared, expected);
    QVERIFY(compared > 0);
    QCOMPARE(std::round(rms * 10000.0) / 10000.0, expected);
    QVERIFY(std::abs(rms - expected) < 0.00005 + 1e-9);
}

void TestGguf::variantsAgreeWithF32_data()
{
    QTest::addColumn<QString>("variant");
    QTest::addColumn<double>("maxRelRms");
    QTest::newRow("F16") << "F16" << 1e-3;
    QTest::newRow("BF16") << "BF16" << 8e-3;
    QTest::newRow("Q8_0") << "Q8_0" << 0.01;
    QTest::newRow("Q5_1") << "Q5_1" << 0.05;
    QTest::newRow("Q5_0") << "Q5_0" << 0.05;
    QTest::newRow("Q4_1") << "Q4_1" << 0.1;
    QTest::newRow("Q4_0") << "Q4_0" << 0.12;
    QTest::newRow("Q4_K_M-llamaquantize") << "Q4_K_M-llamaquantize" << 0.1;
}

void TestGguf::variantsAgreeWithF32()
{
    QFETCH(QString, variant);
    QFETCH(double, maxRelRms);
    const fs::path f32Path = novaq::test::modelsDir() / "stories260K" / "stories260K.gguf";
    const fs::path path =
        novaq::test::modelsDir() / "stories260K" / "variants" / ("stories260K-" + variant.toStdString() + ".gguf");
    NOVAQ_REQUIRE_DATA(f32Path);
    NOVAQ_REQUIRE_DATA(path);

    auto reference = novaq::openGguf(f32Path);
    auto reader = novaq::openGguf(path);
    const auto refIndex = indexByName(*reference);
    QCOMPARE(reader->tensors().size(), reference->tensors().size());
    size_t exact = 0;
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
        const novaq::TensorInfo& t = reader->tensors()[i];
        const auto it = refIndex.find(t.name);
        QVERIFY2(it != refIndex.end(), t.name.c_str());
        QCOMPARE(t.shape, reference->tensors()[it->second].shape);
        if (t.storage.empty() && (t.dtype == novaq::DType::F16 || t.dtype == novaq::DType::BF16)) {
            // Plain 16-bit tensors are the F32 weights rounded to nearest even, bit for bit.
            const std::vector<float> x = readTensor(*reader, i);
            const std::vector<float> y = readTensor(*reference, it->second);
            for (size_t k = 0; k < x.size(); ++k) {
                const float rounded = t.dtype == novaq::DType::F16 ? novaq::halfToFloat(novaq::floatToHalf(y[k]))
                                                                   : novaq::bf16ToFloat(novaq::floatToBf16(y[k]));
                QCOMPARE(x[k], rounded);
            }
            ++exact;
        }
    }
    if (variant == "F16" || variant == "BF16")
        QVERIFY(exact > 0);
    size_t compared = 0;
    const double rms = relativeRms(*reader, *reference, 1, compared);
    qInfo("%s vs stories260K.gguf: relative RMS error %.6f over %zu tensors", qPrintable(variant), rms, compared);
    QCOMPARE(compared, reader->tensors().size());
    QVERIFY2(rms < maxRelRms, qPrintable(QString::number(rms)));
    QVERIFY(rms > 0 || variant == "F32");
}

void TestGguf::kjvQ4KM()
{
    const fs::path path = novaq::test::modelsDir() / "kjv-llama-7m" / "kjv-llama-7m-Q4_K_M.gguf";
    NOVAQ_REQUIRE_DATA(path);
    auto reader = novaq::openModel(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Gguf);
    QCOMPARE(reader->architecture(), std::string("llama"));
    const json& kv = reader->metadata().at("format_metadata");
    QVERIFY(kv.at("tokenizer.ggml.tokens").is_array());
    QVERIFY(kv.at("tokenizer.ggml.tokens").size() > 100);
    QVERIFY(!reader->metadata().dump().empty());
    std::map<std::string, int> types;
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
        const novaq::TensorInfo& t = reader->tensors()[i];
        ++types[t.storage.empty() ? std::string(novaq::dtypeInfo(t.dtype).name) : t.storage];
        for (float x : readTensor(*reader, i))
            QVERIFY2(std::isfinite(x), t.name.c_str());
        reader->release(i);
    }
    QString mix;
    for (const auto& [name, count] : types)
        mix += QString::fromStdString(name) + " x" + QString::number(count) + " ";
    qInfo("kjv-llama-7m-Q4_K_M: %zu tensors: %s", reader->tensors().size(), qPrintable(mix));
    QVERIFY(types.contains("Q4_K"));

    // Against the F16 file of the same model.
    const fs::path f16Path = novaq::test::modelsDir() / "kjv-llama-7m" / "kjv-llama-7m-F16.gguf";
    NOVAQ_REQUIRE_DATA(f16Path);
    auto f16 = novaq::openGguf(f16Path);
    size_t compared = 0;
    const double rms = relativeRms(*reader, *f16, 4096, compared);
    qInfo("kjv-llama-7m-Q4_K_M vs F16: relative RMS error %.6f over %zu tensors", rms, compared);
    QVERIFY(compared > 0);
    QVERIFY(rms < 0.1);
}

void TestGguf::compressEndToEnd()
{
    const fs::path input = novaq::test::modelsDir() / "stories260K" / "stories260K.gguf";
    NOVAQ_REQUIRE_DATA(input);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    novaq::CompressOptions options;
    options.input = input;
    options.output = toPath(dir.filePath("stories260K.novaq"));
    const novaq::ModelReport report = novaq::compressModel(options, nullptr, nullptr);
    QVERIFY(fs::exists(options.output));
    QCOMPARE(report.sourceFormat, std::string("GGUF"));
    QCOMPARE(report.architecture, std::string("llama"));
    size_t quantized = 0;
    for (const novaq::TensorResult& t : report.tensors)
        quantized += t.quantized ? 1 : 0;
    qInfo("compressed stories260K.gguf: %zu of %zu tensors quantized, %llu bytes", quantized, report.tensors.size(),
          static_cast<unsigned long long>(report.fileBytes));
    QVERIFY(quantized > 0);
    QCOMPARE(report.tensors.size(), size_t(48));
}

QTEST_APPLESS_MAIN(TestGguf)
#include "test_gguf.moc"
