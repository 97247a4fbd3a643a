#include "ui/widgets.h"

#include "ui/format.h"

#include <QClipboard>
#include <QCoreApplication>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFontDatabase>
#include <QGridLayout>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QMimeData>
#include <QPainter>
#include <QRegularExpression>
#include <QResizeEvent>
#include <QScrollBar>
#include <QStyle>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>

namespace novaq::ui {

// ---- ErrorBanner

ErrorBanner::ErrorBanner(QWidget* parent) : QFrame(parent)
{
    setObjectName(QStringLiteral("errorBanner"));
    // Compact, for small screens: the title shares its row with the buttons, and the details
    // scroll inside a few lines instead of making the page taller.
    auto* texts = new QVBoxLayout(this);
    texts->setContentsMargins(14, 6, 6, 8);
    texts->setSpacing(2);
    auto* top = new QHBoxLayout;
    top->setSpacing(2);
    m_title = new QLabel(this);
    QFont bold = m_title->font();
    bold.setBold(true);
    m_title->setFont(bold);
    m_title->setWordWrap(true);
    top->addWidget(m_title, 1);

    // The engine's own message: for a bug report or a search, not for reading first.
    auto* toggle = new QToolButton(this);
    toggle->setText(tr("Show details"));
    toggle->setAutoRaise(true);
    toggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    toggle->setArrowType(Qt::RightArrow);
    toggle->setToolTip(tr("Show the engine's own message, as the command line would print it."));
    toggle->setAccessibleName(tr("Show details"));
    m_toggle = toggle;
    auto* copy = new QToolButton(this);
    copy->setText(tr("Copy details"));
    copy->setAutoRaise(true);
    copy->setToolTip(tr("Copy this message and its details, for a bug report or a search."));
    copy->setAccessibleName(tr("Copy details"));
    m_copy = copy;
    auto* close = new QToolButton(this);
    close->setText(QStringLiteral("\u2715"));
    close->setAutoRaise(true);
    close->setToolTip(tr("Hide this message."));
    close->setAccessibleName(tr("Hide message"));
    top->addWidget(toggle, 0, Qt::AlignTop);
    top->addWidget(copy, 0, Qt::AlignTop);
    top->addWidget(close, 0, Qt::AlignTop);
    texts->addLayout(top);

    m_message = new QLabel(this);
    m_message->setWordWrap(true);
    m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    texts->addWidget(m_message);

    m_details = new QLabel;
    m_details->setWordWrap(true);
    m_details->setTextFormat(Qt::PlainText);
    m_details->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_details->setAccessibleName(tr("Details"));
    m_details->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_details->setAlignment(Qt::AlignLeft | Qt::AlignTop);
    m_detailsArea = new QScrollArea(this);
    m_detailsArea->setWidget(m_details);
    m_detailsArea->setWidgetResizable(true);
    m_detailsArea->setFrameShape(QFrame::NoFrame);
    m_detailsArea->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    m_detailsArea->viewport()->setAutoFillBackground(false);
    m_details->setAutoFillBackground(false);
    m_details->setContentsMargins(6, 3, 6, 3);
    m_detailsArea->setObjectName(QStringLiteral("bannerDetails"));
    m_detailsArea->setStyleSheet(QStringLiteral("#bannerDetails { background: palette(window); border-radius: 4px; }"));
    // Explicit from the start: a scroll area's own minimum would make the page taller.
    m_detailsArea->setMinimumHeight(2 * QFontMetrics(m_details->font()).lineSpacing() + 6);
    m_detailsArea->hide();
    texts->addWidget(m_detailsArea);
    m_toggle->hide();
    m_copy->hide();

    connect(toggle, &QToolButton::clicked, this, [this] { setDetailsShown(!m_detailsShown); });
    connect(copy, &QToolButton::clicked, this, [this] {
        QGuiApplication::clipboard()->setText(title() + QLatin1Char('\n') + message() + QStringLiteral("\n\n") +
                                              details());
    });
    connect(close, &QToolButton::clicked, this, &ErrorBanner::clear);
    setAccessibleName(tr("Message"));
    hide();
}

void ErrorBanner::showStyled(const QString& title, const QString& message, const QString& details, bool error)
{
    m_title->setText(title);
    m_message->setText(message);
    m_details->setText(details);
    setDetailsShown(false); // a new message starts short
    m_toggle->setVisible(!details.isEmpty());
    m_copy->setVisible(!details.isEmpty());
    const QString colour = error ? QStringLiteral("#d9485f") : accentColor().name();
    setStyleSheet(QStringLiteral("#errorBanner { border: 1px solid %1; border-left: 5px solid %1; border-radius: 6px;"
                                 " background: palette(base); }")
                      .arg(colour));
    show();
}

void ErrorBanner::showError(const ErrorWording& wording)
{
    showStyled(wording.title, wording.message, wording.details, true);
}

void ErrorBanner::showError(const QString& title, const QString& message) { showStyled(title, message, {}, true); }

void ErrorBanner::showInfo(const QString& title, const QString& message) { showStyled(title, message, {}, false); }

void ErrorBanner::clear()
{
    m_title->clear();
    m_message->clear();
    m_details->clear();
    setDetailsShown(false);
    m_toggle->hide();
    m_copy->hide();
    hide();
}

QString ErrorBanner::title() const { return m_title->text(); }

QString ErrorBanner::message() const { return m_message->text(); }

QString ErrorBanner::details() const { return m_details->text(); }

void ErrorBanner::resizeEvent(QResizeEvent* event)
{
    QFrame::resizeEvent(event);
    fitDetails();
}

void ErrorBanner::fitDetails()
{
    if (!m_detailsShown)
        return;
    const int line = QFontMetrics(m_details->font()).lineSpacing();
    const QMargins m = m_details->contentsMargins();
    const QMargins outer = layout()->contentsMargins();
    const int width =
        contentsRect().width() - outer.left() - outer.right() - m_detailsArea->verticalScrollBar()->sizeHint().width();
    int needed = m_details->heightForWidth(std::max(width, 50));
    if (needed < 0)
        needed = m_details->sizeHint().height();
    const int frame = m.top() + m.bottom();
    // Never more than two lines in the minimum, so that the page does not grow on a small screen.
    m_detailsArea->setMinimumHeight(std::min(needed, 2 * line + frame));
    m_detailsArea->setMaximumHeight(std::min(needed, 5 * line + frame));
}

bool ErrorBanner::detailsShown() const { return m_detailsShown; }

void ErrorBanner::setDetailsShown(bool shown)
{
    m_detailsShown = shown && !m_details->text().isEmpty();
    auto* toggle = static_cast<QToolButton*>(m_toggle);
    toggle->setArrowType(m_detailsShown ? Qt::DownArrow : Qt::RightArrow);
    toggle->setText(m_detailsShown ? tr("Hide details") : tr("Show details"));
    toggle->setAccessibleName(toggle->text());
    m_detailsArea->setVisible(m_detailsShown);
    fitDetails();
}

// ---- ElidedLabel

ElidedLabel::ElidedLabel(Qt::TextElideMode mode, QWidget* parent) : QLabel(parent), m_mode(mode)
{
    setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    setWordWrap(false);
}

void ElidedLabel::setText(const QString& text)
{
    QLabel::setText(text);
    updateTip();
}

void ElidedLabel::setToolTip(const QString& tip)
{
    m_tip = tip;
    updateTip();
}

bool ElidedLabel::isElided() const { return fontMetrics().horizontalAdvance(text()) > contentsRect().width(); }

QSize ElidedLabel::minimumSizeHint() const
{
    const QSize hint = QLabel::minimumSizeHint();
    const QMargins m = contentsMargins();
    return {fontMetrics().horizontalAdvance(QStringLiteral("M...M")) + m.left() + m.right(), hint.height()};
}

QSize ElidedLabel::sizeHint() const { return QLabel::sizeHint(); }

void ElidedLabel::paintEvent(QPaintEvent*)
{
    QPainter painter(this);
    const QRect r = contentsRect();
    const QString shown = fontMetrics().elidedText(text(), m_mode, r.width());
    style()->drawItemText(&painter, r, int(alignment()), palette(), isEnabled(), shown, foregroundRole());
}

void ElidedLabel::resizeEvent(QResizeEvent* event)
{
    QLabel::resizeEvent(event);
    updateTip();
}

void ElidedLabel::updateTip()
{
    if (isElided() && !text().isEmpty())
        QLabel::setToolTip(m_tip.isEmpty() ? text() : text() + QStringLiteral("\n") + m_tip);
    else
        QLabel::setToolTip(m_tip);
}

// ---- VerticalScrollArea

VerticalScrollArea::VerticalScrollArea(QWidget* parent) : QScrollArea(parent)
{
    setWidgetResizable(true);
    setFrameShape(QFrame::NoFrame);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Expanding);
    viewport()->setAutoFillBackground(false);
}

