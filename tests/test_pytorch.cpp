// The PyTorch reader: the stories260K checkpoints (zip and legacy) give the same floats as the
// safetensors files, views and shared storages read right, hostile pickles are refused without
// running anything, malformed archives are refused with a message naming the file and field,
// sharded checkpoints follow their index, and a .pt file compresses end to end.
//
// tests/data/pytorch/*.pt are written by tests/data/pytorch/make_inputs.py.

#include "test_support.h"

#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/formats/pytorch_reader.h"
#include "novaq/formats/unpickler.h"
#include "novaq/formats/zip_archive.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/tensor/dtype.h"

#include <QTest>

#include <bit>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <zlib.h>

using novaq::ErrorKind;
using novaq::test::f32Bytes;
using novaq::test::failureOf;
using novaq::test::indexByName;
using novaq::test::le;
using novaq::test::readTensor;
using novaq::test::toPath;
using novaq::test::writeAll;
namespace fs = std::filesystem;

Q_DECLARE_METATYPE(std::string)
Q_DECLARE_METATYPE(novaq::ErrorKind)

namespace {

// ---- pickles, opcode by opcode (as make_inputs.py builds them) ----

std::string glob(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
std::string uni(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string num(uint64_t n) { return n < 256 ? "K" + le(n, 1) : n < 65536 ? "M" + le(n, 2) : "\x8a\x08" + le(n, 8); }
std::string tup(const std::string& items) { return "(" + items + "t"; }

std::string storage(const std::string& type, const std::string& key, uint64_t numel)
{
    return tup(uni("storage") + glob("torch", type) + uni(key) + uni("cpu") + num(numel)) + "Q";
}

std::string tensor(const std::string& store, uint64_t offset, std::vector<uint64_t> shape, std::vector<uint64_t> stride)
{
    std::string s, t;
    for (uint64_t d : shape)
        s += num(d);
    for (uint64_t d : stride)
        t += num(d);
    return glob("torch._utils", "_rebuild_tensor_v2") + "(" + store + num(offset) + tup(s) + tup(t) + "\x89" +
           glob("collections", "OrderedDict") + ")R" + "tR";
}

std::string stateDict(const std::vector<std::pair<std::string, std::string>>& items)
{
    std::string body;
    for (const auto& [k, v] : items)
        body += uni(k) + v;
    return glob("collections", "OrderedDict") + ")R(" + body + "u";
}

std::string pickleOf(const std::string& obj) { return std::string("\x80\x02", 2) + obj + "."; }

// ---- a minimal stored zip ----

// CRC-32 of a record as zip records it (zlib's, as the reader uses; the test only needs it to
// build valid archives).
uint64_t crcOf(const std::string& data)
{
    return crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
}

std::string makeZip(const std::vector<std::pair<std::string, std::string>>& entries)
{
    std::string out, central;
    for (const auto& [name, data] : entries) {
        const uint64_t offset = out.size();
        out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crcOf(data), 4) +
               le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
        central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crcOf(data), 4) +
                   le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
                   le(0, 2) + le(0, 4) + le(offset, 4) + name;
    }
    const uint64_t cdOffset = out.size();
    out += central;
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
           le(central.size(), 4) + le(cdOffset, 4) + le(0, 2);
    return out;
}

std::string checkpoint(const std::string& pkl, const std::vector<std::pair<std::string, std::string>>& records)
{
    std::vector<std::pair<std::string, std::string>> entries{{"archive/data.pkl", pkl}};
    for (const auto& [key, data] : records)
        entries.emplace_back("archive/data/" + key, data);
    return makeZip(entries);
}

// A stored archive of one entry "a" holding "abcd", for the zip record rows: the central
// entry's 32-bit size and local header offset as given (0xFFFFFFFF: in the ZIP64 extra
// field), `extra` as its extra field, and with `zip64` a ZIP64 end record and locator. The
// layout is fixed: local header at 0 (35 bytes), the central directory at 35 (47 bytes and
// the extra field), then the end records.
struct ZipParts {
    uint64_t size32 = 4;
    uint64_t offset32 = 0;
    std::string extra;
    bool zip64 = false;
};

constexpr size_t kZipCentral = 35;

std::string zipOf(const ZipParts& p)
{
    const std::string local = le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crcOf("abcd"), 4) +
                              le(4, 4) + le(4, 4) + le(1, 2) + le(0, 2) + "a" + "abcd";
    const std::string central = le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                                le(crcOf("abcd"), 4) + le(p.size32, 4) + le(p.size32, 4) + le(1, 2) +
                                le(p.extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(p.offset32, 4) +
                                "a" + p.extra;
    std::string out = local + central;
    if (p.zip64) {
        const uint64_t record = out.size();
        out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(1, 8) + le(1, 8) +
               le(central.size(), 8) + le(kZipCentral, 8);
        out += le(0x07064b50, 4) + le(0, 4) + le(record, 8) + le(1, 4);
        out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFFFFFF, 4) +
               le(0xFFFFFFFF, 4) + le(0, 2);
    } else {
        out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(1, 2) + le(1, 2) + le(central.size(), 4) +
               le(kZipCentral, 4) + le(0, 2);
    }
    return out;
}

