// compressModel end to end: determinism across thread counts, cancel, failure leaves nothing,
// and the progress events of compress, validate and export (pipeline/job_progress.h).

#include "test_support.h"

#include "novaq/container/manifest.h"
#include "novaq/container/novaq_file.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/export.h"
#include "novaq/pipeline/validate.h"
#include "novaq/tensor/dtype.h"

#include <QtTest>

#include <cstring>
#include <filesystem>
#include <sstream>

using namespace novaq;
namespace fs = std::filesystem;

namespace {

// A small model in one safetensors file: two matrices (F32 and F16), a norm, an int tensor.
fs::path writeSmallModel(const fs::path& dir)
{
    const auto a = test::gaussian(384 * 512, 41);
    const auto b = test::gaussian(256 * 256, 42);
    std::string data;
    auto append = [&](const void* p, size_t n) { data.append(static_cast<const char*>(p), n); };
    append(a.data(), a.size() * 4);
    std::vector<uint16_t> bh(b.size());
    for (size_t i = 0; i < b.size(); ++i)
        bh[i] = floatToHalf(b[i] * 0.02f);
    append(bh.data(), bh.size() * 2);
    std::vector<float> norm(512, 1.0f);
    append(norm.data(), norm.size() * 4);
    std::vector<int64_t> ids{1, 2, 3, 4};
    append(ids.data(), ids.size() * 8);
    const size_t o1 = a.size() * 4, o2 = o1 + bh.size() * 2, o3 = o2 + norm.size() * 4, o4 = o3 + 32;
    std::ostringstream h;
    h << R"({"__metadata__":{"format":"pt"},)"
      << R"("a.weight":{"dtype":"F32","shape":[384,512],"data_offsets":[0,)" << o1 << "]},"
      << R"("b.weight":{"dtype":"F16","shape":[256,256],"data_offsets":[)" << o1 << "," << o2 << "]},"
      << R"("norm.weight":{"dtype":"F32","shape":[512],"data_offsets":[)" << o2 << "," << o3 << "]},"
      << R"("position_ids":{"dtype":"I64","shape":[4],"data_offsets":[)" << o3 << "," << o4 << "]}}";
    const fs::path path = dir / "model.safetensors";
    test::writeAll(path, test::makeSafetensors(h.str(), data));
    return path;
}

class CancelAfter : public ProgressSink {
public:
    CancelAfter(CancelToken& token, int finished) : m_token(token), m_after(finished) {}
    void onEvent(const ProgressEvent& e) override
    {
        if (e.kind == ProgressEvent::Kind::TensorFinished && ++m_finished == m_after)
            m_token.cancel();
        ++events;
    }
    int events = 0;

private:
    CancelToken& m_token;
    int m_after;
    int m_finished = 0;
};

// Every event of a job, with the name of the finished tensor's figures.
class RecordingSink : public ProgressSink {
public:
    struct Seen {
        ProgressEvent event; // result cleared: it points into the job
        std::string resultName;
    };
    void onEvent(const ProgressEvent& e) override
    {
        Seen seen{e, e.result ? e.result->name : std::string()};
        seen.event.result = nullptr;
        events.push_back(seen);
    }
    std::vector<Seen> events;
};

std::vector<fs::path> listDir(const fs::path& dir)
{
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

class TestCompress : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void byteIdenticalAtAnyThreadCount()
    {
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        std::vector<std::vector<char>> files;
        for (int threads : {1, 2, 4}) {
            CompressOptions o;
            o.input = model;
            o.output = dir / ("out" + std::to_string(threads) + ".novaq");
            o.sourceLabel = "model.safetensors";
            o.threads = threads;
            compressModel(o, nullptr, nullptr);
            files.push_back(test::readAll(o.output));
        }
        QVERIFY(!files[0].empty());
        QVERIFY(files[0] == files[1]);
        QVERIFY(files[0] == files[2]);
    }

    void reportMatchesTheFile()
    {
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        CompressOptions o;
        o.input = model;
        o.output = dir / "m.novaq";
        const ModelReport r = compressModel(o, nullptr, nullptr);
        QCOMPARE(r.tensors.size(), size_t(4));
        QCOMPARE(r.fileBytes, static_cast<uint64_t>(fs::file_size(o.output)));
        QCOMPARE(r.params(), uint64_t(384 * 512 + 256 * 256 + 512 + 4));
        // Quantized: the two matrices. Kept: the norm (F32 -> F16, its rounding measured) and the ints (exact).
        QVERIFY(r.tensors[0].quantized);
        QVERIFY(r.tensors[1].quantized);
        QVERIFY(!r.tensors[2].quantized);
        QCOMPARE(r.tensors[2].storedAs, std::string("F16"));
        QCOMPARE(r.tensors[3].storedAs, std::string("I64"));
        QCOMPARE(r.tensors[3].relError, 0.0);
        for (const TensorResult& t : r.tensors) {
            QVERIFY(t.bytesOut <= t.params * 2 || t.storedAs == "I64"); // never above 16-bit
            QCOMPARE(t.effectiveBits, 8.0 * double(t.bytesOut) / double(t.params));
        }
        QVERIFY(r.tensors[0].relError > 0.05 && r.tensors[0].relError < 0.2);
        // The file holds the same figures and every tensor validates against the source.
        NovaqFile file(o.output);
        const auto records = tensorRecords(file.manifest(), file.fileSize());
        QCOMPARE(records.size(), r.tensors.size());
        for (size_t i = 0; i < records.size(); ++i) {
            QCOMPARE(records[i].name, r.tensors[i].name);
            QCOMPARE(records[i].relError, r.tensors[i].relError);
            QCOMPARE(records[i].bytesOut, r.tensors[i].bytesOut);
        }
        const ValidateReport v = validateNovaq(o.output, model, nullptr, nullptr);
        QVERIFY(v.ok);
        for (const TensorCheck& c : v.tensors) {
            QVERIFY(c.recomputedRelError.has_value());
            QVERIFY2(std::abs(*c.recomputedRelError - c.recordedRelError) <= 1e-9 + 1e-6 * c.recordedRelError,
                     c.name.c_str());
        }
        // A .novaq file reads back as a model with the original names and shapes.
        auto reader = openModel(o.output);
        QCOMPARE(reader->tensors().size(), size_t(4));
        QCOMPARE(reader->tensors()[0].name, std::string("a.weight"));
        QCOMPARE(reader->tensors()[0].shape, (std::vector<int64_t>{384, 512}));
    }

    void cancelLeavesNoFile()
    {
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        const fs::path out = dir / "keep.novaq";
        test::writeAll(out, std::string("what the user had before"));
        const auto before = listDir(dir);
        CancelToken token;
        CancelAfter sink(token, 1);
        CompressOptions o;
        o.input = model;
        o.output = out;
        try {
            compressModel(o, &sink, &token);
            QFAIL("cancel ignored");
        } catch (const Error& e) {
            QCOMPARE(e.kind(), ErrorKind::Cancelled);
        }
        QVERIFY(sink.events > 0);
        QCOMPARE(listDir(dir), before); // no temporary file left behind
        QCOMPARE(test::readAll(out), std::vector<char>({'w', 'h', 'a', 't', ' ', 't', 'h', 'e', ' ', 'u', 's', 'e',
                                                        'r', ' ', 'h', 'a', 'd', ' ', 'b', 'e', 'f', 'o', 'r', 'e'}));
    }

    void cancelBeforeStartWritesNothing()
    {
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        CancelToken token;
        token.cancel();
        CompressOptions o;
        o.input = model;
        o.output = dir / "never.novaq";
        QVERIFY_THROWS_EXCEPTION(Error, compressModel(o, nullptr, &token));
        QVERIFY(!fs::exists(o.output));
        QCOMPARE(listDir(dir).size(), size_t(1));
    }

    void badOptionsAreRefused_data()
    {
        QTest::addColumn<double>("bits");
        QTest::addColumn<int>("subspaces");
        QTest::addColumn<QString>("output");
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("message");
        QTest::newRow("bits not a preset")
            << 1.7 << 4 << "o.novaq" << int(ErrorKind::InvalidArgument) << "choose one of";
        QTest::newRow("zero subspaces") << 1.5 << 0 << "o.novaq" << int(ErrorKind::InvalidArgument) << "subspaces";
        QTest::newRow("missing output folder")
            << 1.5 << 4 << "no/such/dir/o.novaq" << int(ErrorKind::Io) << "does not exist";
        QTest::newRow("output is the input")
            << 1.5 << 4 << "model.safetensors" << int(ErrorKind::InvalidArgument) << "is the input model";
    }
    void badOptionsAreRefused()
    {
        QFETCH(double, bits);
        QFETCH(int, subspaces);
        QFETCH(QString, output);
        QFETCH(int, kind);
        QFETCH(QString, message);
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        const auto modelBytes = test::readAll(model);
        CompressOptions o;
        o.input = model;
        o.output = dir / output.toStdString();
        try {
            o.codec = CodecSpec::preset(bits, subspaces); // a codec out of limits is refused here, before any work
            compressModel(o, nullptr, nullptr);
            QFAIL("accepted");
        } catch (const Error& e) {
            QCOMPARE(int(e.kind()), kind);
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        QCOMPARE(test::readAll(model), modelBytes);
        QCOMPARE(listDir(dir).size(), size_t(1));
    }

    void everyPresetCompresses()
    {
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        double lastError = 1.0;
        for (const BitsPreset& p : bitsPresets()) {
            CompressOptions o;
            o.input = model;
            o.output = dir / "p.novaq";
            o.codec = CodecSpec::preset(p.bits, 4);
            const ModelReport r = compressModel(o, nullptr, nullptr);
            const double err = r.tensors[0].relError;
            QVERIFY2(err < lastError,
                     qPrintable(QString("bits %1: error %2 not below %3").arg(p.bits).arg(err).arg(lastError)));
            lastError = err;
            QVERIFY(validateNovaq(o.output, std::nullopt, nullptr, nullptr).ok);
        }
    }

    // The events each job sends, built by one helper (JobProgress) for the three: the job's
    // start, for every tensor its start, progress (compress: per stage) and finish with its
    // figures, the overall fraction by parameters done (the tensor in progress by its own
    // fraction), and the job's end.
    void progressEvents_data()
    {
        QTest::addColumn<QString>("job");
        QTest::addColumn<QString>("stage");                 // what every event says (compress: none)
        QTest::addColumn<double>("finishedTensorFraction"); // of the JobFinished event
        QTest::newRow("compress") << "compress"
                                  << "" << 0.0;
        QTest::newRow("validate") << "validate"
                                  << "validate" << 1.0;
        QTest::newRow("export") << "export"
                                << "write" << 1.0;
    }
    void progressEvents()
    {
        QFETCH(QString, job);
        QFETCH(QString, stage);
        QFETCH(double, finishedTensorFraction);
        QTemporaryDir tmp;
        const fs::path dir = test::toPath(tmp.path());
        const fs::path model = writeSmallModel(dir);
        CompressOptions o;
        o.input = model;
        o.output = dir / "m.novaq";
        RecordingSink sink;
        compressModel(o, job == "compress" ? &sink : nullptr, nullptr);
        if (job == "validate")
            QVERIFY(validateNovaq(o.output, model, &sink, nullptr).ok);
        else if (job == "export")
            exportSafetensors(o.output, dir / "e.safetensors", DType::F32, &sink, nullptr);
        const std::vector<std::string> names = {"a.weight", "b.weight", "norm.weight", "position_ids"};
        const std::vector<uint64_t> params = {384 * 512, 256 * 256, 512, 4};
        const double total = 384 * 512 + 256 * 256 + 512 + 4;
        using Kind = ProgressEvent::Kind;
        const auto& seen = sink.events;
        QVERIFY(seen.size() >= 2 + 2 * names.size());
        QVERIFY(seen.front().event.kind == Kind::JobStarted);
        QVERIFY(seen.back().event.kind == Kind::JobFinished);
        for (const auto& s : seen) {
            QCOMPARE(s.event.tensorCount, names.size());
            if (s.event.kind != Kind::TensorProgress)
                QCOMPARE(QString::fromStdString(s.event.stage), stage);
        }
        QCOMPARE(seen.back().event.tensorIndex, names.size());
        QCOMPARE(seen.back().event.overallFraction, 1.0);
        QCOMPARE(seen.back().event.tensorFraction, finishedTensorFraction);
        // Tensors in file order (no calibration): started, progress, finished.
        size_t k = 1;
        double done = 0;
        int progressEvents = 0;
        for (size_t i = 0; i < names.size(); ++i) {
            QVERIFY(seen[k].event.kind == Kind::TensorStarted);
            QCOMPARE(seen[k].event.tensorIndex, i);
            QCOMPARE(seen[k].event.tensorName, names[i]);
            QCOMPARE(seen[k].event.overallFraction, done / total);
            for (++k; seen[k].event.kind == Kind::TensorProgress; ++k) {
                const ProgressEvent& e = seen[k].event;
                ++progressEvents;
                QCOMPARE(e.tensorIndex, i);
                QVERIFY(!e.stage.empty());
                QVERIFY(e.tensorFraction >= 0 && e.tensorFraction <= 1);
                QCOMPARE(e.overallFraction, (done + e.tensorFraction * double(params[i])) / total);
            }
            done += double(params[i]);
            const ProgressEvent& e = seen[k].event;
            QVERIFY(e.kind == Kind::TensorFinished);
            QCOMPARE(e.tensorIndex, i);
            QCOMPARE(e.tensorName, names[i]);
            QCOMPARE(seen[k].resultName, names[i]);
            QCOMPARE(e.tensorFraction, 1.0);
            QCOMPARE(e.overallFraction, done / total);
            ++k;
        }
        QCOMPARE(k + 1, seen.size());
        QCOMPARE(progressEvents > 0, job == "compress"); // the encoder's stages, the two matrices
    }
};

QTEST_APPLESS_MAIN(TestCompress)
#include "test_compress.moc"
