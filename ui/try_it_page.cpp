#include "ui/try_it_page.h"

#include "ui/error_wording.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/try_it_jobs.h"
#include "ui/widgets.h"

#include "novaq/runtime/generator.h"
#include "novaq/runtime/session.h"

#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QShortcut>
#include <QSpinBox>
#include <QTextCursor>
#include <QVBoxLayout>

namespace novaq::ui {

namespace {

const char* const kSampleResource = ":/text/kjv_john.txt";

QString kQualityHint()
{
    return TryItPage::tr("Does the compressed model still work? Check quality lets both models read a sample text "
                         "and counts how often the compressed one predicts the same next word as the original.");
}

QString perplexityText(double value) { return QLocale().toString(value, 'f', 2); }

QString ratePerSecond(qint64 tokens, double seconds)
{
    return seconds > 0 ? QLocale().toString(double(tokens) / seconds, 'f', 0) : QStringLiteral("-");
}

} // namespace

QualityTexts qualityTexts(const QualityCheck& c)
{
    QualityTexts t;
    const int same = qRound(c.top1 * 100);
    t.verdict = TryItPage::tr("Picks the same next word as the original %1 times in 100.").arg(same);
    t.detail = TryItPage::tr("Measured on %1, %Ln token(s). Perplexity is how surprised a model is by the text "
                             "(lower is better); KL divergence is how far the compressed model's predictions are "
                             "from the original's (0: the same).",
                             nullptr, int(c.tokens))
                   .arg(QString::fromStdString(c.text));
    t.original = perplexityText(c.originalPerplexity);
    t.compressed = perplexityText(c.perplexity);
    t.kl = errorText(c.meanKl);
    t.top1 = TryItPage::tr("%1 in 100").arg(same);
    return t;
}

struct TryItPage::Pane {
    QFrame* frame = nullptr;
    ElidedLabel* header = nullptr;
    QPlainTextEdit* text = nullptr;
    QLabel* stats = nullptr;
    size_t memoryBytes = 0;
    std::unique_ptr<PromptEncoder> encoder;
};

TryItPage::TryItPage(QWidget* parent) : QWidget(parent)
{
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    auto* scroll = new VerticalScrollArea(this);
    outer->addWidget(scroll);
    auto* body = new QWidget(scroll);
    scroll->setWidget(body);
    auto* layout = new QVBoxLayout(body);
    layout->setContentsMargins(24, 16, 24, 16);

    m_title = new ElidedLabel(Qt::ElideMiddle, body);
    m_title->setText(tr("Try it"));
    QFont hf = m_title->font();
    hf.setPointSizeF(hf.pointSizeF() * 1.6);
    hf.setBold(true);
    m_title->setFont(hf);
    layout->addWidget(m_title);
    m_banner = new ErrorBanner(body);
    layout->addWidget(m_banner);
    m_note = new QLabel(tr("Open a compressed file to try it."), body);
    m_note->setWordWrap(true);
    m_note->setAccessibleName(tr("How your prompt is given to the models"));
    layout->addWidget(m_note);

    // The prompt.
    auto* promptRow = new QHBoxLayout;
    m_prompt = new QLineEdit(body);
    m_prompt->setPlaceholderText(tr("Type a prompt and press Enter"));
    m_prompt->setToolTip(tr("Both models answer this prompt, the original on the left, the compressed one on the "
                            "right."));
    m_prompt->setAccessibleName(tr("Prompt"));
    m_prompt->setMinimumHeight(34);
    m_maxTokens = new QSpinBox(body);
    m_maxTokens->setRange(8, 2048);
    m_maxTokens->setValue(160);
    m_maxTokens->setSuffix(tr(" tokens"));
    m_maxTokens->setPrefix(tr("up to "));
    m_maxTokens->setToolTip(tr("The longest answer, in tokens (pieces of words)."));
    m_maxTokens->setAccessibleName(tr("Longest answer"));
    m_send = new QPushButton(tr("Send"), body);
    m_send->setObjectName(QStringLiteral("primary"));
    m_send->setToolTip(tr("Both models answer, greedily, so that any difference comes from the compression."));
    m_stop = new QPushButton(tr("Stop"), body);
    m_stop->setToolTip(tr("Stop both answers (Esc)."));
    m_newChat = new QPushButton(tr("New chat"), body);
    m_newChat->setToolTip(tr("Forget the conversation and start again."));
    for (QPushButton* b : {m_send, m_stop, m_newChat}) {
        b->setMinimumHeight(34);
        b->setMinimumWidth(b->sizeHint().width() + 16);
        b->setAccessibleName(b->text());
    }
    promptRow->addWidget(m_prompt, 1);
    promptRow->addWidget(m_maxTokens);
    promptRow->addWidget(m_send);
    promptRow->addWidget(m_stop);
    promptRow->addWidget(m_newChat);
    layout->addLayout(promptRow);

    // The two answers.
    auto* panes = new QHBoxLayout;
    const std::array<QString, 2> names{tr("Original"), tr("Compressed")};
    for (int side = 0; side < 2; ++side) {
        auto* pane = new Pane;
        m_panes[side] = pane;
        pane->frame = new QFrame(body);
        pane->frame->setObjectName(QStringLiteral("answerPane"));
        pane->frame->setStyleSheet(
            QStringLiteral("#answerPane { border: 1px solid palette(mid); border-radius: 10px; }"));
        auto* v = new QVBoxLayout(pane->frame);
        v->setContentsMargins(10, 8, 10, 8);
        pane->header = new ElidedLabel(Qt::ElideMiddle, pane->frame);
        pane->header->setText(names[side]);
        QFont f = pane->header->font();
        f.setBold(true);
        pane->header->setFont(f);
        pane->text = new QPlainTextEdit(pane->frame);
        pane->text->setReadOnly(true);
        pane->text->setMinimumHeight(110);
        pane->text->setFrameShape(QFrame::NoFrame);
        pane->text->setTabChangesFocus(true);
        pane->text->setAccessibleName(side == Original ? tr("Answer of the original model")
                                                       : tr("Answer of the compressed model"));
        pane->text->setToolTip(side == Original ? tr("What the original model answers.")
                                                : tr("What the compressed model answers."));
        pane->text->setPlaceholderText(side == Original ? tr("The original model's answer appears here.")
                                                        : tr("The compressed model's answer appears here."));
        pane->stats = new QLabel(pane->frame);
        pane->stats->setWordWrap(true);
        pane->stats->setToolTip(
            tr("Tokens in the answer, how fast they came, and the memory the model's weights take."));
        v->addWidget(pane->header);
        v->addWidget(pane->text, 1);
        v->addWidget(pane->stats);
        if (side == Original) {
            m_chooseOriginal = new QPushButton(tr("Choose the original..."), pane->frame);
            m_chooseOriginal->setToolTip(tr("Open the model this file was compressed from, to compare with it."));
            m_chooseOriginal->setAccessibleName(tr("Choose the original"));
            m_chooseOriginal->setMinimumHeight(32);
            m_chooseOriginal->setMinimumWidth(m_chooseOriginal->sizeHint().width() + 24);
            m_chooseOriginal->hide();
            v->addWidget(m_chooseOriginal, 0, Qt::AlignLeft);
            connect(m_chooseOriginal, &QPushButton::clicked, this, [this] {
                const QString path = QFileDialog::getOpenFileName(
                    this, tr("Choose the original model"), {},
                    tr("Models (*.safetensors *.gguf *.bin *.pt *.pth *.json);;All files (*)"));
                if (!path.isEmpty())
                    setOriginal(path);
            });
        }
        panes->addWidget(pane->frame, 1);
        m_jobs[side] = new StreamJob(this);
        connect(m_jobs[side], &StreamJob::text, this, [this, side](const QString& piece) {
            QPlainTextEdit* t = m_panes[side]->text;
            QTextCursor c(t->document());
            c.movePosition(QTextCursor::End);
            c.insertText(piece, QTextCharFormat());
            t->ensureCursorVisible();
        });
        connect(m_jobs[side], &StreamJob::rate, this, [this, side](qint64 tokens, double seconds) {
            m_panes[side]->stats->setText(
                tr("%n token(s) so far - %1 tokens/s - %2 in memory", nullptr, int(tokens))
                    .arg(ratePerSecond(tokens, seconds), sizeText(m_panes[side]->memoryBytes)));
        });
        connect(m_jobs[side], &StreamJob::finished, this, [this, side](const GenerationResult& r) {
            const QString memory = sizeText(m_panes[side]->memoryBytes);
            const QString rate = ratePerSecond(r.completionTokens, r.generateSeconds);
            m_panes[side]->stats->setText(
                r.finish == FinishReason::Cancelled
                    ? tr("Stopped after %n token(s) - %1 tokens/s - %2 in memory", nullptr, int(r.completionTokens))
                          .arg(rate, memory)
                    : tr("%n token(s) - %1 tokens/s - %2 in memory", nullptr, int(r.completionTokens))
                          .arg(rate, memory));
            m_messages[side].push_back({"assistant", r.text});
            onAnswerDone(Side(side));
        });
        connect(m_jobs[side], &StreamJob::failed, this, [this, side](ErrorKind kind, const QString& message) {
            m_banner->showError(wordError(kind, message, ErrorContext::TryIt));
            m_messages[side].pop_back(); // the turn that got no answer
            onAnswerDone(Side(side));
        });
    }
    layout->addLayout(panes, 1);

    // The quality check.
    auto* checkRow = new QHBoxLayout;
    m_check = new QPushButton(tr("Check quality"), body);
    m_check->setToolTip(tr("Measure, on a sample text, how often the compressed model predicts the same next word "
                           "as the original."));
    m_sample = new QComboBox(body);
    m_sample->setAccessibleName(tr("Sample text"));
    m_sample->setToolTip(tr("The text both models read for the quality check."));
    m_sample->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_sample->setMinimumContentsLength(16);
    m_progress = new QProgressBar(body);
    m_progress->setAccessibleName(tr("Quality check progress"));
    m_progress->setTextVisible(true);
    m_progress->hide();
    m_cancelCheck = new QPushButton(tr("Cancel"), body);
    m_cancelCheck->setToolTip(tr("Stop the quality check (Esc); nothing is kept."));
    for (QPushButton* b : {m_check, m_cancelCheck}) {
        b->setMinimumHeight(34);
        b->setMinimumWidth(b->sizeHint().width() + 24);
        b->setAccessibleName(b->text());
    }
    m_cancelCheck->setAccessibleName(tr("Cancel the quality check"));
    m_cancelCheck->hide();
    checkRow->addWidget(m_check);
    checkRow->addWidget(m_sample, 1);
    checkRow->addWidget(m_progress, 1);
    checkRow->addWidget(m_cancelCheck);
    layout->addLayout(checkRow);
    m_qualityStatus = new QLabel(body);
    m_qualityStatus->setWordWrap(true);
    m_qualityStatus->setAccessibleName(tr("Quality check status"));
    layout->addWidget(m_qualityStatus);

    m_qualityResult = new QWidget(body);
    auto* q = new QVBoxLayout(m_qualityResult);
    q->setContentsMargins(0, 0, 0, 0);
    m_verdict = new QLabel(m_qualityResult);
    QFont vf = m_verdict->font();
    vf.setPointSizeF(vf.pointSizeF() * 1.25);
    vf.setBold(true);
    m_verdict->setFont(vf);
    m_verdict->setWordWrap(true);
    m_detail = new QLabel(m_qualityResult);
    m_detail->setWordWrap(true);
    m_cards = new CardGrid(4, 150, m_qualityResult);
    const std::array<QString, 4> captions{tr("perplexity of the original"), tr("perplexity, compressed"),
                                          tr("KL divergence"), tr("same next word")};
    const std::array<QString, 4> tips{
        tr("How surprised the original model is by the sample text; lower is better."),
        tr("How surprised the compressed model is by the same text; close to the original's is good."),
        tr("How far the compressed model's predictions are from the original's, on average; 0 is identical."),
        tr("How often both models pick the same most likely next word (top-1 agreement).")};
    for (size_t i = 0; i < captions.size(); ++i) {
        m_card[i] = new SummaryCard(captions[i], m_cards);
        m_card[i]->setToolTip(tips[i]);
        m_cards->addCard(m_card[i]);
    }
    q->addWidget(m_verdict);
    q->addWidget(m_cards);
    q->addWidget(m_detail);
    m_qualityResult->hide();
    layout->addWidget(m_qualityResult);

    m_qualityJob = new QualityJob(this);
    connect(m_qualityJob, &QualityJob::progress, this, [this](qint64 done, qint64 total) {
        m_progress->setRange(0, int(total));
        m_progress->setValue(int(done));
        m_progress->setFormat(tr("%1 of %2 windows").arg(done).arg(total));
    });
    connect(m_qualityJob, &QualityJob::finished, this, [this](const QualityCheck& check) {
        if (m_checkEpoch != m_loadEpoch) { // a check of the pair this page had before
            updateButtons();
            return;
        }
        m_quality = check;
        const QualityTexts t = qualityTexts(check);
        m_verdict->setText(t.verdict);
        m_detail->setText(t.detail);
        m_card[0]->setValue(t.original);
        m_card[1]->setValue(t.compressed);
        m_card[2]->setValue(t.kl);
        m_card[3]->setValue(t.top1);
        m_qualityResult->show();
        m_qualityStatus->hide();
        updateButtons();
        Q_EMIT qualityChecked(check);
    });
    connect(m_qualityJob, &QualityJob::cancelled, this, [this] {
        m_qualityStatus->setText(tr("The quality check was cancelled; nothing was kept."));
        m_qualityStatus->show();
        updateButtons();
        Q_EMIT qualityCancelled();
    });
    connect(m_qualityJob, &QualityJob::failed, this, [this](ErrorKind kind, const QString& message) {
        m_qualityStatus->setText(kQualityHint());
        m_qualityStatus->show();
        m_banner->showError(wordError(kind, message, ErrorContext::QualityCheck, m_sampleFile));
        updateButtons();
        Q_EMIT qualityFailed(message);
    });

    connect(m_prompt, &QLineEdit::returnPressed, this, &TryItPage::send);
    connect(m_prompt, &QLineEdit::textChanged, this, &TryItPage::updateButtons);
    connect(m_send, &QPushButton::clicked, this, &TryItPage::send);
    connect(m_stop, &QPushButton::clicked, this, &TryItPage::stop);
    connect(m_newChat, &QPushButton::clicked, this, &TryItPage::newChat);
    connect(m_check, &QPushButton::clicked, this, &TryItPage::checkQuality);
    connect(m_cancelCheck, &QPushButton::clicked, this, &TryItPage::cancelCheck);
    connect(m_sample, &QComboBox::activated, this, &TryItPage::chooseSample);
    // Esc stops what runs, whatever has the focus on this page.
    auto* esc = new QShortcut(QKeySequence(Qt::Key_Escape), this);
    esc->setContext(Qt::WidgetWithChildrenShortcut);
    connect(esc, &QShortcut::activated, this, &TryItPage::stop);
    setSampleTextFile({});
    m_qualityStatus->setText(kQualityHint());
    updateButtons();
}

TryItPage::~TryItPage()
{
    freeModels();
    for (Pane* p : m_panes)
        delete p;
}

void TryItPage::setModels(const QString& compressed, const QString& original, bool demo)
{
    freeModels();
    m_compressedPath = compressed;
    m_originalPath = original;
    m_demo = demo;
    m_quality.reset();
    m_qualityResult->hide();
    m_qualityStatus->setText(kQualityHint());
    m_qualityStatus->show();
    m_banner->clear();
    m_title->setText(compressed.isEmpty() ? tr("Try it") : tr("Try %1").arg(QFileInfo(compressed).fileName()));
    m_title->setToolTip(compressed);
    m_panes[Original]->header->setText(original.isEmpty() ? tr("Original")
                                                          : tr("Original - %1").arg(QFileInfo(original).fileName()));
    m_panes[Compressed]->header->setText(
        compressed.isEmpty() ? tr("Compressed") : tr("Compressed - %1").arg(QFileInfo(compressed).fileName()));
    m_note->setText(compressed.isEmpty() ? tr("Compress a model or open a .novaq file to try it.")
                                         : tr("The models load when you open this page."));
    setSampleTextFile(m_sampleFile);
    if (isVisible())
        load();
}

void TryItPage::setOriginal(const QString& original)
{
    const QString compressed = m_compressedPath;
    setModels(compressed, original, m_demo);
}

void TryItPage::freeModels()
{
    ++m_loadEpoch; // a load still running is dropped when it arrives
    m_loading = false;
    m_qualityJob->cancel();
    for (int side = 0; side < 2; ++side) {
        m_jobs[side]->setModel(nullptr, nullptr);
        m_panes[side]->encoder.reset();
        m_panes[side]->text->clear();
        m_panes[side]->stats->clear();
        m_panes[side]->memoryBytes = 0;
        m_messages[side].clear();
        m_answering[side] = false;
    }
    m_pair.reset();
    m_chooseOriginal->hide();
    m_panes[Original]->text->setPlaceholderText(tr("The original model's answer appears here."));
    updateButtons();
}

void TryItPage::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    load();
}