// The ZIP64 extra field: id 1, then the given 64-bit values.
std::string zip64Extra(const std::vector<uint64_t>& values)
{
    std::string body;
    for (uint64_t v : values)
        body += le(v, 8);
    return le(1, 2) + le(body.size(), 2) + body;
}

bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

fs::path dataFile(const std::string& name) { return novaq::test::testDataDir() / "pytorch" / name; }

} // namespace

class TestPyTorch : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void stories260K_data();
    void stories260K();
    void views_data();
    void views();
    void trainingCheckpoint();
    void legacyViews();
    void sniffing();
    void hostilePickles_data();
    void hostilePickles();
    void nothingIsExecuted();
    void malformed_data();
    void malformed();
    void sharded();
    void shardedBroken_data();
    void shardedBroken();
    void folderPrefersPyTorchBin();
    void compressEndToEnd();
    void zipRecordCrc_data();
    void zipRecordCrc();
    void zipRecords_data();
    void zipRecords();
};

// ---- the real files ----

void TestPyTorch::stories260K_data()
{
    QTest::addColumn<std::string>("checkpoint");
    QTest::addColumn<std::string>("reference");
    QTest::addColumn<bool>("tiedStorage");
    QTest::newRow("zip f32") << std::string("stories260K_state_dict_f32.pt")
                             << std::string("stories260K_f32.safetensors") << true;
    QTest::newRow("zip f16") << std::string("stories260K_state_dict_f16.pt")
                             << std::string("stories260K_f16.safetensors") << false;
    QTest::newRow("zip bf16") << std::string("stories260K_state_dict_bf16.pt")
                              << std::string("stories260K_bf16.safetensors") << false;
    QTest::newRow("legacy f32") << std::string("stories260K_state_dict_f32_legacy.pt")
                                << std::string("stories260K_f32.safetensors") << true;
}

void TestPyTorch::stories260K()
{
    QFETCH(std::string, checkpoint);
    QFETCH(std::string, reference);
    QFETCH(bool, tiedStorage);
    const fs::path dir = novaq::test::modelsDir() / "stories260K" / "variants";
    for (const fs::path& f : {dir / checkpoint, dir / reference})
        NOVAQ_REQUIRE_DATA(f);

    auto reader = novaq::openModel(dir / checkpoint);
    QCOMPARE(reader->format(), novaq::ModelFormat::PyTorch);
    QCOMPARE(novaq::detectFileFormat(dir / checkpoint), novaq::ModelFormat::PyTorch);
    const auto names = indexByName(*reader);
    QVERIFY(names.contains("tok_embeddings.weight"));
    QVERIFY(names.contains("layers.0.attention.wq.weight"));
    QCOMPARE(reader->tensors()[names.at("tok_embeddings.weight")].shape, (std::vector<int64_t>{512, 64}));
    QVERIFY(reader->metadata().at("format_metadata").is_object());

    // Every tensor reads; raw bytes are the file's (all views here are contiguous).
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
        const auto values = readTensor(*reader, i);
        QCOMPARE(reader->rawBytes(i).size(), static_cast<size_t>(reader->tensors()[i].nbytes));
        reader->release(i);
        QCOMPARE(values.size(), static_cast<size_t>(reader->tensors()[i].numel()));
    }

    // The same floats as the safetensors file, bit for bit, for every name it holds.
    auto expected = novaq::openModel(dir / reference);
    size_t compared = 0;
    for (size_t j = 0; j < expected->tensors().size(); ++j) {
        const std::string& name = expected->tensors()[j].name;
        QVERIFY2(names.contains(name), name.c_str());
        const size_t i = names.at(name);
        QCOMPARE(reader->tensors()[i].shape, expected->tensors()[j].shape);
        QCOMPARE(reader->tensors()[i].dtype, expected->tensors()[j].dtype);
        QVERIFY2(bitIdentical(readTensor(*reader, i), readTensor(*expected, j)), name.c_str());
        ++compared;
    }
    QVERIFY(compared >= 40);

    if (tiedStorage) {
        QVERIFY(names.contains("output.weight"));
        const auto& out = reader->tensors()[names.at("output.weight")];
        const auto& emb = reader->tensors()[names.at("tok_embeddings.weight")];
        QCOMPARE(out.offset, emb.offset); // one storage
        QVERIFY(bitIdentical(readTensor(*reader, names.at("output.weight")),
                             readTensor(*reader, names.at("tok_embeddings.weight"))));
    }
}

// ---- small files from make_inputs.py ----

