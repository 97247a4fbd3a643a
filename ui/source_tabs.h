#pragma once
// The Model page's source tabs: Hugging Face (search, details, download), Ollama (models on
// this computer, pull by name) and URL (fetch). Engine calls run on worker threads; errors
// go to the page's banner through `failed`; a finished download asks to open the model.

#include "ui/download_job.h"

#include "novaq/sources/huggingface.h"

#include <QWidget>

#include <string>

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QStackedWidget;
class QTableView;

namespace novaq::ui {

class ElidedLabel;
class HubResultsModel;
class HubFilesModel;
class OllamaModelsModel;

// A download in progress: file, a bar, bytes, speed, ETA, and Cancel. Runs its own job.
class DownloadRow : public QWidget {
    Q_OBJECT
public:
    explicit DownloadRow(QWidget* parent = nullptr);
    DownloadJob* job() const noexcept { return m_job; }
    bool start(const QString& what, DownloadJob::Work work);
    QString statusText() const;

Q_SIGNALS:
    void finished(const QString& path);
    void failed(ErrorKind kind, const QString& engineMessage, const QString& what); // what: as given to start()
    void busyChanged(bool busy);

private:
    void showStatus(const DownloadStatus& s);
    DownloadJob* m_job;
    ElidedLabel* m_file;
    QProgressBar* m_bar;
    ElidedLabel* m_status;
    QPushButton* m_cancel;
};

class HubTab : public QWidget {
    Q_OBJECT
public:
    explicit HubTab(QWidget* parent = nullptr);
    HubResultsModel* results() const noexcept { return m_results; }
    HubFilesModel* files() const noexcept { return m_files; }
    QLineEdit* searchField() const noexcept { return m_search; }
    QTableView* resultsView() const noexcept { return m_resultsView; }
    QPushButton* useButton() const noexcept { return m_use; }
    QPushButton* loadMoreButton() const noexcept { return m_more; }
    DownloadRow* downloadRow() const noexcept { return m_download; }
    QLabel* statusLabel() const noexcept { return m_status; }
    bool hasMore() const noexcept { return !m_nextUrl.empty(); }

public Q_SLOTS:
    void search();   // the first page of a new search
    void loadMore(); // the next page of the current search (the Hub's next-page link)

Q_SIGNALS:
    void openRequested(const QString& path);
    void failed(const QString& title, const QString& message, const QString& details); // see ErrorWording
    void actionStarted();             // a search, a page, a details request or a download: old errors go
    void searchFinished(int results); // after a search or a further page: the rows shown now
    void detailsShown(const QString& repo);

private:
    void fetchPage(bool append);
    void showDetails(int row);
    void useSelected();

    QLineEdit* m_search;
    QComboBox* m_format;
    QComboBox* m_sort;
    QPushButton* m_searchButton;
    QTableView* m_resultsView;
    HubResultsModel* m_results;
    QLabel* m_status;
    QPushButton* m_more;
    QLabel* m_repoTitle;
    QLabel* m_gated;
    QTableView* m_filesView;
    HubFilesModel* m_files;
    QLabel* m_total;
    QPushButton* m_use;
    DownloadRow* m_download;
    QString m_repo;
    QString m_downloadingRepo;
    hf::SearchQuery m_query; // of the results shown
    std::string m_nextUrl;   // their next page; empty on the last one
    int m_searchSerial = 0;
};

class OllamaTab : public QWidget {
    Q_OBJECT
public:
    explicit OllamaTab(QWidget* parent = nullptr);
    OllamaModelsModel* models() const noexcept { return m_models; }
    QTableView* view() const noexcept { return m_view; }
    QLabel* emptyLabel() const noexcept { return m_empty; }
    QLineEdit* pullField() const noexcept { return m_pullName; }
    DownloadRow* downloadRow() const noexcept { return m_download; }

public Q_SLOTS:
    void refresh();

Q_SIGNALS:
    void openRequested(const QString& path);
    void failed(const QString& title, const QString& message, const QString& details); // see ErrorWording
    void actionStarted(); // a refresh, a pull or a use: old errors go
    void listed(int models);

protected:
    void showEvent(QShowEvent* event) override; // lists the models the first time it is shown

private:
    void useSelected();
    bool m_listedOnce = false;

    QTableView* m_view;
    OllamaModelsModel* m_models;
    QLabel* m_empty;
    QStackedWidget* m_stack;
    QPushButton* m_refresh;
    QPushButton* m_use;
    QLineEdit* m_pullName;
    QPushButton* m_pull;
    DownloadRow* m_download;
};

class UrlTab : public QWidget {
    Q_OBJECT
public:
    explicit UrlTab(QWidget* parent = nullptr);
    QLineEdit* urlField() const noexcept { return m_url; }
    QPushButton* fetchButton() const noexcept { return m_fetch; }
    DownloadRow* downloadRow() const noexcept { return m_download; }

Q_SIGNALS:
    void openRequested(const QString& path);
    void failed(const QString& title, const QString& message, const QString& details); // see ErrorWording
    void actionStarted();                                                              // a fetch: old errors go

private:
    void fetch();
    QLineEdit* m_url;
    QPushButton* m_fetch;
    DownloadRow* m_download;
};

} // namespace novaq::ui
