// The figures the GUI draws while a run goes and after it: running totals over finished
// tensors, the histogram of errors, the ratio and the time left. Every expected value is
// worked out by hand in the comments (binary-exact inputs where a float would blur an edge).

#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"

#include <QtTest>

#include <limits>
#include <vector>

using namespace novaq;

namespace {

TensorResult tensor(const std::string& name, bool quantized, double relError, uint64_t params, uint64_t bytesIn,
                    uint64_t bytesOut)
{
    TensorResult t;
    t.name = name;
    t.quantized = quantized;
    t.relError = relError;
    t.params = params;
    t.bytesIn = bytesIn;
    t.bytesOut = bytesOut;
    return t;
}

std::vector<TensorResult> withErrors(const QList<double>& quantized, const QList<double>& kept)
{
    std::vector<TensorResult> out;
    for (double e : quantized)
        out.push_back(tensor("q" + std::to_string(out.size()), true, e, 64, 128, 16));
    for (double e : kept)
        out.push_back(tensor("k" + std::to_string(out.size()), false, e, 64, 256, 128));
    return out;
}

} // namespace

class TestReport : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void runningTotalsStartEmpty()
    {
        const RunningTotals t;
        QCOMPARE(t.tensors, size_t(0));
        QCOMPARE(t.params, uint64_t(0));
        QCOMPARE(t.ratio(), 0.0); // nothing written yet: no ratio, not a division by zero
        QCOMPARE(t.effectiveBits(), 0.0);
    }

    void runningTotalsAddUp()
    {
        RunningTotals t;
        // A 256 x 256 F16 matrix (65536 weights, 131072 bytes) compressed to 8192 bytes.
        t.add(tensor("model.layers.0.mlp.up_proj.weight", true, 0.15, 65536, 131072, 8192));
        QCOMPARE(t.tensors, size_t(1));
        QCOMPARE(t.quantizedTensors, size_t(1));
        QCOMPARE(t.params, uint64_t(65536));
        QCOMPARE(t.bytesIn, uint64_t(131072));
        QCOMPARE(t.bytesOut, uint64_t(8192));
        QCOMPARE(t.ratio(), 16.0);        // 131072 / 8192
        QCOMPARE(t.effectiveBits(), 1.0); // 8 * 8192 / 65536

        // A 256-weight F32 norm kept as F16: 1024 bytes in, 512 out.
        t.add(tensor("model.norm.weight", false, 0.0, 256, 1024, 512));
        QCOMPARE(t.tensors, size_t(2));
        QCOMPARE(t.quantizedTensors, size_t(1));
        QCOMPARE(t.params, uint64_t(65792));
        QCOMPARE(t.bytesIn, uint64_t(132096));
        QCOMPARE(t.bytesOut, uint64_t(8704));
        // 132096 / 8704 = (512 * 258) / (512 * 17) = 258 / 17 = 15.176...
        QCOMPARE(t.ratio(), 258.0 / 17.0);
        // 8 * 8704 / 65792 = (256 * 272) / (256 * 257) = 272 / 257 = 1.058...
        QCOMPARE(t.effectiveBits(), 272.0 / 257.0);
    }

    void runningTotalsWithoutBytes()
    {
        RunningTotals t;
        t.add(tensor("empty", false, 0.0, 0, 0, 0)); // a 0-element tensor
        QCOMPARE(t.tensors, size_t(1));
        QCOMPARE(t.ratio(), 0.0);
        QCOMPARE(t.effectiveBits(), 0.0);
    }

    void errorHistogram_data()
    {
        QTest::addColumn<QList<double>>("quantized"); // relative errors of quantized tensors
        QTest::addColumn<QList<double>>("kept");      // relative errors of kept tensors (left out)
        QTest::addColumn<int>("bins");
        QTest::addColumn<QList<int>>("counts");
        QTest::addColumn<QList<double>>("edges");

        const double nan = std::numeric_limits<double>::quiet_NaN();
        const double inf = std::numeric_limits<double>::infinity();
        // 0 .. 1 in four bins of 0.25; a value on an inner edge goes to the bin above, the
        // largest to the last bin.
        QTest::newRow("one per bin, the largest in the last")
            << QList<double>{0.0, 0.25, 0.5, 0.75, 1.0} << QList<double>{} << 4 << QList<int>{1, 1, 1, 2}
            << QList<double>{0.0, 0.25, 0.5, 0.75, 1.0};
        // Order does not matter: 0.0625 .. 0.5625 in two bins of 0.25, inner edge 0.3125.
        QTest::newRow("skewed, unsorted") << QList<double>{0.1875, 0.5625, 0.0625, 0.125} << QList<double>{} << 2
                                          << QList<int>{3, 1} << QList<double>{0.0625, 0.3125, 0.5625};
        // Kept tensors (0.875) and non-finite errors do not count: 0.125 .. 0.375, width 0.125.
        QTest::newRow("kept and non-finite left out") << QList<double>{0.125, nan, 0.375, inf} << QList<double>{0.875}
                                                      << 2 << QList<int>{1, 1} << QList<double>{0.125, 0.25, 0.375};
        QTest::newRow("all equal: first bin") << QList<double>{0.5, 0.5, 0.5} << QList<double>{} << 3
                                              << QList<int>{3, 0, 0} << QList<double>{0.5, 0.5, 0.5, 0.5};
        QTest::newRow("one tensor") << QList<double>{0.2} << QList<double>{0.9} << 2 << QList<int>{1, 0}
                                    << QList<double>{0.2, 0.2, 0.2};
        QTest::newRow("nothing quantized")
            << QList<double>{} << QList<double>{0.0, 0.001} << 4 << QList<int>{0, 0, 0, 0} << QList<double>{};
        QTest::newRow("bins below 1 become 1")
            << QList<double>{0.25, 0.75} << QList<double>{} << 0 << QList<int>{2} << QList<double>{0.25, 0.75};
    }

    void errorHistogram()
    {
        QFETCH(QList<double>, quantized);
        QFETCH(QList<double>, kept);
        QFETCH(int, bins);
        QFETCH(QList<int>, counts);
        QFETCH(QList<double>, edges);
        const std::vector<TensorResult> tensors = withErrors(quantized, kept);
        const Histogram h = novaq::errorHistogram(tensors, bins);
        QCOMPARE(QList<int>(h.counts.begin(), h.counts.end()), counts);
        QCOMPARE(QList<double>(h.edges.begin(), h.edges.end()), edges);
        int expectedTotal = 0;
        for (int c : counts)
            expectedTotal += c;
        QCOMPARE(h.total(), expectedTotal);
    }

    void errorHistogramCapsTheBins()
    {
        const std::vector<TensorResult> tensors = withErrors({0.0, 1.0}, {});
        const Histogram h = novaq::errorHistogram(tensors, 1 << 30);
        QCOMPARE(h.counts.size(), size_t(kMaxHistogramBins));
        QCOMPARE(h.edges.size(), size_t(kMaxHistogramBins) + 1);
        QCOMPARE(h.counts.front(), 1);
        QCOMPARE(h.counts.back(), 1);
        QCOMPARE(h.total(), 2);
    }

    void compressionRatio_data()
    {
        QTest::addColumn<qulonglong>("source");
        QTest::addColumn<qulonglong>("output");
        QTest::addColumn<double>("ratio");
        QTest::newRow("13 / 4") << 13ull << 4ull << 3.25;
        QTest::newRow("13.6 MB -> 1.5 MB") << 13'600'000ull << 1'500'000ull << 136.0 / 15.0;
        QTest::newRow("larger output") << 1ull << 2ull << 0.5;
        QTest::newRow("no output yet") << 1000ull << 0ull << 0.0;
        QTest::newRow("nothing at all") << 0ull << 0ull << 0.0;
    }

    void compressionRatio()
    {
        QFETCH(qulonglong, source);
        QFETCH(qulonglong, output);
        QFETCH(double, ratio);
        QCOMPARE(novaq::compressionRatio(source, output), ratio);
    }

    void estimatedSecondsLeft_data()
    {
        QTest::addColumn<double>("elapsed");
        QTest::addColumn<double>("fraction");
        QTest::addColumn<double>("left");
        QTest::newRow("a quarter in 10 s") << 10.0 << 0.25 << 30.0; // 10 * 0.75 / 0.25
        QTest::newRow("three quarters in 3 s") << 3.0 << 0.75 << 1.0;
        QTest::newRow("done") << 12.0 << 1.0 << 0.0;
        QTest::newRow("too early: half a second") << 0.4 << 0.5 << -1.0;
        QTest::newRow("too early: 1 %") << 10.0 << 0.01 << -1.0;
        QTest::newRow("nothing done") << 10.0 << 0.0 << -1.0;
    }

    void estimatedSecondsLeft()
    {
        QFETCH(double, elapsed);
        QFETCH(double, fraction);
        QFETCH(double, left);
        QCOMPARE(novaq::estimatedSecondsLeft(elapsed, fraction), left);
    }

    // The table's settings line: a preset run names its codec; a fit, whose bits/d/b1/b2 are
    // only the preset it started from (every tensor has its own), says so instead.
    void settingsLine_data()
    {
        QTest::addColumn<QString>("settings");
        QTest::addColumn<QString>("line");
        QTest::newRow("preset")
            << R"({"bits":2.0,"d":8,"b1":8,"b2":8,"subspaces":4,"seed":7,"allocation":"balanced"})"
            << "settings                bits=2.0 d=8 b1=8 b2=8 subspaces=4 seed=7 allocation=balanced";
        QTest::newRow("fit") << R"({"bits":1.0,"d":8,"b1":8,"b2":0,"subspaces":4,"seed":7,"allocation":"target"})"
                             << "settings                per-tensor presets (fit to target) subspaces=4 seed=7 "
                                "allocation=target";
    }

    void settingsLine()
    {
        QFETCH(QString, settings);
        QFETCH(QString, line);
        ModelReport r;
        r.tensors = withErrors({0.5}, {});
        r.settings = nlohmann::json::parse(settings.toStdString());
        const QString table = QString::fromStdString(formatReportTable(r, false));
        QVERIFY2(table.contains(line + "\n") || table.endsWith(line), qPrintable(table));
    }
};

QTEST_APPLESS_MAIN(TestReport)
#include "test_report.moc"
