#pragma once
// The live charts: relative error per tensor (bars in model order, coloured by kind), the
// running compression ratio and effective bits (lines), and a histogram of errors. They
// append points as tensors finish; animations are off.

#include "novaq/pipeline/job.h"

#include <QChartView>

#include <vector>

class QBarCategoryAxis;
class QBarSet;
class QLineSeries;
class QStackedBarSeries;
class QValueAxis;

namespace novaq::ui {

struct RunningTotals;

// Applies the palette of `widget` (light or dark) to a chart.
void styleChart(QChart* chart, const QWidget* widget);

class ErrorBarChart : public QChartView {
    Q_OBJECT
public:
    explicit ErrorBarChart(QWidget* parent = nullptr);

    void clear();
    void appendTensor(const TensorResult& result); // only quantized tensors become bars
    void setTensors(const std::vector<TensorResult>& results);
    int pointCount() const noexcept { return int(m_tensors.size()); }
    QString tooltipFor(int index) const;

private:
    void onHovered(bool status, int index);

    QStackedBarSeries* m_series = nullptr;
    std::vector<QBarSet*> m_sets; // one per TensorKind; a tensor's bar is in its kind's set
    QBarCategoryAxis* m_axisX = nullptr;
    QValueAxis* m_axisY = nullptr;
    std::vector<TensorResult> m_tensors;
    double m_maxError = 0;
};

class RatioLineChart : public QChartView {
    Q_OBJECT
public:
    explicit RatioLineChart(QWidget* parent = nullptr);

    void clear();
    void appendPoint(int tensorsDone, const RunningTotals& totals);
    int pointCount() const noexcept;

private:
    QLineSeries* m_ratio = nullptr;
    QLineSeries* m_bits = nullptr;
    QValueAxis* m_axisX = nullptr;
    QValueAxis* m_axisRatio = nullptr;
    QValueAxis* m_axisBits = nullptr;
    double m_maxRatio = 1;
    double m_maxBits = 1;
};

class ErrorHistogramChart : public QChartView {
    Q_OBJECT
public:
    explicit ErrorHistogramChart(QWidget* parent = nullptr);
    void setTensors(const std::vector<TensorResult>& results, int bins = 8);

private:
    QBarSet* m_set = nullptr;
    QBarCategoryAxis* m_axisX = nullptr;
    QValueAxis* m_axisY = nullptr;
};

// Counts of quantized tensors' relative errors in `bins` equal-width bins from the smallest to
// the largest; `edges` gets bins + 1 edges. Presentation only (no figure of the run changes).
std::vector<int> errorHistogram(const std::vector<TensorResult>& results, int bins, std::vector<double>* edges);

} // namespace novaq::ui
