#include "ui/main_window.h"

#include "ui/app_settings.h"
#include "ui/compress_page.h"
#include "ui/error_wording.h"
#include "ui/format.h"
#include "ui/help_page.h"
#include "ui/jobs.h"
#include "ui/model_page.h"
#include "ui/results_page.h"
#include "ui/settings_page.h"
#include "ui/try_it_page.h"
#include "ui/widgets.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/container/novaq_file.h"
#include "novaq/pipeline/compress.h"

#include <QAbstractItemView>
#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QScreen>
#include <QSettings>
#include <QShortcut>
#include <QStackedWidget>
#include <QStatusBar>
#include <QThread>
#include <QTimer>
#include <QVBoxLayout>

#include <array>
#include <fstream>

namespace novaq::ui {

namespace {

constexpr int kMaxRecent = 8;
const char* const kRecentKey = "recentModels";

bool looksLikeNovaq(const QString& path)
{
    QFile f(path);
    if (!QFileInfo(path).isFile() || !f.open(QIODevice::ReadOnly))
        return false;
    const QByteArray head = f.read(64);
    return isNovaqHeader(std::as_bytes(std::span(head.constData(), size_t(head.size()))));
}

// Resident memory of this process from /proc (Linux); 0 when unknown.
uint64_t residentBytes()
{
    std::ifstream status("/proc/self/status");
    std::string key;
    while (status >> key) {
        if (key == "VmRSS:") {
            uint64_t kb = 0;
            status >> kb;
            return kb * 1024;
        }
        status.ignore(1 << 12, '\n');
    }
    return 0;
}

// Whether `source` is the demo model (its held-out text is the quality check's sample): the
// folder demoModelPath() finds, or a copy of it under the same name.
bool isDemoModel(const QString& source)
{
    if (source.isEmpty())
        return false;
    try {
        const std::filesystem::path demo = demoModelPath(QCoreApplication::applicationFilePath().toStdString());
        std::error_code ec;
        const std::filesystem::path path = std::filesystem::weakly_canonical(source.toStdString(), ec);
        return path == demo || path.filename() == demo.filename();
    } catch (const Error&) {
        return false;
    }
}

} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent)
{
    setWindowTitle(tr("NOVAQ Studio"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/novaq-studio-256.png")));
    // 1280 x 800, or the whole available screen when it is smaller (every page works down to
    // 1024 x 600).
    resize(initialSize(screen() ? screen()->availableGeometry() : QRect()));

    auto* central = new QWidget(this);
    auto* hbox = new QHBoxLayout(central);
    hbox->setContentsMargins(0, 0, 0, 0);
    hbox->setSpacing(0);

    // Left: brand and steps.
    auto* side = new QWidget(central);
    side->setObjectName(QStringLiteral("sidebar"));
    side->setFixedWidth(180); // narrow enough to leave the pages room at 1024 x 600
    side->setStyleSheet(
        QStringLiteral("#sidebar { background: palette(window); border-right: 1px solid palette(mid); }"));
    auto* sideLayout = new QVBoxLayout(side);
    sideLayout->setContentsMargins(12, 18, 12, 12);
    auto* brand = new QLabel(tr("NOVAQ\nStudio"), side);
    QFont bf = brand->font();
    bf.setPointSizeF(bf.pointSizeF() * 1.6);
    bf.setBold(true);
    brand->setFont(bf);
    auto* logo = new QLabel(side);
    logo->setPixmap(QIcon(QStringLiteral(":/icons/novaq-studio-256.png")).pixmap(40, 40));
    auto* brandRow = new QHBoxLayout;
    brandRow->addWidget(logo);
    brandRow->addWidget(brand, 1);
    sideLayout->addLayout(brandRow);
    sideLayout->addSpacing(18);
    m_steps = new QListWidget(side);
    m_steps->setFrameShape(QFrame::NoFrame);
    m_steps->setIconSize(QSize(22, 22));
    m_steps->setAccessibleName(tr("Steps"));
    m_steps->setToolTip(tr("The steps; a step opens once the one before it is done."));
    m_steps->setStyleSheet(QStringLiteral("QListWidget { background: transparent; font-size: 11pt; }"
                                          "QListWidget::item { padding: 10px 6px; border-radius: 6px; }"
                                          "QListWidget::item:selected { background: %1; color: white; }"
                                          "QListWidget::item:disabled { color: palette(mid); }")
                               .arg(accentColor().name()));
    const std::array<QString, 5> names{tr("1  Model"), tr("2  Settings"), tr("3  Compress"), tr("4  Results"),
                                       tr("5  Try it")};
    const std::array<QString, 5> tips{tr("Choose the model to compress."), tr("Choose how small it should be."),
                                      tr("Watch it compress."), tr("Read the figures of the compressed file."),
                                      tr("Chat with the compressed model beside the original, and check its quality.")};
    for (size_t i = 0; i < names.size(); ++i) {
        auto* item = new QListWidgetItem(names[i], m_steps);
        item->setToolTip(tips[i]);
    }
    sideLayout->addWidget(m_steps, 1);
    hbox->addWidget(side);

    // Right: chip and pages.
    auto* right = new QWidget(central);
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->setSpacing(0);
    auto* chipRow = new QHBoxLayout;
    chipRow->setContentsMargins(24, 12, 24, 0);
    m_chip = new ElidedLabel(Qt::ElideMiddle, right);
    m_chip->setText(tr("No model yet"));
    m_chip->setObjectName(QStringLiteral("modelChip"));
    m_chip->setStyleSheet(QStringLiteral("#modelChip { border: 1px solid %1; border-radius: 14px; padding: 4px 14px; }")
                              .arg(accentColor().name()));
    m_chip->setToolTip(tr("The model you are working on."));
    m_chip->setAccessibleName(tr("Current model"));
    m_chip->setSizePolicy(QSizePolicy::Maximum, QSizePolicy::Preferred);
    chipRow->addWidget(m_chip, 1, Qt::AlignLeft);
    rightLayout->addLayout(chipRow);
    m_pages = new QStackedWidget(right);
    m_modelPage = new ModelPage(m_pages);
    m_settingsPage = new SettingsPage(m_pages);
    m_compressPage = new CompressPage(m_pages);
    m_resultsPage = new ResultsPage(m_pages);
    m_tryItPage = new TryItPage(m_pages);
    for (QWidget* page :
         std::initializer_list<QWidget*>{m_modelPage, m_settingsPage, m_compressPage, m_resultsPage, m_tryItPage})
        m_pages->addWidget(page);
    rightLayout->addWidget(m_pages, 1);
    hbox->addWidget(right, 1);
    setCentralWidget(central);

    connect(m_steps, &QListWidget::currentRowChanged, m_pages, &QStackedWidget::setCurrentIndex);
    m_steps->setCurrentRow(0);
    setStepEnabled(Step::Settings, false);
    setStepEnabled(Step::Compress, false);
    setStepEnabled(Step::Results, false);
    setStepEnabled(Step::TryIt, false);

    // Status bar.
    m_threadsLabel = new QLabel(tr("%n thread(s)", nullptr, QThread::idealThreadCount()), this);
    m_memoryLabel = new QLabel(this);
    auto* version = new QLabel(tr("engine %1").arg(QStringLiteral(NOVAQ_VERSION)), this);
    statusBar()->addPermanentWidget(m_threadsLabel);
    statusBar()->addPermanentWidget(m_memoryLabel);
    statusBar()->addPermanentWidget(version);
    updateMemory();
    auto* memTimer = new QTimer(this);
    connect(memTimer, &QTimer::timeout, this, &MainWindow::updateMemory);
    memTimer->start(2000);

    m_job = new CompressJob(this);
    connect(m_job, &CompressJob::started, m_compressPage, &CompressPage::onStarted);
    connect(m_job, &CompressJob::progress, m_compressPage, &CompressPage::onProgress);
    connect(m_job, &CompressJob::tensorFinished, m_compressPage, &CompressPage::onTensorFinished);
    connect(m_job, &CompressJob::failed, m_compressPage, &CompressPage::onFailed);
    connect(m_job, &CompressJob::cancelled, m_compressPage, &CompressPage::onCancelled);
    connect(m_job, &CompressJob::finished, this, [this](const ModelReport& report) {
        m_compressPage->onFinished(report);
        m_resultsPage->showReport(report);
        const QString source = QString::fromStdString(m_job->options().input.string());
        m_tryItPage->setModels(QString::fromStdString(report.output.string()), source, isDemoModel(source));
        setStepEnabled(Step::Results, true);
        setStepEnabled(Step::TryIt, true);
        goTo(Step::Results);
    });
    connect(m_compressPage, &CompressPage::cancelRequested, m_job, &CompressJob::cancel);
    // Esc cancels a run whatever has the focus in the window (a chart, the table, the step
    // list), but only on the Compress step.
    m_cancelShortcut = new QShortcut(QKeySequence(Qt::Key_Escape), this);
    m_cancelShortcut->setContext(Qt::WindowShortcut);
    m_cancelShortcut->setEnabled(false);
    connect(m_cancelShortcut, &QShortcut::activated, m_compressPage, &CompressPage::requestCancel);
    connect(m_pages, &QStackedWidget::currentChanged, this,
            [this](int index) { m_cancelShortcut->setEnabled(index == int(Step::Compress)); });
    connect(m_compressPage, &CompressPage::backToSettings, this, [this] { goTo(Step::Settings); });
    connect(m_modelPage, &ModelPage::openRequested, this, &MainWindow::openPath);
    connect(m_modelPage, &ModelPage::demoRequested, this, &MainWindow::openDemoModel);
    connect(m_settingsPage, &SettingsPage::compressRequested, this, &MainWindow::startCompression);
    connect(m_resultsPage, &ResultsPage::compressAnother, this, [this] { goTo(Step::Model); });
    connect(m_resultsPage, &ResultsPage::tryItRequested, this, [this] { goTo(Step::TryIt); });
    // A quality check goes into the report of the file it checked.
    connect(m_tryItPage, &TryItPage::qualityChecked, this, [this](const QualityCheck& check) {
        if (QString::fromStdString(m_resultsPage->report().output.string()) == m_tryItPage->compressedPath())
            m_resultsPage->setQuality(check);
    });

    appsettings::captureEnvironment();
    appsettings::applyToEnvironment();
    m_settingsPage->setThreads(appsettings::threads());

    // Keyboard: Return or Enter presses the focused button (outside dialogs Qt does that only
    // for auto-default buttons), and Tab leaves a table instead of walking its cells.
    for (QPushButton* button : findChildren<QPushButton*>())
        button->setAutoDefault(true);
    for (QAbstractItemView* view : findChildren<QAbstractItemView*>())
        view->setTabKeyNavigation(false);

    QSettings settings;
    m_modelPage->setRecent(settings.value(QString::fromLatin1(kRecentKey)).toStringList());
    buildMenus();
}

MainWindow::~MainWindow() = default;

QSize MainWindow::initialSize(const QRect& available)
{
    const QSize preferred(1280, 800);
    if (!available.isValid())
        return preferred;
    return preferred.boundedTo(available.size());
}

void MainWindow::buildMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* open = file->addAction(tr("&Open..."));
    open->setShortcut(QKeySequence::Open);
    open->setToolTip(tr("Open a model to compress or a .novaq file to read."));
    connect(open, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getOpenFileName(
            this, tr("Open a model or a .novaq file"), {},
            tr("Models and NOVAQ files (*.novaq *.safetensors *.gguf *.bin *.pt *.pth *.onnx);;All files (*)"));
        if (!path.isEmpty())
            openPath(path);
    });
    QAction* demo = file->addAction(tr("Open the &demo model"));
    connect(demo, &QAction::triggered, this, &MainWindow::openDemoModel);
    file->addSeparator();
    QAction* prefs = file->addAction(tr("&Settings..."));
    prefs->setShortcut(QKeySequence::Preferences);
    prefs->setToolTip(tr("Hugging Face token, cache folders and threads."));
    connect(prefs, &QAction::triggered, this, [this] {
        SettingsDialog dialog(this);
        if (dialog.exec() == QDialog::Accepted)
            m_settingsPage->setThreads(appsettings::threads());
    });
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"));
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    QAction* guide = help->addAction(tr("&Guide"));
    guide->setObjectName(QStringLiteral("guideAction"));
    guide->setShortcut(QKeySequence(Qt::Key_F1));
    guide->setToolTip(tr("What compression does, which preset to pick and what the numbers mean."));
    connect(guide, &QAction::triggered, this, [this] {
        // One guide, kept open beside the window while the user works.
        auto* dialog = findChild<HelpDialog*>();
        if (!dialog)
            dialog = new HelpDialog(this);
        dialog->show();
        dialog->raise();
        dialog->activateWindow();
    });
    help->addSeparator();
    QAction* about = help->addAction(tr("&About NOVAQ Studio"));
    connect(about, &QAction::triggered, this, [this] {
        QMessageBox::about(this, tr("About NOVAQ Studio"),
                           tr("<b>NOVAQ Studio %1</b><p>Compress large language models with NOVAQ.</p>")
                               .arg(QStringLiteral(NOVAQ_VERSION)));
    });
}

