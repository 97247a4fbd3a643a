// The codec held to its scalar references, its bits accounting, determinism and cancel.

#include "test_support.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/kernels.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/planner.h"
#include "novaq/tensor/dtype.h"

#include <QtTest>

#include <tbb/global_control.h>

#include <cmath>
#include <numeric>
#include <set>
#include <string>
#include <vector>

using namespace novaq;

namespace {

double distortion(const std::vector<float>& X, int d, const std::vector<float>& C1, const std::vector<float>& C2,
                  int m2, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b)
{
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i)
        for (int t = 0; t < d; ++t) {
            double q = C1[a[i] * static_cast<size_t>(d) + static_cast<size_t>(t)];
            if (m2 > 0)
                q += C2[b[i] * static_cast<size_t>(d) + static_cast<size_t>(t)];
            const double r = X[i * static_cast<size_t>(d) + static_cast<size_t>(t)] - q;
            e += r * r;
        }
    return e;
}

QuantizedTensor encodeGaussian(int64_t rows, int64_t cols, CodecConfig cfg, uint64_t seed = 3)
{
    std::vector<float> W = test::gaussian(static_cast<size_t>(rows * cols), seed);
    CodecParams p;
    p.config = cfg;
    return encodeMatrix(W, rows, cols, p);
}

} // namespace

