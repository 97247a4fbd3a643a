// The encoder's verbs (encoder.h) called one by one with the codebooks held fixed: the joint
// code search is exact, the packed tensor decodes to what the verbs decode, a refit never
// raises the error, and the verbs composed as documented give encodeMatrix's bytes.

#include "test_support.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/tensor/dtype.h"

#include <QtTest>

#include <algorithm>
#include <cmath>

using namespace novaq;

namespace {

// ||x_i - C1[a] - C2[b]||^2 for one vector, in double.
double vectorError(const Codebooks& books, const float* x, uint32_t a, uint32_t b)
{
    const auto D = static_cast<size_t>(books.d);
    double e = 0;
    for (size_t t = 0; t < D; ++t) {
        double q = books.c1[a * D + t];
        if (books.m2 > 0)
            q += books.c2[b * D + t];
        const double r = double(x[t]) - q;
        e += r * r;
    }
    return e;
}

// sum_i w_i ||x_i - C1[a_i] - C2[b_i]||^2 (w empty: 1 each).
double weightedError(const Codebooks& books, const std::vector<float>& X, const std::vector<float>& w,
                     const Codes& codes)
{
    double e = 0;
    for (size_t i = 0; i < codes.a.size(); ++i)
        e += (w.empty() ? 1.0 : double(w[i])) *
             vectorError(books, X.data() + i * static_cast<size_t>(books.d), codes.a[i], codes.b[i]);
    return e;
}

Codebooks trainedBooks(const std::vector<float>& X, int d, int b1, int b2, uint64_t seed)
{
    SplitMix64 rng{seed};
    return trainCodebooks(X, d, 1 << b1, b2 > 0 ? 1 << b2 : 0, 4, rng);
}

// The codebooks as a file stores them (f16 values).
void roundToHalf(Codebooks& books)
{
    for (float& x : books.c1)
        x = halfToFloat(floatToHalf(x));
    for (float& x : books.c2)
        x = halfToFloat(floatToHalf(x));
}

// A weight matrix with structure the normalization sees: row offsets and scales, an outlier column.
std::vector<float> testMatrix(int64_t rows, int64_t cols, uint64_t seed)
{
    std::vector<float> W = test::gaussian(static_cast<size_t>(rows * cols), seed);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            float& w = W[static_cast<size_t>(i * cols + j)];
            w = w * (0.5f + 0.01f * static_cast<float>(i % 50)) + 0.02f * static_cast<float>(i % 7);
            if (j == cols / 3)
                w *= 9.0f;
        }
    return W;
}

} // namespace