void TestPyTorch::views_data()
{
    QTest::addColumn<std::string>("file");
    QTest::newRow("zip, archive/ prefix") << std::string("ok_views.pt");
    QTest::newRow("zip64 records, another prefix") << std::string("ok_views_zip64.pt");
}

void TestPyTorch::views()
{
    QFETCH(std::string, file);
    auto reader = novaq::openModel(dataFile(file));
    const auto names = indexByName(*reader);
    QCOMPARE(names.size(), size_t(8));
    const auto values = [&](const char* name) { return readTensor(*reader, names.at(name)); };
    QCOMPARE(values("w"), (std::vector<float>{0, 1, 2, 3, 4, 5}));
    QCOMPARE(values("w_t"), (std::vector<float>{0, 3, 1, 4, 2, 5})); // transposed: gathered through strides
    QCOMPARE(values("tail"), (std::vector<float>{3, 5}));
    QCOMPARE(values("row"), (std::vector<float>{6, 7}));
    QCOMPARE(values("scalar"), (std::vector<float>{7}));
    QCOMPARE(values("ids"), (std::vector<float>{-1, 0, 7}));
    QCOMPARE(values("mask"), (std::vector<float>{1, 0}));
    QCOMPARE(values("h"), (std::vector<float>{2, -3}));

    const auto& tensors = reader->tensors();
    QCOMPARE(tensors[names.at("w_t")].shape, (std::vector<int64_t>{3, 2}));
    QCOMPARE(tensors[names.at("ids")].dtype, novaq::DType::I64);
    QCOMPARE(tensors[names.at("mask")].dtype, novaq::DType::Bool);
    QCOMPARE(tensors[names.at("h")].dtype, novaq::DType::F16);
    QCOMPARE(tensors[names.at("scalar")].numel(), int64_t(1));
    QCOMPARE(tensors[names.at("w_t")].nbytes, uint64_t(24));

    // Contiguous views are spans into the file; strided ones are gathered, in tensor order.
    const auto raw = reader->rawBytes(names.at("w"));
    const std::vector<char> bytes = novaq::test::readAll(dataFile(file));
    QCOMPARE(static_cast<const void*>(raw.data()) != nullptr, true);
    QVERIFY(std::memcmp(raw.data(), bytes.data() + tensors[names.at("w")].offset, 24) == 0);
    const auto gathered = reader->rawBytes(names.at("w_t"));
    QCOMPARE(gathered.size(), size_t(24));
    std::vector<float> fromRaw(6);
    std::memcpy(fromRaw.data(), gathered.data(), 24);
    QCOMPARE(fromRaw, (std::vector<float>{0, 3, 1, 4, 2, 5}));
    for (size_t i = 0; i < tensors.size(); ++i)
        reader->release(i);
    QCOMPARE(values("w_t"), (std::vector<float>{0, 3, 1, 4, 2, 5}));
    QCOMPARE(reader->architecture(), std::string("unknown"));
}

void TestPyTorch::trainingCheckpoint()
{
    // Protocol 4 opcodes; the state dict sits under "state_dict" beside an epoch and optimizer
    // state; "tied" is the same tensor object as "w" (a memo reference).
    auto reader = novaq::openPyTorch(dataFile("ok_checkpoint_protocol4.pt"));
    QCOMPARE(reader->tensors().size(), size_t(2));
    QCOMPARE(reader->tensors()[0].name, std::string("w"));
    QCOMPARE(reader->tensors()[1].name, std::string("tied"));
    QCOMPARE(readTensor(*reader, 0), (std::vector<float>{2, 3, 4, 5}));
    QCOMPARE(readTensor(*reader, 1), (std::vector<float>{2, 3, 4, 5}));
    QCOMPARE(reader->tensors()[0].offset, reader->tensors()[1].offset);
}

void TestPyTorch::legacyViews()
{
    auto reader = novaq::openModel(dataFile("ok_legacy.pt"));
    QCOMPARE(reader->format(), novaq::ModelFormat::PyTorch);
    const auto names = indexByName(*reader);
    QCOMPARE(readTensor(*reader, names.at("a")), (std::vector<float>{0, 1, 2, 3}));
    QCOMPARE(readTensor(*reader, names.at("b")), (std::vector<float>{5, 6, 7})); // a storage view at element 4
    QCOMPARE(readTensor(*reader, names.at("c")), (std::vector<float>{1.5f, -2.25f}));
    QCOMPARE(reader->tensors()[names.at("c")].dtype, novaq::DType::F64);
}

void TestPyTorch::sniffing()
{
    for (const char* f : {"ok_views.pt", "ok_legacy.pt", "ok_views_zip64.pt", "ok_checkpoint_protocol4.pt"})
        QCOMPARE(novaq::detectFileFormat(dataFile(f)), novaq::ModelFormat::PyTorch);
    // A pickle without torch's magic number is not claimed by the reader.
    const std::string plain = pickleOf("}");
    QVERIFY(!novaq::sniffPyTorch(std::as_bytes(std::span(plain.data(), plain.size())), plain.size()));
}