void TryItPage::load()
{
    if (m_pair || m_loading || m_compressedPath.isEmpty())
        return;
    m_loading = true;
    m_banner->clear();
    m_note->setText(tr("Loading the models..."));
    updateButtons();
    const std::filesystem::path compressed = m_compressedPath.toStdString();
    std::optional<std::filesystem::path> original;
    if (!m_originalPath.isEmpty())
        original = m_originalPath.toStdString();
    const int epoch = m_loadEpoch;
    runTask<std::shared_ptr<TryItPair>>(
        this, [compressed, original] { return loadTryItPair(compressed, original); },
        [this, epoch](TaskOutcome<std::shared_ptr<TryItPair>> outcome) {
            if (epoch != m_loadEpoch)
                return; // the page has another pair now; this one is freed here
            m_loading = false;
            if (!outcome.value) {
                m_note->setText(tr("Nothing to try: the model could not be loaded."));
                m_banner->showError(wordError(outcome.kind, outcome.error, ErrorContext::TryIt, m_compressedPath));
                updateButtons();
                Q_EMIT loadFailed(outcome.error);
                return;
            }
            onLoaded(std::move(*outcome.value));
        });
}

void TryItPage::onLoaded(std::shared_ptr<TryItPair> pair)
{
    m_pair = std::move(pair);
    const std::array<RunnableModel*, 2> models{m_pair->original.get(), m_pair->compressed.get()};
    const std::array<const Tokenizer*, 2> tokenizers{m_pair->originalTokenizer, m_pair->compressedTokenizer};
    for (int side = 0; side < 2; ++side) {
        Pane* pane = m_panes[side];
        if (!models[side]) {
            pane->stats->setText(tr("The original model is not available (%1), so only the compressed one answers. "
                                    "Choose it to compare the two and to check the quality.")
                                     .arg(QString::fromStdString(m_pair->originalMissing)));
            pane->header->setText(tr("Original - not found"));
            pane->text->setPlaceholderText(tr("No original to compare with."));
            m_chooseOriginal->show();
            continue;
        }
        m_jobs[side]->setModel(&models[side]->model, tokenizers[side]);
        pane->encoder = std::make_unique<PromptEncoder>(models[side]->model, *tokenizers[side]);
        pane->memoryBytes = models[side]->model.memoryBytes();
        pane->stats->setText(tr("%1 in memory").arg(sizeText(pane->memoryBytes)));
    }
    const QString name = QFileInfo(m_originalPath.isEmpty() ? m_compressedPath : m_originalPath).fileName();
    if (m_pair->chatTemplate->isBuiltin() && m_pair->chatTemplate->name() == "plain")
        m_note->setText(tr("%1 is a base model without a chat format: what you type is given to both models as a "
                           "plain transcript (\"User: ...\" then \"Assistant:\"), and they carry on the text from "
                           "there rather than follow instructions.")
                            .arg(name));
    else
        m_note->setText(
            m_pair->chatTemplate->isBuiltin()
                ? tr("Your messages are given to both models in the %1 chat format, the one %2's template is "
                     "written for; hover here for details.")
                      .arg(QString::fromStdString(m_pair->chatTemplate->name()), name)
                : tr("Your messages are given to both models in %1's own chat format; hover here for where it comes "
                     "from.")
                      .arg(name));
    m_note->setToolTip(QString::fromStdString(m_pair->templateNote));
    updateButtons();
    Q_EMIT loaded();
}

