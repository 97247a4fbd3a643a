// Hostile input (issue 10): JSON nested deep enough to overflow nlohmann::json's recursive
// copy and dump, tensors that made `novaq local` write files that `validate` refuses, and
// configuration values out of range. Every input is built here, byte by byte.

#include "test_support.h"

#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/novaq_model_reader.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/io/json.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/export.h"
#include "novaq/pipeline/validate.h"
#include "novaq/runtime/llama.h"
#include "novaq/tensor/dtype.h"
#include "novaq/text/tokenizer.h"

#include <QtTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

using namespace novaq;
namespace fs = std::filesystem;

namespace {

constexpr int kDeep = 60000; // as deep as the campaign's 120 KB files

// `levels` objects or arrays inside each other around the number 1.
std::string nested(int levels, bool objects)
{
    std::string s;
    s.reserve(static_cast<size_t>(levels) * 6 + 1);
    for (int i = 0; i < levels; ++i)
        s += objects ? "{\"a\":" : "[";
    s += "1";
    for (int i = 0; i < levels; ++i)
        s += objects ? "}" : "]";
    return s;
}

struct TensorSpec {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
};

std::string f32(const std::vector<float>& v)
{
    std::string out(v.size() * 4, '\0');
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::string u16(const std::vector<uint16_t>& v)
{
    std::string out(v.size() * 2, '\0');
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::string f64(const std::vector<double>& v)
{
    std::string out(v.size() * 8, '\0');
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::string safetensorsOf(const std::vector<TensorSpec>& tensors)
{
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    std::string data;
    for (const TensorSpec& t : tensors) {
        header[t.name] = {
            {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data += t.bytes;
    }
    return test::makeSafetensors(header.dump(), data);
}

fs::path writeModel(const fs::path& dir, const std::vector<TensorSpec>& tensors)
{
    const fs::path path = dir / "model.safetensors";
    test::writeAll(path, safetensorsOf(tensors));
    return path;
}

std::vector<float> ones(size_t n) { return std::vector<float>(n, 1.0f); }

std::vector<float> with(std::vector<float> v, size_t at, float x)
{
    v[at] = x;
    return v;
}

std::vector<float> scaled(std::vector<float> v, float factor)
{
    for (float& x : v)
        x = std::clamp(x * factor, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max());
    return v;
}

// A .novaq file around `manifest` (no sections), written as NovaqWriter lays it out.
void writeNovaqWithManifest(const fs::path& path, const std::string& manifest)
{
    std::string bytes(64, '\0');
    const unsigned char magic[8] = {0x89, 'N', 'O', 'V', 'A', 'Q', '\r', '\n'};
    std::memcpy(bytes.data(), magic, 8);
    bytes.replace(8, 2, test::le(kNovaqMajor, 2));
    bytes.replace(10, 2, test::le(kNovaqMinor, 2));
    bytes.replace(12, 4, test::le(64, 4));
    bytes += manifest;
    while (bytes.size() % 64 != 0)
        bytes.push_back('\0');
    std::string trailer(64, '\0');
    trailer.replace(0, 8, "NOVAQIDX");
    trailer.replace(8, 8, test::le(64, 8));
    trailer.replace(16, 8, test::le(manifest.size(), 8));
    const auto* m = reinterpret_cast<const std::byte*>(manifest.data());
    trailer.replace(24, 8, test::le(checksum({m, manifest.size()}), 8));
    trailer.replace(32, 8, test::le(bytes.size() + 64, 8));
    trailer.replace(40, 2, test::le(kNovaqMajor, 2));
    trailer.replace(42, 2, test::le(kNovaqMinor, 2));
    trailer.replace(56, 8, "NOVAQEND");
    test::writeAll(path, bytes + trailer);
}

void expectFailure(const std::function<void()>& fn, ErrorKind kind, const QStringList& parts)
{
    const std::optional<test::Failure> failure = test::failureOf(fn);
    QVERIFY2(failure, "expected an error, the call succeeded");
    QVERIFY2(failure->kind == kind,
             qPrintable("kind " + QString::number(int(failure->kind)) + ": " + failure->message));
    for (const QString& part : parts)
        QVERIFY2(failure->message.contains(part), qPrintable("'" + part + "' not in: " + failure->message));
}

QStringList filesIn(const fs::path& dir)
{
    QStringList names;
    for (const auto& entry : fs::directory_iterator(dir))
        names << QString::fromStdString(entry.path().filename().string());
    names.sort();
    return names;
}

// A model reader with given metadata and tensors, for the configuration checks.
class FakeReader final : public ModelReader {
public:
    FakeReader(nlohmann::json metadata, std::vector<TensorInfo> tensors, fs::path file)
        : m_metadata(std::move(metadata)), m_tensors(std::move(tensors)), m_files{std::move(file)}
    {}
    ModelFormat format() const noexcept override { return ModelFormat::Unknown; }
    const std::vector<TensorInfo>& tensors() const noexcept override { return m_tensors; }
    const nlohmann::json& metadata() const noexcept override { return m_metadata; }
    const std::vector<fs::path>& files() const noexcept override { return m_files; }
    void readFloat(size_t, std::span<float>) const override {}
    std::span<const std::byte> rawBytes(size_t) const override { return {}; }
    void release(size_t) const noexcept override {}

private:
    nlohmann::json m_metadata;
    std::vector<TensorInfo> m_tensors;
    std::vector<fs::path> m_files;
};

TensorInfo embedding(const std::string& name)
{
    TensorInfo t;
    t.name = name;
    t.shape = {32, 8};
    return t;
}

// A small Llama configuration in each of the three places the runtime reads one from.
FakeReader configuredReader(const QString& source, const std::string& key, const nlohmann::json& value)
{
    nlohmann::json meta;
    std::string embeddingName;
    std::string file;
    nlohmann::json* values = nullptr;
    if (source == "config.json") {
        meta = {{"architecture", "llama"},
                {"format_metadata", nlohmann::json::object()},
                {"config",
                 {{"model_type", "llama"},
                  {"hidden_size", 8},
                  {"intermediate_size", 16},
                  {"num_hidden_layers", 1},
                  {"num_attention_heads", 2},
                  {"num_key_value_heads", 1},
                  {"vocab_size", 32},
                  {"max_position_embeddings", 64},
                  {"rms_norm_eps", 1e-5},
                  {"rope_theta", 10000.0},
                  {"bos_token_id", 1},
                  {"eos_token_id", 2}}}};
        values = &meta["config"];
        embeddingName = "model.embed_tokens.weight";
        file = "/models/tiny/model.safetensors";
    } else if (source == "GGUF") {
        meta = {{"architecture", "llama"},
                {"config", nullptr},
                {"format_metadata",
                 {{"llama.embedding_length", 8},
                  {"llama.feed_forward_length", 16},
                  {"llama.block_count", 1},
                  {"llama.attention.head_count", 2},
                  {"llama.attention.head_count_kv", 1},
                  {"llama.context_length", 64},
                  {"llama.attention.layer_norm_rms_epsilon", 1e-5},
                  {"llama.rope.freq_base", 10000.0},
                  {"tokenizer.ggml.bos_token_id", 1},
                  {"tokenizer.ggml.eos_token_id", 2}}}};
        values = &meta["format_metadata"];
        embeddingName = "token_embd.weight";
        file = "/models/tiny.gguf";
    } else {
        meta = {{"architecture", "llama"},
                {"config", nullptr},
                {"format_metadata",
                 {{"dim", 8},
                  {"hidden_dim", 16},
                  {"n_layers", 1},
                  {"n_heads", 2},
                  {"n_kv_heads", 1},
                  {"vocab_size", 32},
                  {"seq_len", 64}}}};
        values = &meta["format_metadata"];
        embeddingName = "tok_embeddings.weight";
        file = "/models/tiny.bin";
    }
    if (!key.empty())
        (*values)[key] = value;
    return FakeReader(std::move(meta), {embedding(embeddingName)}, file);
}

} // namespace

class TestHostileInput : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void jsonDepthLimit_data();
    void jsonDepthLimit();
    void deepJsonInModelFiles_data();
    void deepJsonInModelFiles();
    void configAtTheDepthLimitCompresses();
    void hostileTensors_data();
    void hostileTensors();
    void hugeMatrixIsQuantized();
    void exportCallsAnEmptyNameMalformedInput();
    void zeroSizeRecordsAreLegal();
    void configValues_data();
    void configValues();
    void badConfigJsonBesideWeights();
};

void TestHostileInput::jsonDepthLimit_data()
{
    QTest::addColumn<int>("levels");
    QTest::addColumn<bool>("objects");
    QTest::addColumn<bool>("accepted");
    QTest::newRow("arrays at the limit") << kMaxJsonDepth << false << true;
    QTest::newRow("objects at the limit") << kMaxJsonDepth << true << true;
    QTest::newRow("arrays one level deeper") << kMaxJsonDepth + 1 << false << false;
    QTest::newRow("objects one level deeper") << kMaxJsonDepth + 1 << true << false;
    QTest::newRow("arrays 60000 deep") << kDeep << false << false;
    QTest::newRow("objects 60000 deep") << kDeep << true << false;
}

void TestHostileInput::jsonDepthLimit()
{
    QFETCH(int, levels);
    QFETCH(bool, objects);
    QFETCH(bool, accepted);
    const std::string text = nested(levels, objects);
    if (accepted) {
        const nlohmann::json j = parseJsonStrict(text, "x.json", 0, "the text");
        const nlohmann::json copy = j; // recursion over the accepted depth is harmless
        QCOMPARE(copy.dump().size(), text.size());
        return;
    }
    expectFailure([&] { parseJsonStrict(text, "x.json", 0, "the text"); }, ErrorKind::InvalidInput,
                  {"x.json", "the text", "nested deeper than 256 levels"});
}

void TestHostileInput::deepJsonInModelFiles_data()
{
    QTest::addColumn<QString>("where");
    QTest::addColumn<int>("kind");
    QTest::addColumn<QStringList>("parts");
    const int invalid = int(ErrorKind::InvalidInput);
    QTest::newRow("config.json of arrays") << "config-arrays" << invalid << QStringList{"config.json", "nested deeper"};
    QTest::newRow("a value deep in config.json")
        << "config-value" << invalid << QStringList{"config.json", "nested deeper"};
    QTest::newRow("safetensors header") << "header" << invalid
                                        << QStringList{"model.safetensors", "the header", "nested deeper"};
    QTest::newRow("shard index metadata")
        << "index" << invalid << QStringList{"model.safetensors.index.json", "nested deeper"};
    QTest::newRow("tokenizer.json") << "tokenizer" << invalid << QStringList{"tokenizer.json", "nested deeper"};
    QTest::newRow(".novaq manifest config")
        << "manifest" << int(ErrorKind::Corrupt) << QStringList{"m.novaq", "manifest", "nested deeper than 264 levels"};
}

void TestHostileInput::deepJsonInModelFiles()
{
    QFETCH(QString, where);
    QFETCH(int, kind);
    QFETCH(QStringList, parts);
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    const std::vector<TensorSpec> small = {{"w", "F32", {2, 2}, f32({1, 2, 3, 4})}};
    std::function<void()> open;
    if (where.startsWith("config")) {
        writeModel(dir, small);
        test::writeAll(dir / "config.json", where == "config-arrays"
                                                ? nested(kDeep, false)
                                                : "{\"model_type\": \"llama\", \"x\": " + nested(kDeep, true) + "}");
        open = [&] { openModel(dir); };
    } else if (where == "header") {
        const std::string header = "{\"__metadata__\": {\"a\": " + nested(kDeep, false) +
                                   "}, \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
        test::writeAll(dir / "model.safetensors", test::makeSafetensors(header, f32({1})));
        open = [&] { openModel(dir / "model.safetensors"); };
    } else if (where == "index") {
        test::writeAll(dir / "model-1.safetensors", safetensorsOf(small));
        test::writeAll(dir / "model.safetensors.index.json",
                       "{\"metadata\": " + nested(kDeep, true) + ", \"weight_map\": {\"w\": \"model-1.safetensors\"}}");
        open = [&] { openModel(dir / "model.safetensors.index.json"); };
    } else if (where == "tokenizer") {
        test::writeAll(dir / "tokenizer.json", "{\"model\": " + nested(kDeep, true) + "}");
        open = [&] { loadHfTokenizerJson(dir / "tokenizer.json"); };
    } else {
        writeNovaqWithManifest(dir / "m.novaq",
                               "{\"format\": \"novaq\", \"config\": " + nested(kDeep, true) + ", \"tensors\": []}");
        open = [&] { openModel(dir / "m.novaq"); };
        const ValidateReport report = validateNovaq(dir / "m.novaq", std::nullopt, nullptr, nullptr);
        QVERIFY(!report.ok);
        QCOMPARE(report.problems.size(), size_t(1));
        QVERIFY2(QString::fromStdString(report.problems[0]).contains("nested deeper"), report.problems[0].c_str());
    }
    expectFailure(open, ErrorKind(kind), parts);
}

// The manifest holds the source's config.json a level down: a config.json at the parser's
// limit must still give a .novaq file that opens and validates.
void TestHostileInput::configAtTheDepthLimitCompresses()
{
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    writeModel(dir, {{"w", "F32", {2, 2}, f32({1, 2, 3, 4})}});
    std::string config = nested(kMaxJsonDepth - 1, true);
    config = "{\"model_type\": \"llama\", \"deep\": " + config + "}";
    test::writeAll(dir / "config.json", config);
    CompressOptions options;
    options.input = dir;
    options.output = dir / "out.novaq";
    compressModel(options, nullptr, nullptr);
    const ValidateReport report = validateNovaq(options.output, dir, nullptr, nullptr);
    QVERIFY(report.ok);
    QCOMPARE(openModel(options.output)->metadata()["config"].dump(), parseJsonStrict(config, "c", 0, "c").dump());
}

void TestHostileInput::hostileTensors_data()
{
    QTest::addColumn<QString>("model");
    QTest::addColumn<QStringList>("refusal"); // empty: must compress, validate and export

    const QStringList nanNorm{"model.safetensors", "tensor 'model.norm.weight'", "NaN or infinite", "element 3"};
    QTest::newRow("NaN in a kept F32 norm") << "nan-f32-norm" << nanNorm;
    QTest::newRow("+Inf in a kept F32 norm") << "inf-f32-norm" << nanNorm;
    QTest::newRow("-Inf in a quantized matrix") << "inf-matrix" << QStringList{"tensor 'w'", "element 77", "is -inf"};
    QTest::newRow("NaN in a quantized matrix") << "nan-matrix" << QStringList{"tensor 'w'", "element 77", "is nan"};
    QTest::newRow("NaN in a kept F16 norm") << "nan-f16-norm" << nanNorm;
    QTest::newRow("Inf in a kept F16 norm") << "inf-f16-norm" << nanNorm;
    QTest::newRow("NaN in a kept BF16 norm") << "nan-bf16-norm" << nanNorm;
    QTest::newRow("F64 beyond the float range") << "f64-huge" << QStringList{"model.norm.weight", "as a 32-bit float"};
    QTest::newRow("empty tensor name") << "empty-name" << QStringList{"model.safetensors", "has an empty name"};

    QTest::newRow("float maximum in a kept norm") << "max-norm" << QStringList{};
    QTest::newRow("F32 norm beyond F16's range") << "big-norm" << QStringList{};
    QTest::newRow("matrix near the float maximum") << "max-matrix" << QStringList{};
    QTest::newRow("one float maximum in a matrix") << "one-max-matrix" << QStringList{};
    QTest::newRow("matrix of magnitude 1e30") << "e30-matrix" << QStringList{};
    QTest::newRow("matrix of magnitude 1e-30") << "e-30-matrix" << QStringList{};
    QTest::newRow("subnormal matrix") << "subnormal-matrix" << QStringList{};
    QTest::newRow("all-zero matrix") << "zero-matrix" << QStringList{};
    QTest::newRow("zero-size [4, 0]") << "zero-4x0" << QStringList{};
    QTest::newRow("zero-size [0]") << "zero-0" << QStringList{};
    QTest::newRow("zero-size [0, 64] F16") << "zero-0x64" << QStringList{};
}

void TestHostileInput::hostileTensors()
{
    QFETCH(QString, model);
    QFETCH(QStringList, refusal);
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    const std::vector<float> g = test::gaussian(256 * 256, 7);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float fmax = std::numeric_limits<float>::max();
    const TensorSpec matrix{"w", "F32", {256, 256}, f32(g)};
    auto norm = [](const std::string& dtype, std::string bytes) {
        return TensorSpec{"model.norm.weight", dtype, {64}, std::move(bytes)};
    };
    auto halves = [](uint16_t special) {
        std::vector<uint16_t> h(64, 0x3c00);
        h[3] = special;
        return h;
    };
    std::vector<TensorSpec> specs;
    if (model == "nan-f32-norm")
        specs = {matrix, norm("F32", f32(with(ones(64), 3, nan)))};
    else if (model == "inf-f32-norm")
        specs = {matrix, norm("F32", f32(with(ones(64), 3, inf)))};
    else if (model == "inf-matrix")
        specs = {{"w", "F32", {256, 256}, f32(with(g, 77, -inf))}};
    else if (model == "nan-matrix")
        specs = {{"w", "F32", {256, 256}, f32(with(g, 77, nan))}};
    else if (model == "nan-f16-norm")
        specs = {matrix, norm("F16", u16(halves(0x7e00)))};
    else if (model == "inf-f16-norm")
        specs = {matrix, norm("F16", u16(halves(0x7c00)))};
    else if (model == "nan-bf16-norm") {
        std::vector<uint16_t> b(64, 0x3f80);
        b[3] = 0x7fc0;
        specs = {matrix, norm("BF16", u16(b))};
    } else if (model == "f64-huge") {
        std::vector<double> d(64, 1.0);
        d[3] = 1e300;
        specs = {matrix, norm("F64", f64(d))};
    } else if (model == "empty-name")
        specs = {matrix, {"", "F32", {64}, f32(ones(64))}};
    else if (model == "max-norm") {
        std::vector<float> v(64);
        for (size_t i = 0; i < v.size(); ++i)
            v[i] = i % 2 ? fmax : -fmax;
        specs = {matrix, norm("F32", f32(v))};
    } else if (model == "big-norm")
        specs = {matrix, norm("F32", f32(scaled(ones(64), 1e5f)))};
    else if (model == "max-matrix")
        specs = {{"w", "F32", {256, 256}, f32(scaled(g, 1.5e38f))}};
    else if (model == "one-max-matrix")
        specs = {{"w", "F32", {256, 256}, f32(with(with(g, 5, fmax), 6, -fmax))}};
    else if (model == "e30-matrix")
        specs = {{"w", "F32", {256, 256}, f32(scaled(g, 1e30f))}};
    else if (model == "e-30-matrix")
        specs = {{"w", "F32", {256, 256}, f32(scaled(g, 1e-30f))}};
    else if (model == "subnormal-matrix")
        specs = {{"w", "F32", {256, 256}, f32(scaled(g, 1e-40f))}};
    else if (model == "zero-matrix")
        specs = {{"w", "F32", {256, 256}, f32(scaled(g, 0.0f))}};
    else if (model == "zero-4x0")
        specs = {matrix, {"z", "F32", {4, 0}, ""}};
    else if (model == "zero-0")
        specs = {matrix, {"z", "F32", {0}, ""}};
    else if (model == "zero-0x64")
        specs = {matrix, {"z", "F16", {0, 64}, ""}};
    else
        QFAIL("unknown model");
    const fs::path source = writeModel(dir, specs);

    CompressOptions options;
    options.input = source;
    options.output = dir / "out.novaq";
    if (!refusal.isEmpty()) {
        expectFailure([&] { compressModel(options, nullptr, nullptr); }, ErrorKind::InvalidInput, refusal);
        QCOMPARE(filesIn(dir), QStringList{"model.safetensors"}); // no output, no .partial file
        return;
    }

    compressModel(options, nullptr, nullptr);
    QCOMPARE(filesIn(dir), (QStringList{"model.safetensors", "out.novaq"}));
    const ValidateReport report = validateNovaq(options.output, source, nullptr, nullptr);
    for (const TensorCheck& check : report.tensors)
        QVERIFY2(check.ok, (check.name + ": " + check.problem).c_str());
    QVERIFY(report.problems.empty());
    QVERIFY(report.ok);

    // Export gives back the names, the shapes and the values the .novaq file decodes to;
    // tensors the file keeps as F32 come back exactly as in the source.
    exportSafetensors(options.output, dir / "back.safetensors", DType::F32, nullptr, nullptr);
    // F16 cannot hold magnitudes above 65504: such an export is refused, not written with infinities.
    const std::optional<test::Failure> f16 = test::failureOf(
        [&] { exportSafetensors(options.output, dir / "half.safetensors", DType::F16, nullptr, nullptr); });
    QVERIFY(fs::exists(dir / "half.safetensors") != bool(f16));
    QVERIFY(filesIn(dir).filter("partial").isEmpty());
    if (f16) {
        QVERIFY2(f16->kind == ErrorKind::Unsupported && f16->message.contains("--dtype f32"), qPrintable(f16->message));
        QVERIFY(model.contains("max") || model == "big-norm" || model == "e30-matrix");
    } else {
        const auto half = openModel(dir / "half.safetensors");
        for (size_t i = 0; i < half->tensors().size(); ++i) {
            const std::vector<float> v = test::readTensor(*half, i);
            QVERIFY(std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); }));
        }
    }
    const auto original = openModel(source);
    const auto novaq = openModel(options.output);
    const auto exported = openModel(dir / "back.safetensors");
    QCOMPARE(exported->tensors().size(), original->tensors().size());
    const auto records = tensorRecords(NovaqFile(options.output).manifest(), fs::file_size(options.output));
    const auto exportedIndex = test::indexByName(*exported);
    const auto novaqIndex = test::indexByName(*novaq);
    for (size_t i = 0; i < original->tensors().size(); ++i) {
        const TensorInfo& t = original->tensors()[i];
        QVERIFY2(exportedIndex.count(t.name) && novaqIndex.count(t.name), t.name.c_str());
        const size_t e = exportedIndex.at(t.name), n = novaqIndex.at(t.name);
        QCOMPARE(exported->tensors()[e].shape, t.shape);
        const std::vector<float> back = test::readTensor(*exported, e);
        if (back.empty())
            continue;
        QVERIFY(std::memcmp(back.data(), test::readTensor(*novaq, n).data(), back.size() * 4) == 0);
        QVERIFY(std::all_of(back.begin(), back.end(), [](float x) { return std::isfinite(x); }));
        if (records[n].encoding == TensorEncoding::Raw && records[n].dtype == DType::F32)
            QVERIFY(std::memcmp(back.data(), test::readTensor(*original, i).data(), back.size() * 4) == 0);
    }
}

// Weights far above real ones are encoded scaled by a power of two, not kept: the codec's
// float arithmetic would overflow on them, and the result is the same as unscaled.
void TestHostileInput::hugeMatrixIsQuantized()
{
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    const std::vector<float> g = test::gaussian(256 * 256, 9);
    double relError[2] = {};
    for (int k = 0; k < 2; ++k) {
        const fs::path sub = dir / std::to_string(k);
        fs::create_directory(sub);
        CompressOptions options;
        options.input = writeModel(sub, {{"w", "F32", {256, 256}, f32(k == 0 ? g : scaled(g, 0x1p100f))}});
        options.output = sub / "out.novaq";
        const ModelReport report = compressModel(options, nullptr, nullptr);
        QCOMPARE(report.tensors.size(), size_t(1));
        QVERIFY(report.tensors[0].quantized);
        relError[k] = report.tensors[0].relError;
        QVERIFY(validateNovaq(options.output, options.input, nullptr, nullptr).ok);
    }
    QCOMPARE(relError[1], relError[0]);
}

// A tensor name safetensors cannot hold is a fault of the input, not bad usage.
void TestHostileInput::exportCallsAnEmptyNameMalformedInput()
{
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    const fs::path source = writeModel(dir, {{"", "F32", {2}, f32({1, 2})}});
    expectFailure([&] { exportSafetensors(source, dir / "out.safetensors", DType::F32, nullptr, nullptr); },
                  ErrorKind::InvalidInput, {"model.safetensors", "''"});
    QCOMPARE(filesIn(dir), QStringList{"model.safetensors"});
}

// The .novaq reader accepts what the writer writes: raw tensors with no elements; quantized
// tensors still need rows and columns.
void TestHostileInput::zeroSizeRecordsAreLegal()
{
    TensorRecord r;
    r.name = "z";
    r.shape = {4, 0};
    r.sourceDtype = "F32";
    r.data = {64, 0, checksum({})};
    nlohmann::json manifest = {{"format", "novaq"}, {"tensors", {r.toJson()}}};
    QCOMPARE(tensorRecords(manifest, 192).size(), size_t(1));
    manifest["tensors"][0]["encoding"] = "novaq";
    manifest["tensors"][0]["codec"] = {{"d", 8}, {"b1", 8}, {"b2", 0}, {"subspaces", 1}, {"col_scale", false}};
    expectFailure([&] { tensorRecords(manifest, 192); }, ErrorKind::Corrupt, {"shape[1]", "expected a positive size"});
}

void TestHostileInput::configValues_data()
{
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("key");
    QTest::addColumn<QString>("value");     // JSON
    QTest::addColumn<QStringList>("parts"); // empty: accepted

    for (const char* source : {"config.json", "GGUF", "llama.c"})
        QTest::newRow(qPrintable(QString(source) + ": valid")) << source << ""
                                                               << "null" << QStringList{};
    auto bad = [](const char* row, const char* source, const char* key, const char* value, QStringList parts) {
        parts.prepend(key);
        QTest::newRow(row) << source << key << value << parts;
    };
    bad("context 1e30", "config.json", "max_position_embeddings", "1e30", {"config.json", "1e+30", "an integer"});
    bad("context negative", "config.json", "max_position_embeddings", "-5", {"-5"});
    bad("context fractional", "config.json", "max_position_embeddings", "2.5", {"2.5"});
    bad("context a string", "config.json", "max_position_embeddings", "\"4096\"", {"\"4096\"", "a number"});
    bad("rope_theta 0", "config.json", "rope_theta", "0", {"> 0"});
    bad("rope_theta negative", "config.json", "rope_theta", "-1", {"-1"});
    bad("rope_theta beyond float", "config.json", "rope_theta", "1e39", {"1e+39", "32-bit float"});
    bad("rms_norm_eps -1", "config.json", "rms_norm_eps", "-1", {"-1", "> 0"});
    bad("rms_norm_eps 0", "config.json", "rms_norm_eps", "0", {"> 0"});
    bad("rms_norm_eps below float", "config.json", "rms_norm_eps", "1e-50", {"1e-50"});
    bad("hidden_size 1e30", "config.json", "hidden_size", "1e30", {"1e+30"});
    bad("hidden_size fractional", "config.json", "hidden_size", "8.5", {"8.5"});
    bad("vocab_size 1e30", "config.json", "vocab_size", "1e30", {"1e+30"});
    bad("no layers", "config.json", "num_hidden_layers", "0", {"an integer in 1.."});
    bad("head_dim 1e30", "config.json", "head_dim", "1e30", {"1e+30"});
    bad("heads not dividing", "config.json", "num_attention_heads", "3", {"hidden_size", "inconsistent"});
    bad("kv heads not dividing", "config.json", "num_key_value_heads", "3", {"num_attention_heads", "inconsistent"});
    bad("bos 1e30", "config.json", "bos_token_id", "1e30", {"1e+30"});
    bad("bos outside the vocabulary", "config.json", "bos_token_id", "32", {"0..31"});
    bad("GGUF context 1e30", "GGUF", "llama.context_length", "1e30", {"GGUF metadata", "key", "1e+30"});
    bad("GGUF freq_base 0", "GGUF", "llama.rope.freq_base", "0", {"GGUF metadata", "> 0"});
    bad("GGUF epsilon -1", "GGUF", "llama.attention.layer_norm_rms_epsilon", "-1", {"GGUF metadata", "-1"});
    bad("GGUF kv heads not dividing", "GGUF", "llama.attention.head_count_kv", "3", {"GGUF metadata", "inconsistent"});
    bad("GGUF bos outside the vocabulary", "GGUF", "tokenizer.ggml.bos_token_id", "99",
        {"GGUF metadata", "99", "0..31"});
    bad("llama.c no context", "llama.c", "seq_len", "0", {"llama.c header"});
    bad("llama.c heads not dividing", "llama.c", "n_heads", "3", {"llama.c header", "inconsistent"});
}

void TestHostileInput::configValues()
{
    QFETCH(QString, source);
    QFETCH(QString, key);
    QFETCH(QString, value);
    QFETCH(QStringList, parts);
    const FakeReader reader = configuredReader(source, key.toStdString(), nlohmann::json::parse(value.toStdString()));
    if (parts.isEmpty()) {
        const LlamaConfig c = llamaConfig(reader);
        QCOMPARE(c.dim, 8);
        QCOMPARE(c.heads, 2);
        QCOMPARE(c.kvHeads, 1);
        QCOMPARE(c.vocab, 32);
        QCOMPARE(c.maxSeq, 64);
        QVERIFY(std::isfinite(c.normEps) && c.normEps > 0);
        QVERIFY(std::isfinite(c.ropeTheta) && c.ropeTheta > 0);
        return;
    }
    parts << QString::fromStdString(reader.files()[0].string());
    expectFailure([&] { llamaConfig(reader); }, ErrorKind::InvalidInput, parts);
}

// End to end from a real config.json beside safetensors weights: exit code 3 material.
void TestHostileInput::badConfigJsonBesideWeights()
{
    QTemporaryDir tmp;
    const fs::path dir = test::toPath(tmp.path());
    writeModel(dir, {{"model.embed_tokens.weight", "F32", {32, 8}, f32(test::gaussian(256, 1))}});
    test::writeAll(dir / "config.json",
                   R"({"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "vocab_size": 32, "max_position_embeddings": 1e30})");
    const auto reader = openModel(dir);
    expectFailure([&] { llamaConfig(*reader); }, ErrorKind::InvalidInput,
                  {"config.json", "max_position_embeddings", "1e+30"});
    QCOMPARE(exitCodeFor(ErrorKind::InvalidInput), 3);
}

QTEST_GUILESS_MAIN(TestHostileInput)
#include "test_hostile_input.moc"
