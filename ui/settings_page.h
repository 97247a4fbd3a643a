#pragma once
// Step 2: how to compress. Preset cards generated from bitsPresets() with live estimates from
// inspectModel, the bits slider, subspaces, Advanced (vector length, seed, threads, calibration
// text), the output file, and a preview of what happens to each tensor.

#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/inspect.h"

#include <QWidget>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QScrollArea;
class QSlider;
class QSpinBox;
class QTableView;

namespace novaq::ui {

class AllocationChart;
class CardGrid;
class ChoiceCard;
class ElidedLabel;
class ErrorBanner;
class TensorPlanModel;

class SettingsPage : public QWidget {
    Q_OBJECT
public:
    explicit SettingsPage(QWidget* parent = nullptr);

    // A freshly opened model; the estimates are recomputed on a worker thread.
    void setModel(const ModelInspection& inspection, const QString& label);
    // No model (a .novaq file was opened): nothing to compress, Compress disabled.
    void clearModel();
    bool hasModel() const noexcept { return !m_model.path.empty(); }
    // Why the output file cannot be written (its folder missing, a file, or read-only), in
    // words; empty when it can.
    QString outputProblem() const;
    CompressOptions options() const;
    void setOutputPath(const QString& path);
    void setBits(double bits);
    void setThreads(int threads); // the default from the app's settings; 0: all cores
    double bits() const;
    // Calibration text for CompressOptions::calibration; empty: none.
    void setCalibrationPath(const QString& path);
    QString calibrationPath() const;
    void setAdvancedVisible(bool visible);

    ErrorBanner* banner() const noexcept { return m_banner; }
    QPushButton* compressButton() const noexcept { return m_compress; }
    const std::vector<ChoiceCard*>& cards() const noexcept { return m_cards; } // in bitsPresets() order
    // The cards as shown: the presets that gain something by expected size, smallest first,
    // then those a preset with more bits makes no larger (estimatePresets' rank).
    std::vector<ChoiceCard*> cardsInDisplayOrder() const;
    const std::vector<PresetEstimate>& presetEstimates() const noexcept { return m_estimates; }
    // The warning shown when the chosen preset's file would not be smaller than the source
    // (empty when it would); Compress then asks before it starts.
    QString sizeWarning() const;
    // Asked before compressing to a file no smaller than the source: true goes ahead. The
    // default shows a question dialog; tests put an answer of their own.
    void setConfirmLargerOutput(std::function<bool(const QString& question)> confirm);
    TensorPlanModel* planModel() const noexcept { return m_planModel; }
    bool estimatesReady() const noexcept { return m_pending == 0 && m_haveEstimates; }
    QString previewText() const; // the preview figures, for tests and accessibility

    // "Fit to": instead of a card, the best plan for a size or for this computer's memory. The
    // engine plans it on a worker thread (fitToTarget / fitToMemory); fitUpdated() follows.
    enum class FitMode { Preset, Size, Memory };
    void setFitMode(FitMode mode);
    FitMode fitMode() const;
    void setFitSize(const QString& text); // as typed: "2.5 MB"; planned at once
    void setFitContext(int tokens);       // 0: the model's context length, at most 4096
    // Where "this computer's memory" comes from (physicalMemoryBytes by default; tests inject).
    void setSystemMemory(std::function<std::optional<uint64_t>()> memory);
    bool fitReady() const noexcept { return m_fitPending == 0; }
    // The fitted plan when Fit to has one (null otherwise), and its line of words.
    const ModelInspection* fitPlan() const noexcept { return m_fitPlan ? &*m_fitPlan : nullptr; }
    QString fitText() const;
    AllocationChart* allocationChart() const noexcept { return m_allocation; }

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

Q_SIGNALS:
    void compressRequested(const novaq::CompressOptions& options);
    void estimatesUpdated();
    void fitUpdated();

private:
    void refreshEstimates();
    void showPreview();
    void requestCompress();
    void selectCard(size_t index); // checks that card only
    void checkOutput();            // shows outputProblem() in the banner and enables Compress

    void refreshFit();
    void showFitControls();
    void showCards(); // titles, figures, notes and order of the cards from m_estimates
    QString presetTitle(size_t index) const;
    QString cardNote(size_t index) const;
    QString extraBitsText(const EstimateBreakdown& b) const;

    ModelInspection m_model;
    QString m_label;
    std::vector<PresetEstimate> m_estimates; // one per bitsPresets() row
    std::vector<size_t> m_order;             // display order of the cards (indices into bitsPresets())
    std::function<bool(const QString&)> m_confirmLarger;
    ErrorBanner* m_sizeBanner = nullptr; // the not-smaller warning
    QLabel* m_previewWhy = nullptr;      // why the effective bits exceed the chosen ones; the source's bits
    CardGrid* m_cardGrid = nullptr;
    std::vector<double> m_seconds;     // estimated time, one per row
    std::vector<uint64_t> m_peakBytes; // estimated peak memory, one per row
    int m_pending = 0;
    int m_generation = 0;
    bool m_haveEstimates = false;
    bool m_bannerIsOutput = false; // the banner shows outputProblem()

    ErrorBanner* m_banner;
    std::vector<ChoiceCard*> m_cards;
    QSlider* m_bitsSlider;
    QLabel* m_bitsValue;
    QSpinBox* m_subspaces;
    QCheckBox* m_advancedToggle;
    QWidget* m_advanced;
    QSpinBox* m_seed;
    QSpinBox* m_threads;
    QSpinBox* m_vectorLength; // 0: the preset's own
    QLineEdit* m_calibration;
    QLineEdit* m_output;
    QPushButton* m_compress;
    QLabel* m_previewSize;
    QLabel* m_previewRatio;
    QLabel* m_previewBits;
    QLabel* m_previewCost = nullptr; // estimated time and peak memory
    ElidedLabel* m_previewModel;
    TensorPlanModel* m_planModel;
    QTableView* m_table;

    QScrollArea* m_scroll = nullptr;
    QComboBox* m_fitMode = nullptr;
    QLineEdit* m_fitSize = nullptr;
    QSpinBox* m_fitContext = nullptr;
    QLabel* m_fitContextLabel = nullptr;
    QLabel* m_fitResult = nullptr;
    AllocationChart* m_allocation = nullptr;
    std::optional<ModelInspection> m_fitPlan; // the fitted plan (with runMemory for memory)
    uint64_t m_fitFileTarget = 0;             // the file target that gives it
    std::string m_fitTargetText;              // for the file's settings: "Fit to 2.5 MB"
    int m_fitPending = 0;
    int m_fitGeneration = 0;
    std::function<std::optional<uint64_t>()> m_systemMemory;
};

// Estimated ratio of the source size to the .novaq size of an inspection (0 when unknown), by
// the engine's compressionRatio.
double estimatedRatio(const ModelInspection& inspection);

} // namespace novaq::ui
