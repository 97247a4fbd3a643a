#include "ui/try_it_jobs.h"

#include "ui/jobs.h"

#include "novaq/runtime/eval.h"

#include <QMetaObject>

#include <algorithm>
#include <chrono>

namespace novaq::ui {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxContext = 4096;

} // namespace

std::shared_ptr<TryItPair> loadTryItPair(const std::filesystem::path& compressed,
                                         const std::optional<std::filesystem::path>& original)
{
    auto pair = std::make_shared<TryItPair>();
    pair->compressedPath = compressed;
    pair->compressed = std::make_unique<RunnableModel>(openRunnable(compressed, std::nullopt));
    std::error_code ec;
    if (original && std::filesystem::exists(*original, ec)) {
        pair->originalPath = original;
        pair->original = std::make_unique<RunnableModel>(openRunnable(*original, std::nullopt));
        pair->originalTokenizer = &tokenizerOf(*pair->original, nullptr);
    } else if (original) {
        pair->originalMissing = original->string() + " is not a file or folder on this computer";
    } else {
        pair->originalMissing = "the compressed file does not say where its original is";
    }
    pair->compressedTokenizer = &tokenizerOf(*pair->compressed, pair->original.get());
    // One template for both panes, so that both models see the same prompt.
    if (pair->original)
        pair->chatTemplate = chooseChatTemplate(*pair->original->reader, *original, std::nullopt, &pair->templateNote);
    else
        pair->chatTemplate =
            chooseChatTemplate(*pair->compressed->reader, compressed, std::nullopt, &pair->templateNote);
    return pair;
}

int64_t tryItContextTokens(const LlamaModel& model) { return std::min<int64_t>(model.config.maxSeq, kMaxContext); }

EvalRequest qualityRequest(const std::filesystem::path& compressed, const std::filesystem::path& original,
                           const std::filesystem::path& text)
{
    EvalRequest request;
    request.model = compressed;
    request.against = original;
    request.text = text;
    request.options.ctx = kQualityContext;
    request.options.protocol = EvalProtocol::Novaq;
    request.split = DocumentSplit::Lines;
    request.maxTokens = kQualityMaxTokens;
    return request;
}

// --- StreamJob ----------------------------------------------------------------------------

StreamJob::StreamJob(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<GenerationResult>();
    qRegisterMetaType<ErrorKind>();
}

StreamJob::~StreamJob()
{
    stop();
    join();
}

void StreamJob::join()
{
    if (m_worker.joinable())
        m_worker.join();
}

void StreamJob::setModel(const LlamaModel* model, const Tokenizer* tokenizer)
{
    stop();
    join();
    m_running = false;
    ++m_epoch; // an answer still on its way to the GUI thread is dropped
    m_generator.reset();
    if (model && tokenizer)
        m_generator = std::make_unique<Generator>(*model, *tokenizer, tryItContextTokens(*model));
}

void StreamJob::resetConversation()
{
    if (m_generator && !m_running)
        m_generator->reset();
}

bool StreamJob::start(std::vector<int32_t> prompt, GenerationParams params)
{
    if (m_running || !m_generator)
        return false;
    join();
    m_cancel = std::make_unique<CancelToken>();
    m_running = true;
    Generator* generator = m_generator.get();
    const CancelToken* token = m_cancel.get();
    const uint64_t epoch = m_epoch;
    m_worker = std::thread([this, epoch, generator, token, prompt = std::move(prompt), params = std::move(params)] {
        const auto start = Clock::now();
        auto lastPost = start;
        std::string pending;
        int64_t produced = 0;
        const auto post = [&](bool force) {
            const auto now = Clock::now();
            if (!force && now - lastPost < std::chrono::milliseconds(kPostIntervalMs))
                return;
            lastPost = now;
            const double seconds = std::chrono::duration<double>(now - start).count();
            QMetaObject::invokeMethod(
                this,
                [this, epoch, piece = QString::fromStdString(pending), produced, seconds] {
                    if (epoch != m_epoch)
                        return;
                    if (!piece.isEmpty())
                        Q_EMIT text(piece);
                    Q_EMIT rate(produced, seconds);
                },
                Qt::QueuedConnection);
            pending.clear();
        };
        std::optional<GenerationResult> result;
        std::optional<Error> error;
        QString unexpected;
        try {
            result = generator->generate(
                prompt, params,
                [&](std::string_view piece) {
                    pending += piece;
                    post(false);
                    return true;
                },
                token, [&](int32_t, int64_t n) { produced = n; });
        } catch (const Error& e) {
            error = e;
        } catch (const std::exception& e) {
            unexpected = QString::fromStdString(e.what());
        }
        post(true);
        QMetaObject::invokeMethod(
            this,
            [this, epoch, result = std::move(result), error = std::move(error), unexpected] {
                if (epoch != m_epoch)
                    return;
                join();
                m_running = false;
                if (result)
                    Q_EMIT finished(*result);
                else if (error)
                    Q_EMIT failed(error->kind(), QString::fromStdString(error->what()));
                else
                    Q_EMIT failed(ErrorKind::Io, tr("The answer stopped unexpectedly: %1").arg(unexpected));
            },
            Qt::QueuedConnection);
    });
    return true;
}

