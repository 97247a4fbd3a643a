#include "ui/charts.h"

#include "ui/format.h"
#include "ui/jobs.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QCursor>
#include <QLegendMarker>
#include <QLineSeries>
#include <QPen>
#include <QStackedBarSeries>
#include <QToolTip>
#include <QValueAxis>

#include <algorithm>

namespace novaq::ui {

void styleChart(QChart* chart, const QWidget* widget)
{
    const QPalette pal = widget->palette();
    const QChart::ChartTheme theme = isDark(pal) ? QChart::ChartThemeDark : QChart::ChartThemeLight;
    if (chart->theme() != theme)
        chart->setTheme(theme);
    chart->setAnimationOptions(QChart::NoAnimation);
    chart->setBackgroundBrush(pal.color(QPalette::Base));
    chart->setBackgroundRoundness(6);
    chart->setMargins(QMargins(6, 6, 6, 6));
    chart->setTitleBrush(pal.color(QPalette::Text));
    chart->legend()->setLabelColor(pal.color(QPalette::Text));
    chart->legend()->setAlignment(Qt::AlignBottom);
    for (QAbstractAxis* axis : chart->axes()) {
        axis->setLabelsBrush(pal.color(QPalette::Text));
        axis->setTitleBrush(pal.color(QPalette::Text));
        axis->setLinePenColor(pal.color(QPalette::Mid));
        axis->setGridLineColor(isDark(pal) ? pal.color(QPalette::Light) : pal.color(QPalette::Midlight));
    }
}

namespace {

bool restyles(const QEvent* event)
{
    return event->type() == QEvent::PaletteChange || event->type() == QEvent::StyleChange;
}

} // namespace

// ---- ErrorBarChart

ErrorBarChart::ErrorBarChart(QWidget* parent) : QChartView(parent)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Relative error per tensor, in model order"));
    m_series = new QStackedBarSeries(chart);
    m_series->setBarWidth(0.85);
    for (int k = 0; k < kTensorKindCount; ++k) {
        auto* set = new QBarSet(tensorKindName(TensorKind(k)));
        m_series->append(set);
        m_sets.push_back(set);
    }
    chart->addSeries(m_series);
    m_axisX = new QBarCategoryAxis(chart);
    m_axisX->setLabelsVisible(false);
    m_axisX->setGridLineVisible(false);
    m_axisY = new QValueAxis(chart);
    m_axisY->setLabelFormat(QStringLiteral("%.2g"));
    m_axisY->setRange(0, 0.1);
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisY, Qt::AlignLeft);
    m_series->attachAxis(m_axisX);
    m_series->attachAxis(m_axisY);
    setChart(chart);
    applyStyle();
    setRenderHint(QPainter::Antialiasing);
    setMinimumHeight(150);
    connect(m_series, &QStackedBarSeries::hovered, this,
            [this](bool status, int index, QBarSet*) { onHovered(status, index); });
    setToolTip(
        tr("Each bar is one compressed tensor; a taller bar means a larger error. Hover a bar for its numbers."));
    setAccessibleName(tr("Relative error per tensor chart"));
}

void ErrorBarChart::applyStyle()
{
    styleChart(chart(), this);
    for (int k = 0; k < kTensorKindCount; ++k) {
        m_sets[size_t(k)]->setColor(tensorKindColor(TensorKind(k)));
        m_sets[size_t(k)]->setBorderColor(tensorKindColor(TensorKind(k)));
    }
}

void ErrorBarChart::changeEvent(QEvent* event)
{
    QChartView::changeEvent(event);
    if (restyles(event))
        applyStyle();
}

void ErrorBarChart::clear()
{
    for (QBarSet* set : m_sets)
        set->remove(0, set->count());
    m_axisX->clear();
    m_tensors.clear();
    m_maxError = 0;
    m_axisY->setRange(0, 0.1);
}

void ErrorBarChart::appendTensor(const TensorResult& result)
{
    if (!result.quantized)
        return;
    const auto kind = int(tensorKind(result.name));
    for (int k = 0; k < kTensorKindCount; ++k)
        m_sets[size_t(k)]->append(k == kind ? result.relError : 0.0);
    m_tensors.push_back(result);
    m_axisX->append(QString::number(m_tensors.size()));
    if (result.relError > m_maxError) {
        m_maxError = result.relError;
        m_axisY->setRange(0, m_maxError * 1.15);
    }
}

void ErrorBarChart::setTensors(const std::vector<TensorResult>& results)
{
    clear();
    for (const TensorResult& r : results)
        appendTensor(r);
}

