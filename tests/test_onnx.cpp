// The ONNX reader: raw, typed and external values read back exactly; the stories260K ONNX
// exports match the safetensors files bit for bit and compress; every malformed or hostile
// file (built here, and kept in tests/data/onnx/) is rejected with a message naming the file,
// the tensor or field and the byte offset.
//
// NOVAQ_WRITE_ONNX_CORPUS=<folder> test_onnx corpus regenerates tests/data/onnx/ (in initTestCase).

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/onnx_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/tensor/dtype.h"

#include <QDir>
#include <QTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>

using novaq::test::f32Bytes;
using novaq::test::failureOf;
using novaq::test::indexByName;
using novaq::test::le;
using novaq::test::readTensor;
using novaq::test::toPath;
using novaq::test::writeAll;
namespace fs = std::filesystem;

namespace {

// --- A protobuf writer, enough to build ModelProto files by hand -------------------------

std::string varint(uint64_t v)
{
    std::string out;
    do {
        auto byte = static_cast<uint8_t>(v & 0x7F);
        v >>= 7;
        if (v != 0)
            byte |= 0x80;
        out.push_back(static_cast<char>(byte));
    } while (v != 0);
    return out;
}

std::string key(uint32_t number, int wireType) { return varint((uint64_t{number} << 3) | uint64_t(wireType)); }
std::string vField(uint32_t number, uint64_t value) { return key(number, 0) + varint(value); }
std::string bField(uint32_t number, const std::string& payload)
{
    return key(number, 2) + varint(payload.size()) + payload;
}

std::string packedVarints(std::initializer_list<int64_t> values)
{
    std::string out;
    for (int64_t v : values)
        out += varint(static_cast<uint64_t>(v));
    return out;
}

// ONNX ids.
constexpr int kFloat = 1, kUint8 = 2, kInt8 = 3, kInt16 = 5, kInt32 = 6, kInt64 = 7, kString = 8, kBool = 9,
              kFloat16 = 10, kDouble = 11, kBfloat16 = 16, kFloat8 = 17;

// A TensorProto: name, dims (unpacked, as onnx's Python writer does), data_type, then `data`.
std::string tensor(const std::string& name, std::initializer_list<int64_t> dims, int type, const std::string& data)
{
    std::string out;
    for (int64_t d : dims)
        out += vField(1, static_cast<uint64_t>(d));
    out += vField(2, static_cast<uint64_t>(type));
    out += bField(8, name);
    return out + data;
}

std::string raw(const std::string& bytes) { return bField(9, bytes); }

std::string external(const std::string& location, std::optional<std::string> offset = std::nullopt,
                     std::optional<std::string> length = std::nullopt)
{
    const auto entry = [](const std::string& k, const std::string& v) {
        return bField(13, bField(1, k) + bField(2, v));
    };
    std::string out = entry("location", location);
    if (offset)
        out += entry("offset", *offset);
    if (length)
        out += entry("length", *length);
    out += entry("checksum", "0000000000000000000000000000000000000000");
    return out + vField(14, 1);
}

std::string graph(const std::vector<std::string>& initializers)
{
    std::string g = bField(2, "test-graph");
    for (const std::string& t : initializers)
        g += bField(5, t);
    return g;
}

std::string model(const std::vector<std::string>& initializers)
{
    return vField(1, 8) + bField(2, "novaq-test") + bField(3, "0.1") + bField(7, graph(initializers)) +
           bField(8, bField(1, "") + vField(2, 13)) + bField(8, bField(1, "com.microsoft") + vField(2, 1)) +
           bField(14, bField(1, "author") + bField(2, "tests"));
}

QString qs(const std::string& s) { return QString::fromStdString(s); }

// --- Malformed cases --------------------------------------------------------------------

// One hostile input: the model bytes and, optionally, an external data file beside it.
struct BrokenCase {
    std::string model;
    std::optional<std::string> data; // written as <model name>.data
};
using CaseBuilder = std::function<BrokenCase(const std::string& dataName)>;

struct CaseRow {
    const char* name;
    CaseBuilder build;
    novaq::ErrorKind kind;
    QStringList expected; // substrings of the message besides the file name and "offset"
};

std::vector<CaseRow> brokenCases()
{
    using novaq::ErrorKind;
    const std::string w = tensor("w", {2}, kFloat, raw(f32Bytes({1, 2})));
    std::vector<CaseRow> rows;
    const auto add = [&](const char* name, CaseBuilder build, ErrorKind kind, QStringList expected) {
        rows.push_back({name, std::move(build), kind, std::move(expected)});
    };
    const auto only = [](std::string m) { return [m](const std::string&) { return BrokenCase{m, std::nullopt}; }; };

    {
        // The graph comes last, as in most exports; the file ends inside the second tensor.
        const std::string full = vField(1, 8) + bField(2, "novaq-test") +
                                 bField(7, graph({w, tensor("v", {4}, kFloat, raw(f32Bytes({1, 2, 3, 4})))}));
        add("truncated message", only(full.substr(0, full.size() - 10)), ErrorKind::InvalidInput,
            {"graph (7)", "runs past the end", "truncated"});
    }
    {
        // raw_data claims 1000 bytes inside a 40-byte TensorProto.
        const std::string t = tensor("w", {2}, kFloat, key(9, 2) + varint(1000) + f32Bytes({1, 2}));
        add("length past end", only(model({t})), ErrorKind::InvalidInput,
            {"\"w\"", "raw_data (9)", "length 1000", "runs past the end"});
    }
    {
        const std::string t = bField(8, "w") + key(1, 0) + std::string(10, '\xff') + "\x01" + vField(2, kFloat);
        add("11-byte varint", only(model({t})), ErrorKind::InvalidInput, {"\"w\"", "dims (1)", "longer than 10 bytes"});
    }
    add("external location ../secret", only(model({tensor("w", {2}, kFloat, external("../secret"))})),
        ErrorKind::InvalidInput, {"\"w\"", "location \"../secret\"", "'..'", "refusing"});
    add("external location in a subfolder's ..", only(model({tensor("w", {2}, kFloat, external("sub/../../secret"))})),
        ErrorKind::InvalidInput, {"\"w\"", "sub/../../secret", "refusing"});
    add("external location /etc/passwd", only(model({tensor("w", {2}, kFloat, external("/etc/passwd"))})),
        ErrorKind::InvalidInput, {"\"w\"", "location \"/etc/passwd\"", "absolute", "refusing"});
    add("external offset+length past the data file end",
        [](const std::string& data) {
            return BrokenCase{model({tensor("w", {4}, kFloat, external(data, "8", "16"))}), f32Bytes({1, 2, 3, 4})};
        },
        ErrorKind::InvalidInput, {"\"w\"", "offset 8 + length 16", "runs past the end", "(16 bytes"});
    add("external length mismatch",
        [](const std::string& data) {
            return BrokenCase{model({tensor("w", {4}, kFloat, external(data, "0", "12"))}), f32Bytes({1, 2, 3, 4})};
        },
        ErrorKind::InvalidInput, {"\"w\"", "length 12", "need 16 bytes"});
    add("external offset not a number",
        [](const std::string& data) {
            return BrokenCase{model({tensor("w", {1}, kFloat, external(data, "-4"))}), f32Bytes({1})};
        },
        ErrorKind::InvalidInput, {"\"w\"", "offset \"-4\""});
    add("external without location", only(model({tensor("w", {1}, kFloat, vField(14, 1))})), ErrorKind::InvalidInput,
        {"\"w\"", "no \"location\""});
    add("unknown data type", only(model({tensor("w", {2}, 99, raw(f32Bytes({1, 2})))})), ErrorKind::Unsupported,
        {"\"w\"", "data_type", "unknown type id 99", "FLOAT16"});
    add("unsupported data type STRING", only(model({tensor("s", {1}, kString, bField(6, "hi"))})),
        ErrorKind::Unsupported, {"\"s\"", "STRING (8)", "not supported"});
    add("unsupported data type FLOAT8", only(model({tensor("q", {2}, kFloat8, raw("ab"))})), ErrorKind::Unsupported,
        {"\"q\"", "FLOAT8E4M3FN (17)"});
    add("absurd dims overflow", only(model({tensor("w", {4294967296, 4294967296, 2}, kFloat, raw(f32Bytes({1})))})),
        ErrorKind::InvalidInput, {"\"w\"", "dims (1)", "more elements than fit in 64 bits"});
    add("absurd dims without data", only(model({tensor("w", {1000000, 1000000}, kFloat, raw(f32Bytes({1})))})),
        ErrorKind::InvalidInput, {"\"w\"", "raw_data (9)", "holds 4 bytes", "need 4000000000000 bytes"});
    add("negative dim", only(model({tensor("w", {-2}, kFloat, raw(f32Bytes({1, 2})))})), ErrorKind::InvalidInput,
        {"\"w\"", "dims[0] = -2", "negative"});
    add("rank 9", only(model({tensor("w", {1, 1, 1, 1, 1, 1, 1, 1, 2}, kFloat, raw(f32Bytes({1, 2})))})),
        ErrorKind::InvalidInput, {"\"w\"", "more than 8 dims"});
    add("duplicate names", only(model({w, tensor("v", {1}, kFloat, raw(f32Bytes({1}))), w})), ErrorKind::InvalidInput,
        {"\"w\"", "#2", "used twice", "#0"});
    add("duplicate name field", only(model({w + bField(8, "x")})), ErrorKind::InvalidInput,
        {"\"w\"", "name (8)", "appears twice"});
    add("raw_data size mismatch", only(model({tensor("w", {3}, kFloat, raw(f32Bytes({1, 2})))})),
        ErrorKind::InvalidInput, {"\"w\"", "raw_data (9)", "holds 8 bytes", "need 12 bytes"});
    add("typed count mismatch", only(model({tensor("w", {3}, kFloat, bField(4, f32Bytes({1, 2})))})),
        ErrorKind::InvalidInput, {"\"w\"", "float_data (4)", "holds 2 values", "need 3"});
    add("typed field of the wrong type", only(model({tensor("w", {2}, kInt64, bField(4, f32Bytes({1, 2})))})),
        ErrorKind::InvalidInput, {"\"w\"", "float_data (4)", "cannot hold values of INT64", "int64_data"});
    add("packed float_data not a multiple of 4", only(model({tensor("w", {1}, kFloat, bField(4, "abcde"))})),
        ErrorKind::InvalidInput, {"\"w\"", "float_data (4)", "not a multiple of 4"});
    add("raw and typed data",
        only(model({tensor("w", {2}, kFloat, raw(f32Bytes({1, 2})) + bField(4, f32Bytes({1, 2})))})),
        ErrorKind::InvalidInput, {"\"w\"", "exactly one source"});
    add("no data", only(model({tensor("w", {2}, kFloat, "")})), ErrorKind::InvalidInput, {"\"w\"", "has no values"});
    add("missing data_type", only(model({vField(1, 2) + bField(8, "w") + raw(f32Bytes({1, 2}))})),
        ErrorKind::InvalidInput, {"\"w\"", "data_type (2)", "missing"});
    add("data_type with the wrong wire type", only(model({bField(8, "w") + bField(2, "x")})), ErrorKind::InvalidInput,
        {"\"w\"", "data_type (2)", "wire type length-delimited, expected varint"});
    add("group wire type", only(model({bField(8, "w") + key(12, 3)})), ErrorKind::InvalidInput, {"\"w\"", "group"});
    add("field number 0", only(model({bField(8, "w") + "\x02\x01"})), ErrorKind::InvalidInput,
        {"\"w\"", "field number 0"});
    add("data_location out of range", only(model({tensor("w", {2}, kFloat, raw(f32Bytes({1, 2})) + vField(14, 7))})),
        ErrorKind::InvalidInput, {"\"w\"", "data_location (14)", "neither DEFAULT"});
    add("initializer without a name", only(model({vField(1, 1) + vField(2, kFloat) + raw(f32Bytes({1}))})),
        ErrorKind::InvalidInput, {"initializer #0", "no name"});
    add("name not UTF-8", only(model({tensor("w\xff", {1}, kFloat, raw(f32Bytes({1})))})), ErrorKind::InvalidInput,
        {"initializer #0", "name (8)", "UTF-8"});
    add("segmented tensor", only(model({tensor("w", {1}, kFloat, raw(f32Bytes({1})) + bField(3, vField(1, 0)))})),
        ErrorKind::Unsupported, {"\"w\"", "segment (3)"});
    add("no graph", only(vField(1, 8) + bField(2, "novaq-test") + bField(8, vField(2, 13))), ErrorKind::InvalidInput,
        {"ModelProto", "no graph"});
    add("graph twice", only(model({w}) + bField(7, graph({}))), ErrorKind::InvalidInput, {"graph (7)", "twice"});
    return rows;
}

std::string slug(const char* name)
{
    std::string out;
    for (const char* p = name; *p; ++p) {
        const char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out.push_back(c);
        else if (c >= 'A' && c <= 'Z')
            out.push_back(static_cast<char>(c - 'A' + 'a'));
        else if (!out.empty() && out.back() != '_')
            out.push_back('_');
    }
    while (!out.empty() && out.back() == '_')
        out.pop_back();
    return out;
}

fs::path variants() { return novaq::test::modelsDir() / "stories260K" / "variants"; }

bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

} // namespace

