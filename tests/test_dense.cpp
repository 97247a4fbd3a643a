// The dense kernels (tensor/dense.h): each product and solve against a plain double reference,
// on the CPU's widest build and on the plain one (ForcePortableKernels), at odd shapes and
// strides; the same bits on a repeat; the Cholesky refusal of a matrix that is not positive
// definite.

#include "test_support.h"

#include "novaq/io/cpu.h"
#include "novaq/tensor/dense.h"

#include <QTest>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace novaq;

namespace {

std::vector<float> randomFloats(size_t n, uint64_t seed) { return novaq::test::gaussian(n, seed); }

// op(A)(i, p) for a row-major A with leading dimension ld.
double at(const std::vector<float>& A, int64_t ld, bool trans, int64_t i, int64_t p)
{
    return trans ? A[static_cast<size_t>(p * ld + i)] : A[static_cast<size_t>(i * ld + p)];
}

// max |C - reference| / (max |reference| + 1), the reference in double.
double gemmError(dense::Op opA, dense::Op opB, int64_t m, int64_t n, int64_t k, bool accumulate)
{
    const bool ta = opA == dense::Op::T, tb = opB == dense::Op::T;
    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2; // strides wider than the rows
    const auto A = randomFloats(static_cast<size_t>((ta ? k : m) * lda), 1);
    const auto B = randomFloats(static_cast<size_t>((tb ? n : k) * ldb), 2);
    auto C = randomFloats(static_cast<size_t>(m * ldc), 3);
    const auto C0 = C;
    dense::gemm(opA, opB, m, n, k, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            double ref = accumulate ? C0[static_cast<size_t>(i * ldc + j)] : 0.0;
            for (int64_t p = 0; p < k; ++p)
                ref += at(A, lda, ta, i, p) * at(B, ldb, tb, p, j);
            worst = std::max(worst, std::abs(ref - C[static_cast<size_t>(i * ldc + j)]));
            scale = std::max(scale, std::abs(ref));
        }
        // The padding between rows is never written.
        for (int64_t j = n; j < ldc; ++j)
            if (C[static_cast<size_t>(i * ldc + j)] != C0[static_cast<size_t>(i * ldc + j)])
                return 1e9;
    }
    return worst / (scale + 1);
}

} // namespace

class TestDense : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void levelFollowsTheCpu();
    void gemmMatchesTheReference_data();
    void gemmMatchesTheReference();
    void gemmGivesTheSameBitsTwice();
    void gemvMatchesGemm();
    void choleskySolves_data();
    void choleskySolves();
    void choleskyRefusesAnIndefiniteMatrix();
};

void TestDense::levelFollowsTheCpu()
{
    const std::string fast = cpuHas(CpuFeature::Avx512) ? "avx512" : cpuHas(CpuFeature::Avx2) ? "avx2" : "generic";
    QCOMPARE(std::string(dense::level()), fast);
    ForcePortableKernels portable;
    QCOMPARE(std::string(dense::level()), std::string("generic"));
}

void TestDense::gemmMatchesTheReference_data()
{
    QTest::addColumn<int>("opA");
    QTest::addColumn<int>("opB");
    QTest::addColumn<int>("m");
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("k");
    QTest::addColumn<bool>("accumulate");
    QTest::addColumn<bool>("portable");
    for (bool portable : {false, true})
        for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b)
                for (bool acc : {false, true}) {
                    const std::string name = std::string(a ? "T" : "N") + (b ? "T" : "N") + (acc ? " +=" : " =") +
                                             (portable ? " portable" : " fast");
                    QTest::newRow((name + " 37x29x53").c_str()) << a << b << 37 << 29 << 53 << acc << portable;
                    QTest::newRow((name + " 1x70x300").c_str()) << a << b << 1 << 70 << 300 << acc << portable;
                    QTest::newRow((name + " 129x1x17").c_str()) << a << b << 129 << 1 << 17 << acc << portable;
                }
}

void TestDense::gemmMatchesTheReference()
{
    QFETCH(int, opA);
    QFETCH(int, opB);
    QFETCH(int, m);
    QFETCH(int, n);
    QFETCH(int, k);
    QFETCH(bool, accumulate);
    QFETCH(bool, portable);
    std::unique_ptr<ForcePortableKernels> force;
    if (portable)
        force = std::make_unique<ForcePortableKernels>();
    const double error =
        gemmError(opA ? dense::Op::T : dense::Op::N, opB ? dense::Op::T : dense::Op::N, m, n, k, accumulate);
    QVERIFY2(error < 1e-5, std::to_string(error).c_str()); // float sums of k products of N(0,1)
}