bool TryItPage::isBusy() const { return m_answering[0] || m_answering[1] || m_qualityJob->isRunning(); }

void TryItPage::updateButtons()
{
    const bool answering = m_answering[0] || m_answering[1];
    const bool checking = m_qualityJob->isRunning();
    m_send->setEnabled(m_pair && !answering && !m_prompt->text().trimmed().isEmpty());
    m_stop->setEnabled(answering);
    m_newChat->setEnabled(m_pair && !answering);
    m_prompt->setEnabled(m_pair != nullptr);
    const bool canCheck = m_pair && m_pair->original;
    m_check->setEnabled(canCheck && !checking);
    m_check->setToolTip(
        m_pair && !m_pair->original
            ? tr("The quality check compares with the original model, which is not available.")
            : tr("Measure, on a sample text, how often the compressed model predicts the same next word as the "
                 "original."));
    m_sample->setEnabled(!checking);
    m_sample->setVisible(!checking);
    m_progress->setVisible(checking);
    m_cancelCheck->setVisible(checking);
}

void TryItPage::appendUser(Side side, const QString& text)
{
    QPlainTextEdit* t = m_panes[side]->text;
    QTextCursor c(t->document());
    c.movePosition(QTextCursor::End);
    QTextCharFormat bold;
    bold.setFontWeight(QFont::Bold);
    if (!t->document()->isEmpty())
        c.insertText(QStringLiteral("\n\n"), QTextCharFormat());
    c.insertText(tr("You: %1").arg(text), bold);
    c.insertText(QStringLiteral("\n"), QTextCharFormat());
}