class TestOnnx : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void valuesOfEverySource();
    void externalData();
    void configBesideModel();
    void sniffer_data();
    void sniffer();
    void malformed_data();
    void malformed();
    void symlinkEscapingFolder();
    void missingDataFile();
    void corpus();
    void mutationsNeverCrash();
    void stories_data();
    void stories();
    void externalEqualsInline();
    void compressEndToEnd();
};

void TestOnnx::initTestCase()
{
    const QByteArray target = qgetenv("NOVAQ_WRITE_ONNX_CORPUS");
    if (target.isEmpty())
        return;
    const fs::path folder = toPath(QString::fromLocal8Bit(target));
    fs::create_directories(folder);
    for (const CaseRow& c : brokenCases()) {
        const std::string name = slug(c.name) + ".onnx";
        const BrokenCase files = c.build(name + ".data");
        writeAll(folder / name, files.model);
        if (files.data)
            writeAll(folder / (name + ".data"), *files.data);
    }
}

void TestOnnx::valuesOfEverySource()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string unpackedFloats = key(4, 5) + f32Bytes({7.5f}) + key(4, 5) + f32Bytes({-1.0f});
    const std::string doubles = le(std::bit_cast<uint64_t>(1.5), 8) + le(std::bit_cast<uint64_t>(-2.25), 8);
    const std::string file = model({
        tensor("raw_f32", {2, 3}, kFloat, raw(f32Bytes({1.0f, -2.5f, 3.0f, 0.125f, -0.0f, 1e-3f}))),
        tensor("packed_f32", {3}, kFloat, bField(4, f32Bytes({0.5f, 2.0f, -8.0f}))),
        tensor("unpacked_f32", {2}, kFloat, unpackedFloats),
        tensor("f16_int32", {3}, kFloat16, bField(5, packedVarints({0x3C00, 0xC000, 0x7BFF}))),
        tensor("bf16_int32", {2}, kBfloat16, bField(5, packedVarints({0x3F80, 0x4049}))),
        tensor("f16_raw", {2}, kFloat16, raw(le(0x3C00, 2) + le(0x0001, 2))),
        tensor("i64", {3}, kInt64, bField(7, packedVarints({-5, 0, int64_t{1} << 40}))),
        tensor("f64", {2}, kDouble, bField(10, doubles)),
        tensor("i8", {3}, kInt8, bField(5, packedVarints({-128, 5, 127}))),
        tensor("u8", {2}, kUint8, vField(5, 200) + vField(5, 3)),
        tensor("i16", {1}, kInt16, bField(5, packedVarints({-300}))),
        tensor("i32", {2}, kInt32, bField(5, packedVarints({-70000, 70000}))),
        tensor("bool", {2}, kBool, bField(5, packedVarints({1, 0}))),
        tensor("scalar", {}, kFloat, raw(f32Bytes({42.0f}))),
        tensor("empty", {0, 5}, kFloat, ""),
    });
    const fs::path path = toPath(dir.filePath("model.onnx"));
    writeAll(path, file);

    QVERIFY(novaq::sniffOnnx({reinterpret_cast<const std::byte*>(file.data()), std::min<size_t>(64, file.size())},
                             file.size()));
    QCOMPARE(novaq::detectFileFormat(path), novaq::ModelFormat::Onnx);
    auto reader = novaq::openModel(path);
    QCOMPARE(reader->format(), novaq::ModelFormat::Onnx);
    QCOMPARE(reader->files().size(), size_t(1));
    const auto& t = reader->tensors();
    const std::vector<std::string> names{"raw_f32", "packed_f32", "unpacked_f32", "f16_int32", "bf16_int32",
                                         "f16_raw", "i64",        "f64",          "i8",        "u8",
                                         "i16",     "i32",        "bool",         "scalar",    "empty"};
    QCOMPARE(t.size(), names.size());
    for (size_t i = 0; i < names.size(); ++i)
        QCOMPARE(t[i].name, names[i]); // file order
    QCOMPARE(t[0].shape, (std::vector<int64_t>{2, 3}));
    QCOMPARE(t[0].dtype, novaq::DType::F32);
    QCOMPARE(t[3].dtype, novaq::DType::F16);
    QCOMPARE(t[4].dtype, novaq::DType::BF16);
    QCOMPARE(t[6].dtype, novaq::DType::I64);
    QCOMPARE(t[7].dtype, novaq::DType::F64);
    QCOMPARE(t[12].dtype, novaq::DType::Bool);
    QVERIFY(t[13].shape.empty());
    QCOMPARE(t[14].numel(), int64_t(0));
    QCOMPARE(t[3].nbytes, uint64_t(6));
    QCOMPARE(t[6].nbytes, uint64_t(24));

    const std::map<std::string, std::vector<float>> expected{
        {"raw_f32", {1.0f, -2.5f, 3.0f, 0.125f, -0.0f, 1e-3f}},
        {"packed_f32", {0.5f, 2.0f, -8.0f}},
        {"unpacked_f32", {7.5f, -1.0f}},
        {"f16_int32", {1.0f, -2.0f, 65504.0f}},
        {"bf16_int32", {1.0f, 3.140625f}},
        {"f16_raw", {1.0f, std::ldexp(1.0f, -24)}},
        {"i64", {-5.0f, 0.0f, std::ldexp(1.0f, 40)}},
        {"f64", {1.5f, -2.25f}},
        {"i8", {-128.0f, 5.0f, 127.0f}},
        {"u8", {200.0f, 3.0f}},
        {"i16", {-300.0f}},
        {"i32", {-70000.0f, 70000.0f}},
        {"bool", {1.0f, 0.0f}},
        {"scalar", {42.0f}},
        {"empty", {}},
    };
    for (size_t i = 0; i < t.size(); ++i) {
        const std::vector<float> values = readTensor(*reader, i);
        QVERIFY2(bitIdentical(values, expected.at(t[i].name)), t[i].name.c_str());
        QCOMPARE(reader->rawBytes(i).size(), size_t(t[i].nbytes));
    }

    // rawBytes: raw data is mapped in place; typed values come in the dtype's layout.
    QVERIFY(std::memcmp(reader->rawBytes(0).data(), file.data() + t[0].offset, 24) == 0);
    const auto f16 = reader->rawBytes(3);
    QCOMPARE(std::string(reinterpret_cast<const char*>(f16.data()), f16.size()),
             le(0x3C00, 2) + le(0xC000, 2) + le(0x7BFF, 2));
    const auto i64 = reader->rawBytes(6);
    QCOMPARE(std::string(reinterpret_cast<const char*>(i64.data()), i64.size()),
             le(static_cast<uint64_t>(-5), 8) + le(0, 8) + le(uint64_t{1} << 40, 8));
    const auto packed = reader->rawBytes(1); // packed float_data is already little-endian F32
    QCOMPARE(std::string(reinterpret_cast<const char*>(packed.data()), packed.size()), f32Bytes({0.5f, 2.0f, -8.0f}));
    for (size_t i = 0; i < t.size(); ++i)
        reader->release(i);
    QCOMPARE(readTensor(*reader, 3), (std::vector<float>{1.0f, -2.0f, 65504.0f}));

    std::vector<float> wrong(5);
    const auto sizeFailure = failureOf([&] { reader->readFloat(0, wrong); });
    QVERIFY(sizeFailure);
    QCOMPARE(sizeFailure->kind, novaq::ErrorKind::InvalidArgument);
    QVERIFY2(sizeFailure->message.contains("\"raw_f32\""), qPrintable(sizeFailure->message));
    QVERIFY(failureOf([&] { reader->rawBytes(99); }));

    const nlohmann::json& meta = reader->metadata();
    const nlohmann::json& fm = meta.at("format_metadata");
    QCOMPARE(fm.at("producer_name").get<std::string>(), std::string("novaq-test"));
    QCOMPARE(fm.at("producer_version").get<std::string>(), std::string("0.1"));
    QCOMPARE(fm.at("ir_version").get<int>(), 8);
    QCOMPARE(fm.at("opset").at("ai.onnx").get<int>(), 13);
    QCOMPARE(fm.at("opset").at("com.microsoft").get<int>(), 1);
    QCOMPARE(fm.at("metadata_props").at("author").get<std::string>(), std::string("tests"));
    QCOMPARE(fm.at("graph_name").get<std::string>(), std::string("test-graph"));
    QVERIFY(meta.at("config").is_null());
    QCOMPARE(meta.at("architecture").get<std::string>(), std::string("unknown"));
    QCOMPARE(reader->architecture(), std::string("unknown"));
}

