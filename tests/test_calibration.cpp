// Calibration's statistics (pipeline/calibrate): the calibrator resumes one forward of each
// block part by part (the student's through the compressed layers, the teacher's through the
// original ones) instead of running the block again from its input for every site; its H, C
// and down_proj's W C must be what forwards recomputed from the model's input give. And the
// teacher targets from W C (down_proj) are the ones from C.

#include "test_support.h"

#include "novaq/codec/encoder.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/teacher_targets.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/session.h"
#include "novaq/text/tokenizer.h"

#include <QTest>

#include <Eigen/Core>

#include <cmath>

using namespace novaq;
using namespace novaq::test;
namespace fs = std::filesystem;

namespace {

using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The inputs at `site` of block `layer` (layer == layers: the final norm, the output layer's
// input) of every window, each window run from its tokens through the whole model again.
Dense siteInputs(const LlamaModel& m, const std::vector<int32_t>& tokens, int64_t ctx, int layer, LinearInput site)
{
    const LlamaConfig& c = m.config;
    const int64_t windows = static_cast<int64_t>(tokens.size()) / ctx;
    int64_t cols = c.dim;
    if (layer < c.layers && site == LinearInput::AttentionOutput)
        cols = c.qDim();
    if (layer < c.layers && site == LinearInput::MlpDown)
        cols = c.hiddenDim;
    Dense X(windows * ctx, cols);
    for (int64_t w = 0; w < windows; ++w) {
        std::vector<float> H(static_cast<size_t>(ctx * c.dim));
        embedTokens(m, std::span<const int32_t>(tokens.data() + w * ctx, static_cast<size_t>(ctx)), H.data());
        KvCache cache(c, ctx);
        const InputObserver keep = [&](int l, LinearInput s, const float* in, int64_t T, int64_t n) {
            if (l == layer && s == site)
                for (int64_t t = 0; t < T; ++t)
                    for (int64_t j = 0; j < n; ++j)
                        X(w * ctx + t, j) = in[t * n + j];
        };
        for (int l = 0; l < std::min(layer + 1, c.layers); ++l)
            forwardLayer(m, l, H.data(), ctx, cache, &keep);
        if (layer == c.layers) {
            std::vector<float> out(H.size());
            finalNorm(m, H.data(), ctx, out.data());
            for (int64_t t = 0; t < ctx; ++t)
                for (int64_t j = 0; j < c.dim; ++j)
                    X(w * ctx + t, j) = out[static_cast<size_t>(t * c.dim + j)];
        }
    }
    return X;
}

// max |A - B| / max |B|.
double relMaxDiff(const Dense& A, const Dense& B) { return (A - B).cwiseAbs().maxCoeff() / B.cwiseAbs().maxCoeff(); }

Dense toDense(const HessianMatrix& M) { return M.cast<double>(); }

} // namespace

class TestCalibration : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Every matrix of the demo model in calibration order, each "compressed" to a perturbed copy
    // of itself: the statistics the calibrator hands out (from its resumed forwards) are those
    // of the inputs recomputed from the tokens through the model as compressed so far (the
    // student) and through the original (the teacher): H and its diagonal, C, and for
    // down_proj W C with W its original weights.
    void resumedStatisticsEqualRecomputed()
    {
        const fs::path text = textDir() / "kjv_calibration.txt";
        NOVAQ_REQUIRE_DATA(text);
        const std::unique_ptr<ModelReader> reader = openModel(demoModelDir());
        const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(*reader, demoModelDir());
        CalibrationOptions options;
        options.text = text;
        options.maxTokens = 512;
        Calibrator calibrator(*reader, *tokenizer, options, nullptr);
        const LlamaModel teacher = loadLlama(*reader);
        LlamaModel student = loadLlama(*reader);
        const LlamaConfig& c = teacher.config;
        const int64_t ctx = std::min<int64_t>(options.ctx, c.maxSeq);
        std::vector<int32_t> tokens =
            protocolTokens(*tokenizer, readTextForEval(text), DocumentSplit::Lines, bosOf(c, *tokenizer), 0);
        QCOMPARE(calibrator.tokens(), int64_t(512));
        tokens.resize(static_cast<size_t>(calibrator.tokens()));
        const LlamaTensorMap map = llamaTensors(*reader, c);
        const double n = double(tokens.size());

        int checked = 0, products = 0;
        for (size_t index : calibrator.order()) {
            std::vector<float> W(static_cast<size_t>(reader->tensors()[index].numel()));
            reader->readFloat(index, W);
            const TensorCalibration stats = calibrator.statistics(index);
            if (index == map.embedding) {
                calibrator.done(index, W);
                continue;
            }
            int layer = c.layers, slot = 0;
            for (int l = 0; l < c.layers; ++l)
                for (int k = 0; k < kLinearSlots; ++k)
                    if (map.linear[static_cast<size_t>(l)][static_cast<size_t>(k)] == index)
                        layer = l, slot = k;
            LinearInput site = LinearInput::Attention;
            if (layer < c.layers)
                site = slot == 3  ? LinearInput::AttentionOutput
                       : slot < 3 ? LinearInput::Attention
                       : slot < 6 ? LinearInput::Mlp
                                  : LinearInput::MlpDown;
            const Dense Xs = siteInputs(student, tokens, ctx, layer, site);
            const Dense H = Xs.transpose() * Xs / n;
            Dense got = toDense(stats.H);
            for (int64_t j = 0; j < got.rows(); ++j) // the diagonal before damping
                got(j, j) = stats.columnImportance[static_cast<size_t>(j)];
            const QString name = QString::fromStdString(reader->tensors()[index].name);
            QVERIFY2(relMaxDiff(got, H) < 1e-4, qPrintable(name + QString(" H: %1").arg(relMaxDiff(got, H))));
            const Dense Xt = siteInputs(teacher, tokens, ctx, layer, site);
            const Dense C = Xt.transpose() * Xs / n;
            if (site == LinearInput::MlpDown) {
                QCOMPARE(stats.C.size(), Eigen::Index(0));
                const Dense WC =
                    Eigen::Map<const HessianMatrix>(W.data(), stats.WC.rows(), stats.WC.cols()).cast<double>() * C;
                QVERIFY2(relMaxDiff(toDense(stats.WC), WC) < 1e-4,
                         qPrintable(name + QString(" W C: %1").arg(relMaxDiff(toDense(stats.WC), WC))));
                ++products;
            } else {
                QCOMPARE(stats.WC.size(), Eigen::Index(0));
                QVERIFY2(relMaxDiff(toDense(stats.C), C) < 1e-4,
                         qPrintable(name + QString(" C: %1").arg(relMaxDiff(toDense(stats.C), C))));
            }
            ++checked;
            // "Compressed": the weights scaled by 0.9 and every 7th one zeroed, in the
            // calibrator and in the recomputing model alike.
            std::vector<float> What(W.size());
            for (size_t i = 0; i < W.size(); ++i)
                What[i] = i % 7 == 3 ? 0.0f : 0.9f * W[i];
            calibrator.done(index, What);
            if (layer < c.layers) {
                const Linear& old = *student.layers[static_cast<size_t>(layer)].linear[slot];
                student.layers[static_cast<size_t>(layer)].linear[slot] =
                    makeDenseLinear(Eigen::Map<const RowMatrix>(What.data(), old.rows(), old.cols()));
            }
        }
        QCOMPARE(products, c.layers);
        QCOMPARE(checked, c.layers * 7 + (map.output ? 1 : 0));
    }