void TryItPage::send()
{
    const QString prompt = m_prompt->text().trimmed();
    if (!m_pair || prompt.isEmpty() || m_answering[0] || m_answering[1])
        return;
    m_banner->clear();
    const ChatTemplate& chatTemplate = *m_pair->chatTemplate;
    const std::vector<std::string> stops = chatTemplate.stopStrings();
    bool started = false;
    for (int side = 0; side < 2; ++side) {
        Pane* pane = m_panes[side];
        if (!m_jobs[side]->hasModel() || !pane->encoder)
            continue;
        m_messages[side].push_back({"user", prompt.toStdString()});
        std::vector<int32_t> ids;
        try {
            ids = pane->encoder->encodeChat(chatTemplate.render(m_messages[side], true), chatTemplate);
        } catch (const Error& e) {
            m_messages[side].pop_back();
            m_banner->showError({tr("The chat format refused this message"),
                                 tr("The model's chat format does not take this turn. Write the message another "
                                    "way, or press New chat to start again."),
                                 QString::fromStdString(e.what())});
            continue;
        }
        const std::array<RunnableModel*, 2> models{m_pair->original.get(), m_pair->compressed.get()};
        if (int64_t(ids.size()) + 1 >= tryItContextTokens(models[side]->model)) {
            m_messages[side].pop_back();
            m_banner->showError(tr("The conversation is too long"),
                                tr("It has %1 tokens and the models hold %2. Press New chat to start again.")
                                    .arg(ids.size())
                                    .arg(tryItContextTokens(models[side]->model)));
            continue;
        }
        GenerationParams params; // greedy: the differences come from the compression alone
        params.maxTokens = m_maxTokens->value();
        params.stop = stops;
        params.stopTokens = pane->encoder->stopTokens(stops);
        appendUser(Side(side), prompt);
        if (m_jobs[side]->start(std::move(ids), params)) {
            m_answering[side] = true;
            started = true;
        }
    }
    if (started)
        m_prompt->clear();
    updateButtons();
}

