#pragma once
// The one window: a step list (Model, Settings, Compress, Results, Try it) beside stacked pages, the
// model chip on top and a status bar with threads, memory in use and the engine version.

#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/inspect.h"
#include "novaq/pipeline/report.h"

#include <QMainWindow>

class QLabel;
class QRect;
class QSize;
class QListWidget;
class QShortcut;
class QStackedWidget;

namespace novaq::ui {

class CompressJob;
class CompressPage;
class ElidedLabel;
class ModelPage;
class ResultsPage;
class SettingsPage;
class TryItPage;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    enum class Step { Model, Settings, Compress, Results, TryIt };

    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // The size the window opens at on a screen with this available geometry: 1280x800 when it
    // fits, else no larger than the screen.
    static QSize initialSize(const QRect& available);

    // Opens a model (file or folder) or a .novaq file; the outcome arrives asynchronously
    // (modelOpened / novaqOpened / openFailed).
    void openPath(const QString& path);
    void openDemoModel();
    void goTo(Step step);
    Step currentStep() const;
    bool isStepEnabled(Step step) const;

    ModelPage* modelPage() const noexcept { return m_modelPage; }
    SettingsPage* settingsPage() const noexcept { return m_settingsPage; }
    CompressPage* compressPage() const noexcept { return m_compressPage; }
    ResultsPage* resultsPage() const noexcept { return m_resultsPage; }
    TryItPage* tryItPage() const noexcept { return m_tryItPage; }
    CompressJob* job() const noexcept { return m_job; }
    QString modelChipText() const;

Q_SIGNALS:
    void modelOpened();
    void novaqOpened();
    void openFailed(const QString& message);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();
    void setStepEnabled(Step step, bool enabled);
    void startCompression(const CompressOptions& options);
    void rememberRecent(const QString& path);
    void updateMemory();
    void showOpenError(ErrorKind kind, const QString& message, const QString& path); // path: as opened

    QListWidget* m_steps;
    QStackedWidget* m_pages;
    ElidedLabel* m_chip;
    QLabel* m_threadsLabel;
    QLabel* m_memoryLabel;
    ModelPage* m_modelPage;
    SettingsPage* m_settingsPage;
    CompressPage* m_compressPage;
    ResultsPage* m_resultsPage;
    TryItPage* m_tryItPage;
    CompressJob* m_job;
    QShortcut* m_cancelShortcut = nullptr;
    QString m_modelLabel;
};

} // namespace novaq::ui
