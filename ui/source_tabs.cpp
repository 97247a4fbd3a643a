#include "ui/source_tabs.h"

#include "ui/app_settings.h"
#include "ui/error_wording.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/source_models.h"
#include "ui/widgets.h"

#include "novaq/sources/huggingface.h"
#include "novaq/sources/ollama.h"
#include "novaq/sources/url_source.h"

#include <QComboBox>
#include <QFile>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableView>
#include <QVBoxLayout>

namespace novaq::ui {

namespace {

// Results asked for per page; "Load more" asks for the next page.
constexpr int kHubPageSize = 30;

QString toQ(const std::string& s) { return QString::fromStdString(s); }

// A tab's failure in the app's words (the page's banner shows it, details behind a toggle).
template <class Tab>
void report(Tab* tab, const ErrorWording& w)
{
    Q_EMIT tab->failed(w.title, w.message, w.details);
}

QString pathText(const std::filesystem::path& p) { return QFile::decodeName(QByteArray::fromStdString(p.string())); }

QTableView* makeTable(QAbstractItemModel* model, QWidget* parent, const QString& name, const QString& tip)
{
    auto* view = new QTableView(parent);
    view->setModel(model);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->setSelectionMode(QAbstractItemView::SingleSelection);
    view->setAlternatingRowColors(true);
    view->verticalHeader()->hide();
    view->horizontalHeader()->setStretchLastSection(true);
    view->setEditTriggers(QAbstractItemView::NoEditTriggers);
    view->setWordWrap(false);
    view->setTextElideMode(Qt::ElideMiddle);
    view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    view->setAccessibleName(name);
    view->setToolTip(tip);
    return view;
}

QLabel* boldLabel(const QString& text, QWidget* parent, double scale = 1.0)
{
    auto* label = new QLabel(text, parent);
    QFont f = label->font();
    f.setBold(true);
    f.setPointSizeF(f.pointSizeF() * scale);
    label->setFont(f);
    return label;
}

void setUp(QWidget* w, const QString& name, const QString& tip)
{
    w->setAccessibleName(name);
    w->setToolTip(tip);
}

} // namespace

// ---- DownloadRow ----------------------------------------------------------------------

DownloadRow::DownloadRow(QWidget* parent) : QWidget(parent), m_job(new DownloadJob(this))
{
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 4);
    m_file = new ElidedLabel(Qt::ElideMiddle, this);
    QFont bold = m_file->font();
    bold.setBold(true);
    m_file->setFont(bold);
    m_file->setAccessibleName(tr("File being downloaded"));
    m_bar = new QProgressBar(this);
    m_bar->setRange(0, 1000);
    m_bar->setTextVisible(false);
    setUp(m_bar, tr("Download progress"), tr("How much of the file has arrived."));
    m_status = new ElidedLabel(Qt::ElideRight, this);
    m_status->setAccessibleName(tr("Download status"));
    m_status->setToolTip(tr("Bytes received, download speed and the time left."));
    m_cancel = new QPushButton(tr("Cancel"), this);
    setUp(m_cancel, tr("Cancel the download"),
          tr("Stop the download; the part already received is kept so that it can resume later."));
    layout->addWidget(m_file, 2);
    layout->addWidget(m_bar, 3);
    layout->addWidget(m_status, 3);
    layout->addWidget(m_cancel);
    hide();

    connect(m_cancel, &QPushButton::clicked, m_job, &DownloadJob::cancel);
    connect(m_job, &DownloadJob::progress, this, &DownloadRow::showStatus);
    connect(m_job, &DownloadJob::finished, this, [this](const QString& path) {
        hide();
        Q_EMIT busyChanged(false);
        Q_EMIT finished(path);
    });
    connect(m_job, &DownloadJob::cancelled, this, [this] {
        m_status->setText(tr("Cancelled. Start it again to resume where it stopped."));
        m_cancel->setEnabled(false);
        m_bar->setRange(0, 1000);
        Q_EMIT busyChanged(false);
    });
    connect(m_job, &DownloadJob::failed, this, [this](ErrorKind kind, const QString& message) {
        hide();
        Q_EMIT busyChanged(false);
        Q_EMIT failed(kind, message, m_file->text());
    });
}