    // down_proj's targets from W C (its rows right-hand sides) are those from C (cols of them):
    // W* = W (C + delta I) H^-1 = (W C + delta W) H^-1; wider and narrower than tall.
    void targetsFromProductsEqualFromC_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("tokens");
        QTest::newRow("24 x 64, 200 tokens") << 24 << 64 << 200;
        QTest::newRow("150 x 64, 200 tokens") << 150 << 64 << 200;
        QTest::newRow("24 x 64, 16 tokens") << 24 << 64 << 16;
    }
    void targetsFromProductsEqualFromC()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, tokens);
        const std::vector<float> W = gaussian(static_cast<size_t>(rows * cols), 21);
        const std::vector<float> a = gaussian(static_cast<size_t>(tokens * cols), 22);
        const std::vector<float> b = gaussian(static_cast<size_t>(tokens * cols), 23);
        HessianMatrix Xs(tokens, cols), Xt(tokens, cols);
        for (int t = 0; t < tokens; ++t)
            for (int j = 0; j < cols; ++j) {
                Xs(t, j) = a[static_cast<size_t>(t * cols + j)] + (j ? 0.5f * Xs(t, j - 1) : 0.0f);
                Xt(t, j) = Xs(t, j) + 0.2f * b[static_cast<size_t>(t * cols + j)];
            }
        HessianMatrix H = Xs.transpose() * Xs / float(tokens);
        std::vector<float> diag(static_cast<size_t>(cols));
        double mean = 0;
        for (int j = 0; j < cols; ++j)
            mean += (diag[static_cast<size_t>(j)] = H(j, j));
        for (int j = 0; j < cols; ++j)
            H(j, j) += static_cast<float>(0.01 * mean / cols);
        const HessianMatrix C = Xt.transpose() * Xs / float(tokens);
        const HessianMatrix WC = Eigen::Map<const HessianMatrix>(W.data(), rows, cols) * C;
        TeacherTargets targets;
        const std::vector<float> fromC = targets.solve(W, rows, cols, H, C, diag);
        const std::vector<float> fromWC = targets.solveProducts(W, rows, cols, H, WC, diag);
        const double err = relativeError(fromC, fromWC);
        QVERIFY2(err < 1e-5, qPrintable(QString::number(err)));
        QVERIFY(relativeError(W, fromWC) > 1e-3); // and it is not W itself
    }
};

QTEST_GUILESS_MAIN(TestCalibration)
#include "test_calibration.moc"