void TestOnnx::externalData()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path folder = toPath(dir.path());
    fs::create_directories(folder / "weights");
    // Two tensors in one data file (the second 4096-aligned), a third in a subfolder.
    std::string data = f32Bytes({1, 2, 3, 4});
    data.resize(4096, '\0');
    data += f32Bytes({5, 6});
    writeAll(folder / "model.onnx.data", data);
    writeAll(folder / "weights" / "b.bin", f32Bytes({-1}));
    writeAll(folder / "model.onnx", model({tensor("a", {2, 2}, kFloat, external("model.onnx.data", "0", "16")),
                                           tensor("c", {2}, kFloat, external("model.onnx.data", "4096")),
                                           tensor("b", {1}, kFloat, external("./weights/b.bin")),
                                           tensor("inline", {1}, kFloat, raw(f32Bytes({9})))}));
    auto reader = novaq::openModel(folder / "model.onnx");
    QCOMPARE(reader->files().size(), size_t(3));
    const auto& t = reader->tensors();
    QCOMPARE(t.size(), size_t(4));
    QCOMPARE(t[0].fileIndex, 1u);
    QCOMPARE(t[1].fileIndex, 1u);
    QCOMPARE(t[1].offset, uint64_t(4096));
    QCOMPARE(t[2].fileIndex, 2u);
    QCOMPARE(t[3].fileIndex, 0u);
    QCOMPARE(readTensor(*reader, 0), (std::vector<float>{1, 2, 3, 4}));
    QCOMPARE(readTensor(*reader, 1), (std::vector<float>{5, 6}));
    QCOMPARE(readTensor(*reader, 2), (std::vector<float>{-1}));
    QCOMPARE(readTensor(*reader, 3), (std::vector<float>{9}));
    QCOMPARE(reader->rawBytes(1).size(), size_t(8));
    QCOMPARE(reader->tensorBytes(), uint64_t(16 + 8 + 4 + 4));

    // A symbolic link that stays inside the folder is fine.
    fs::create_symlink("model.onnx.data", folder / "link.data");
    writeAll(folder / "linked.onnx", model({tensor("a", {4}, kFloat, external("link.data", "0", "16"))}));
    auto linked = novaq::openOnnx(folder / "linked.onnx");
    QCOMPARE(readTensor(*linked, 0), (std::vector<float>{1, 2, 3, 4}));
}