bool DownloadRow::start(const QString& what, DownloadJob::Work work)
{
    if (!m_job->start(std::move(work)))
        return false;
    m_file->setText(what);
    m_status->setText(tr("Connecting..."));
    m_bar->setRange(0, 0);
    m_cancel->setEnabled(true);
    QWidget::show();
    Q_EMIT busyChanged(true);
    return true;
}

QString DownloadRow::statusText() const { return m_status->text(); }

void DownloadRow::showStatus(const DownloadStatus& s)
{
    if (!s.file.isEmpty())
        m_file->setText(s.file);
    if (s.bytesTotal > 0) {
        m_bar->setRange(0, 1000);
        m_bar->setValue(int(1000.0 * double(s.bytesDone) / double(s.bytesTotal)));
    } else {
        m_bar->setRange(0, 0);
    }
    QString text = s.bytesTotal >= 0 ? tr("%1 of %2").arg(sizeText(s.bytesDone), sizeText(quint64(s.bytesTotal)))
                                     : sizeText(s.bytesDone);
    if (s.verifying)
        text += tr(" - checking");
    else if (s.bytesPerSecond > 0)
        text += tr(" - %1/s").arg(sizeText(uint64_t(s.bytesPerSecond)));
    if (!s.verifying && s.etaSeconds >= 0)
        text += tr(" - %1 left").arg(durationText(s.etaSeconds));
    if (!s.note.isEmpty())
        text += QStringLiteral(" - ") + s.note;
    m_status->setText(text);
}

// ---- HubTab ---------------------------------------------------------------------------

