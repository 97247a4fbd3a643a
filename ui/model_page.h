#pragma once
// Step 1: choose a model. Tabs for Hugging Face (search and download), Ollama (models on
// this computer, pull by name), this computer (files, folders, the demo model) and a URL.

#include "ui/error_wording.h"

#include <QWidget>

class QLabel;
class QListWidget;
class QPushButton;
class QTabWidget;

namespace novaq::ui {

class DropZone;
class ErrorBanner;
class HubTab;
class OllamaTab;
class UrlTab;

class ModelPage : public QWidget {
    Q_OBJECT
public:
    explicit ModelPage(QWidget* parent = nullptr);

    ErrorBanner* banner() const noexcept { return m_banner; }
    // An error of `tab` (nullptr: the tab shown now) in the page's banner; it goes when another
    // tab is shown or a new action starts on `tab`.
    // An engine error in the app's words (ErrorWording); nullptr: the tab shown now.
    void showError(QWidget* tab, const ErrorWording& wording);
    void clearError(QWidget* tab = nullptr); // nullptr: whichever tab it belongs to
    void setRecent(const QStringList& paths);
    void setBusy(bool busy, const QString& what = {});
    QPushButton* demoButton() const noexcept { return m_demo; }
    QTabWidget* tabs() const noexcept { return m_tabs; }
    HubTab* hubTab() const noexcept { return m_hub; }
    OllamaTab* ollamaTab() const noexcept { return m_ollama; }
    UrlTab* urlTab() const noexcept { return m_url; }

Q_SIGNALS:
    void openRequested(const QString& path);
    void demoRequested();

private:
    QWidget* makeLocalTab();

    QTabWidget* m_tabs;
    HubTab* m_hub = nullptr;
    OllamaTab* m_ollama = nullptr;
    UrlTab* m_url = nullptr;
    ErrorBanner* m_banner;
    QWidget* m_bannerOwner = nullptr;
    DropZone* m_dropZone = nullptr;
    QPushButton* m_browseFile = nullptr;
    QPushButton* m_browseFolder = nullptr;
    QPushButton* m_demo = nullptr;
    QListWidget* m_recent = nullptr;
    QLabel* m_busy = nullptr;
};

} // namespace novaq::ui
