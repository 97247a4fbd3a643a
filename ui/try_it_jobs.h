#pragma once
// The engine work behind the Try it page, on worker threads: loading a compressed model and its
// original once per pair, streaming one model's answer (StreamJob, one per pane), and the
// quality check (QualityJob: `novaq eval --against`'s figures on a sample text). Progress and
// text reach the GUI thread at most about 20 times a second; nothing crosses the thread
// boundary as an exception.

#include "novaq/io/error.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"
#include "novaq/runtime/generator.h"
#include "novaq/runtime/session.h"
#include "novaq/text/chat_template.h"

#include <QObject>
#include <QString>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace novaq::ui {

// The two models of a Try it page, loaded together and freed together.
struct TryItPair {
    std::filesystem::path compressedPath;
    std::optional<std::filesystem::path> originalPath;
    std::unique_ptr<RunnableModel> compressed;
    std::unique_ptr<RunnableModel> original; // null when there is none to load (see originalMissing)
    std::string originalMissing;             // why there is no original, in the engine's words
    const Tokenizer* compressedTokenizer = nullptr;
    const Tokenizer* originalTokenizer = nullptr;
    std::optional<ChatTemplate> chatTemplate; // the original's (else the compressed file's) template
    std::string templateNote;                 // chooseChatTemplate's sentence about it
};

// Opens both models (the original only when `original` is given and exists). Throws the
// engine's Error: Unsupported for an architecture the runtime cannot run, InvalidInput when no
// tokenizer is found, ...
std::shared_ptr<TryItPair> loadTryItPair(const std::filesystem::path& compressed,
                                         const std::optional<std::filesystem::path>& original);

// The context a pane's generator keeps: the model's, at most 4096 tokens.
int64_t tryItContextTokens(const LlamaModel& model);

// The quality check's protocol: the first kQualityMaxTokens tokens of the text in windows of
// kQualityContext, as `novaq eval MODEL --against ORIGINAL --text FILE --ctx 256 --max-tokens
// 8192` measures them.
inline constexpr int kQualityContext = 256;
inline constexpr int64_t kQualityMaxTokens = 8192;

// The request evaluateFiles would get for the same check (what the tests compare with).
EvalRequest qualityRequest(const std::filesystem::path& compressed, const std::filesystem::path& original,
                           const std::filesystem::path& text);

// One pane's answer: runs Generator::generate on a worker thread and streams its text.
class StreamJob : public QObject {
    Q_OBJECT
public:
    explicit StreamJob(QObject* parent = nullptr);
    ~StreamJob() override; // stops and waits for the worker

    // A generator for this model (the KV cache is allocated here); null to free it. Stops a
    // running answer first.
    void setModel(const LlamaModel* model, const Tokenizer* tokenizer);
    bool hasModel() const noexcept { return m_generator != nullptr; }
    // Starts an answer to `prompt`; false when one is running or there is no model.
    bool start(std::vector<int32_t> prompt, GenerationParams params);
    bool isRunning() const noexcept { return m_running; }
    // Forgets the cached conversation (a new chat).
    void resetConversation();

    static constexpr int kPostIntervalMs = 50;

public Q_SLOTS:
    void stop(); // the answer ends at the next token with FinishReason::Cancelled

Q_SIGNALS:
    void text(const QString& piece);
    void rate(qint64 tokens, double seconds); // tokens produced so far and the time they took
    void finished(const novaq::GenerationResult& result);
    void failed(novaq::ErrorKind kind, const QString& message);

private:
    void join();
    std::unique_ptr<Generator> m_generator;
    std::unique_ptr<CancelToken> m_cancel;
    std::thread m_worker;
    bool m_running = false;
    uint64_t m_epoch = 0; // bumped by setModel
};

// The quality check on the pair's loaded models, exactly as evaluateFiles(qualityRequest(...))
// computes it.
class QualityJob : public QObject {
    Q_OBJECT
public:
    explicit QualityJob(QObject* parent = nullptr);
    ~QualityJob() override; // cancels and waits

    // `text`: the sample's bytes; `label`: what the report calls it. False when running.
    bool start(std::shared_ptr<const TryItPair> pair, std::string text, std::string label);
    bool isRunning() const noexcept { return m_running; }

public Q_SLOTS:
    void cancel(); // no result is delivered, only cancelled()

Q_SIGNALS:
    void progress(qint64 done, qint64 total);
    void finished(const novaq::QualityCheck& check);
    void cancelled();
    void failed(novaq::ErrorKind kind, const QString& message);

private:
    std::unique_ptr<CancelToken> m_cancel;
    std::thread m_worker;
    bool m_running = false;
};

} // namespace novaq::ui

Q_DECLARE_METATYPE(novaq::GenerationResult)
Q_DECLARE_METATYPE(novaq::QualityCheck)
