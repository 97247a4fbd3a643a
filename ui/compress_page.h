#pragma once
// Step 3, the heart: progress with ETA and Cancel (Esc), live charts of the error per tensor
// and of the running ratio, the table of finished tensors and a log.

#include "novaq/io/error.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"

#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableView;
class QToolButton;

namespace novaq::ui {

class ElidedLabel;
class ErrorBanner;
class ErrorBarChart;
class RatioLineChart;
class TensorResultModel;
struct CompressProgress;

class CompressPage : public QWidget {
    Q_OBJECT
public:
    explicit CompressPage(QWidget* parent = nullptr);

    void begin(const QString& modelLabel, const QString& output); // clears everything
    void onStarted(int tensorCount);
    void onProgress(const CompressProgress& progress);
    void onTensorFinished(int index, const TensorResult& result, const RunningTotals& totals);
    void onFinished(const ModelReport& report);
    void onFailed(ErrorKind kind, const QString& message);
    void onCancelled();

    ErrorBanner* banner() const noexcept { return m_banner; }
    ErrorBarChart* errorChart() const noexcept { return m_errorChart; }
    RatioLineChart* ratioChart() const noexcept { return m_ratioChart; }
    TensorResultModel* resultModel() const noexcept { return m_results; }
    QPushButton* cancelButton() const noexcept { return m_cancel; }
    QString statusLine() const;
    // Cancel, as the button does, when a run is going (Esc); false when there is none.
    bool requestCancel();

Q_SIGNALS:
    void cancelRequested();
    void backToSettings();

private:
    void log(const QString& line);
    void setRunning(bool running);

    ErrorBanner* m_banner;
    ElidedLabel* m_title;
    QProgressBar* m_progress;
    ElidedLabel* m_status;
    QPushButton* m_cancel;
    QPushButton* m_back;
    ErrorBarChart* m_errorChart;
    RatioLineChart* m_ratioChart;
    TensorResultModel* m_results;
    QTableView* m_table;
    QToolButton* m_logToggle;
    QPlainTextEdit* m_log;
    int m_tensorCount = 0;
};

} // namespace novaq::ui