void TestOnnx::configBesideModel()
{
    QTemporaryDir dir;
    const fs::path folder = toPath(dir.path());
    writeAll(folder / "model.onnx", model({tensor("w", {1}, kFloat, raw(f32Bytes({1})))}));
    writeAll(folder / "config.json", std::string(R"({"model_type":"llama","hidden_size":64})"));
    auto reader = novaq::openModel(folder); // the folder holds one model, found by content
    QCOMPARE(reader->format(), novaq::ModelFormat::Onnx);
    QCOMPARE(reader->architecture(), std::string("llama"));
    QCOMPARE(reader->metadata().at("architecture").get<std::string>(), std::string("llama"));
    QCOMPARE(reader->metadata().at("config").at("hidden_size").get<int>(), 64);
}

void TestOnnx::sniffer_data()
{
    QTest::addColumn<QByteArray>("head");
    QTest::addColumn<quint64>("fileSize");
    QTest::addColumn<bool>("isOnnx");
    const auto bytes = [](const std::string& s) { return QByteArray(s.data(), static_cast<qsizetype>(s.size())); };
    const std::string good = model({tensor("w", {1}, kFloat, raw(f32Bytes({1})))});
    QTest::newRow("small model") << bytes(good.substr(0, 64)) << quint64(good.size()) << true;
    QTest::newRow("graph right after ir_version")
        << bytes(vField(1, 7) + key(7, 2) + varint(100)) << quint64(1000) << true;
    QTest::newRow("truncated graph still goes to the reader")
        << bytes(vField(1, 8) + key(7, 2) + varint(100000)) << quint64(50) << true;
    QTest::newRow("long doc_string past the head")
        << bytes(vField(1, 8) + key(6, 2) + varint(500) + std::string(58, 'x')) << quint64(1000) << true;
    QTest::newRow("doc_string past the file end")
        << bytes(vField(1, 8) + key(6, 2) + varint(5000) + std::string(58, 'x')) << quint64(1000) << false;
    QTest::newRow("ir_version only") << bytes(vField(1, 8)) << quint64(2) << false;
    QTest::newRow("ir_version 0") << bytes(vField(1, 0) + key(7, 2) + varint(3)) << quint64(100) << false;
    QTest::newRow("ir_version absurd") << bytes(vField(1, 5000) + key(7, 2) + varint(3)) << quint64(100) << false;
    QTest::newRow("graph with the wrong wire type") << bytes(vField(1, 8) + vField(7, 3)) << quint64(100) << false;
    QTest::newRow("unknown field") << bytes(vField(1, 8) + vField(9, 3) + key(7, 2) + varint(3)) << quint64(100)
                                   << false;
    QTest::newRow("safetensors") << bytes(novaq::test::makeSafetensors("{}", "")) << quint64(16) << false;
    QTest::newRow("safetensors with length 0x208")
        << bytes(le(0x208, 8) + "{" + std::string(40, ' ')) << quint64(0x300) << false;
    QTest::newRow("GGUF") << QByteArray("GGUF\x03\0\0\0\0\0\0\0", 12) << quint64(1000) << false;
    QTest::newRow("text") << QByteArray("hello, world") << quint64(12) << false;
}

