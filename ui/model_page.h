#pragma once
// Step 1: choose a model. Tabs for Hugging Face, Ollama, this computer and a URL; only
// local files and the demo model are wired in this build.

#include <QWidget>

class QLabel;
class QListWidget;
class QPushButton;
class QTabWidget;

namespace novaq::ui {

class DropZone;
class ErrorBanner;

class ModelPage : public QWidget {
    Q_OBJECT
public:
    explicit ModelPage(QWidget* parent = nullptr);

    ErrorBanner* banner() const noexcept { return m_banner; }
    void setRecent(const QStringList& paths);
    void setBusy(bool busy, const QString& what = {});
    QPushButton* demoButton() const noexcept { return m_demo; }
    QTabWidget* tabs() const noexcept { return m_tabs; }

Q_SIGNALS:
    void openRequested(const QString& path);
    void demoRequested();

private:
    QWidget* makeLocalTab();
    QWidget* makeLaterTab(const QString& title, const QString& text);

    QTabWidget* m_tabs;
    ErrorBanner* m_banner;
    DropZone* m_dropZone = nullptr;
    QPushButton* m_browseFile = nullptr;
    QPushButton* m_browseFolder = nullptr;
    QPushButton* m_demo = nullptr;
    QListWidget* m_recent = nullptr;
    QLabel* m_busy = nullptr;
};

} // namespace novaq::ui
