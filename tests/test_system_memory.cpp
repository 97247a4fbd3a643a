// system_memory.h: this computer's memory and the "fits in memory" rule of the model lists.

#include "novaq/io/system_memory.h"

#include <QTest>

#include <unistd.h>

Q_DECLARE_METATYPE(novaq::MemoryFit)

namespace {
constexpr uint64_t kMiB = uint64_t(1) << 20;
constexpr uint64_t kGiB = uint64_t(1) << 30;
} // namespace

class TestSystemMemory : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void physicalMemoryIsThisComputers()
    {
        // The figure sysconf gives, and a sane one.
        const std::optional<uint64_t> bytes = novaq::physicalMemoryBytes();
        QVERIFY(bytes.has_value());
        QCOMPARE(*bytes, uint64_t(::sysconf(_SC_PHYS_PAGES)) * uint64_t(::sysconf(_SC_PAGESIZE)));
        QVERIFY(*bytes >= 64 * kMiB);
    }

    void expectedRunMemory_data()
    {
        QTest::addColumn<quint64>("weights");
        QTest::addColumn<quint64>("expected");
        QTest::newRow("small model: the 512 MiB floor") << quint64(100 * kMiB) << quint64(612 * kMiB);
        QTest::newRow("at the floor") << quint64(2 * kGiB) << quint64(2 * kGiB + 512 * kMiB);
        QTest::newRow("large model: a quarter more") << quint64(8 * kGiB) << quint64(10 * kGiB);
    }
    void expectedRunMemory()
    {
        QFETCH(quint64, weights);
        QFETCH(quint64, expected);
        QCOMPARE(quint64(novaq::expectedRunMemory(weights)), expected);
    }

    void memoryFit_data()
    {
        QTest::addColumn<quint64>("weights");
        QTest::addColumn<quint64>("physical");
        QTest::addColumn<novaq::MemoryFit>("fit");
        QTest::newRow("small in 8 GiB") << quint64(500 * kMiB) << quint64(8 * kGiB) << novaq::MemoryFit::Fits;
        QTest::newRow("exactly the memory") << quint64(8 * kGiB) << quint64(10 * kGiB) << novaq::MemoryFit::Fits;
        QTest::newRow("one byte over") << quint64(8 * kGiB) << quint64(10 * kGiB - 1) << novaq::MemoryFit::TooLarge;
        QTest::newRow("weights alone fit, the margin does not")
            << quint64(7 * kGiB) << quint64(8 * kGiB) << novaq::MemoryFit::TooLarge;
        QTest::newRow("unknown size") << quint64(0) << quint64(8 * kGiB) << novaq::MemoryFit::Unknown;
        QTest::newRow("unknown memory") << quint64(kGiB) << quint64(0) << novaq::MemoryFit::Unknown;
    }
    void memoryFit()
    {
        QFETCH(quint64, weights);
        QFETCH(quint64, physical);
        QFETCH(novaq::MemoryFit, fit);
        QCOMPARE(novaq::memoryFit(weights, physical), fit);
    }
};

QTEST_GUILESS_MAIN(TestSystemMemory)
#include "test_system_memory.moc"