void TryItPage::onAnswerDone(Side side)
{
    m_answering[side] = false;
    updateButtons();
    if (!m_answering[0] && !m_answering[1]) {
        m_prompt->setFocus();
        Q_EMIT answersFinished();
    }
}

void TryItPage::stop()
{
    if (m_answering[0] || m_answering[1]) {
        m_jobs[0]->stop();
        m_jobs[1]->stop();
    } else if (m_qualityJob->isRunning()) {
        cancelCheck();
    }
}

void TryItPage::newChat()
{
    if (m_answering[0] || m_answering[1])
        return;
    for (int side = 0; side < 2; ++side) {
        m_messages[side].clear();
        m_jobs[side]->resetConversation();
        m_panes[side]->text->clear();
        m_panes[side]->stats->setText(
            m_panes[side]->memoryBytes ? tr("%1 in memory").arg(sizeText(m_panes[side]->memoryBytes)) : QString());
    }
    m_prompt->setFocus();
}

void TryItPage::setSampleTextFile(const QString& path)
{
    m_sampleFile = path;
    m_sample->clear();
    m_sample->addItem(m_demo ? tr("The Gospel of John (the demo model never saw it)")
                             : tr("A public-domain English sample (the Gospel of John)"));
    if (!path.isEmpty()) {
        m_sample->addItem(QFileInfo(path).fileName(), path);
        m_sample->setCurrentIndex(1);
    }
    m_sample->addItem(tr("A text file of yours..."));
}