QString ErrorBarChart::tooltipFor(int index) const
{
    if (index < 0 || index >= int(m_tensors.size()))
        return {};
    const TensorResult& r = m_tensors[size_t(index)];
    return tr("<b>%1</b><br>%2<br>relative error %3 (SQNR %4 dB)<br>%5 bits per weight<br>%6 -> %7")
        .arg(QString::fromStdString(r.name).toHtmlEscaped(), tensorKindName(tensorKind(r.name)), errorText(r.relError))
        .arg(r.sqnrDb, 0, 'f', 1)
        .arg(bitsText(r.effectiveBits), sizeText(r.bytesIn), sizeText(r.bytesOut));
}

void ErrorBarChart::onHovered(bool status, int index)
{
    if (status)
        QToolTip::showText(QCursor::pos(), tooltipFor(index), this);
    else
        QToolTip::hideText();
}

// ---- RatioLineChart

RatioLineChart::RatioLineChart(QWidget* parent) : QChartView(parent)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Running compression ratio and bits per weight"));
    m_ratio = new QLineSeries(chart);
    m_ratio->setName(tr("ratio vs source (x)"));
    m_bits = new QLineSeries(chart);
    m_bits->setName(tr("effective bits per weight"));
    chart->addSeries(m_ratio);
    chart->addSeries(m_bits);
    m_axisX = new QValueAxis(chart);
    m_axisX->setTitleText(tr("tensors done"));
    m_axisX->setLabelFormat(QStringLiteral("%d"));
    m_axisX->setRange(0, 1);
    m_axisRatio = new QValueAxis(chart);
    m_axisRatio->setLabelFormat(QStringLiteral("%.1fx"));
    m_axisRatio->setRange(0, 1);
    m_axisBits = new QValueAxis(chart);
    m_axisBits->setLabelFormat(QStringLiteral("%.1f"));
    m_axisBits->setRange(0, 1);
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisRatio, Qt::AlignLeft);
    chart->addAxis(m_axisBits, Qt::AlignRight);
    m_ratio->attachAxis(m_axisX);
    m_ratio->attachAxis(m_axisRatio);
    m_bits->attachAxis(m_axisX);
    m_bits->attachAxis(m_axisBits);
    setChart(chart);
    applyStyle();
    setRenderHint(QPainter::Antialiasing);
    setMinimumHeight(150);
    setToolTip(tr("How much smaller the file is so far, and how many bits each weight costs so far."));
    setAccessibleName(tr("Running compression ratio chart"));
}

void RatioLineChart::applyStyle()
{
    styleChart(chart(), this);
    const QColor ratio = accentTextColor(palette());
    const QColor bits = tensorKindColor(TensorKind::Mlp);
    m_ratio->setPen(QPen(ratio, 2));
    m_bits->setPen(QPen(bits, 2));
    m_axisRatio->setLabelsColor(ratio);
    m_axisBits->setLabelsColor(bits);
}

void RatioLineChart::changeEvent(QEvent* event)
{
    QChartView::changeEvent(event);
    if (restyles(event))
        applyStyle();
}

void RatioLineChart::clear()
{
    m_ratio->clear();
    m_bits->clear();
    m_maxRatio = 1;
    m_maxBits = 1;
    m_axisX->setRange(0, 1);
    m_axisRatio->setRange(0, 1);
    m_axisBits->setRange(0, 1);
}

void RatioLineChart::appendPoint(int tensorsDone, const RunningTotals& totals)
{
    m_ratio->append(tensorsDone, totals.ratio());
    m_bits->append(tensorsDone, totals.effectiveBits());
    m_maxRatio = std::max(m_maxRatio, totals.ratio());
    m_maxBits = std::max(m_maxBits, totals.effectiveBits());
    m_axisX->setRange(0, std::max(1, tensorsDone));
    m_axisRatio->setRange(0, m_maxRatio * 1.1);
    m_axisBits->setRange(0, m_maxBits * 1.1);
}

int RatioLineChart::pointCount() const noexcept { return int(m_ratio->count()); }

// ---- ErrorHistogramChart

ErrorHistogramChart::ErrorHistogramChart(QWidget* parent) : QChartView(parent)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Tensors by error"));
    auto* series = new QBarSeries(chart);
    m_set = new QBarSet(tr("compressed tensors"));
    series->append(m_set);
    series->setBarWidth(0.95);
    chart->addSeries(series);
    m_axisX = new QBarCategoryAxis(chart);
    m_axisX->setLabelsVisible(false);
    m_axisY = new QValueAxis(chart);
    m_axisY->setLabelFormat(QStringLiteral("%d"));
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisY, Qt::AlignLeft);
    series->attachAxis(m_axisX);
    series->attachAxis(m_axisY);
    chart->legend()->setVisible(false);
    setChart(chart);
    applyStyle();
    setRenderHint(QPainter::Antialiasing);
    setMinimumHeight(150);
    setToolTip(tr("Most tensors should sit close together; a long tail means some tensors lost more."));
    setAccessibleName(tr("Histogram of errors"));
}