void TestOnnx::sniffer()
{
    QFETCH(QByteArray, head);
    QFETCH(quint64, fileSize);
    QFETCH(bool, isOnnx);
    const auto* b = reinterpret_cast<const std::byte*>(head.constData());
    QCOMPARE(novaq::sniffOnnx({b, static_cast<size_t>(head.size())}, fileSize), isOnnx);
}

void TestOnnx::malformed_data()
{
    QTest::addColumn<int>("row");
    const std::vector<CaseRow> rows = brokenCases();
    for (size_t i = 0; i < rows.size(); ++i)
        QTest::newRow(rows[i].name) << int(i);
}

void TestOnnx::malformed()
{
    QFETCH(int, row);
    const CaseRow c = brokenCases()[static_cast<size_t>(row)];
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path path = toPath(dir.filePath("broken.onnx"));
    const BrokenCase files = c.build("broken.onnx.data");
    writeAll(path, files.model);
    if (files.data)
        writeAll(toPath(dir.filePath("broken.onnx.data")), *files.data);

    const auto failure = failureOf([&] { novaq::openOnnx(path); });
    QVERIFY2(failure, "the file was accepted");
    QVERIFY2(failure->kind == c.kind, qPrintable(failure->message));
    QVERIFY2(failure->message.contains(qs(path.string())), qPrintable(failure->message));
    QVERIFY2(failure->message.contains("offset"), qPrintable(failure->message));
    for (const QString& part : c.expected)
        QVERIFY2(failure->message.contains(part), qPrintable(part + " missing in: " + failure->message));

    // By content, openModel reaches the same reader (or, when the head is broken, says what it is).
    const auto viaModel = failureOf([&] { novaq::openModel(path); });
    QVERIFY2(viaModel, "openModel accepted the file");
    QVERIFY2(viaModel->kind == novaq::ErrorKind::InvalidInput || viaModel->kind == novaq::ErrorKind::Unsupported,
             qPrintable(viaModel->message));
    QVERIFY2(viaModel->message.contains(qs(path.string())), qPrintable(viaModel->message));
}