void StreamJob::stop()
{
    if (m_running && m_cancel)
        m_cancel->cancel();
}

// --- QualityJob ---------------------------------------------------------------------------

QualityJob::QualityJob(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<QualityCheck>();
    qRegisterMetaType<ErrorKind>();
}

QualityJob::~QualityJob()
{
    cancel();
    if (m_worker.joinable())
        m_worker.join();
}

bool QualityJob::start(std::shared_ptr<const TryItPair> pair, std::string text, std::string label)
{
    if (m_running || !pair || !pair->compressed)
        return false;
    if (m_worker.joinable())
        m_worker.join();
    m_cancel = std::make_unique<CancelToken>();
    m_running = true;
    const CancelToken* token = m_cancel.get();
    m_worker = std::thread([this, pair = std::move(pair), text = std::move(text), label = std::move(label), token] {
        std::optional<QualityCheck> check;
        std::optional<Error> error;
        QString unexpected;
        try {
            if (!pair->original)
                throw Error(ErrorKind::InvalidInput,
                            "the quality check compares with the original model, and " + pair->originalMissing);
            // What evaluateFiles does with qualityRequest(), on the models already loaded.
            const EvalRequest request = qualityRequest(pair->compressedPath, *pair->originalPath, {});
            const Tokenizer& tokenizer = *pair->compressedTokenizer;
            const int bos = bosOf(pair->compressed->model.config, tokenizer);
            const std::vector<int32_t> tokens =
                evalTokens(tokenizer, text, request.options.protocol, request.split, bos, request.maxTokens);
            EvalOptions options = request.options;
            options.bos = bos;
            auto lastPost = Clock::now();
            const EvalResult r =
                evaluate(pair->compressed->model, &pair->original->model, tokens, options, token,
                         [this, &lastPost](const ProgressStep& step) {
                             const auto done = static_cast<int64_t>(step.done);
                             const auto total = static_cast<int64_t>(step.total);
                             const auto now = Clock::now();
                             if (done < total && now - lastPost < std::chrono::milliseconds(50))
                                 return;
                             lastPost = now;
                             QMetaObject::invokeMethod(
                                 this, [this, done, total] { Q_EMIT progress(done, total); }, Qt::QueuedConnection);
                         });
            checkCancel(token);
            QualityCheck c;
            c.text = label;
            c.tokens = r.scored;
            c.ctx = options.ctx;
            c.perplexity = r.perplexity;
            c.originalPerplexity = r.refPerplexity;
            c.meanKl = r.meanKl;
            c.top1 = r.top1;
            check = c;
        } catch (const Error& e) {
            error = e;
        } catch (const std::exception& e) {
            unexpected = QString::fromStdString(e.what());
        }
        QMetaObject::invokeMethod(
            this,
            [this, check = std::move(check), error = std::move(error), unexpected] {
                if (m_worker.joinable())
                    m_worker.join();
                m_running = false;
                if (check)
                    Q_EMIT finished(*check);
                else if (error && error->kind() == ErrorKind::Cancelled)
                    Q_EMIT cancelled();
                else if (error)
                    Q_EMIT failed(error->kind(), QString::fromStdString(error->what()));
                else
                    Q_EMIT failed(ErrorKind::Io, tr("The quality check stopped unexpectedly: %1").arg(unexpected));
            },
            Qt::QueuedConnection);
    });
    return true;
}

void QualityJob::cancel()
{
    if (m_running && m_cancel)
        m_cancel->cancel();
}

} // namespace novaq::ui
