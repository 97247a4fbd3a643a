#pragma once
// Step 4: the figures of a compressed model, from a finished run or any .novaq file.

#include "novaq/pipeline/report.h"

#include <QWidget>

class QLabel;
class QPushButton;

namespace novaq::ui {

class ElidedLabel;
class ErrorBanner;
class ErrorBarChart;
class ErrorHistogramChart;
class SummaryCard;

// The texts of the summary cards, formatted from a report (what the page shows).
struct SummaryTexts {
    QString sizes, sizesCaption;
    QString ratio, ratioCaption;
    QString bits, bitsCaption;
    QString meanError, meanCaption;
    QString worstError, worstCaption;
    QString time, timeCaption;
};
SummaryTexts summaryTexts(const ModelReport& report);

class ResultsPage : public QWidget {
    Q_OBJECT
public:
    explicit ResultsPage(QWidget* parent = nullptr);

    void showReport(const ModelReport& report);
    // Adds a quality check (Try it's "Check quality") to the report: shown under the cards and
    // saved with Save report.
    void setQuality(const QualityCheck& check);
    QString qualityLine() const;
    // Writes the report (toJson(), with the quality check when there is one) to `path`.
    bool saveReport(const QString& path);
    const ModelReport& report() const noexcept { return m_report; }

    ErrorBanner* banner() const noexcept { return m_banner; }
    SummaryCard* card(int i) const { return m_cards.at(i); }
    int cardCount() const noexcept { return int(m_cards.size()); }
    ErrorBarChart* errorChart() const noexcept { return m_errorChart; }
    QPushButton* validateButton() const noexcept { return m_validate; }

public Q_SLOTS:
    void validate();
    void exportSafetensors();
    void showInFolder();
    void saveReportAs();

Q_SIGNALS:
    void compressAnother();
    void tryItRequested();
    void validated(bool ok);

private:
    void setBusy(bool busy, const QString& what = {});

    ModelReport m_report;
    ElidedLabel* m_title;
    ErrorBanner* m_banner;
    QList<SummaryCard*> m_cards;
    ErrorBarChart* m_errorChart;
    ErrorHistogramChart* m_histogram;
    QPushButton* m_validate;
    QPushButton* m_export;
    QPushButton* m_folder;
    QPushButton* m_another;
    QPushButton* m_save;
    QPushButton* m_tryIt;
    QLabel* m_busy;
    QLabel* m_quality;
};

} // namespace novaq::ui