QSize VerticalScrollArea::minimumSizeHint() const
{
    const int scrollBar = verticalScrollBar()->sizeHint().width();
    const int inner = widget() ? widget()->minimumSizeHint().width() : 0;
    return {inner + scrollBar + frameWidth() * 2, 60};
}

QSize VerticalScrollArea::sizeHint() const
{
    const QSize inner = widget() ? widget()->sizeHint() : QSize(0, 0);
    return {inner.width() + verticalScrollBar()->sizeHint().width() + frameWidth() * 2, inner.height()};
}

bool VerticalScrollArea::eventFilter(QObject* watched, QEvent* event)
{
    // The widget's minimum width changes (Advanced opens, cards rewrap): ask the layout again.
    // QScrollArea sizes its widget again only on a LayoutRequest of its own: post one, so that a
    // widget that became shorter (the cards rewrapped into more columns) is not left too tall.
    if (watched == widget() && event->type() == QEvent::LayoutRequest) {
        updateGeometry();
        QCoreApplication::postEvent(this, new QEvent(QEvent::LayoutRequest));
    }
    return QScrollArea::eventFilter(watched, event);
}

// ---- CardGrid

CardGrid::CardGrid(int maxColumns, int minCardWidth, QWidget* parent)
    : QWidget(parent), m_grid(new QGridLayout(this)), m_maxColumns(maxColumns), m_minCardWidth(minCardWidth)
{
    m_grid->setContentsMargins(0, 0, 0, 0);
    m_grid->setSpacing(10);
}

