// The GUI's item models and text formatting: QAbstractItemModelTester on every model, and
// the number formats of ui.md.

#include "ui/application.h"
#include "ui/charts.h"
#include "ui/format.h"
#include "ui/table_models.h"

#include "novaq/pipeline/inspect.h"

#include <QAbstractBarSeries>
#include <QAbstractItemModelTester>
#include <QBarSet>
#include <QLineSeries>
#include <QTest>

#include <algorithm>
#include <cmath>

using namespace novaq;
using namespace novaq::ui;

namespace {

TensorResult makeResult(const std::string& name, double error, bool quantized = true)
{
    TensorResult r;
    r.name = name;
    r.shape = {256, 768};
    r.sourceDtype = "F32";
    r.quantized = quantized;
    r.storedAs = quantized ? "novaq d=8 8+4 K=4" : "F16";
    r.relError = error;
    r.sqnrDb = quantized ? -10 * std::log10(error) : 999;
    r.effectiveBits = quantized ? 1.9 : 16;
    r.params = 256 * 768;
    r.bytesIn = r.params * 4;
    r.bytesOut = r.params / 4;
    r.seconds = 0.25;
    return r;
}

} // namespace

class TestGuiModels : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void memoryEstimateGrowsWithTheTensor()
    {
        const CodecConfig c{8, 8, 4, 4};
        QVERIFY(tensorWorkingBytes(256, 768, c, 1000) > 8ull * 256 * 768); // at least W and its decode
        QVERIFY(tensorWorkingBytes(512, 768, c, 1000) > tensorWorkingBytes(256, 768, c, 1000));
        QVERIFY(tensorWorkingBytes(256, 1536, c, 1000) > tensorWorkingBytes(256, 768, c, 1000));
        QVERIFY(tensorWorkingBytes(256, 768, c, 2000) > tensorWorkingBytes(256, 768, c, 1000));

        const ModelInspection inspection = inspectModel(NOVAQ_DEMO_MODEL_DIR, CodecSpec::preset(1.5, 4));
        uint64_t largest = 0;
        for (const TensorInspection& t : inspection.tensors)
            if (t.quantize)
                largest = std::max<uint64_t>(largest, uint64_t(t.info.numel()));
        QVERIFY(largest > 0);
        QVERIFY(estimatedPeakBytes(inspection) >= 8 * largest);
    }

    void calibratedRateIsPositiveAndCached()
    {
        const CodecConfig c{8, 8, 4, 4};
        const double rate = calibratedEncodeRate(c, 1);
        QVERIFY(rate > 0);
        QCOMPARE(calibratedEncodeRate(c, 1), rate); // measured once per config in the process
        const ModelInspection inspection = inspectModel(NOVAQ_DEMO_MODEL_DIR, CodecSpec::preset(2.0, 4));
        const double seconds = estimatedSeconds(inspection, rate);
        QVERIFY(seconds > 0);
        QVERIFY(estimatedSeconds(inspection, rate / 2) > seconds); // slower machine, longer run
        QCOMPARE(estimatedSeconds(inspection, 0), 0.0);
    }

    void planModelOverDemo()
    {
        const ModelInspection inspection = inspectModel(NOVAQ_DEMO_MODEL_DIR, CodecSpec::preset(1.5, 4));
        TensorPlanModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setInspection(inspection);
        QCOMPARE(model.rowCount(), int(inspection.tensors.size()));
        QCOMPARE(model.columnCount(), int(TensorPlanModel::ColumnCount));
        for (int row = 0; row < model.rowCount(); ++row) {
            const TensorInspection& t = inspection.tensors[size_t(row)];
            QCOMPARE(model.index(row, TensorPlanModel::Name).data().toString(), QString::fromStdString(t.info.name));
            QCOMPARE(model.index(row, TensorPlanModel::Plan).data().toString(),
                     t.quantize ? QStringLiteral("compressed") : QStringLiteral("kept"));
            QCOMPARE(model.index(row, TensorPlanModel::Estimate).data().toString(), sizeText(t.estimatedBytes));
        }
        model.clear();
        QCOMPARE(model.rowCount(), 0);
    }

    void resultModelAppends()
    {
        TensorResultModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.append(makeResult("model.layers.0.self_attn.q_proj.weight", 0.146));
        model.append(makeResult("model.norm.weight", 0, false));
        QCOMPARE(model.rowCount(), 2);
        QCOMPARE(model.index(0, TensorResultModel::Error).data().toString(), QStringLiteral("0.146"));
        QCOMPARE(model.index(1, TensorResultModel::Sqnr).data().toString(), QStringLiteral("exact"));
        QCOMPARE(model.index(0, TensorResultModel::Bits).data(Qt::TextAlignmentRole).toInt(),
                 int(Qt::AlignRight | Qt::AlignVCenter));
        model.setResults({makeResult("a", 0.1), makeResult("b", 0.2), makeResult("c", 0.3)});
        QCOMPARE(model.rowCount(), 3);
        model.clear();
        QCOMPARE(model.rowCount(), 0);
    }

    void errorText_data()
    {
        QTest::addColumn<double>("value");
        QTest::addColumn<QString>("text");
        QTest::newRow("zero") << 0.0 << QStringLiteral("0");
        QTest::newRow("three digits") << 0.1623 << QStringLiteral("0.162");
        QTest::newRow("trailing zero kept") << 0.16 << QStringLiteral("0.160");
        QTest::newRow("small") << 0.003412 << QStringLiteral("0.00341");
        QTest::newRow("tiny") << 1.234e-6 << QStringLiteral("1.23e-06");
    }
    void errorText()
    {
        QFETCH(double, value);
        QFETCH(QString, text);
        QCOMPARE(novaq::ui::errorText(value), text);
    }

    void durationText_data()
    {
        QTest::addColumn<double>("seconds");
        QTest::addColumn<QString>("text");
        QTest::newRow("zero") << 0.0 << QStringLiteral("0:00");
        QTest::newRow("42 s") << 42.4 << QStringLiteral("0:42");
        QTest::newRow("over a minute") << 125.0 << QStringLiteral("2:05");
        QTest::newRow("unknown") << -1.0 << QStringLiteral("-:--");
    }
    void durationText()
    {
        QFETCH(double, seconds);
        QFETCH(QString, text);
        QCOMPARE(novaq::ui::durationText(seconds), text);
    }

    void ratioText() { QCOMPARE(novaq::ui::ratioText(9.07), QStringLiteral("9.1x")); }

    void tensorKind_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("kind");
        QTest::newRow("q_proj") << "model.layers.3.self_attn.q_proj.weight" << int(TensorKind::Attention);
        QTest::newRow("llama2c wq") << "layers.0.attention.wq.weight" << int(TensorKind::Attention);
        QTest::newRow("up_proj") << "model.layers.3.mlp.up_proj.weight" << int(TensorKind::Mlp);
        QTest::newRow("gguf ffn") << "blk.0.ffn_down.weight" << int(TensorKind::Mlp);
        QTest::newRow("embeddings") << "model.embed_tokens.weight" << int(TensorKind::EmbeddingOutput);
        QTest::newRow("lm_head") << "lm_head.weight" << int(TensorKind::EmbeddingOutput);
        QTest::newRow("gguf output") << "output.weight" << int(TensorKind::EmbeddingOutput);
        QTest::newRow("norm") << "model.norm.weight" << int(TensorKind::Other);
        QTest::newRow("attention norm") << "model.layers.0.post_attention_layernorm.weight" << int(TensorKind::Other);
    }
    void tensorKind()
    {
        QFETCH(QString, name);
        QFETCH(int, kind);
        QCOMPARE(int(novaq::ui::tensorKind(name.toStdString())), kind);
    }

    void histogramCountsQuantizedOnly()
    {
        const std::vector<TensorResult> results{makeResult("a", 0.10), makeResult("b", 0.12), makeResult("c", 0.20),
                                                makeResult("n", 0, false)};
        const Histogram histogram = errorHistogram(results, 4);
        const std::vector<int>& counts = histogram.counts;
        QCOMPARE(counts.size(), size_t(4));
        QCOMPARE(histogram.edges.size(), size_t(5));
        QCOMPARE(counts[0] + counts[1] + counts[2] + counts[3], 3);
        QCOMPARE(counts[0], 2);
        QCOMPARE(counts[3], 1);
    }

    // Charts follow the palette: Qt's dark chart theme on a dark palette, light on a light one,
    // and the kind colours survive the theme change (a theme resets series colours).
    void chartsFollowThePalette()
    {
        QVERIFY(isDark(darkPalette()));
        QVERIFY(!isDark(lightPalette()));
        ErrorBarChart bars;
        RatioLineChart lines;
        ErrorHistogramChart histogram;
        for (QPalette palette : {darkPalette(), lightPalette()}) {
            const bool dark = isDark(palette);
            for (QChartView* view : std::initializer_list<QChartView*>{&bars, &lines, &histogram}) {
                view->setPalette(palette);
                QCOMPARE(view->chart()->theme(), dark ? QChart::ChartThemeDark : QChart::ChartThemeLight);
                QCOMPARE(view->chart()->backgroundBrush().color(), palette.color(QPalette::Base));
            }
            const auto* series = qobject_cast<QAbstractBarSeries*>(bars.chart()->series().first());
            QVERIFY(series);
            for (int k = 0; k < kTensorKindCount; ++k)
                QCOMPARE(series->barSets().at(k)->color(), tensorKindColor(TensorKind(k)));
            const auto* ratio = qobject_cast<QLineSeries*>(lines.chart()->series().first());
            QVERIFY(ratio);
            QCOMPARE(ratio->pen().color(), accentTextColor(palette));
        }
    }

    void errorChartAppendsQuantizedOnly()
    {
        ErrorBarChart chart;
        chart.appendTensor(makeResult("model.layers.0.mlp.up_proj.weight", 0.15));
        chart.appendTensor(makeResult("model.norm.weight", 0, false));
        chart.appendTensor(makeResult("model.layers.0.self_attn.k_proj.weight", 0.13));
        QCOMPARE(chart.pointCount(), 2);
        QVERIFY(chart.tooltipFor(1).contains(QStringLiteral("k_proj")));
        QVERIFY(chart.tooltipFor(1).contains(QStringLiteral("0.130")));
        chart.clear();
        QCOMPARE(chart.pointCount(), 0);
    }
};

QTEST_MAIN(TestGuiModels)
#include "test_gui_models.moc"