void ErrorHistogramChart::applyStyle()
{
    styleChart(chart(), this);
    m_set->setColor(accentColor());
    m_set->setBorderColor(accentColor());
}

void ErrorHistogramChart::changeEvent(QEvent* event)
{
    QChartView::changeEvent(event);
    if (restyles(event))
        applyStyle();
}

void ErrorHistogramChart::setTensors(const std::vector<TensorResult>& results, int bins)
{
    const Histogram histogram = errorHistogram(results, bins);
    const std::vector<double>& edges = histogram.edges;
    const std::vector<int>& counts = histogram.counts;
    m_set->remove(0, m_set->count());
    m_axisX->clear();
    int maxCount = 1;
    for (size_t i = 0; i < counts.size(); ++i) {
        m_set->append(counts[i]);
        QString label = edges.empty() ? QString::number(i) : errorText(edges[i]);
        while (m_axisX->categories().contains(label))
            label += QLatin1Char(' '); // categories must be unique
        m_axisX->append(label);
        maxCount = std::max(maxCount, counts[i]);
    }
    const int step = (maxCount + 3) / 4; // four whole-number intervals
    m_axisY->setRange(0, step * 4);
    // The axis has no room for a label per bar, and one long line would be cut off in a
    // narrow chart: the range of errors goes on a second line of the title.
    chart()->setTitle(
        edges.empty() ? tr("Tensors by error")
                      : tr("Tensors by error<br>from %1 to %2").arg(errorText(edges.front()), errorText(edges.back())));
    m_axisY->setTickCount(5);
}

// ---- AllocationChart

AllocationChart::AllocationChart(QWidget* parent) : QChartView(parent)
{
    auto* chart = new QChart;
    chart->setTitle(tr("Bits per weight of each tensor, in model order"));
    chart->legend()->hide();
    auto* series = new QBarSeries(chart);
    series->setBarWidth(0.85);
    m_set = new QBarSet(tr("bits per weight"));
    series->append(m_set);
    chart->addSeries(series);
    m_axisX = new QBarCategoryAxis(chart);
    m_axisX->setLabelsVisible(false);
    m_axisX->setGridLineVisible(false);
    m_axisY = new QValueAxis(chart);
    m_axisY->setLabelFormat(QStringLiteral("%.0f"));
    m_axisY->setRange(0, 16);
    chart->addAxis(m_axisX, Qt::AlignBottom);
    chart->addAxis(m_axisY, Qt::AlignLeft);
    series->attachAxis(m_axisX);
    series->attachAxis(m_axisY);
    setChart(chart);
    applyStyle();
    setRenderHint(QPainter::Antialiasing);
    setMinimumHeight(140);
    connect(series, &QBarSeries::hovered, this, [this](bool status, int index, QBarSet*) {
        if (status)
            QToolTip::showText(QCursor::pos(), tooltipFor(index), this);
        else
            QToolTip::hideText();
    });
}

void AllocationChart::setTensors(const std::vector<std::string>& names, const std::vector<double>& bits)
{
    m_names = names;
    m_bits = bits;
    m_set->remove(0, m_set->count());
    QStringList categories;
    QList<qreal> values;
    double top = 1;
    for (size_t i = 0; i < bits.size(); ++i) {
        categories << QString::number(i + 1);
        values << bits[i];
        top = std::max(top, bits[i]);
    }
    m_axisX->clear();
    m_axisX->append(categories);
    m_set->append(values);
    m_axisY->setRange(0, top <= 8 ? 8 : 16);
}

QString AllocationChart::tooltipFor(int index) const
{
    if (index < 0 || size_t(index) >= m_bits.size())
        return {};
    return tr("%1: %2 bits per weight")
        .arg(QString::fromStdString(m_names[size_t(index)]), bitsText(m_bits[size_t(index)]));
}

void AllocationChart::changeEvent(QEvent* event)
{
    QChartView::changeEvent(event);
    if (restyles(event))
        applyStyle();
}

void AllocationChart::applyStyle()
{
    styleChart(chart(), this);
    m_set->setColor(palette().color(QPalette::Highlight));
    m_set->setBorderColor(palette().color(QPalette::Highlight));
}

} // namespace novaq::ui