void CardGrid::addCard(QWidget* card)
{
    m_cards.push_back(card);
    card->setMinimumWidth(m_minCardWidth);
    relayout(m_columns > 0 ? m_columns : m_maxColumns);
}

QSize CardGrid::minimumSizeHint() const { return {m_minCardWidth, m_grid->minimumSize().height()}; }

void CardGrid::resizeEvent(QResizeEvent* event)
{
    QWidget::resizeEvent(event);
    // A widget shown for the first time gets its default size (100 x 30) before its layout gives
    // it the real one: rewrapping into one column then would make the page (and the window) as
    // tall as six cards. Widths below one card are such passing sizes; keep the columns.
    if (width() < m_minCardWidth)
        return;
    const int fit = (width() + m_grid->spacing()) / (m_minCardWidth + m_grid->spacing());
    relayout(std::clamp(fit, 1, m_maxColumns));
}

void CardGrid::relayout(int columns)
{
    if (columns == m_columns && m_grid->count() == m_cards.size())
        return;
    m_columns = columns;
    for (QWidget* card : m_cards)
        m_grid->removeWidget(card);
    for (int i = 0; i < m_cards.size(); ++i)
        m_grid->addWidget(m_cards[i], i / columns, i % columns);
    for (int c = 0; c < m_maxColumns; ++c)
        m_grid->setColumnStretch(c, c < columns ? 1 : 0);
}

void CardGrid::setCardOrder(const QList<QWidget*>& cards)
{
    if (cards.size() != m_cards.size())
        return;
    m_cards = cards;
    const int columns = m_columns > 0 ? m_columns : 1;
    m_columns = 0; // lay out again even at the same width
    relayout(columns);
}

// ---- DropZone