void TestOnnx::symlinkEscapingFolder()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const fs::path root = toPath(dir.path());
    fs::create_directories(root / "model");
    writeAll(root / "secret.bin", f32Bytes({1, 2}));
    fs::create_symlink("../secret.bin", root / "model" / "weights.bin");
    fs::create_directories(root / "model" / "sub");
    fs::create_directory_symlink(root, root / "model" / "sub" / "up");
    const fs::path path = root / "model" / "model.onnx";

    for (const std::string location : {"weights.bin", "sub/up/secret.bin"}) {
        writeAll(path, model({tensor("w", {2}, kFloat, external(location))}));
        const auto failure = failureOf([&] { novaq::openOnnx(path); });
        QVERIFY2(failure, "the escaping link was followed");
        QCOMPARE(failure->kind, novaq::ErrorKind::InvalidInput);
        for (const QString& part : {qs(path.string()), QString("\"w\""), qs(location), QString("symbolic link"),
                                    QString("refusing"), QString("offset")})
            QVERIFY2(failure->message.contains(part), qPrintable(part + " missing in: " + failure->message));
    }
}

void TestOnnx::missingDataFile()
{
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("model.onnx"));
    writeAll(path, model({tensor("w", {2}, kFloat, external("model.onnx.data"))}));
    const auto failure = failureOf([&] { novaq::openOnnx(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, novaq::ErrorKind::Io);
    QVERIFY2(failure->message.contains("\"w\"") && failure->message.contains("does not exist"),
             qPrintable(failure->message));
}

// Every file kept in tests/data/onnx is rejected, with a message naming it.
void TestOnnx::corpus()
{
    const fs::path folder = novaq::test::testDataDir() / "onnx";
    QVERIFY2(fs::is_directory(folder), qPrintable(qs(folder.string())));
    size_t count = 0;
    for (const auto& entry : fs::directory_iterator(folder)) {
        if (entry.path().extension() != ".onnx")
            continue;
        ++count;
        const auto failure = failureOf([&] { novaq::openOnnx(entry.path()); });
        QVERIFY2(failure, qPrintable(qs(entry.path().string()) + " was accepted"));
        QVERIFY2(failure->kind == novaq::ErrorKind::InvalidInput || failure->kind == novaq::ErrorKind::Unsupported,
                 qPrintable(failure->message));
        QVERIFY2(failure->message.contains(qs(entry.path().filename().string())), qPrintable(failure->message));
    }
    QVERIFY2(count >= brokenCases().size(), qPrintable(QString("only %1 corpus files").arg(count)));
}

// Every truncation and many single-byte changes of a small model either open (and then read)
// or fail with an Error: no crash, no hang, no other exception.
void TestOnnx::mutationsNeverCrash()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string good = model({tensor("w", {2, 2}, kFloat, raw(f32Bytes({1, 2, 3, 4}))),
                                    tensor("h", {2}, kFloat16, bField(5, packedVarints({0x3C00, 0x4000}))),
                                    tensor("i", {2}, kInt64, bField(7, packedVarints({-1, 300})))});
    const fs::path path = toPath(dir.filePath("mutant.onnx"));
    size_t opened = 0, rejected = 0;
    const auto attempt = [&](const std::string& bytes) {
        writeAll(path, bytes);
        try {
            auto reader = novaq::openOnnx(path);
            for (size_t i = 0; i < reader->tensors().size(); ++i) {
                readTensor(*reader, i);
                (void)reader->rawBytes(i);
            }
            ++opened;
        } catch (const novaq::Error&) {
            ++rejected;
        }
    };
    for (size_t n = 0; n < good.size(); ++n)
        attempt(good.substr(0, n));
    for (size_t i = 0; i < good.size(); ++i)
        for (unsigned char value : {0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12}) {
            std::string mutant = good;
            mutant[i] = static_cast<char>(value);
            attempt(mutant);
        }
    QVERIFY(rejected > good.size());
    QVERIFY(opened > 0);
}