void TryItPage::chooseSample(int index)
{
    if (index == 0) {
        m_sampleFile.clear();
        setSampleTextFile({});
        return;
    }
    if (index < m_sample->count() - 1)
        return; // the file chosen before
    const QString path = QFileDialog::getOpenFileName(this, tr("Choose a text for the quality check"), {},
                                                      tr("Text files (*.txt *.md);;All files (*)"));
    setSampleTextFile(path.isEmpty() ? m_sampleFile : path);
}

void TryItPage::checkQuality()
{
    if (!m_pair || !m_pair->original || m_qualityJob->isRunning())
        return;
    m_banner->clear();
    std::string text;
    std::string label;
    if (m_sampleFile.isEmpty()) {
        QFile f(QString::fromLatin1(kSampleResource));
        if (!f.open(QIODevice::ReadOnly)) {
            m_banner->showError(errorTitle(ErrorKind::Io), tr("The app's sample text is missing from this build."));
            return;
        }
        const QByteArray bytes = f.readAll();
        text.assign(bytes.constData(), size_t(bytes.size()));
        label = m_demo ? "kjv_john.txt (held-out scripture)" : "kjv_john.txt (public-domain English sample)";
    } else {
        try {
            text = readTextForEval(m_sampleFile.toStdString());
        } catch (const Error& e) {
            m_banner->showError(
                wordError(e.kind(), QString::fromStdString(e.what()), ErrorContext::QualityCheck, m_sampleFile));
            return;
        }
        label = QFileInfo(m_sampleFile).fileName().toStdString();
    }
    m_progress->setRange(0, 0);
    m_progress->setFormat(tr("Reading the text..."));
    m_qualityStatus->hide();
    m_checkEpoch = m_loadEpoch;
    if (m_qualityJob->start(m_pair, std::move(text), std::move(label))) {
        m_qualityStatus->setText(tr("Both models read the text and the app compares their predictions..."));
        m_qualityStatus->show();
    }
    updateButtons();
    m_cancelCheck->setFocus();
}

void TryItPage::cancelCheck() { m_qualityJob->cancel(); }

QString TryItPage::transcript(Side side) const { return m_panes[side]->text->toPlainText(); }
QString TryItPage::statsText(Side side) const { return m_panes[side]->stats->text(); }
QString TryItPage::templateNote() const { return m_note->text(); }
QString TryItPage::verdictText() const
{
    return m_qualityResult->isVisible() || m_quality ? m_verdict->text() : QString();
}
QString TryItPage::qualityStatus() const { return m_qualityStatus->text(); }

} // namespace novaq::ui