// ---- hostile pickles ----

void TestPyTorch::hostilePickles_data()
{
    QTest::addColumn<std::string>("pickle");
    QTest::addColumn<QString>("expected");
    const std::string proto2("\x80\x02", 2);
    const std::string goodTensor = tensor(storage("FloatStorage", "0", 2), 0, {2}, {1});

    QTest::newRow("os.system") << pickleOf(glob("os", "system") + tup(uni("echo pwned")) + "R")
                               << "refuses to load: the pickle names the global 'os.system' at offset";
    QTest::newRow("builtins.eval") << pickleOf(glob("builtins", "eval") + tup(uni("1+1")) + "R")
                                   << "the global 'builtins.eval'";
    QTest::newRow("torch.storage._load_from_bytes")
        << pickleOf(glob("torch.storage", "_load_from_bytes") + tup(uni("...")) + "R")
        << "the global 'torch.storage._load_from_bytes'";
    QTest::newRow("STACK_GLOBAL posix.system")
        << std::string("\x80\x04\x8c\x05posix\x8c\x06system\x93)R.", 19) << "the global 'posix.system'";
    QTest::newRow("global inside a state dict")
        << pickleOf(stateDict({{"w", goodTensor}, {"x", glob("subprocess", "Popen") + tup(uni("sh")) + "R"}}))
        << "the global 'subprocess.Popen'";
    QTest::newRow("global as a storage type")
        << pickleOf(
               stateDict({{"w", tensor(tup(uni("storage") + glob("os", "popen") + uni("0") + uni("cpu") + num(2)) + "Q",
                                       0, {2}, {1})}}))
        << "the global 'os.popen'";
    QTest::newRow("unknown opcode") << proto2 + "\xff."
                                    << "pickle opcode 0xff";
    QTest::newRow("INST (protocol 0 call)") << proto2 + "ios\nsystem\n(S'ls'\ntR."
                                            << "pickle opcode 0x69 ('i')";
    QTest::newRow("NEWOBJ") << pickleOf(glob("collections", "OrderedDict") + ")\x81") << "pickle opcode 0x81";
    QTest::newRow("truncated") << pickleOf(stateDict({{"w", goodTensor}})).substr(0, 40) << "before its STOP opcode";
    QTest::newRow("truncated string") << proto2 + "X\xff\xff\xff\x7f" + "abc"
                                      << "2147483647 bytes needed";
    QTest::newRow("memo index never stored") << proto2 + "h\x05."
                                             << "memo index 5 was never stored";
    QTest::newRow("huge LONG_BINPUT") << proto2 + "}r\xff\xff\xff\xff."
                                      << "memo index 4294967295 is larger";
    QTest::newRow("deep MARK nesting") << proto2 + std::string(100000, '(') << "MARKs nest more than";
    QTest::newRow("stack flood") << proto2 + std::string(novaq::pickle::kMaxStack + 1, ']') << "the stack holds more";
    QTest::newRow("REDUCE of a dict") << pickleOf("})R") << "REDUCE calls a dict";
    QTest::newRow("persistent id not a storage")
        << pickleOf(tup(uni("module") + uni("x") + uni("0") + uni("cpu") + num(1)) + "Q") << "not a 'storage'";
    QTest::newRow("BUILD on a list") << pickleOf("]}b") << "BUILD on a list";
    QTest::newRow("APPEND to a dict") << pickleOf(std::string("}K\x01"
                                                              "a",
                                                              4))
                                      << "APPEND to a dict";
    QTest::newRow("rank 9") << pickleOf(
                                   stateDict({{"w", tensor(storage("FloatStorage", "0", 2), 0,
                                                           {1, 1, 1, 1, 1, 1, 1, 1, 2}, {1, 1, 1, 1, 1, 1, 1, 1, 1})}}))
                            << "9 dimensions";
    QTest::newRow("protocol 6") << std::string("\x80\x06.", 3) << "pickle protocol 6";
    // Dicts nested 1000 deep parse (the unpickler bounds no depth it does not recurse into) but
    // the walk over the state dict stops at its depth limit.
    std::string deep = "}";
    for (int i = 0; i < 1000; ++i)
        deep += uni("k") + "}";
    deep += std::string(1000, 's');
    QTest::newRow("deep dict nesting") << pickleOf(deep) << "nests dicts more than";
    std::string deepLists = std::string(200000, ']') + std::string(199999, 'a');
    QTest::newRow("deep list nesting") << pickleOf(deepLists) << "holds a list, not a state dict";
}