HubTab::HubTab(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(16, 16, 16, 16);
    auto* bar = new QHBoxLayout;
    m_search = new QLineEdit(this);
    m_search->setPlaceholderText(tr("Search models, such as llama or qwen"));
    m_search->setClearButtonEnabled(true);
    setUp(m_search, tr("Search Hugging Face"), tr("Words from the model's name; press Enter to search."));
    m_format = new QComboBox(this);
    m_format->addItem(tr("Safetensors"), QStringLiteral("safetensors"));
    m_format->addItem(tr("GGUF"), QStringLiteral("gguf"));
    m_format->addItem(tr("All formats"), QString());
    setUp(m_format, tr("Format"), tr("Show only models published in this file format."));
    m_sort = new QComboBox(this);
    m_sort->addItem(tr("Most downloaded"), QStringLiteral("downloads"));
    m_sort->addItem(tr("Most liked"), QStringLiteral("likes"));
    m_sort->addItem(tr("Recently updated"), QStringLiteral("lastModified"));
    setUp(m_sort, tr("Sort"), tr("The order of the results."));
    m_searchButton = new QPushButton(tr("Search"), this);
    setUp(m_searchButton, tr("Search"), tr("Ask Hugging Face for models that match."));
    bar->addWidget(m_search, 1);
    bar->addWidget(m_format);
    bar->addWidget(m_sort);
    bar->addWidget(m_searchButton);
    layout->addLayout(bar);

    auto* split = new QSplitter(this);
    auto* left = new QWidget(split);
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    m_results = new HubResultsModel(this);
    m_resultsView =
        makeTable(m_results, left, tr("Search results"), tr("Models on Hugging Face; select one to see its files."));
    m_resultsView->horizontalHeader()->setSectionResizeMode(HubResultsModel::Model, QHeaderView::Stretch);
    m_resultsView->horizontalHeader()->setStretchLastSection(false);
    leftLayout->addWidget(m_resultsView, 1);
    auto* statusRow = new QHBoxLayout;
    m_status = new QLabel(tr("Search for a model by name, then pick it to see its files."), left);
    m_status->setWordWrap(true);
    m_status->setAccessibleName(tr("Search status"));
    statusRow->addWidget(m_status, 1);
    m_more = new QPushButton(tr("Load more"), left);
    setUp(m_more, tr("Load more results"), tr("Ask Hugging Face for the next page of models that match."));
    m_more->hide();
    statusRow->addWidget(m_more, 0, Qt::AlignTop);
    leftLayout->addLayout(statusRow);

    auto* right = new QWidget(split);
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(12, 0, 0, 0);
    m_repoTitle = boldLabel(tr("No model selected"), right, 1.2);
    m_repoTitle->setWordWrap(true);
    m_repoTitle->setAccessibleName(tr("Selected model"));
    m_repoTitle->setTextInteractionFlags(Qt::TextSelectableByMouse);
    rightLayout->addWidget(m_repoTitle);
    m_gated = new QLabel(right);
    m_gated->setOpenExternalLinks(true);
    m_gated->setWordWrap(true);
    m_gated->setAccessibleName(tr("Access"));
    m_gated->setToolTip(tr("Gated models need the authors' permission and a Hugging Face token (see Settings)."));
    m_gated->hide();
    rightLayout->addWidget(m_gated);
    m_files = new HubFilesModel(this);
    m_filesView = makeTable(m_files, right, tr("Files of the model"),
                            tr("The files of the model; select a GGUF file to download that one only."));
    m_filesView->horizontalHeader()->setSectionResizeMode(HubFilesModel::File, QHeaderView::Stretch);
    m_filesView->horizontalHeader()->setStretchLastSection(false);
    rightLayout->addWidget(m_filesView, 1);
    m_total = new QLabel(right);
    m_total->setAccessibleName(tr("Total size"));
    rightLayout->addWidget(m_total);
    m_use = new QPushButton(tr("Use this model"), right);
    m_use->setObjectName(QStringLiteral("primary"));
    m_use->setMinimumHeight(36);
    m_use->setEnabled(false);
    setUp(m_use, tr("Use this model"),
          tr("Download the model into the Hugging Face cache (files already there are reused) and open it."));
    rightLayout->addWidget(m_use);
    split->addWidget(left);
    split->addWidget(right);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 1);

    m_download = new DownloadRow(this);
    layout->addWidget(m_download);

    connect(m_search, &QLineEdit::returnPressed, this, &HubTab::search);
    connect(m_searchButton, &QPushButton::clicked, this, &HubTab::search);
    connect(m_more, &QPushButton::clicked, this, &HubTab::loadMore);
    connect(m_format, &QComboBox::activated, this, &HubTab::search);
    connect(m_sort, &QComboBox::activated, this, &HubTab::search);
    connect(m_resultsView->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) {
                if (current.isValid())
                    showDetails(current.row());
            });
    connect(m_use, &QPushButton::clicked, this, &HubTab::useSelected);
    connect(m_download, &DownloadRow::finished, this, [this](const QString& path) {
        m_results->markCached(m_downloadingRepo.toStdString());
        Q_EMIT openRequested(path);
    });
    connect(m_download, &DownloadRow::failed, this,
            [this](ErrorKind kind, const QString& message, const QString& what) {
                report(this, wordError(kind, message, ErrorContext::HubDownload, what));
            });
    connect(m_download, &DownloadRow::busyChanged, this,
            [this](bool busy) { m_use->setEnabled(!busy && !m_repo.isEmpty()); });
}

void HubTab::search()
{
    m_query = {};
    m_query.text = m_search->text().trimmed().toStdString();
    m_query.format = m_format->currentData().toString().toStdString();
    m_query.sort = m_sort->currentData().toString().toStdString();
    m_query.limit = kHubPageSize;
    m_nextUrl.clear();
    fetchPage(false);
}

void HubTab::loadMore()
{
    if (!m_nextUrl.empty())
        fetchPage(true);
}