void TestOnnx::stories_data()
{
    QTest::addColumn<QString>("onnx");
    QTest::addColumn<QString>("safetensors");
    QTest::newRow("f32") << "stories260K_weights_f32.onnx"
                         << "stories260K_f32.safetensors";
    QTest::newRow("f16") << "stories260K_weights_f16.onnx"
                         << "stories260K_f16.safetensors";
    QTest::newRow("f32 external data") << "stories260K_weights_f32_extdata.onnx"
                                       << "stories260K_f32.safetensors";
}

void TestOnnx::stories()
{
    QFETCH(QString, onnx);
    QFETCH(QString, safetensors);
    const fs::path onnxPath = variants() / onnx.toStdString();
    const fs::path stPath = variants() / safetensors.toStdString();
    for (const fs::path& p : {onnxPath, stPath})
        NOVAQ_REQUIRE_DATA(p);

    QCOMPARE(novaq::detectFileFormat(onnxPath), novaq::ModelFormat::Onnx);
    auto reader = novaq::openModel(onnxPath);
    QCOMPARE(reader->format(), novaq::ModelFormat::Onnx);
    const auto& tensors = reader->tensors();
    QCOMPARE(tensors.size(), size_t(47));
    QCOMPARE(reader->metadata().at("format_metadata").at("opset").at("ai.onnx").get<int>(), 13);
    QCOMPARE(reader->architecture(), std::string("unknown"));

    auto st = novaq::openModel(stPath);
    std::map<std::string, size_t> stIndex;
    for (size_t i = 0; i < st->tensors().size(); ++i)
        stIndex[st->tensors()[i].name] = i;

    size_t matrices = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const novaq::TensorInfo& t = tensors[i];
        const std::vector<float> values = readTensor(*reader, i);
        QCOMPARE(reader->rawBytes(i).size(), size_t(t.nbytes));
        reader->release(i);
        // ONNX and safetensors use the same (llama2.c) names here; every ONNX tensor is in both.
        const auto it = stIndex.find(t.name);
        QVERIFY2(it != stIndex.end(), qPrintable("not in the safetensors file: " + qs(t.name)));
        const novaq::TensorInfo& s = st->tensors()[it->second];
        QCOMPARE(t.shape, s.shape);
        QCOMPARE(t.dtype, s.dtype);
        QVERIFY2(bitIdentical(values, readTensor(*st, it->second)), qPrintable(qs(t.name)));
        if (t.shape.size() == 2)
            ++matrices;
    }
    QCOMPARE(matrices, size_t(5 * 7 + 1)); // 7 matrices per layer and the embedding
}