void TestPyTorch::hostilePickles()
{
    QFETCH(std::string, pickle);
    QFETCH(QString, expected);
    QTemporaryDir dir;
    const fs::path path = toPath(dir.filePath("hostile.pt"));
    writeAll(path, checkpoint(pickle, {{"0", f32Bytes({1, 2})}}));
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY2(failure, "the hostile pickle was accepted");
    QCOMPARE(failure->kind, ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
    QVERIFY2(failure->message.startsWith(QString::fromStdString(path.string())), qPrintable(failure->message));
}

void TestPyTorch::nothingIsExecuted()
{
    QTemporaryDir dir;
    const fs::path marker = toPath(dir.filePath("pwned"));
    const fs::path path = toPath(dir.filePath("evil.pt"));
    // As pickle.load would run it: os.system("touch <marker>"), then the state dict.
    writeAll(path, checkpoint(pickleOf(glob("os", "system") + tup(uni("touch " + marker.string())) + "R0" +
                                       stateDict({{"w", tensor(storage("FloatStorage", "0", 2), 0, {2}, {1})}})),
                              {{"0", f32Bytes({1, 2})}}));
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY(failure);
    QCOMPARE(failure->kind, ErrorKind::InvalidInput);
    QVERIFY2(failure->message.contains("'os.system'"), qPrintable(failure->message));
    QVERIFY(!fs::exists(marker));

    // The committed sample refuses the same way, naming the offset of its GLOBAL.
    const auto committed = failureOf([&] { novaq::openModel(dataFile("bad_os_system.pt")); });
    QVERIFY(committed);
    QVERIFY2(committed->message.contains("'os.system' at offset"), qPrintable(committed->message));
    QVERIFY2(committed->message.contains("this file may run code when loaded by Python"),
             qPrintable(committed->message));
}

// ---- malformed archives and streams ----

void TestPyTorch::malformed_data()
{
    QTest::addColumn<std::string>("file");
    QTest::addColumn<ErrorKind>("kind");
    QTest::addColumn<QString>("expected");
    const auto row = [](const char* file, ErrorKind kind, const char* expected) {
        QTest::newRow(file) << std::string(file) << kind << QString(expected);
    };
    row("bad_truncated_central_directory.pt", ErrorKind::InvalidInput, "no zip end of central directory record");
    row("bad_entry_offset_past_end.pt", ErrorKind::InvalidInput, "local header offset");
    row("bad_deflate_entry.pt", ErrorKind::InvalidInput, "entry \"archive/data/0\" is compressed (method 8, deflate");
    row("bad_missing_data_pkl.pt", ErrorKind::InvalidInput, "without a data.pkl record");
    row("bad_missing_storage.pt", ErrorKind::InvalidInput, "no record \"archive/data/3\"");
    row("bad_storage_too_small.pt", ErrorKind::InvalidInput, "past the end of storage \"0\"");
    row("bad_record_shorter_than_storage.pt", ErrorKind::InvalidInput, "holds 32 bytes");
    row("bad_stride_out_of_bounds.pt", ErrorKind::InvalidInput, "stride [3, 3]");
    row("bad_absurd_dims.pt", ErrorKind::InvalidInput, "more elements than fit in 64 bits");
    row("bad_huge_offset.pt", ErrorKind::InvalidInput, "storage offset 4611686018427387904");
    row("bad_os_system.pt", ErrorKind::InvalidInput, "the global 'os.system'");
    row("bad_big_endian.pt", ErrorKind::Unsupported, "big-endian");
    row("bad_torchscript.pt", ErrorKind::Unsupported, "TorchScript archive");
    row("bad_legacy_truncated.pt", ErrorKind::InvalidInput, "run past the end of the file");
    row("bad_legacy_wrong_count.pt", ErrorKind::InvalidInput, "holds 7 elements");
    row("bad_not_a_list.pt", ErrorKind::InvalidInput, "holds a list, not a state dict");
}

void TestPyTorch::malformed()
{
    QFETCH(std::string, file);
    QFETCH(ErrorKind, kind);
    QFETCH(QString, expected);
    const fs::path path = dataFile(file);
    QVERIFY2(fs::exists(path), path.c_str());
    const auto failure = failureOf([&] { novaq::openModel(path); });
    QVERIFY2(failure, "the file was accepted");
    QVERIFY2(failure->kind == kind, qPrintable(failure->message));
    QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
    QVERIFY2(failure->message.startsWith(QString::fromStdString(path.string())), qPrintable(failure->message));

    // Every truncation of the file is refused too, never a crash.
    const std::vector<char> bytes = novaq::test::readAll(path);
    QTemporaryDir dir;
    const fs::path cut = toPath(dir.filePath(QString::fromStdString(file)));
    for (size_t n = 0; n < bytes.size(); n += 7) {
        writeAll(cut, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
        QVERIFY(failureOf([&] { novaq::openModel(cut); }));
    }
}

// ---- sharded checkpoints ----

namespace {

void writeShards(const fs::path& dir)
{
    writeAll(dir / "pytorch_model-00001-of-00002.bin",
             checkpoint(pickleOf(stateDict({{"a", tensor(storage("FloatStorage", "0", 2), 0, {2}, {1})}})),
                        {{"0", f32Bytes({1, 2})}}));
    writeAll(dir / "pytorch_model-00002-of-00002.bin",
             checkpoint(pickleOf(stateDict({{"b", tensor(storage("HalfStorage", "7", 1), 0, {1}, {1})}})),
                        {{"7", le(0x3C00, 2)}}));
}

} // namespace

void TestPyTorch::sharded()
{
    QTemporaryDir tmp;
    const fs::path dir = toPath(tmp.path());
    writeShards(dir);
    writeAll(dir / "pytorch_model.bin.index.json",
             std::string(R"({"metadata":{"total_size":6},"weight_map":{"a":"pytorch_model-00001-of-00002.bin",)"
                         R"("b":"pytorch_model-00002-of-00002.bin"}})"));
    writeAll(dir / "config.json", std::string(R"({"model_type":"llama"})"));
    for (const fs::path& open : {dir, dir / "pytorch_model.bin.index.json"}) {
        auto reader = novaq::openModel(open);
        QCOMPARE(reader->format(), novaq::ModelFormat::PyTorch);
        QCOMPARE(reader->files().size(), size_t(2));
        QCOMPARE(reader->tensors().size(), size_t(2));
        QCOMPARE(reader->tensors()[1].fileIndex, 1u);
        QCOMPARE(readTensor(*reader, 0), (std::vector<float>{1, 2}));
        QCOMPARE(readTensor(*reader, 1), (std::vector<float>{1}));
        QCOMPARE(reader->architecture(), std::string("llama"));
        QVERIFY(reader->metadata().at("index_metadata").at("total_size") == nlohmann::json(6));
    }
}

void TestPyTorch::shardedBroken_data()
{
    QTest::addColumn<std::string>("index");
    QTest::addColumn<QString>("expected");
    QTest::newRow("path outside the folder")
        << std::string(R"({"weight_map":{"a":"../pytorch_model-00001-of-00002.bin"}})") << "refusing to read outside";
    QTest::newRow("absolute path") << std::string(R"({"weight_map":{"a":"/etc/passwd"}})") << "not a plain file name";
    QTest::newRow("missing shard") << std::string(R"({"weight_map":{"a":"nope.bin"}})") << "is missing";
    QTest::newRow("tensor in the wrong shard")
        << std::string(R"({"weight_map":{"a":"pytorch_model-00002-of-00002.bin",)"
                       R"("b":"pytorch_model-00002-of-00002.bin"}})")
        << "does not hold it";
    QTest::newRow("unlisted tensor") << std::string(R"({"weight_map":{"a":"pytorch_model-00001-of-00002.bin",)"
                                                    R"("c":"pytorch_model-00002-of-00002.bin"}})")
                                     << "does not list";
    QTest::newRow("no weight_map") << std::string(R"({"metadata":{}})") << "weight_map is missing";
    QTest::newRow("duplicate key") << std::string(R"({"weight_map":{"a":"x.bin","a":"y.bin"}})") << "appears twice";
}

void TestPyTorch::shardedBroken()
{
    QFETCH(std::string, index);
    QFETCH(QString, expected);
    QTemporaryDir tmp;
    const fs::path dir = toPath(tmp.path());
    writeShards(dir);
    writeAll(dir / "pytorch_model.bin.index.json", index);
    const auto failure = failureOf([&] { novaq::openModel(dir); });
    QVERIFY(failure);
    QVERIFY2(failure->message.contains(expected), qPrintable(failure->message));
}

void TestPyTorch::folderPrefersPyTorchBin()
{
    QTemporaryDir tmp;
    const fs::path dir = toPath(tmp.path());
    fs::copy_file(dataFile("ok_views.pt"), dir / "pytorch_model.bin");
    fs::copy_file(dataFile("ok_legacy.pt"), dir / "training_args.bin"); // also PyTorch, but not the model
    auto reader = novaq::openModel(dir);
    QCOMPARE(reader->files().front().filename().string(), std::string("pytorch_model.bin"));
    QCOMPARE(reader->tensors().size(), size_t(8));
}

void TestPyTorch::compressEndToEnd()
{
    const fs::path input = novaq::test::modelsDir() / "stories260K" / "variants" / "stories260K_state_dict_f32.pt";
    NOVAQ_REQUIRE_DATA(input);
    QTemporaryDir tmp;
    novaq::CompressOptions options;
    options.input = input;
    options.output = toPath(tmp.filePath("stories260K.novaq"));
    const novaq::ModelReport report = novaq::compressModel(options, nullptr, nullptr);
    QCOMPARE(report.sourceFormat, std::string("PyTorch"));
    QVERIFY(fs::file_size(options.output) > 0);
    auto reader = novaq::openModel(input);
    QCOMPARE(report.tensors.size(), reader->tensors().size());
    auto compressed = novaq::openModel(options.output);
    QCOMPARE(compressed->tensors().size(), reader->tensors().size());
}

// A zip record whose bytes no longer match the CRC-32 the archive recorded is refused, naming
// the archive, the record and both checksums: a damaged storage when its tensor is read (the
// pickle and byteorder records when the file is opened), never read as weights.
void TestPyTorch::zipRecordCrc_data()
{
    QTest::addColumn<std::string>("record"); // the entry whose byte is flipped; empty: none
    QTest::addColumn<bool>("failsAtOpen");
    QTest::newRow("intact") << std::string() << false;
    QTest::newRow("storage record") << std::string("archive/data/0") << false;
    QTest::newRow("data.pkl") << std::string("archive/data.pkl") << true;
    QTest::newRow("byteorder") << std::string("archive/byteorder") << true;
}

void TestPyTorch::zipRecordCrc()
{
    QFETCH(std::string, record);
    QFETCH(bool, failsAtOpen);
    const std::string pkl = pickleOf(stateDict({{"w", tensor(storage("FloatStorage", "0", 4), 0, {2, 2}, {2, 1})}}));
    const std::string weights = f32Bytes({1.5f, -2.25f, 3.0f, 0.5f});
    const std::vector<std::pair<std::string, std::string>> entries{
        {"archive/data.pkl", pkl}, {"archive/byteorder", "little"}, {"archive/data/0", weights}};
    std::string zip = makeZip(entries);
    uint32_t expected = 0;
    uint32_t actual = 0;
    if (!record.empty()) {
        // The entry's bytes follow its 30-byte local header and its name; flip the middle one.
        const auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == record; });
        QVERIFY(it != entries.end());
        const size_t local =
            zip.find(le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crcOf(it->second), 4));
        QVERIFY(local != std::string::npos);
        const size_t at = local + 30 + record.size() + it->second.size() / 2;
        std::string damaged = it->second;
        damaged[it->second.size() / 2] = char(damaged[it->second.size() / 2] ^ 0x10);
        zip[at] = char(zip[at] ^ 0x10);
        expected = static_cast<uint32_t>(crcOf(it->second));
        actual = static_cast<uint32_t>(crcOf(damaged));
    }
    QTemporaryDir tmp;
    const fs::path path = toPath(tmp.path()) / "model.pt";
    writeAll(path, zip);

    std::unique_ptr<novaq::ModelReader> reader;
    std::vector<float> values;
    const auto failure = failureOf([&] {
        reader = novaq::openModel(path);
        if (failsAtOpen)
            QFAIL("a damaged record was accepted at open");
        values = readTensor(*reader, 0);
    });
    if (record.empty()) {
        QVERIFY2(!failure, failure ? qPrintable(failure->message) : "");
        QCOMPARE(values, (std::vector<float>{1.5f, -2.25f, 3.0f, 0.5f}));
        // A second read of the same record (checked once) gives the same floats.
        QCOMPARE(readTensor(*reader, 0), values);
        return;
    }
    QVERIFY2(failure, "a damaged record was read as weights");
    QCOMPARE(failure->kind, ErrorKind::InvalidInput);
    QCOMPARE(bool(reader), !failsAtOpen);
    char hex[2][16];
    std::snprintf(hex[0], sizeof hex[0], "0x%08x", expected);
    std::snprintf(hex[1], sizeof hex[1], "0x%08x", actual);
    for (const QString& part : {QString::fromStdString(path.string()), QString::fromStdString("\"" + record + "\""),
                                QStringLiteral("CRC-32"), QString(hex[0]), QString(hex[1])})
        QVERIFY2(failure->message.contains(part), qPrintable(part + " missing in: " + failure->message));
    if (!failsAtOpen) // the check is repeated on the next read, not remembered as passed
        QVERIFY(failureOf([&] { readTensor(*reader, 0); }));
}