void MainWindow::goTo(Step step)
{
    setStepEnabled(step, true);
    m_steps->setCurrentRow(int(step));
}

MainWindow::Step MainWindow::currentStep() const { return Step(m_pages->currentIndex()); }

bool MainWindow::isStepEnabled(Step step) const
{
    return m_steps->item(int(step))->flags().testFlag(Qt::ItemIsEnabled);
}

void MainWindow::setStepEnabled(Step step, bool enabled)
{
    QListWidgetItem* item = m_steps->item(int(step));
    item->setFlags(enabled ? (Qt::ItemIsEnabled | Qt::ItemIsSelectable) : Qt::NoItemFlags);
}

QString MainWindow::modelChipText() const { return m_chip->text(); }

void MainWindow::showOpenError(ErrorKind kind, const QString& message, const QString& path)
{
    m_modelPage->setBusy(false);
    m_modelPage->showError(nullptr, wordError(kind, message, ErrorContext::OpenModel, path));
    goTo(Step::Model);
    Q_EMIT openFailed(message);
}

void MainWindow::openDemoModel()
{
    try {
        const auto path = demoModelPath(QCoreApplication::applicationFilePath().toStdString());
        openPath(QString::fromStdString(path.string()));
    } catch (const Error& e) {
        showOpenError(e.kind(), QString::fromStdString(e.what()), {});
    }
}

