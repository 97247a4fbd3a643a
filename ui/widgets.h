#pragma once
// Small building blocks of the pages: the inline error banner, the drop zone, choice cards
// and summary cards.

#include "ui/error_wording.h"

#include <QFrame>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>

class QAbstractButton;
class QGridLayout;

namespace novaq::ui {

// "What happened" in bold, then what to do, and a close button. Hidden when empty. An engine
// error (ErrorWording) also brings "Show details", which reveals the engine's own message,
// and "Copy details", which puts all three on the clipboard for a bug report.
class ErrorBanner : public QFrame {
    Q_OBJECT
public:
    explicit ErrorBanner(QWidget* parent = nullptr);
    void showError(const ErrorWording& wording);
    void showError(const QString& title, const QString& message); // the app's own errors: no details
    void showInfo(const QString& title, const QString& message);
    void clear();
    QString title() const;
    QString message() const;
    QString details() const;
    bool detailsShown() const;
    void setDetailsShown(bool shown);
    QAbstractButton* detailsButton() const noexcept { return m_toggle; }
    QAbstractButton* copyButton() const noexcept { return m_copy; }

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void showStyled(const QString& title, const QString& message, const QString& details, bool error);
    void fitDetails(); // as tall as the details, between one and five lines; they scroll beyond
    QLabel* m_title;
    QLabel* m_message;
    QLabel* m_details;
    QScrollArea* m_detailsArea;
    QAbstractButton* m_toggle;
    QAbstractButton* m_copy;
    bool m_detailsShown = false;
};

// A one-line label that never asks for more width than it gets: a text too long for it is
// elided (at `mode`) and the full text is then its tooltip. minimumSizeHint is a few
// characters wide, so a long file or tensor name cannot widen the window.
class ElidedLabel : public QLabel {
    Q_OBJECT
public:
    explicit ElidedLabel(Qt::TextElideMode mode = Qt::ElideRight, QWidget* parent = nullptr);
    void setText(const QString& text);   // hides QLabel::setText: keeps the tooltip in step
    void setToolTip(const QString& tip); // the tooltip when the text is not elided
    bool isElided() const;
    QSize minimumSizeHint() const override;
    QSize sizeHint() const override;

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    void updateTip();
    Qt::TextElideMode m_mode;
    QString m_tip;
};

// A frameless scroll area that scrolls only vertically and is as wide as its widget needs, so
// that a tall page fits a small screen and nothing is cut off on the right.
class VerticalScrollArea : public QScrollArea {
    Q_OBJECT
public:
    explicit VerticalScrollArea(QWidget* parent = nullptr);
    QSize minimumSizeHint() const override;
    QSize sizeHint() const override;

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
};

// Cards in a grid whose number of columns follows the width it gets (up to `maxColumns`), so
// that a row of cards wraps instead of widening the page.
class CardGrid : public QWidget {
    Q_OBJECT
public:
    CardGrid(int maxColumns, int minCardWidth, QWidget* parent = nullptr);
    void addCard(QWidget* card);
    // Shows the cards in this order (the same cards as added, reordered).
    void setCardOrder(const QList<QWidget*>& cards);
    int columns() const noexcept { return m_columns; }
    QSize minimumSizeHint() const override; // one card wide, as tall as the current rows

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void relayout(int columns);
    QGridLayout* m_grid;
    QList<QWidget*> m_cards;
    int m_maxColumns;
    int m_minCardWidth;
    int m_columns = 0;
};

// A large area that accepts a dropped file or folder.
class DropZone : public QFrame {
    Q_OBJECT
public:
    explicit DropZone(QWidget* parent = nullptr);

Q_SIGNALS:
    void pathDropped(const QString& path);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dragLeaveEvent(QDragLeaveEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void setHover(bool hover);
};

// A checkable card: a title in words, the number beside it, a live estimate line and a
// note (why its bits exceed the chosen ones; a warning when it gains nothing).
class ChoiceCard : public QPushButton {
    Q_OBJECT
public:
    ChoiceCard(const QString& title, const QString& detail, QWidget* parent = nullptr);
    void setTitle(const QString& title);
    QString title() const;
    void setDetail(const QString& detail);
    QString detail() const;
    void setEstimate(const QString& estimate);
    QString estimate() const;
    // A short note under the estimate; `warning` draws it in a warning colour. Empty hides it.
    void setNote(const QString& note, bool warning = false);
    QString note() const;
    bool noteIsWarning() const noexcept { return m_noteWarning; }

Q_SIGNALS:
    void moveFocusRequested(int step); // an arrow key: -1 previous card, +1 next

protected:
    void keyPressEvent(QKeyEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    void fitHeight(); // as tall as its wrapped lines need at its width (at least kMinHeight)
    QLabel* m_title;
    QLabel* m_detail;
    QLabel* m_estimate;
    QLabel* m_note;
    bool m_noteWarning = false;
};

// A big number over a small caption.
class SummaryCard : public QFrame {
    Q_OBJECT
public:
    explicit SummaryCard(const QString& caption, QWidget* parent = nullptr);
    void setValue(const QString& value, const QString& caption = {});
    QString value() const;
    QString caption() const;

private:
    QLabel* m_value;
    QLabel* m_caption;
    QString m_valueText;   // as given, without the no-break spaces shown in m_value
    QString m_captionText; // without the break hints shown in m_caption
};

} // namespace novaq::ui