// Zip records read through io/byte_cursor.h: each row damages a real archive (a field that
// points past its record, a ZIP64 field that is missing, a record cut short) and the message
// names the archive, the record, the field and its file offset. Every cut of the good archives
// is refused too.
void TestPyTorch::zipRecords_data()
{
    QTest::addColumn<std::string>("zip");
    QTest::addColumn<QStringList>("expected"); // empty: the archive is read, entry "a" is "abcd"
    const auto row = [](const char* name, const std::string& zip, const QStringList& expected) {
        QTest::newRow(name) << zip << expected;
    };
    const std::string plain = zipOf({});
    const std::string zip64 = zipOf({0xFFFFFFFF, 0xFFFFFFFF, zip64Extra({4, 4, 0}), true});
    const size_t extraAt = kZipCentral + 46 + 1;
    row("plain", plain, {});
    row("ZIP64 end records and extra field", zip64, {});
    row("ZIP64 extra field with other fields",
        zipOf({0xFFFFFFFF, 0, le(0x7075, 2) + le(3, 2) + "xyz" + zip64Extra({4, 4})}), {});
    row("ZIP64 extra field lacks the size", zipOf({0xFFFFFFFF, 0, zip64Extra({})}),
        {"entry \"a\" at offset " + QString::number(extraAt + 4),
         "64-bit size (8 bytes) runs past the end of the ZIP64 "
         "extra field"});
    row("ZIP64 extra field lacks the local header offset", zipOf({0xFFFFFFFF, 0xFFFFFFFF, zip64Extra({4, 4})}),
        {"at offset " + QString::number(extraAt + 4 + 16), "64-bit local header offset (8 bytes) runs past the end"});
    row("extra field longer than its record", zipOf({4, 0, le(0x7075, 2) + le(9, 2) + "xy"}),
        {"entry \"a\": extra field at file offset " + QString::number(extraAt), "(9 bytes) runs past its record"});
    {
        std::string z = plain;
        z.replace(kZipCentral + 30, 2, le(200, 2)); // extra field length
        row("extra field length past the central directory", z,
            {"central directory entry 0 at offset " + QString::number(extraAt),
             "extra fields (200 bytes) runs past the end of the central directory (offset " + QString::number(extraAt) +
                 ")"});
    }
    {
        std::string z = plain;
        z.replace(kZipCentral + 28, 2, le(60, 2)); // name length
        row("name length past the central directory", z,
            {"central directory entry 0 at offset " + QString::number(kZipCentral + 46),
             "name (60 bytes) runs past the end of the central directory"});
    }
    {
        std::string z = plain;
        z.replace(z.size() - 22 + 12, 4, le(20, 4)); // the central directory's size
        row("central directory shorter than one entry", z,
            {"lists 1 entries, more than its 20-byte central directory"});
    }
    {
        std::string z = plain;
        z.replace(z.size() - 22 + 16, 4, le(70, 4)); // central directory offset
        row("central directory offset past its end record", z,
            {"the central directory (offset 70, 47 bytes", "runs past the end of the file or into its end record"});
    }
    {
        std::string z = zip64;
        z.replace(z.size() - 22 - 20 + 8, 8, le(z.size(), 8)); // the locator's record offset
        row("ZIP64 locator points past the record", z,
            {"ZIP64 end of central directory offset " + QString::number(z.size()), "field of the locator"});
    }
    {
        std::string z = zip64;
        const size_t record = z.size() - 22 - 20 - 56;
        z.replace(record + 40, 8, le(uint64_t(1) << 40, 8)); // the ZIP64 central directory size
        row("ZIP64 central directory size past the end", z,
            {"the central directory (offset 35, 1099511627776 bytes", "runs past the end of the file"});
    }
    {
        std::string z = zip64;
        z.replace(z.size() - 22 - 20 - 56, 4, "XXXX");
        row("ZIP64 record with a bad signature", z,
            {"no ZIP64 end of central directory record at file offset " + QString::number(z.size() - 22 - 20 - 56)});
    }
    {
        std::string z = plain;
        z.replace(26, 2, le(40, 2)); // the local header's name length
        row("local name length past the entries", z,
            {"entry \"a\": its 4 bytes at file offset 70", "run past the end of the entries"});
    }
    row("local header offset inside the entries' end", zipOf({4, 10, ""}),
        {"local header offset 10 (central directory at file offset " + QString::number(kZipCentral + 42) + ")",
         "lies past the entries"});
    row("end record cut", plain.substr(0, plain.size() - 3), {"no zip end of central directory record"});
}