void MainWindow::openPath(const QString& path)
{
    if (m_job->isRunning()) {
        m_compressPage->banner()->showInfo(tr("A compression is running"),
                                           tr("Cancel it or let it finish before opening another model."));
        goTo(Step::Compress);
        return;
    }
    m_modelPage->clearError();
    m_modelPage->setBusy(true, tr("Reading %1...").arg(path));
    const std::filesystem::path p = path.toStdString();
    if (looksLikeNovaq(path)) {
        runTask<ModelReport>(
            this,
            [p] {
                NovaqFile file(p);
                return reportFromManifest(file.manifest(), p, file.fileSize());
            },
            [this, path](TaskOutcome<ModelReport> outcome) {
                if (!outcome.value) {
                    showOpenError(outcome.kind, outcome.error, path);
                    return;
                }
                m_modelPage->setBusy(false);
                // The chip names the .novaq file now, so Settings and Compress must not go on
                // compressing the model opened before: they close until a model is opened.
                m_modelLabel.clear();
                m_settingsPage->clearModel();
                setStepEnabled(Step::Settings, false);
                setStepEnabled(Step::Compress, false);
                m_chip->setText(tr("%1 - compressed file - %2")
                                    .arg(QFileInfo(path).fileName(), sizeText(outcome.value->fileBytes)));
                m_resultsPage->showReport(*outcome.value);
                // The original is the source the file names (the page says so when it is not there).
                const QString source = QString::fromStdString(outcome.value->source);
                m_tryItPage->setModels(path, source, isDemoModel(source));
                setStepEnabled(Step::Results, true);
                setStepEnabled(Step::TryIt, true);
                goTo(Step::Results);
                Q_EMIT novaqOpened();
            });
        return;
    }
    const CompressOptions defaults;
    runTask<ModelInspection>(
        this, [p, codec = defaults.codec] { return inspectModel(p, codec); },
        [this, path](TaskOutcome<ModelInspection> outcome) {
            if (!outcome.value) {
                showOpenError(outcome.kind, outcome.error, path);
                return;
            }
            m_modelPage->setBusy(false);
            const ModelInspection& m = *outcome.value;
            QString name = QFileInfo(path).fileName();
            if (name.isEmpty())
                name = path;
            m_modelLabel = name;
            m_chip->setText(
                tr("%1 - %2 params - %3 - %4")
                    .arg(name, paramsText(m.params()), sizeText(m.sourceBytes()), QString::fromStdString(m.format)));
            m_settingsPage->setModel(m, name);
            rememberRecent(path);
            setStepEnabled(Step::Compress, false);
            goTo(Step::Settings);
            Q_EMIT modelOpened();
        });
}