void TestDense::gemmGivesTheSameBitsTwice()
{
    const int64_t m = 64, n = 96, k = 200;
    const auto A = randomFloats(static_cast<size_t>(m * k), 4), B = randomFloats(static_cast<size_t>(n * k), 5);
    std::vector<float> C1(static_cast<size_t>(m * n)), C2(C1.size());
    dense::gemm(dense::Op::N, dense::Op::T, m, n, k, A.data(), k, B.data(), k, C1.data(), n, false);
    dense::gemm(dense::Op::N, dense::Op::T, m, n, k, A.data(), k, B.data(), k, C2.data(), n, false);
    QVERIFY(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
}

void TestDense::gemvMatchesGemm()
{
    const int64_t m = 77, k = 131, lda = 140;
    const auto A = randomFloats(static_cast<size_t>(m * lda), 6), x = randomFloats(static_cast<size_t>(k), 7);
    std::vector<float> y(static_cast<size_t>(m)), z(static_cast<size_t>(m));
    dense::gemv(m, k, A.data(), lda, x.data(), y.data());
    dense::gemm(dense::Op::N, dense::Op::N, m, 1, k, A.data(), lda, x.data(), 1, z.data(), 1, false);
    for (int64_t i = 0; i < m; ++i)
        QVERIFY2(std::abs(y[static_cast<size_t>(i)] - z[static_cast<size_t>(i)]) < 1e-4f, std::to_string(i).c_str());
}

void TestDense::choleskySolves_data()
{
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("rhs");
    QTest::addColumn<bool>("portable");
    for (bool portable : {false, true}) {
        const char* p = portable ? " portable" : " fast";
        QTest::newRow((std::string("1x1") + p).c_str()) << 1 << 1 << portable;
        QTest::newRow((std::string("31x7") + p).c_str()) << 31 << 7 << portable;
        QTest::newRow((std::string("200x65") + p).c_str()) << 200 << 65 << portable;
    }
}

// A = G G^T + n I (well conditioned); X solved from A X = B must give back B.
void TestDense::choleskySolves()
{
    QFETCH(int, n);
    QFETCH(int, rhs);
    QFETCH(bool, portable);
    std::unique_ptr<ForcePortableKernels> force;
    if (portable)
        force = std::make_unique<ForcePortableKernels>();
    const int64_t lda = n + 1, ldb = rhs + 2;
    const auto G = randomFloats(static_cast<size_t>(n * n), 8);
    std::vector<double> A(static_cast<size_t>(n * lda), -7.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double s = i == j ? n : 0;
            for (int64_t p = 0; p < n; ++p)
                s += double(G[static_cast<size_t>(i * n + p)]) * G[static_cast<size_t>(j * n + p)];
            A[static_cast<size_t>(i * lda + j)] = s;
        }
    const auto A0 = A;
    const auto Bf = randomFloats(static_cast<size_t>(n * ldb), 9);
    std::vector<double> B(Bf.begin(), Bf.end());
    const auto B0 = B;
    QVERIFY(dense::cholesky(A.data(), n, lda));
    dense::choleskySolve(A.data(), n, lda, B.data(), rhs, ldb);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < rhs; ++c) {
            double s = 0;
            for (int64_t p = 0; p < n; ++p)
                s += A0[static_cast<size_t>(i * lda + p)] * B[static_cast<size_t>(p * ldb + c)];
            worst = std::max(worst, std::abs(s - B0[static_cast<size_t>(i * ldb + c)]));
        }
    QVERIFY2(worst < 1e-9, std::to_string(worst).c_str());
    // The columns past the right-hand sides are not touched.
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = rhs; c < ldb; ++c)
            QCOMPARE(B[static_cast<size_t>(i * ldb + c)], B0[static_cast<size_t>(i * ldb + c)]);
}

void TestDense::choleskyRefusesAnIndefiniteMatrix()
{
    std::vector<double> A{1, 2, 2, 1}; // eigenvalues 3 and -1
    QVERIFY(!dense::cholesky(A.data(), 2, 2));
}

QTEST_GUILESS_MAIN(TestDense)
#include "test_dense.moc"
