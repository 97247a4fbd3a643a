#pragma once
// Step 5, "Try it": a prompt answered by the original model and the compressed one side by side,
// streamed, each with its token rate and memory; and "Check quality", the compressed model
// measured against the original on a sample text, in plain words. The models load when the page
// is first shown and are freed when its pair changes.

#include "novaq/pipeline/report.h"
#include "novaq/text/chat_template.h"

#include <QWidget>

#include <array>
#include <memory>
#include <optional>
#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace novaq::ui {

class CardGrid;
class ElidedLabel;
class ErrorBanner;
class QualityJob;
class StreamJob;
class SummaryCard;
struct TryItPair;

// The plain-words lines of a quality check (what the page shows).
struct QualityTexts {
    QString verdict;                        // "Picks the same next word as the original 89 times in 100."
    QString detail;                         // perplexities and KL in one sentence
    QString original, compressed, kl, top1; // the cards' numbers
};
QualityTexts qualityTexts(const QualityCheck& check);

class TryItPage : public QWidget {
    Q_OBJECT
public:
    enum Side { Original = 0, Compressed = 1 };

    explicit TryItPage(QWidget* parent = nullptr);
    ~TryItPage() override;

    // The pair this page tries: the .novaq file and its original (empty or missing: only the
    // compressed model answers). `demo`: the original is the demo model (its held-out text is
    // the sample). Frees the models of the previous pair; the new ones load when the page shows.
    void setModels(const QString& compressed, const QString& original, bool demo);
    QString compressedPath() const noexcept { return m_compressedPath; }
    QString originalPath() const noexcept { return m_originalPath; }
    // Another original for the same compressed file (the one it names is not on this computer).
    void setOriginal(const QString& original);
    QPushButton* chooseOriginalButton() const noexcept { return m_chooseOriginal; }
    // Loads the pair unless it is loaded or loading (showing the page does this).
    void load();
    bool isLoaded() const noexcept { return m_pair != nullptr; }
    bool isBusy() const; // an answer or a quality check is running

    // The sample text for Check quality: a file of the person's, or empty for the app's sample.
    void setSampleTextFile(const QString& path);

    ErrorBanner* banner() const noexcept { return m_banner; }
    QLineEdit* promptEdit() const noexcept { return m_prompt; }
    QPushButton* sendButton() const noexcept { return m_send; }
    QPushButton* stopButton() const noexcept { return m_stop; }
    QPushButton* newChatButton() const noexcept { return m_newChat; }
    QPushButton* checkButton() const noexcept { return m_check; }
    QPushButton* cancelCheckButton() const noexcept { return m_cancelCheck; }
    QString transcript(Side side) const;
    QString statsText(Side side) const;
    QString templateNote() const;
    QString verdictText() const;
    QString qualityStatus() const;
    const std::optional<QualityCheck>& quality() const noexcept { return m_quality; }
    StreamJob* streamJob(Side side) const { return m_jobs[side]; }
    QualityJob* qualityJob() const noexcept { return m_qualityJob; }

public Q_SLOTS:
    void send();
    void stop(); // stops both answers, or a running quality check
    void newChat();
    void checkQuality();
    void cancelCheck();

Q_SIGNALS:
    void loaded();
    void loadFailed(const QString& message);
    void answersFinished(); // both panes are done (finished, stopped or failed)
    void qualityChecked(const novaq::QualityCheck& check);
    void qualityCancelled();
    void qualityFailed(const QString& message);

protected:
    void showEvent(QShowEvent* event) override;

private:
    struct Pane;
    void freeModels();
    void onLoaded(std::shared_ptr<TryItPair> pair);
    void updateButtons();
    void appendUser(Side side, const QString& text);
    void onAnswerDone(Side side);
    void chooseSample(int index);

    QString m_compressedPath;
    QString m_originalPath;
    bool m_demo = false;
    bool m_loading = false;
    int m_loadEpoch = 0;
    int m_checkEpoch = 0;
    std::shared_ptr<TryItPair> m_pair;
    std::array<std::vector<ChatMessage>, 2> m_messages;
    std::array<bool, 2> m_answering{false, false};
    std::optional<QualityCheck> m_quality;
    QString m_sampleFile;

    ElidedLabel* m_title;
    ErrorBanner* m_banner;
    QLabel* m_note;
    QLineEdit* m_prompt;
    QSpinBox* m_maxTokens;
    QPushButton* m_send;
    QPushButton* m_stop;
    QPushButton* m_newChat;
    QPushButton* m_chooseOriginal;
    std::array<Pane*, 2> m_panes{};
    std::array<StreamJob*, 2> m_jobs{};
    QComboBox* m_sample;
    QPushButton* m_check;
    QPushButton* m_cancelCheck;
    QProgressBar* m_progress;
    QLabel* m_qualityStatus;
    QWidget* m_qualityResult;
    QLabel* m_verdict;
    QLabel* m_detail;
    CardGrid* m_cards;
    std::array<SummaryCard*, 4> m_card{};
    QualityJob* m_qualityJob;
};

} // namespace novaq::ui