DropZone::DropZone(QWidget* parent) : QFrame(parent)
{
    setObjectName(QStringLiteral("dropZone"));
    setAcceptDrops(true);
    setMinimumHeight(140); // leaves the Model page room for an error banner with its details at 1024 x 600
    auto* layout = new QVBoxLayout(this);
    auto* icon = new QLabel(QStringLiteral("\u2B07"), this);
    QFont big = icon->font();
    big.setPointSizeF(big.pointSizeF() * 3);
    icon->setFont(big);
    icon->setAlignment(Qt::AlignCenter);
    auto* text = new QLabel(tr("Drop a model file or folder here"), this);
    QFont f = text->font();
    f.setPointSizeF(f.pointSizeF() * 1.4);
    text->setFont(f);
    text->setAlignment(Qt::AlignCenter);
    auto* hint = new QLabel(tr("Safetensors, GGUF, PyTorch, ONNX, llama2.c or a Hugging Face model folder"), this);
    hint->setAlignment(Qt::AlignCenter);
    hint->setEnabled(false);
    layout->addStretch();
    layout->addWidget(icon);
    layout->addWidget(text);
    layout->addWidget(hint);
    layout->addStretch();
    setToolTip(tr("Drag a model file or its folder from your file manager and drop it here."));
    setAccessibleName(tr("Drop zone for a model file or folder"));
    setHover(false);
}

void DropZone::setHover(bool hover)
{
    setStyleSheet(QStringLiteral("#dropZone { border: 2px dashed %1; border-radius: 12px; background: %2; }")
                      .arg(hover ? accentColor().name() : QStringLiteral("palette(mid)"),
                           hover ? QStringLiteral("palette(alternate-base)") : QStringLiteral("palette(base)")));
}

void DropZone::dragEnterEvent(QDragEnterEvent* event)
{
    if (event->mimeData()->hasUrls() && event->mimeData()->urls().first().isLocalFile()) {
        setHover(true);
        event->acceptProposedAction();
    }
}

void DropZone::dragLeaveEvent(QDragLeaveEvent* event)
{
    setHover(false);
    QFrame::dragLeaveEvent(event);
}

void DropZone::dropEvent(QDropEvent* event)
{
    setHover(false);
    const auto urls = event->mimeData()->urls();
    if (!urls.isEmpty() && urls.first().isLocalFile()) {
        event->acceptProposedAction();
        Q_EMIT pathDropped(urls.first().toLocalFile());
    }
}

// ---- ChoiceCard

namespace {
constexpr int kChoiceCardMinHeight = 124;
}

ChoiceCard::ChoiceCard(const QString& title, const QString& detail, QWidget* parent) : QPushButton(parent)
{
    setCheckable(true);
    // Not auto-exclusive: an exclusive group takes Tab to its checked button only; the page
    // keeps one card checked itself, so that Tab reaches every card.
    setFocusPolicy(Qt::StrongFocus);
    setMinimumHeight(kChoiceCardMinHeight);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Minimum); // the cards of a row are as tall as its tallest
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(12, 8, 12, 8);
    m_title = new QLabel(title, this);
    QFont f = m_title->font();
    f.setPointSizeF(f.pointSizeF() * 1.25);
    f.setBold(true);
    m_title->setFont(f);
    m_detail = new QLabel(detail, this);
    m_estimate = new QLabel(this);
    m_note = new QLabel(this);
    QFont small = m_note->font();
    small.setPointSizeF(small.pointSizeF() * 0.9);
    m_note->setFont(small);
    m_note->setVisible(false);
    for (QLabel* l : {m_title, m_detail, m_estimate, m_note}) {
        l->setAttribute(Qt::WA_TransparentForMouseEvents);
        l->setWordWrap(true); // a narrow card wraps its words instead of widening the page
    }
    layout->addWidget(m_title);
    layout->addWidget(m_detail);
    layout->addWidget(m_estimate);
    layout->addWidget(m_note);
    layout->addStretch(); // a card taller than its lines (its row's tallest is) keeps them at the top
    setAccessibleName(title);
    setStyleSheet(
        QStringLiteral("novaq--ui--ChoiceCard { border: 1px solid palette(mid); border-radius: 10px;"
                       " background: palette(base); text-align: left; }"
                       "novaq--ui--ChoiceCard:checked { border: 2px solid %1; background: palette(alternate-base); }"
                       // The focus ring: dashed in the text colour, so that a focused card never
                       // looks like the selected one (solid accent), in light and dark palettes.
                       "novaq--ui--ChoiceCard:focus { border: 2px dashed palette(text); }"
                       "novaq--ui--ChoiceCard:checked:focus { border: 2px dashed palette(text);"
                       " background: palette(alternate-base); }")
            .arg(accentColor().name()));
}