void MainWindow::rememberRecent(const QString& path)
{
    QSettings settings;
    QStringList recent = settings.value(QString::fromLatin1(kRecentKey)).toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kMaxRecent)
        recent.removeLast();
    settings.setValue(QString::fromLatin1(kRecentKey), recent);
    m_modelPage->setRecent(recent);
}

void MainWindow::startCompression(const CompressOptions& options)
{
    m_compressPage->begin(m_modelLabel, QString::fromStdString(options.output.string()));
    goTo(Step::Compress);
    setStepEnabled(Step::Results, false);
    setStepEnabled(Step::TryIt, false);
    m_tryItPage->setModels({}, {}, false); // frees the models tried before, for the compression
    m_threadsLabel->setText(
        tr("%n thread(s)", nullptr, options.threads > 0 ? options.threads : QThread::idealThreadCount()));
    if (!m_job->start(options))
        m_compressPage->banner()->showInfo(tr("A compression is running"), tr("Wait for it to finish or cancel it."));
}

void MainWindow::updateMemory()
{
    const uint64_t rss = residentBytes();
    m_memoryLabel->setText(rss ? tr("%1 in use").arg(sizeText(rss)) : QString());
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (m_job->isRunning()) {
        const auto answer = QMessageBox::question(this, tr("Stop the compression?"),
                                                  tr("A compression is running. Quit and throw away its work?"));
        if (answer != QMessageBox::Yes) {
            event->ignore();
            return;
        }
        m_job->cancel();
    }
    event->accept();
}

} // namespace novaq::ui
