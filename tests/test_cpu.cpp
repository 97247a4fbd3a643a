// The CPU module: features read once, and every kernel sent to its portable twin on demand.

#include "test_support.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/quantized_tensor.h"
#include "novaq/io/cpu.h"

#include <QTest>

#include <vector>

using namespace novaq;

class TestCpu : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void forcingIsScopedAndNests();
    void codecGivesTheSameFileOnThePortablePath_data();
    void codecGivesTheSameFileOnThePortablePath();
};

void TestCpu::forcingIsScopedAndNests()
{
    const CpuFeature all[] = {CpuFeature::Avx2,       CpuFeature::Avx512,     CpuFeature::Avx512Vbmi,
                              CpuFeature::Avx512Vnni, CpuFeature::Avx512Bf16, CpuFeature::F16c};
    for (CpuFeature f : all) {
        QCOMPARE(cpuHas(f), cpuHardwareHas(f));
        QVERIFY(std::string(cpuFeatureName(f)) != "?");
    }
    {
        ForcePortableKernels outer;
        {
            ForcePortableKernels inner;
            for (CpuFeature f : all)
                QVERIFY(!cpuHas(f));
        }
        for (CpuFeature f : all)
            QVERIFY(!cpuHas(f)); // the outer scope still holds
    }
    for (CpuFeature f : all)
        QCOMPARE(cpuHas(f), cpuHardwareHas(f));
}

void TestCpu::codecGivesTheSameFileOnThePortablePath_data()
{
    QTest::addColumn<int>("d");
    QTest::addColumn<int>("b1");
    QTest::addColumn<int>("b2");
    QTest::newRow("1 bit, one stage") << 8 << 8 << 0;
    QTest::newRow("1.5 bits") << 8 << 8 << 4;
    QTest::newRow("2 bits") << 8 << 8 << 8;
    QTest::newRow("3 bits, d=4") << 4 << 8 << 4;
}

// The fast search kernels and their twins agree on every code (ties: lowest index), so a
// .novaq made on a CPU without AVX is the file made with it. Before this module the codec's
// kernels could not be sent to their twins from a test at all.
void TestCpu::codecGivesTheSameFileOnThePortablePath()
{
    QFETCH(int, d);
    QFETCH(int, b1);
    QFETCH(int, b2);
    // (On a CPU without AVX2 both runs take the portable path; the CI machine has AVX-512.)
    const int64_t rows = 96, cols = 64;
    const std::vector<float> W = test::gaussian(size_t(rows * cols), 11);
    CodecParams p;
    p.config = CodecConfig{d, b1, b2, 2};
    p.trainVectors = 2048;
    const std::vector<std::byte> fast = serialize(encodeMatrix(W, rows, cols, p));
    std::vector<std::byte> portable;
    {
        ForcePortableKernels force;
        portable = serialize(encodeMatrix(W, rows, cols, p));
    }
    QCOMPARE(portable.size(), fast.size());
    QVERIFY(portable == fast);
}

QTEST_APPLESS_MAIN(TestCpu)
#include "test_cpu.moc"
