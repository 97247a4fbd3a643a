#pragma once
// The live charts: relative error per tensor (bars in model order, coloured by kind), the
// running compression ratio and effective bits (lines), and a histogram of errors. They
// append points as tensors finish; animations are off. Every figure they draw comes from the
// engine (TensorResult, RunningTotals, errorHistogram).

#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"

#include <QChartView>

#include <string>
#include <vector>

class QBarCategoryAxis;
class QBarSet;
class QLineSeries;
class QStackedBarSeries;
class QValueAxis;

namespace novaq::ui {

// Applies the palette of `widget` to a chart: Qt's dark or light chart theme to match, then
// the palette's own colours. A theme resets series colours: set them again afterwards.
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

protected:
    void changeEvent(QEvent* event) override; // follows a change of palette (light <-> dark)

private:
    void applyStyle();
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

protected:
    void changeEvent(QEvent* event) override;

private:
    void applyStyle();
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

protected:
    void changeEvent(QEvent* event) override;

private:
    void applyStyle();
    QBarSet* m_set = nullptr;
    QBarCategoryAxis* m_axisX = nullptr;
    QValueAxis* m_axisY = nullptr;
};

// The allocation of a fitted plan ("Fit to" on the Settings page): bits per weight of each
// tensor in model order, one bar each, with its name and bits in the tooltip. The bits come
// from the engine (fit_memory.h planBitsPerTensor).
class AllocationChart : public QChartView {
    Q_OBJECT
public:
    explicit AllocationChart(QWidget* parent = nullptr);
    void setTensors(const std::vector<std::string>& names, const std::vector<double>& bits);
    int barCount() const noexcept { return int(m_names.size()); }
    QString tooltipFor(int index) const;

protected:
    void changeEvent(QEvent* event) override;

private:
    void applyStyle();
    QBarSet* m_set = nullptr;
    QBarCategoryAxis* m_axisX = nullptr;
    QValueAxis* m_axisY = nullptr;
    std::vector<std::string> m_names;
    std::vector<double> m_bits;
};

} // namespace novaq::ui