void HubTab::fetchPage(bool append)
{
    struct Page {
        std::vector<HubResult> results;
        std::string nextUrl;
    };
    const int serial = ++m_searchSerial;
    Q_EMIT actionStarted();
    m_status->setText(append ? tr("Loading more...") : tr("Searching..."));
    m_more->setEnabled(false);
    if (!append)
        m_more->hide();
    runTask<Page>(
        this,
        [query = m_query, pageUrl = append ? m_nextUrl : std::string()] {
            const hf::HubClient client(hf::HubSettings::fromEnvironment(), {}, nullptr, nullptr);
            hf::SearchPage found = client.searchPage(query, pageUrl);
            Page page;
            page.nextUrl = std::move(found.nextUrl);
            for (hf::ModelSummary& m : found.models) {
                HubResult r;
                r.cached = client.cachedCommit(m.id, "main").has_value();
                r.summary = std::move(m);
                page.results.push_back(std::move(r));
            }
            return page;
        },
        [this, serial, append, query = m_query](TaskOutcome<Page> outcome) {
            if (serial != m_searchSerial)
                return; // a newer search is on its way
            m_more->setEnabled(true);
            if (!outcome.value) {
                m_status->setText(append ? tr("More results could not be loaded.") : tr("The search did not work."));
                m_more->setVisible(append && !m_nextUrl.empty());
                report(this, wordError(outcome.kind, outcome.error, ErrorContext::HubSearch, toQ(query.text)));
                return;
            }
            m_nextUrl = std::move(outcome.value->nextUrl);
            if (append)
                m_results->appendResults(std::move(outcome.value->results));
            else
                m_results->setResults(std::move(outcome.value->results));
            const int n = m_results->rowCount();
            m_more->setVisible(!m_nextUrl.empty());
            if (n == 0)
                m_status->setText(tr("No models match. Try fewer words or another format."));
            else if (!m_nextUrl.empty())
                m_status->setText(
                    tr("%n model(s) shown, more on Hugging Face. Select one to see its files.", nullptr, n));
            else
                m_status->setText(tr("%n model(s) found. Select one to see its files.", nullptr, n));
            Q_EMIT searchFinished(n);
        });
}

void HubTab::showDetails(int row)
{
    const QString repo = toQ(m_results->result(row).summary.id);
    m_repo = repo;
    m_repoTitle->setText(repo);
    m_files->clear();
    m_total->setText(tr("Reading the list of files..."));
    m_gated->hide();
    m_use->setEnabled(false);
    runTask<hf::ModelInfo>(
        this,
        [id = repo.toStdString()] {
            const hf::HubClient client(hf::HubSettings::fromEnvironment(), {}, nullptr, nullptr);
            return client.modelInfo(id);
        },
        [this, repo](TaskOutcome<hf::ModelInfo> outcome) {
            if (repo != m_repo)
                return;
            if (!outcome.value) {
                m_total->clear();
                report(this, wordError(outcome.kind, outcome.error, ErrorContext::HubDetails, repo));
                return;
            }
            const hf::ModelInfo& info = *outcome.value;
            m_files->setFiles(info.files);
            // The listing has no sizes: the row gets the download's size and memory hint now.
            bool atLeast = false;
            const uint64_t weights = downloadBytes(info.files, repo.toStdString(), &atLeast);
            m_results->setSize(repo.toStdString(), weights, atLeast);
            QString total =
                tr("%n file(s), %1 in all", nullptr, m_files->rowCount()).arg(sizeText(m_files->totalBytes()));
            const MemoryHint hint = memoryHint(weights, m_results->physicalMemory());
            if (!hint.text.isEmpty())
                total += QStringLiteral(" - ") + hint.text;
            m_total->setText(total);
            m_total->setToolTip(hint.tooltip);
            if (info.gated != "false" && !info.gated.empty()) {
                const QString url = hf::HubSettings::fromEnvironment().endpoint.empty()
                                        ? QString()
                                        : toQ(hf::HubSettings::fromEnvironment().endpoint) + QLatin1Char('/') + repo;
                m_gated->setText(
                    tr("<b>Gated</b>: the authors must grant you access. "
                       "<a href=\"%1\">Request access on the website</a>, then add your token in Settings.")
                        .arg(url.toHtmlEscaped()));
                m_gated->show();
            }
            m_use->setEnabled(!m_download->job()->isRunning());
            Q_EMIT detailsShown(repo);
        });
}

void HubTab::useSelected()
{
    if (m_repo.isEmpty())
        return;
    std::string file;
    // Only a file the user selected (focus alone sets a current index, not a selection).
    const QModelIndexList selected = m_filesView->selectionModel()->selectedRows();
    if (!selected.isEmpty())
        file = m_files->file(selected.first().row()).path;
    const std::string repo = m_repo.toStdString();
    m_downloadingRepo = m_repo;
    Q_EMIT actionStarted();
    m_download->start(m_repo, [repo, file](net::DownloadSink* sink, const CancelToken* cancel) {
        const hf::HubClient client(hf::HubSettings::fromEnvironment(), {}, sink, cancel);
        const hf::Snapshot snapshot = client.download(repo, "main", file);
        return pathText(snapshot.modelPath);
    });
}

