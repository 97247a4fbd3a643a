#pragma once
// Small building blocks of the pages: the inline error banner, the drop zone, choice cards
// and summary cards.

#include <QFrame>
#include <QPushButton>

class QLabel;

namespace novaq::ui {

// "What happened" in bold, then the engine's message, and a close button. Hidden when empty.
class ErrorBanner : public QFrame {
    Q_OBJECT
public:
    explicit ErrorBanner(QWidget* parent = nullptr);
    void showError(const QString& title, const QString& message);
    void showInfo(const QString& title, const QString& message);
    void clear();
    QString title() const;
    QString message() const;

private:
    void showStyled(const QString& title, const QString& message, bool error);
    QLabel* m_title;
    QLabel* m_message;
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

// A checkable card: a title in words, the number beside it and a live estimate line.
class ChoiceCard : public QPushButton {
    Q_OBJECT
public:
    ChoiceCard(const QString& title, const QString& detail, QWidget* parent = nullptr);
    void setEstimate(const QString& estimate);
    QString estimate() const;

private:
    QLabel* m_title;
    QLabel* m_detail;
    QLabel* m_estimate;
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
};

} // namespace novaq::ui