class TestCodec : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void assignMatchesReference_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("m");
        QTest::newRow("n1000 d8 m256") << 1000 << 8 << 256;
        QTest::newRow("n777 d4 m16") << 777 << 4 << 16;
        QTest::newRow("n300 d3 m7 odd sizes") << 300 << 3 << 7;
        QTest::newRow("n513 d16 m64") << 513 << 16 << 64;
    }
    void assignMatchesReference()
    {
        QFETCH(int, n);
        QFETCH(int, d);
        QFETCH(int, m);
        const auto X = test::gaussian(static_cast<size_t>(n * d), 11);
        const auto C = test::gaussian(static_cast<size_t>(m * d), 12);
        std::vector<uint32_t> fast(static_cast<size_t>(n)), ref(static_cast<size_t>(n));
        std::vector<float> df(static_cast<size_t>(n)), dr(static_cast<size_t>(n));
        kernels::assignNearest(X.data(), n, d, C.data(), m, fast.data(), df.data());
        kernels::assignNearestRef(X.data(), n, d, C.data(), m, ref.data(), dr.data());
        int same = 0;
        for (int i = 0; i < n; ++i) {
            same += fast[static_cast<size_t>(i)] == ref[static_cast<size_t>(i)];
            // Where the expanded-norm distance picks another entry, it must be as near (rounding).
            QVERIFY(std::abs(df[static_cast<size_t>(i)] - dr[static_cast<size_t>(i)]) <=
                    1e-4f * (1.0f + dr[static_cast<size_t>(i)]));
        }
        QVERIFY2(same >= n * 99 / 100, qPrintable(QString("only %1 of %2 codes agree").arg(same).arg(n)));
    }

    void jointEncodeMatchesReference_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("beam");
        QTest::newRow("d8 8+4 exact") << 8 << 8 << 4 << 0;
        QTest::newRow("d8 8+0 one stage") << 8 << 8 << 0 << 0;
        QTest::newRow("d4 6+4 exact") << 4 << 6 << 4 << 0;
        QTest::newRow("d6 8+4 exact") << 6 << 8 << 4 << 0;
        QTest::newRow("d8 8+8 beam 16") << 8 << 8 << 8 << 16;
        QTest::newRow("d4 5+2 exact, stage 2 narrower than a lane") << 4 << 5 << 2 << 0;
        QTest::newRow("d8 6+3 beam 4") << 8 << 6 << 3 << 4;
    }
    void jointEncodeMatchesReference()
    {
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, beam);
        const int n = 2000, m1 = 1 << b1, m2 = b2 > 0 ? 1 << b2 : 0;
        const auto X = test::gaussian(static_cast<size_t>(n * d), 21);
        auto C1 = test::gaussian(static_cast<size_t>(m1 * d), 22);
        auto C2 = test::gaussian(static_cast<size_t>(std::max(m2, 1) * d), 23);
        for (float& x : C2)
            x *= 0.3f;
        std::vector<uint32_t> a(n), b(n), ar(n), br(n);
        const auto tables = kernels::makeJointTables(C1.data(), m1, C2.data(), m2, d);
        kernels::encodeJoint(X.data(), n, tables, beam, a.data(), b.data());
        kernels::encodeJointRef(X.data(), n, d, C1.data(), m1, C2.data(), m2, beam, ar.data(), br.data());
        int same = 0;
        for (int i = 0; i < n; ++i)
            same += a[static_cast<size_t>(i)] == ar[static_cast<size_t>(i)] &&
                    b[static_cast<size_t>(i)] == br[static_cast<size_t>(i)];
        QVERIFY2(same >= n * 99 / 100, qPrintable(QString("only %1 of %2 code pairs agree").arg(same).arg(n)));
        const double ef = distortion(X, d, C1, C2, m2, a, b);
        const double er = distortion(X, d, C1, C2, m2, ar, br);
        QVERIFY2(std::abs(ef - er) <= 1e-5 * er, qPrintable(QString("distortion %1 vs reference %2").arg(ef).arg(er)));
        if (m2 == 0)
            for (uint32_t v : b)
                QCOMPARE(v, 0u);
    }

    void exactJointSearchBeatsGreedy()
    {
        // The joint search may never be worse than encoding stage 1 then stage 2 greedily.
        const int n = 4000, d = 8, m1 = 256, m2 = 16;
        const auto X = test::gaussian(static_cast<size_t>(n * d), 31);
        const auto C1 = test::gaussian(static_cast<size_t>(m1 * d), 32);
        auto C2 = test::gaussian(static_cast<size_t>(m2 * d), 33);
        for (float& x : C2)
            x *= 0.4f;
        std::vector<uint32_t> a(n), b(n), ga(n), gb(n);
        kernels::encodeJoint(X.data(), n, kernels::makeJointTables(C1.data(), m1, C2.data(), m2, d), 0, a.data(),
                             b.data());
        kernels::assignNearestRef(X.data(), n, d, C1.data(), m1, ga.data(), nullptr);
        std::vector<float> R(X);
        for (int i = 0; i < n; ++i)
            for (int t = 0; t < d; ++t)
                R[static_cast<size_t>(i * d + t)] -= C1[ga[static_cast<size_t>(i)] * d + static_cast<uint32_t>(t)];
        kernels::assignNearestRef(R.data(), n, d, C2.data(), m2, gb.data(), nullptr);
        QVERIFY(distortion(X, d, C1, C2, m2, a, b) < distortion(X, d, C1, C2, m2, ga, gb));
    }

    void decodeMatchesReference_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("subspaces");
        QTest::newRow("64x256 d8 8+4 K4") << 64 << 256 << 8 << 8 << 4 << 4;
        QTest::newRow("48x172 d8 6+2 K3 (cols not a multiple of d)") << 48 << 172 << 8 << 6 << 2 << 3;
        QTest::newRow("40x90 d6 5+0 K2") << 40 << 90 << 6 << 5 << 0 << 2;
        QTest::newRow("33x64 d3 6+4 K5") << 33 << 64 << 3 << 6 << 4 << 5;
    }
    void decodeMatchesReference()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, subspaces);
        const QuantizedTensor q = encodeGaussian(rows, cols, {d, b1, b2, subspaces});
        std::vector<float> fast(static_cast<size_t>(rows * cols)), ref(fast.size());
        decode(q, fast);
        decodeReference(q, ref);
        QCOMPARE(fast, ref);
        // Serialization round trip keeps every part.
        const auto bytes = serialize(q);
        const QuantizedTensor back = deserialize(bytes, rows, cols, q.config, q.hasColScale);
        QCOMPARE(back.codes, q.codes);
        QCOMPARE(back.codebooks, q.codebooks);
        QCOMPARE(back.rowScale, q.rowScale);
        QCOMPARE(back.rowMean, q.rowMean);
        QCOMPARE(back.scale, q.scale);
    }

    void bitsAccountingIsExact_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("subspaces");
        QTest::newRow("256x256 1.5 bits K4") << 256 << 256 << 8 << 8 << 4 << 4;
        QTest::newRow("100x172 d8 7+3 K2") << 100 << 172 << 8 << 7 << 3 << 2;
        QTest::newRow("64x96 d4 6+4 K1") << 64 << 96 << 4 << 6 << 4 << 1;
        QTest::newRow("50x80 d8 8+0 K2") << 50 << 80 << 8 << 8 << 0 << 2;
    }
    void bitsAccountingIsExact()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, subspaces);
        const CodecConfig cfg{d, b1, b2, subspaces};
        const QuantizedTensor q = encodeGaussian(rows, cols, cfg);
        // Everything stored is counted: f32 scale, f16 mean and scale per row, f16 scale per
        // column when present, f16 codebooks, and the packed codes.
        const uint64_t vectors = static_cast<uint64_t>(rows) * static_cast<uint64_t>((cols + d - 1) / d);
        const uint64_t entries = (1u << b1) + (b2 > 0 ? (1u << b2) : 0u);
        const uint64_t expected = 4 + 4 * static_cast<uint64_t>(rows) +
                                  (q.hasColScale ? 2 * static_cast<uint64_t>(cols) : 0) +
                                  2 * static_cast<uint64_t>(subspaces) * entries * static_cast<uint64_t>(d) +
                                  (vectors * static_cast<uint64_t>(b1 + b2) + 7) / 8;
        QCOMPARE(payloadBytes(rows, cols, cfg, q.hasColScale), expected);
        QCOMPARE(static_cast<uint64_t>(serialize(q).size()), expected);
    }

    void deterministicAcrossThreadCounts()
    {
        const int64_t rows = 384, cols = 512;
        std::vector<float> W = test::gaussian(static_cast<size_t>(rows * cols), 5);
        for (int64_t i = 0; i < rows; ++i)
            W[static_cast<size_t>(i * cols + 7)] *= 12.0f; // an outlier column
        CodecParams p;
        p.trainVectors = 20000; // subsampling on
        std::vector<std::vector<std::byte>> outs;
        for (int threads : {1, 2, 4}) {
            tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
            outs.push_back(serialize(encodeMatrix(W, rows, cols, p)));
        }
        QVERIFY(outs[0] == outs[1]);
        QVERIFY(outs[0] == outs[2]);
    }

    void qualityOnGaussianData_data()
    {
        QTest::addColumn<double>("bits");
        QTest::addColumn<double>("maxRelError");
        // Regression guards at a small size (the 4096 x 4096 figures are in bench/).
        QTest::newRow("1.5 bits") << 1.5 << 0.20;
        QTest::newRow("2 bits") << 2.0 << 0.11;
        QTest::newRow("3 bits") << 3.0 << 0.04;
    }
    void qualityOnGaussianData()
    {
        QFETCH(double, bits);
        QFETCH(double, maxRelError);
        const auto preset = presetForBits(bits);
        QVERIFY(preset.has_value());
        const int64_t rows = 512, cols = 512;
        const auto W = test::gaussian(static_cast<size_t>(rows * cols), 8);
        CodecParams p;
        p.config = {preset->d, preset->b1, preset->b2, 2};
        EncodeStats stats;
        const QuantizedTensor q = encodeMatrix(W, rows, cols, p, nullptr, {}, &stats);
        std::vector<float> What(W.size());
        decode(q, What);
        const double rel = relativeError(W, What);
        QVERIFY2(rel < maxRelError, qPrintable(QString("relative error %1").arg(rel)));
        QVERIFY(rel > std::pow(2.0, -2.0 * bits) * 0.9); // never below the rate-distortion bound
        QCOMPARE(stats.outlierColumns, 0);
        // Within each subspace, alternating encode / refit rounds never make the training error worse.
        const auto rounds = static_cast<size_t>(p.refitIterations);
        QCOMPARE(stats.refitError.size(), rounds * 2);
        for (size_t i = 0; i < stats.refitError.size(); ++i)
            if (i % rounds != 0)
                QVERIFY(stats.refitError[i] <= stats.refitError[i - 1] * (1 + 1e-6));
        QVERIFY(!stats.kmeansObjective1.empty());
        QVERIFY(stats.kmeansObjective1.back() <= stats.kmeansObjective1.front());
    }

    void outlierColumnsGetAScale()
    {
        const int64_t rows = 256, cols = 512;
        auto W = test::gaussian(static_cast<size_t>(rows * cols), 9);
        for (int64_t i = 0; i < rows; ++i) {
            W[static_cast<size_t>(i * cols + 3)] *= 20.0f;
            W[static_cast<size_t>(i * cols + 300)] *= 15.0f;
        }
        CodecParams p;
        EncodeStats stats;
        const QuantizedTensor q = encodeMatrix(W, rows, cols, p, nullptr, {}, &stats);
        QVERIFY(q.hasColScale);
        QCOMPARE(stats.outlierColumns, 2); // 1% of 512 columns allows 5; exactly these two stand out
        QVERIFY(halfToFloat(q.colScale[3]) > 10.0f);
        QVERIFY(halfToFloat(q.colScale[300]) > 8.0f);
        QCOMPARE(halfToFloat(q.colScale[4]), 1.0f);
    }

    void rejectsNonFiniteWeights()
    {
        auto W = test::gaussian(64 * 64, 1);
        W[100] = std::numeric_limits<float>::quiet_NaN();
        CodecParams p;
        p.config = {8, 4, 2, 1};
        try {
            encodeMatrix(W, 64, 64, p);
            QFAIL("NaN accepted");
        } catch (const Error& e) {
            QCOMPARE(e.kind(), ErrorKind::InvalidInput);
            QVERIFY(QString(e.what()).contains("NaN"));
        }
    }

    // The encoder reports through io/progress.h's one signature: the fraction of the tensor
    // (total 1), never going back, from "normalize" at 0 to "done" at 1, with the stage of each
    // step; the job layer passes the fraction on unchanged (test_compress's progress events).
    void encoderProgressIsOneTensorsFraction()
    {
        const auto W = test::gaussian(128 * 256, 5);
        CodecParams p;
        p.config.subspaces = 2;
        std::vector<ProgressStep> steps;
        (void)encodeMatrix(W, 128, 256, p, nullptr, [&](const ProgressStep& s) { steps.push_back(s); });
        QVERIFY(steps.size() >= 2 + 3 * 2); // normalize, per subspace train, refit, encode..., rows, done
        QCOMPARE(std::string(steps.front().stage), std::string("normalize"));
        QCOMPARE(steps.front().fraction(), 0.0);
        QCOMPARE(std::string(steps.back().stage), std::string("done"));
        QCOMPARE(steps.back().fraction(), 1.0);
        const std::set<std::string> stages{"normalize", "train", "refit", "encode", "rows", "done"};
        double last = 0;
        for (const ProgressStep& s : steps) {
            QCOMPARE(s.total, 1.0);
            QVERIFY(s.fraction() == s.done); // exactly: the fraction passes through unchanged
            QVERIFY2(s.done >= last, s.stage);
            QVERIFY2(stages.count(s.stage), s.stage);
            last = s.done;
        }
    }

    void cancelStopsEncoding()
    {
        const auto W = test::gaussian(256 * 256, 2);
        CodecParams p;
        CancelToken token;
        int calls = 0;
        auto progress = [&](const ProgressStep&) {
            if (++calls == 2)
                token.cancel();
        };
        try {
            encodeMatrix(W, 256, 256, p, &token, progress);
            QFAIL("cancel ignored");
        } catch (const Error& e) {
            QCOMPARE(e.kind(), ErrorKind::Cancelled);
        }
    }

    void plannerNeverGrowsATensor_data()
    {
        QTest::addColumn<QString>("shape");
        QTest::addColumn<bool>("quantized");
        QTest::newRow("norm [256]") << "256" << false;
        QTest::newRow("tiny [8,8]") << "8,8" << false;
        QTest::newRow("narrow [4096,4]: codebooks would outweigh the codes") << "4096,4" << false;
        QTest::newRow("demo k_proj [128,256]: one subspace") << "128,256" << true;
        QTest::newRow("[64,64]: too few vectors to train 256 entries") << "64,64" << false;
        QTest::newRow("demo q_proj [256,256]") << "256,256" << true;
        QTest::newRow("demo embedding [4096,256]") << "4096,256" << true;
        QTest::newRow("stories ffn [64,172]") << "64,172" << false;
        QTest::newRow("big [4096,4096]") << "4096,4096" << true;
        QTest::newRow("conv [64,3,7,7]: too few vectors") << "64,3,7,7" << false;
    }
    void plannerNeverGrowsATensor()
    {
        QFETCH(QString, shape);
        QFETCH(bool, quantized);
        TensorInfo info;
        info.name = "t";
        info.dtype = DType::F16;
        for (const QString& s : shape.split(','))
            info.shape.push_back(s.toLongLong());
        info.nbytes = static_cast<uint64_t>(info.numel()) * 2;
        for (const BitsPreset& preset : bitsPresets()) {
            PlanOptions o;
            o.codec = CodecSpec::expert(preset.config(4)); // every tensor at it (no balanced allocation)
            const TensorPlan plan = planTensor(info, o);
            QVERIFY2(plan.estimatedBytes <= info.nbytes, qPrintable(shape));
            if (plan.quantize) {
                QVERIFY(plan.config.subspaces >= 1 && plan.config.subspaces <= 4);
                QCOMPARE(plan.estimatedBytes, payloadBytes(info.rows(), info.cols(), plan.config, true));
            }
            if (preset.bits == 1.5)
                QCOMPARE(plan.quantize, quantized);
        }
    }

    // Balanced allocation: the output layer, the embedding and the first block get the higher
    // preset of the table under every naming scheme; other tensors and expert settings do not.
    void plannerBalancesBits_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("role");
        QTest::newRow("hf lm_head") << "lm_head.weight" << int(TensorRole::Output);
        QTest::newRow("gguf output") << "output.weight" << int(TensorRole::Output);
        QTest::newRow("hf embedding") << "model.embed_tokens.weight" << int(TensorRole::Embedding);
        QTest::newRow("gguf embedding") << "token_embd.weight" << int(TensorRole::Embedding);
        QTest::newRow("meta embedding") << "tok_embeddings.weight" << int(TensorRole::Embedding);
        QTest::newRow("hf block 0") << "model.layers.0.mlp.down_proj.weight" << int(TensorRole::FirstBlock);
        QTest::newRow("gguf block 0") << "blk.0.ffn_down.weight" << int(TensorRole::FirstBlock);
        QTest::newRow("hf block 10") << "model.layers.10.mlp.down_proj.weight" << int(TensorRole::Other);
        QTest::newRow("gguf block 1") << "blk.1.attn_q.weight" << int(TensorRole::Other);
        QTest::newRow("attn output is not the output layer") << "blk.3.attn_output.weight" << int(TensorRole::Other);
    }
    void plannerBalancesBits()
    {
        QFETCH(QString, name);
        QFETCH(int, role);
        QCOMPARE(int(tensorRole(name.toStdString())), role);
        TensorInfo info;
        info.name = name.toStdString();
        info.dtype = DType::F16;
        info.shape = {4096, 256};
        info.nbytes = 4096 * 256 * 2;
        for (const BitsPreset& preset : bitsPresets()) {
            PlanOptions o;
            o.codec = CodecSpec::preset(preset.bits, 4);
            const double target = presetBitsFor(preset.bits, TensorRole(role));
            QVERIFY(presetForBits(target));
            QVERIFY(target >= preset.bits); // never fewer bits than asked for
            if (TensorRole(role) == TensorRole::Other)
                QCOMPARE(target, preset.bits);
            const TensorPlan plan = planTensor(info, o);
            QVERIFY(plan.quantize);
            QCOMPARE(plan.config.codeBitsPerWeight(), target);
            o.allocation = BitAllocation::Uniform;
            QCOMPARE(planTensor(info, o).config.codeBitsPerWeight(), preset.bits);
            o.allocation = BitAllocation::Balanced;
            o.codec = CodecSpec::expert(preset.config(4)); // expert settings are taken as given, even a preset's
            QCOMPARE(planTensor(info, o).config.codeBitsPerWeight(), preset.bits);
        }
    }
};

QTEST_APPLESS_MAIN(TestCodec)
#include "test_codec.moc"