void TestOnnx::externalEqualsInline()
{
    const fs::path inlinePath = variants() / "stories260K_weights_f32.onnx";
    const fs::path extPath = variants() / "stories260K_weights_f32_extdata.onnx";
    for (const fs::path& p : {inlinePath, extPath, fs::path(extPath.string() + ".data")})
        NOVAQ_REQUIRE_DATA(p);
    auto a = novaq::openOnnx(inlinePath);
    auto b = novaq::openOnnx(extPath);
    QCOMPARE(b->files().size(), size_t(2));
    QCOMPARE(a->tensors().size(), b->tensors().size());
    size_t external = 0;
    for (size_t i = 0; i < a->tensors().size(); ++i) {
        const novaq::TensorInfo& ta = a->tensors()[i];
        const novaq::TensorInfo& tb = b->tensors()[i];
        QCOMPARE(ta.name, tb.name);
        QCOMPARE(ta.shape, tb.shape);
        QCOMPARE(ta.dtype, tb.dtype);
        QVERIFY2(bitIdentical(readTensor(*a, i), readTensor(*b, i)), qPrintable(qs(ta.name)));
        const auto ra = a->rawBytes(i), rb = b->rawBytes(i);
        QVERIFY(ra.size() == rb.size() && std::memcmp(ra.data(), rb.data(), ra.size()) == 0);
        if (tb.fileIndex == 1) {
            ++external;
            QVERIFY(tb.nbytes >= 1024); // tensors under 1 KiB stay inline
        }
    }
    QVERIFY(external > 0);
}

void TestOnnx::compressEndToEnd()
{
    const fs::path input = variants() / "stories260K_weights_f32.onnx";
    NOVAQ_REQUIRE_DATA(input);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    novaq::CompressOptions options;
    options.input = input;
    options.output = toPath(dir.filePath("stories.novaq"));
    options.threads = 2;
    const novaq::ModelReport report = novaq::compressModel(options, nullptr, nullptr);
    QCOMPARE(report.sourceFormat, std::string("ONNX"));
    QCOMPARE(report.tensors.size(), size_t(47));
    QVERIFY(report.quantizedParams() > 0);
    QVERIFY(fs::exists(options.output));
    auto back = novaq::openModel(options.output);
    QCOMPARE(back->tensors().size(), size_t(47));
}

QTEST_APPLESS_MAIN(TestOnnx)
#include "test_onnx.moc"