void ChoiceCard::keyPressEvent(QKeyEvent* event)
{
    // Arrow keys move the focus to the previous or next card, as in a row of choices.
    if (event->modifiers() == Qt::NoModifier || event->modifiers() == Qt::KeypadModifier) {
        const int step = (event->key() == Qt::Key_Left || event->key() == Qt::Key_Up)      ? -1
                         : (event->key() == Qt::Key_Right || event->key() == Qt::Key_Down) ? 1
                                                                                           : 0;
        if (step != 0) {
            Q_EMIT moveFocusRequested(step);
            event->accept();
            return;
        }
    }
    QPushButton::keyPressEvent(event);
}

void ChoiceCard::resizeEvent(QResizeEvent* event)
{
    QPushButton::resizeEvent(event);
    fitHeight();
}

void ChoiceCard::fitHeight()
{
    // A QPushButton's size hint knows nothing of the labels laid out inside it: a note that wraps
    // to more lines at this width would be cut off; ask the layout how tall they are.
    const int needed = std::max(kChoiceCardMinHeight, layout()->totalHeightForWidth(width()));
    if (needed != minimumHeight())
        setMinimumHeight(needed);
}

void ChoiceCard::setTitle(const QString& title)
{
    m_title->setText(title);
    setAccessibleName(title);
    fitHeight();
}

QString ChoiceCard::title() const { return m_title->text(); }

void ChoiceCard::setDetail(const QString& detail)
{
    m_detail->setText(detail);
    fitHeight();
}

QString ChoiceCard::detail() const { return m_detail->text(); }

void ChoiceCard::setNote(const QString& note, bool warning)
{
    m_note->setText(note);
    m_note->setVisible(!note.isEmpty());
    m_noteWarning = warning && !note.isEmpty();
    // The warning colour of the palette's link-visited role is too faint in some themes: a
    // fixed amber-red that reads on light and dark backgrounds.
    m_note->setStyleSheet(m_noteWarning ? QStringLiteral("color: #c2410c; font-weight: bold;") : QString());
    setAccessibleDescription(note);
    fitHeight();
}

QString ChoiceCard::note() const { return m_note->text(); }

void ChoiceCard::setEstimate(const QString& estimate)
{
    m_estimate->setText(estimate);
    fitHeight();
}

QString ChoiceCard::estimate() const { return m_estimate->text(); }

// ---- SummaryCard

SummaryCard::SummaryCard(const QString& caption, QWidget* parent) : QFrame(parent)
{
    setObjectName(QStringLiteral("summaryCard"));
    setStyleSheet(QStringLiteral("#summaryCard { border: 1px solid palette(mid); border-radius: 10px;"
                                 " background: palette(base); }"));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(16, 12, 16, 12);
    m_value = new QLabel(QStringLiteral("-"), this);
    QFont f = m_value->font();
    f.setPointSizeF(f.pointSizeF() * 1.8);
    f.setBold(true);
    m_value->setFont(f);
    m_value->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_caption = new QLabel(this);
    m_caption->setWordWrap(true);
    m_value->setWordWrap(true);
    layout->addWidget(m_value);
    layout->addWidget(m_caption);
    setValue(QStringLiteral("-"), caption);
    setAccessibleName(caption);
}

namespace {

// A caption may name a tensor ("worst error (model.layers.31.mlp.down_proj)"), one long word:
// zero-width spaces after its dots and underscores let the label wrap it on a narrow card.
QString breakable(const QString& text)
{
    QString out;
    out.reserve(text.size() + text.size() / 4);
    for (const QChar c : text) {
        out += c;
        if (c == QLatin1Char('.') || c == QLatin1Char('_') || c == QLatin1Char('/'))
            out += QChar(0x200B);
    }
    return out;
}

} // namespace

void SummaryCard::setValue(const QString& value, const QString& caption)
{
    // A wrapped value breaks between figures, never between a number and its unit.
    m_valueText = value;
    static const QRegularExpression numberSpace(QStringLiteral("(\\d) "));
    QString shown = value;
    shown.replace(numberSpace, QStringLiteral("\\1") + QChar(0x00A0));
    m_value->setText(shown);
    if (!caption.isEmpty()) {
        m_captionText = caption;
        m_caption->setText(breakable(caption));
    }
}

QString SummaryCard::value() const { return m_valueText; }

QString SummaryCard::caption() const { return m_captionText; }

} // namespace novaq::ui
