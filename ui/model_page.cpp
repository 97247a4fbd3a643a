#include "ui/model_page.h"

#include "ui/source_tabs.h"
#include "ui/widgets.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QTabWidget>
#include <QVBoxLayout>

namespace novaq::ui {

ModelPage::ModelPage(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(24, 16, 24, 16);
    auto* heading = new QLabel(tr("Choose a model"), this);
    QFont f = heading->font();
    f.setPointSizeF(f.pointSizeF() * 1.6);
    f.setBold(true);
    heading->setFont(f);
    layout->addWidget(heading);
    m_banner = new ErrorBanner(this);
    layout->addWidget(m_banner);

    m_tabs = new QTabWidget(this);
    m_tabs->setAccessibleName(tr("Where the model comes from"));
    m_hub = new HubTab(m_tabs);
    m_tabs->addTab(m_hub, tr("Hugging Face"));
    m_ollama = new OllamaTab(m_tabs);
    m_tabs->addTab(m_ollama, tr("Ollama"));
    const int local = m_tabs->addTab(makeLocalTab(), tr("This computer"));
    m_url = new UrlTab(m_tabs);
    m_tabs->addTab(m_url, tr("URL"));
    // The banner belongs to the tab whose action failed: it goes when another tab is shown, and
    // when a new action starts on its tab (a new search, download or pull).
    connect(m_hub, &HubTab::failed, this, [this](const QString& t, const QString& m, const QString& d) {
        showError(m_hub, {t, m, d});
    });
    connect(m_ollama, &OllamaTab::failed, this, [this](const QString& t, const QString& m, const QString& d) {
        showError(m_ollama, {t, m, d});
    });
    connect(m_url, &UrlTab::failed, this, [this](const QString& t, const QString& m, const QString& d) {
        showError(m_url, {t, m, d});
    });
    connect(m_hub, &HubTab::actionStarted, this, [this] { clearError(m_hub); });
    connect(m_ollama, &OllamaTab::actionStarted, this, [this] { clearError(m_ollama); });
    connect(m_url, &UrlTab::actionStarted, this, [this] { clearError(m_url); });
    connect(m_tabs, &QTabWidget::currentChanged, this, [this] {
        if (m_bannerOwner && m_bannerOwner != m_tabs->currentWidget())
            clearError(m_bannerOwner);
    });
    connect(m_hub, &HubTab::openRequested, this, &ModelPage::openRequested);
    connect(m_ollama, &OllamaTab::openRequested, this, &ModelPage::openRequested);
    connect(m_url, &UrlTab::openRequested, this, &ModelPage::openRequested);
    m_tabs->setCurrentIndex(local);
    layout->addWidget(m_tabs, 1);
}

QWidget* ModelPage::makeLocalTab()
{
    auto* tab = new QWidget(this);
    auto* layout = new QVBoxLayout(tab);
    layout->setContentsMargins(16, 16, 16, 16);
    layout->setSpacing(12);
    m_dropZone = new DropZone(tab);
    connect(m_dropZone, &DropZone::pathDropped, this, &ModelPage::openRequested);
    layout->addWidget(m_dropZone, 2);

    auto* buttons = new QHBoxLayout;
    m_browseFile = new QPushButton(tr("Open a file..."), tab);
    m_browseFile->setToolTip(tr("Choose a model file (safetensors, GGUF, PyTorch, ONNX) or a .novaq file to read."));
    m_browseFolder = new QPushButton(tr("Open a folder..."), tab);
    m_browseFolder->setToolTip(tr("Choose a folder that holds a model, such as a Hugging Face download."));
    m_demo = new QPushButton(tr("Use the demo model"), tab);
    m_demo->setObjectName(QStringLiteral("primary"));
    m_demo->setToolTip(tr("A small 6.8 million parameter model that ships with the app, good for a first try."));
    for (QPushButton* b : {m_browseFile, m_browseFolder, m_demo}) {
        b->setMinimumHeight(36);
        b->setAccessibleName(b->text().remove(QStringLiteral("...")));
    }
    buttons->addWidget(m_browseFile);
    buttons->addWidget(m_browseFolder);
    buttons->addStretch();
    buttons->addWidget(m_demo);
    layout->addLayout(buttons);
    connect(m_browseFile, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(
            this, tr("Open a model"), {},
            tr("Models (*.safetensors *.gguf *.bin *.pt *.pth *.onnx *.novaq *.json);;All files (*)"));
        if (!path.isEmpty())
            Q_EMIT openRequested(path);
    });
    connect(m_browseFolder, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getExistingDirectory(this, tr("Open a model folder"));
        if (!path.isEmpty())
            Q_EMIT openRequested(path);
    });
    connect(m_demo, &QPushButton::clicked, this, &ModelPage::demoRequested);

    m_busy = new QLabel(tab);
    m_busy->hide();
    layout->addWidget(m_busy);

    auto* recentTitle = new QLabel(tr("Recent models"), tab);
    QFont bold = recentTitle->font();
    bold.setBold(true);
    recentTitle->setFont(bold);
    layout->addWidget(recentTitle);
    m_recent = new QListWidget(tab);
    m_recent->setToolTip(tr("Models you opened before; double-click or press Enter to open one again."));
    m_recent->setAccessibleName(tr("Recent models"));
    m_recent->setMaximumHeight(150);
    connect(m_recent, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) {
        if (item->flags() & Qt::ItemIsEnabled)
            Q_EMIT openRequested(item->data(Qt::UserRole).toString());
    });
    layout->addWidget(m_recent, 1);
    return tab;
}

void ModelPage::showError(QWidget* tab, const ErrorWording& wording)
{
    m_bannerOwner = tab ? tab : m_tabs->currentWidget();
    m_banner->showError(wording);
}

void ModelPage::clearError(QWidget* tab)
{
    if (!tab || tab == m_bannerOwner) {
        m_banner->clear();
        m_bannerOwner = nullptr;
    }
}

void ModelPage::setRecent(const QStringList& paths)
{
    m_recent->clear();
    for (const QString& p : paths) {
        auto* item = new QListWidgetItem(p, m_recent);
        item->setData(Qt::UserRole, p);
        item->setToolTip(p);
    }
    if (paths.isEmpty()) {
        auto* item = new QListWidgetItem(tr("No recent models yet. Models you open appear here."), m_recent);
        item->setFlags(Qt::NoItemFlags);
    }
}

void ModelPage::setBusy(bool busy, const QString& what)
{
    m_busy->setText(what);
    m_busy->setVisible(busy);
    for (QWidget* w : std::initializer_list<QWidget*>{m_browseFile, m_browseFolder, m_demo, m_recent, m_dropZone})
        w->setEnabled(!busy);
}

} // namespace novaq::ui