void TestPyTorch::zipRecords()
{
    QFETCH(std::string, zip);
    QFETCH(QStringList, expected);
    const auto bytes = std::as_bytes(std::span(zip.data(), zip.size()));
    const std::string path = "model.pt";
    const auto failure = failureOf([&] {
        const novaq::ZipArchive archive(bytes, path);
        QCOMPARE(archive.entries().size(), size_t(1));
        const std::span<const std::byte> data = archive.verifiedData(archive.entries().front());
        QCOMPARE(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), std::string_view("abcd"));
    });
    if (expected.isEmpty()) {
        QVERIFY2(!failure, failure ? qPrintable(failure->message) : "");
        // Every cut of a good archive is refused, never read past its end.
        for (size_t n = 0; n < zip.size(); ++n) {
            const auto cut = failureOf([&] { novaq::ZipArchive(bytes.first(n), path); });
            QVERIFY2(cut && cut->kind == ErrorKind::InvalidInput, qPrintable(QString::number(n)));
            QVERIFY(cut->message.startsWith("model.pt: "));
        }
        return;
    }
    QVERIFY2(failure, "the archive was accepted");
    QCOMPARE(failure->kind, ErrorKind::InvalidInput);
    QVERIFY2(failure->message.startsWith("model.pt: "), qPrintable(failure->message));
    for (const QString& part : expected)
        QVERIFY2(failure->message.contains(part), qPrintable(part + " missing in: " + failure->message));
}

QTEST_GUILESS_MAIN(TestPyTorch)
#include "test_pytorch.moc"