class TestCodecVerbs : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void computeCodesIsAnExactJointSearch_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("n");
        QTest::newRow("d8 8+4 (the 1.5-bit shape)") << 8 << 8 << 4 << 1500;
        QTest::newRow("d4 6+3") << 4 << 6 << 3 << 2000;
        QTest::newRow("d3 5+5 odd length") << 3 << 5 << 5 << 777;
        QTest::newRow("d6 7+0 one stage") << 6 << 7 << 0 << 900;
    }
    void computeCodesIsAnExactJointSearch()
    {
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, n);
        const std::vector<float> X = test::gaussian(static_cast<size_t>(n * d), 21);
        const Codebooks books = trainedBooks(X, d, b1, b2, 22);
        const Codes codes = computeCodes(books, X, 0);
        QCOMPARE(codes.a.size(), static_cast<size_t>(n));
        QCOMPARE(codes.b.size(), static_cast<size_t>(n));
        // The pair found is no worse than any other pair (every single-entry change included);
        // the search's expanded-norm distances differ from these by rounding only.
        for (int i = 0; i < n; ++i) {
            const float* x = X.data() + static_cast<size_t>(i) * static_cast<size_t>(d);
            const double found =
                vectorError(books, x, codes.a[static_cast<size_t>(i)], codes.b[static_cast<size_t>(i)]);
            double best = found;
            for (int a = 0; a < books.m1; ++a)
                for (int b = 0; b < std::max(books.m2, 1); ++b)
                    best = std::min(best, vectorError(books, x, static_cast<uint32_t>(a), static_cast<uint32_t>(b)));
            QVERIFY2(found <= best + 1e-5 * (1.0 + best),
                     qPrintable(QString("vector %1: %2 where pair search finds %3").arg(i).arg(found).arg(best)));
            if (books.m2 == 0)
                QCOMPARE(codes.b[static_cast<size_t>(i)], 0u);
        }
    }

    void beamKeepsTheBestSecondStage()
    {
        // With a beam the stage-1 entry may be off the exact optimum, but the stage-2 entry
        // is the best one for the stage-1 entry chosen.
        const int d = 8, n = 1200;
        const std::vector<float> X = test::gaussian(static_cast<size_t>(n * d), 31);
        const Codebooks books = trainedBooks(X, d, 8, 4, 32);
        const Codes beam = computeCodes(books, X, 4);
        const Codes exact = computeCodes(books, X, 0);
        double beamError = 0, exactError = 0;
        for (int i = 0; i < n; ++i) {
            const float* x = X.data() + static_cast<size_t>(i) * static_cast<size_t>(d);
            const uint32_t a = beam.a[static_cast<size_t>(i)];
            const double found = vectorError(books, x, a, beam.b[static_cast<size_t>(i)]);
            for (int b = 0; b < books.m2; ++b)
                QVERIFY(found <= vectorError(books, x, a, static_cast<uint32_t>(b)) + 1e-5 * (1.0 + found));
            beamError += found;
            exactError += vectorError(books, x, exact.a[static_cast<size_t>(i)], exact.b[static_cast<size_t>(i)]);
        }
        QVERIFY(exactError <= beamError * (1 + 1e-9));
    }

    void decodeCodesIsTheSumOfTheEntries()
    {
        Codebooks books;
        books.d = 2;
        books.m1 = 2;
        books.m2 = 2;
        books.c1 = {1.0f, 2.0f, -3.0f, 0.5f};
        books.c2 = {0.25f, -0.25f, 10.0f, 20.0f};
        Codes codes;
        codes.a = {0, 1, 1};
        codes.b = {1, 0, 1};
        const std::vector<float> expected = {11.0f, 22.0f, -2.75f, 0.25f, 7.0f, 20.5f};
        QVERIFY(decodeCodes(books, codes) == expected);
        // The codes the exact search gives for the decoded vectors are those codes.
        const Codes again = computeCodes(books, expected, 0);
        QVERIFY(again.a == codes.a);
        QVERIFY(again.b == codes.b);
    }

    void packedTensorDecodesToTheVerbsDecode_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("subspaces");
        QTest::newRow("64x256 d8 8+4 K4") << 64 << 256 << 8 << 8 << 4 << 4;
        QTest::newRow("40x100 d6 7+5 K2 padded") << 40 << 100 << 6 << 7 << 5 << 2;
        QTest::newRow("33x64 d4 6+0 K3 one stage") << 33 << 64 << 4 << 6 << 0 << 3;
    }
    void packedTensorDecodesToTheVerbsDecode()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, subspaces);
        CodecParams params;
        params.config = CodecConfig{d, b1, b2, subspaces};
        const std::vector<float> W = testMatrix(rows, cols, 41);
        const Normalization norm = normalizeMatrix(W, rows, cols, params);
        SplitMix64 rng{params.seed};
        std::vector<Codebooks> books;
        std::vector<Codes> codes;
        std::vector<SubspaceVectors> subs;
        for (int k = 0; k < subspaces; ++k) {
            subs.push_back(gatherSubspace(W, rows, cols, norm, params, k));
            books.push_back(trainCodebooks(subs.back().X, d, 1 << b1, b2 > 0 ? 1 << b2 : 0, 3, rng));
            roundToHalf(books.back());
            codes.push_back(computeCodes(books.back(), subs.back().X, 0));
        }
        const QuantizedTensor q = packTensor(W, rows, cols, params.config, norm, books, codes);
        std::vector<float> decoded(static_cast<size_t>(rows * cols));
        decode(q, decoded);
        // Element (i, j) is row scale * column scale * (the verbs' decode of its vector) + row mean.
        for (int k = 0; k < subspaces; ++k) {
            const std::vector<float> vectors =
                decodeCodes(books[static_cast<size_t>(k)], codes[static_cast<size_t>(k)]);
            const int64_t nv = subs[static_cast<size_t>(k)].ve - subs[static_cast<size_t>(k)].vb;
            for (int64_t i = 0; i < rows; ++i) {
                const float s = q.scale * halfToFloat(q.rowScale[static_cast<size_t>(i)]);
                const float mu = q.scale * halfToFloat(q.rowMean[static_cast<size_t>(i)]);
                for (int64_t v = 0; v < nv; ++v)
                    for (int t = 0; t < d; ++t) {
                        const int64_t j = (subs[static_cast<size_t>(k)].vb + v) * d + t;
                        if (j >= cols)
                            continue;
                        const float c = q.hasColScale ? halfToFloat(q.colScale[static_cast<size_t>(j)]) : 1.0f;
                        const float value = vectors[static_cast<size_t>((i * nv + v) * d + t)];
                        // Same operations in the same order as decode(): the same bits.
                        QVERIFY2(decoded[static_cast<size_t>(i * cols + j)] == s * c * value + mu,
                                 qPrintable(QString("element (%1, %2)").arg(i).arg(j)));
                    }
            }
        }
    }

    void refitDoesNotRaiseTheError_data()
    {
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<bool>("weighted");
        QTest::newRow("d8 8+4") << 8 << 8 << 4 << false;
        QTest::newRow("d8 8+4 weighted") << 8 << 8 << 4 << true;
        QTest::newRow("d4 5+3 weighted") << 4 << 5 << 3 << true;
        QTest::newRow("d6 6+0 one stage") << 6 << 6 << 0 << false;
    }
    void refitDoesNotRaiseTheError()
    {
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(bool, weighted);
        const int n = 3000;
        const std::vector<float> X = test::gaussian(static_cast<size_t>(n * d), 51);
        std::vector<float> w;
        if (weighted) {
            w = test::gaussian(static_cast<size_t>(n), 52);
            for (float& v : w)
                v = 0.1f + v * v;
        }
        Codebooks books = trainedBooks(X, d, b1, b2, 53);
        // Codebooks off their least-squares optimum: every entry nudged.
        const std::vector<float> noise = test::gaussian(books.c1.size() + books.c2.size(), 54);
        for (size_t e = 0; e < books.c1.size(); ++e)
            books.c1[e] += 0.2f * noise[e];
        for (size_t e = 0; e < books.c2.size(); ++e)
            books.c2[e] += 0.2f * noise[books.c1.size() + e];
        const Codes codes = computeCodes(books, X, 0); // held fixed from here on
        const double before = weightedError(books, X, w, codes);
        refitCodebooks(books, X, w, codes);
        const double once = weightedError(books, X, w, codes);
        QVERIFY2(once < before * 0.99, qPrintable(QString("refit: %1 -> %2").arg(before).arg(once)));
        // At the optimum (up to the small pull to the current entries) a second refit keeps it.
        refitCodebooks(books, X, w, codes);
        const double twice = weightedError(books, X, w, codes);
        QVERIFY2(twice <= once * (1 + 1e-6), qPrintable(QString("second refit: %1 -> %2").arg(once).arg(twice)));
        // codesError is the unweighted relative form of the same error.
        if (!weighted) {
            double ref = 0;
            for (float x : X)
                ref += double(x) * x;
            QVERIFY(std::abs(codesError(books, X, codes) - twice / ref) <= 1e-5 * (twice / ref));
        }
    }

    void refitLeavesUnusedEntriesInPlace()
    {
        const int d = 4, n = 500;
        const std::vector<float> X = test::gaussian(static_cast<size_t>(n * d), 61);
        Codebooks books = trainedBooks(X, d, 4, 2, 62);
        Codes codes = computeCodes(books, X, 0);
        for (uint32_t& a : codes.a) // entry 15 of stage 1 is used by no vector now
            if (a == 15)
                a = 14;
        const std::vector<float> unused(books.c1.begin() + 15 * d, books.c1.end());
        refitCodebooks(books, X, {}, codes);
        for (int t = 0; t < d; ++t)
            QVERIFY(std::abs(books.c1[static_cast<size_t>(15 * d + t)] - unused[static_cast<size_t>(t)]) <= 1e-5f);
    }

    void trainingIsSeededAndRecorded()
    {
        const int d = 8, n = 4000;
        const std::vector<float> X = test::gaussian(static_cast<size_t>(n * d), 71);
        EncodeStats stats;
        SplitMix64 rng1{7}, rng2{7}, rng3{8};
        const Codebooks a = trainCodebooks(X, d, 256, 16, 5, rng1, nullptr, &stats);
        const Codebooks b = trainCodebooks(X, d, 256, 16, 5, rng2);
        const Codebooks c = trainCodebooks(X, d, 256, 16, 5, rng3);
        QVERIFY(a.c1 == b.c1);
        QVERIFY(a.c2 == b.c2);
        QVERIFY(a.c1 != c.c1);
        QCOMPARE(stats.kmeansObjective1.size(), size_t{5});
        QCOMPARE(stats.kmeansObjective2.size(), size_t{5});
        // Lloyd steps lower the objective (no cluster is empty on Gaussian data this size).
        QVERIFY(stats.kmeansObjective1.back() < stats.kmeansObjective1.front());
        QVERIFY(stats.kmeansObjective2.back() < stats.kmeansObjective2.front());
        // The second stage codes residuals: two stages beat the first alone.
        Codebooks first = a;
        first.m2 = 0;
        first.c2.clear();
        QVERIFY(codesError(a, X, computeCodes(a, X, 0)) < codesError(first, X, computeCodes(first, X, 0)));
    }

    void verbsComposeToEncodeMatrix_data()
    {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("d");
        QTest::addColumn<int>("b1");
        QTest::addColumn<int>("b2");
        QTest::addColumn<int>("subspaces");
        QTest::addColumn<bool>("importance");
        QTest::addColumn<int>("trainVectors");
        QTest::newRow("96x256 d8 8+4 K4") << 96 << 256 << 8 << 8 << 4 << 4 << false << 32768;
        QTest::newRow("96x256 d8 8+4 K4 subsampled") << 96 << 256 << 8 << 8 << 4 << 4 << false << 1000;
        QTest::newRow("50x90 d6 7+5 K2 importance") << 50 << 90 << 6 << 7 << 5 << 2 << true << 32768;
        QTest::newRow("48x64 d4 6+0 K1 one stage") << 48 << 64 << 4 << 6 << 0 << 1 << false << 32768;
    }
    void verbsComposeToEncodeMatrix()
    {
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, d);
        QFETCH(int, b1);
        QFETCH(int, b2);
        QFETCH(int, subspaces);
        QFETCH(bool, importance);
        QFETCH(int, trainVectors);
        CodecParams params;
        params.config = CodecConfig{d, b1, b2, subspaces};
        params.trainVectors = trainVectors;
        std::vector<float> colImportance, rowImportance;
        if (importance) {
            colImportance = test::gaussian(static_cast<size_t>(cols), 81);
            for (float& h : colImportance)
                h = h * h;
            rowImportance.assign(static_cast<size_t>(rows), 1.0f);
            rowImportance[3] = 5.0f;
            params.columnImportance = colImportance;
            params.rowImportance = rowImportance;
        }
        const std::vector<float> W = testMatrix(rows, cols, 82);
        EncodeStats encoderStats;
        const QuantizedTensor q = encodeMatrix(W, rows, cols, params, nullptr, {}, &encoderStats);

        // The composition encoder.h documents, written out with the verbs.
        const int m1 = 1 << b1, m2 = b2 > 0 ? 1 << b2 : 0;
        const int beam = jointBeam(params, m1, m2);
        QCOMPARE(beam, 0);
        const Normalization norm = normalizeMatrix(W, rows, cols, params);
        QCOMPARE(norm.outlierColumns, encoderStats.outlierColumns);
        SplitMix64 rng{params.seed};
        std::vector<Codebooks> books;
        std::vector<Codes> codes;
        std::vector<double> refitErrors;
        for (int k = 0; k < subspaces; ++k) {
            const SubspaceVectors sub = gatherSubspace(W, rows, cols, norm, params, k);
            const TrainingSet T = sampleTrainingSet(sub, d, params.trainVectors, rng);
            Codebooks cb = trainCodebooks(T.X, d, m1, m2, params.kmeansIterations, rng);
            for (int it = 0; it < params.refitIterations; ++it) {
                const Codes c = computeCodes(cb, T.X, beam);
                refitCodebooks(cb, T.X, T.weight, c);
                refitErrors.push_back(codesError(cb, T.X, c));
            }
            Codes c;
            for (int round = 0; round < params.fullRounds; ++round) {
                c = computeCodes(cb, sub.X, beam);
                refitCodebooks(cb, sub.X, sub.weight, c);
            }
            books.push_back(std::move(cb));
            codes.push_back(std::move(c));
        }
        const QuantizedTensor composed = packTensor(W, rows, cols, params.config, norm, books, codes);
        QVERIFY(serialize(composed) == serialize(q));
        QVERIFY(refitErrors == encoderStats.refitError);
    }
};

QTEST_APPLESS_MAIN(TestCodecVerbs)
#include "test_codec_verbs.moc"