// ---- OllamaTab ------------------------------------------------------------------------

namespace {
struct OllamaListing {
    std::vector<ollama::ListedModel> models;
};
} // namespace

OllamaTab::OllamaTab(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(16, 16, 16, 16);
    auto* pullRow = new QHBoxLayout;
    m_pullName = new QLineEdit(this);
    m_pullName->setPlaceholderText(tr("A model name to pull, such as llama3.2:1b"));
    m_pullName->setClearButtonEnabled(true);
    setUp(m_pullName, tr("Model to pull"), tr("The name of a model in the Ollama library, as `ollama pull` takes it."));
    m_pull = new QPushButton(tr("Pull"), this);
    setUp(m_pull, tr("Pull"), tr("Download the model from the Ollama library into NOVAQ's own store, then open it."));
    pullRow->addWidget(m_pullName, 1);
    pullRow->addWidget(m_pull);
    layout->addLayout(pullRow);

    m_stack = new QStackedWidget(this);
    m_models = new OllamaModelsModel(this);
    m_view = makeTable(m_models, m_stack, tr("Ollama models on this computer"),
                       tr("Models Ollama already has on this computer; double-click one to use it."));
    m_view->horizontalHeader()->setSectionResizeMode(OllamaModelsModel::Where, QHeaderView::Stretch);
    m_empty = new QLabel(tr("No Ollama models found. Ollama keeps its models in ~/.ollama/models; pull one with the "
                            "field above."),
                         m_stack);
    m_empty->setAlignment(Qt::AlignCenter);
    m_empty->setWordWrap(true);
    m_empty->setAccessibleName(tr("No Ollama models"));
    m_stack->addWidget(m_view);
    m_stack->addWidget(m_empty);
    m_stack->setCurrentWidget(m_empty);
    layout->addWidget(m_stack, 1);

    auto* buttons = new QHBoxLayout;
    m_refresh = new QPushButton(tr("Refresh"), this);
    setUp(m_refresh, tr("Refresh"), tr("Look for Ollama models again."));
    m_use = new QPushButton(tr("Use"), this);
    m_use->setObjectName(QStringLiteral("primary"));
    m_use->setMinimumHeight(36);
    setUp(m_use, tr("Use the selected model"), tr("Open the selected model's GGUF file where Ollama keeps it."));
    buttons->addWidget(m_refresh);
    buttons->addStretch();
    buttons->addWidget(m_use);
    layout->addLayout(buttons);
    m_download = new DownloadRow(this);
    layout->addWidget(m_download);

    connect(m_refresh, &QPushButton::clicked, this, &OllamaTab::refresh);
    connect(m_use, &QPushButton::clicked, this, &OllamaTab::useSelected);
    connect(m_view, &QTableView::activated, this, &OllamaTab::useSelected);
    const auto pull = [this] {
        const QString name = m_pullName->text().trimmed();
        if (name.isEmpty())
            return;
        Q_EMIT actionStarted();
        m_download->start(name, [name = name.toStdString()](net::DownloadSink* sink, const CancelToken* cancel) {
            const ollama::LocalModel local =
                ollama::pull(ollama::ModelName::parse(name), false, ollama::novaqStore(), {}, sink, cancel);
            return pathText(local.blob);
        });
    };
    connect(m_pull, &QPushButton::clicked, this, pull);
    connect(m_pullName, &QLineEdit::returnPressed, this, pull);
    connect(m_download, &DownloadRow::busyChanged, m_pull, &QWidget::setDisabled);
    connect(m_download, &DownloadRow::failed, this,
            [this](ErrorKind kind, const QString& message, const QString& what) {
                report(this, wordError(kind, message, ErrorContext::OllamaPull, what));
            });
    connect(m_download, &DownloadRow::finished, this, [this](const QString& path) {
        refresh();
        Q_EMIT openRequested(path);
    });
}

void OllamaTab::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    if (!m_listedOnce) {
        m_listedOnce = true;
        refresh();
    }
}

void OllamaTab::refresh()
{
    m_listedOnce = true;
    m_refresh->setEnabled(false);
    Q_EMIT actionStarted();
    runTask<OllamaListing>(
        this,
        [] {
            OllamaListing listing;
            if (auto fromServer = ollama::listFromServer(ollama::serverUrl(), nullptr))
                listing.models = std::move(*fromServer);
            else
                listing.models = ollama::listStores(ollama::storeFolders());
            return listing;
        },
        [this](TaskOutcome<OllamaListing> outcome) {
            m_refresh->setEnabled(true);
            if (!outcome.value) {
                report(this, wordError(outcome.kind, outcome.error, ErrorContext::OllamaList));
                return;
            }
            const int n = int(outcome.value->models.size());
            m_models->setModels(std::move(outcome.value->models));
            m_stack->setCurrentWidget(n ? static_cast<QWidget*>(m_view) : m_empty);
            m_use->setEnabled(n > 0);
            if (n > 0)
                m_view->selectRow(0);
            Q_EMIT listed(n);
        });
}

void OllamaTab::useSelected()
{
    const QModelIndex current = m_view->selectionModel()->currentIndex();
    if (!current.isValid())
        return;
    const std::string name = m_models->model(current.row()).name;
    Q_EMIT actionStarted();
    runTask<QString>(
        this,
        [name] {
            const auto local = ollama::findLocal(ollama::ModelName::parse(name), ollama::storeFolders());
            if (!local)
                throw Error(ErrorKind::InvalidInput,
                            "the weights of " + name + " are not in an Ollama store on this computer");
            return pathText(local->blob);
        },
        [this, name](TaskOutcome<QString> outcome) {
            if (!outcome.value) {
                report(this, wordError(outcome.kind, outcome.error, ErrorContext::OllamaOpen, toQ(name)));
                return;
            }
            Q_EMIT openRequested(*outcome.value);
        });
}

// ---- UrlTab ---------------------------------------------------------------------------

UrlTab::UrlTab(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(16, 16, 16, 16);
    auto* intro = new QLabel(tr("Paste the web address of a model file (safetensors, GGUF, PyTorch or ONNX)."), this);
    intro->setWordWrap(true);
    layout->addWidget(intro);
    auto* row = new QHBoxLayout;
    m_url = new QLineEdit(this);
    m_url->setPlaceholderText(tr("https://example.com/model.gguf"));
    m_url->setClearButtonEnabled(true);
    setUp(m_url, tr("Web address"), tr("An http or https address of a single model file."));
    m_fetch = new QPushButton(tr("Fetch"), this);
    m_fetch->setObjectName(QStringLiteral("primary"));
    setUp(m_fetch, tr("Fetch"), tr("Download the file into the download folder (see Settings) and open it."));
    row->addWidget(m_url, 1);
    row->addWidget(m_fetch);
    layout->addLayout(row);
    m_download = new DownloadRow(this);
    layout->addWidget(m_download);
    layout->addStretch();

    connect(m_fetch, &QPushButton::clicked, this, &UrlTab::fetch);
    connect(m_url, &QLineEdit::returnPressed, this, &UrlTab::fetch);
    connect(m_download, &DownloadRow::busyChanged, m_fetch, &QWidget::setDisabled);
    connect(m_download, &DownloadRow::failed, this,
            [this](ErrorKind kind, const QString& message, const QString& what) {
                report(this, wordError(kind, message, ErrorContext::UrlDownload, what));
            });
    connect(m_download, &DownloadRow::finished, this, &UrlTab::openRequested);
}

void UrlTab::fetch()
{
    const QString url = m_url->text().trimmed();
    if (url.isEmpty())
        return;
    Q_EMIT actionStarted();
    const std::filesystem::path folder = appsettings::effectiveDownloadFolder();
    m_download->start(url, [url = url.toStdString(), folder](net::DownloadSink* sink, const CancelToken* cancel) {
        return pathText(sources::downloadUrl(url, folder, {}, sink, cancel).file);
    });
}

} // namespace novaq::ui
