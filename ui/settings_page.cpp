#include "ui/settings_page.h"

#include "ui/charts.h"
#include "ui/error_wording.h"
#include "ui/explanations.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include "novaq/codec/codec_spec.h"
#include "novaq/io/system_memory.h"
#include "novaq/pipeline/fit_memory.h"
#include "novaq/pipeline/planner.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QScrollArea>
#include <QShortcut>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardPaths>
#include <QTableView>
#include <QThread>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>
#include <climits>

namespace novaq::ui {

double estimatedRatio(const ModelInspection& inspection)
{
    return compressionRatio(inspection.sourceBytes(), inspection.estimatedFileBytes());
}

namespace {

QString capitalized(std::string_view label)
{
    QString s = QString::fromUtf8(label.data(), qsizetype(label.size()));
    if (!s.isEmpty())
        s[0] = s[0].toUpper();
    return s;
}

QLabel* sectionTitle(const QString& text, QWidget* parent)
{
    auto* label = new QLabel(text, parent);
    QFont f = label->font();
    f.setBold(true);
    f.setPointSizeF(f.pointSizeF() * 1.1);
    label->setFont(f);
    return label;
}

} // namespace

SettingsPage::SettingsPage(QWidget* parent) : QWidget(parent)
{
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(24, 16, 24, 16);
    auto* heading = new QLabel(tr("How small should it be?"), this);
    QFont hf = heading->font();
    hf.setPointSizeF(hf.pointSizeF() * 1.6);
    hf.setBold(true);
    heading->setFont(hf);
    outer->addWidget(heading);
    m_banner = new ErrorBanner(this);
    outer->addWidget(m_banner);
    m_sizeBanner = new ErrorBanner(this);
    m_sizeBanner->setObjectName(QStringLiteral("sizeWarning"));
    m_sizeBanner->setAccessibleName(tr("Size warning"));
    outer->addWidget(m_sizeBanner);

    auto* splitter = new QSplitter(Qt::Horizontal, this);
    outer->addWidget(splitter, 1);

    // Left: the choices, in a scroll area (Advanced open on a 600-pixel-high screen does not fit),
    // with Compress below it, always in view.
    auto* leftColumn = new QWidget(splitter);
    auto* leftColumnLayout = new QVBoxLayout(leftColumn);
    leftColumnLayout->setContentsMargins(0, 0, 12, 0);
    auto* scroll = new VerticalScrollArea(leftColumn);
    m_scroll = scroll;
    scroll->setObjectName(QStringLiteral("settingsScroll"));
    leftColumnLayout->addWidget(scroll, 1);
    auto* left = new QWidget(scroll);
    scroll->setWidget(left);
    left->setAutoFillBackground(false); // the page shows through, in any palette
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(2, 2, 8, 2); // room for the cards' focus ring
    auto* cardGrid = new CardGrid(3, 120, left);
    m_cardGrid = cardGrid;
    const auto presets = bitsPresets();
    for (size_t i = 0; i < presets.size(); ++i) {
        const BitsPreset& p = presets[i];
        auto* card = new ChoiceCard(capitalized(p.label), tr("%1 bits per weight").arg(p.bits, 0, 'f', 1), left);
        card->setToolTip(tr("Compress to %1 bits per weight; fewer bits make a smaller file and a larger error.")
                             .arg(p.bits, 0, 'f', 1));
        cardGrid->addCard(card);
        // One card is checked at a time, kept so by hand: an exclusive group (auto-exclusive or
        // QButtonGroup) would let Tab reach the checked card only.
        connect(card, &ChoiceCard::clicked, this, [this, i] {
            setFitMode(FitMode::Preset);
            m_bitsSlider->setValue(int(i));
            selectCard(i);
        });
        connect(card, &ChoiceCard::moveFocusRequested, this, [this, i](int step) {
            // The previous or next card as shown (the cards are ordered by what they produce).
            const auto at = std::find(m_order.begin(), m_order.end(), i);
            const int next = int(at - m_order.begin()) + step;
            if (at != m_order.end() && next >= 0 && next < int(m_order.size()))
                m_cards[m_order[size_t(next)]]->setFocus(Qt::TabFocusReason);
        });
        m_cards.push_back(card);
        m_order.push_back(i);
    }
    leftLayout->addWidget(cardGrid);

    // Fit to: beside the cards, a size or this computer's memory instead of a preset.
    auto* fitForm = new QFormLayout;
    fitForm->setFieldGrowthPolicy(QFormLayout::ExpandingFieldsGrow);
    auto* fitRow = new QHBoxLayout;
    m_fitMode = new QComboBox(left);
    m_fitMode->addItem(tr("A card above"));
    m_fitMode->addItem(tr("A size"));
    m_fitMode->addItem(tr("This computer's memory"));
    m_fitMode->setToolTip(explain::fitTo());
    m_fitMode->setAccessibleName(tr("Fit to"));
    m_fitSize = new QLineEdit(left);
    m_fitSize->setPlaceholderText(tr("e.g. 2.5 MB or 4 GB"));
    m_fitSize->setToolTip(tr("The largest the compressed file may be: a number with a unit (MB, GB, MiB, GiB)."));
    m_fitSize->setAccessibleName(tr("Fit to size"));
    m_fitContextLabel = new QLabel(tr("Context"), left);
    m_fitContext = new QSpinBox(left);
    m_fitContext->setRange(0, 1 << 20);
    m_fitContext->setSingleStep(512);
    m_fitContext->setSpecialValueText(tr("Model's"));
    m_fitContext->setSuffix(tr(" tokens"));
    m_fitContext->setToolTip(explain::fitContext());
    m_fitContext->setAccessibleName(tr("Context length"));
    m_fitContext->setMaximumWidth(m_fitContext->fontMetrics().horizontalAdvance(QStringLiteral("0000000 tokens")) + 40);
    m_fitContextLabel->setToolTip(explain::fitContext());
    m_fitContextLabel->setBuddy(m_fitContext);
    fitRow->addWidget(m_fitMode);
    fitRow->addWidget(m_fitSize, 1);
    fitRow->addWidget(m_fitContextLabel);
    fitRow->addWidget(m_fitContext);
    fitRow->addStretch(); // the size field takes the room when shown (stretch 1), else the choice stays compact
    m_fitMode->setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Fixed);
    fitForm->addRow(tr("Fit to"), fitRow);
    if (QWidget* label = fitForm->labelForField(fitRow))
        label->setToolTip(explain::fitTo());
    leftLayout->addLayout(fitForm);
    m_fitResult = new QLabel(left);
    m_fitResult->setWordWrap(true);
    m_fitResult->setAccessibleName(tr("Fit to result"));
    leftLayout->addWidget(m_fitResult);
    m_systemMemory = [] { return physicalMemoryBytes(); };
    connect(m_fitMode, &QComboBox::currentIndexChanged, this, [this] {
        showFitControls();
        refreshFit();
    });
    connect(m_fitSize, &QLineEdit::editingFinished, this, [this] {
        if (fitMode() == FitMode::Size)
            refreshFit();
    });
    connect(m_fitContext, &QSpinBox::editingFinished, this, [this] {
        if (fitMode() == FitMode::Memory)
            refreshFit();
    });
    for (QWidget* w : {static_cast<QWidget*>(m_fitSize), static_cast<QWidget*>(m_fitContextLabel),
                       static_cast<QWidget*>(m_fitContext), static_cast<QWidget*>(m_fitResult)})
        w->setVisible(false); // until Fit to is used (showFitControls)

    auto* form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::ExpandingFieldsGrow);
    auto* bitsRow = new QHBoxLayout;
    m_bitsSlider = new QSlider(Qt::Horizontal, left);
    m_bitsSlider->setRange(0, int(presets.size()) - 1);
    m_bitsSlider->setPageStep(1);
    m_bitsSlider->setTickPosition(QSlider::TicksBelow);
    m_bitsSlider->setToolTip(explain::bitsPerWeight());
    m_bitsSlider->setAccessibleName(tr("Bits per weight"));
    m_bitsValue = new QLabel(left);
    bitsRow->addWidget(m_bitsSlider, 1);
    bitsRow->addWidget(m_bitsValue);
    form->addRow(tr("Bits per weight"), bitsRow);
    m_subspaces = new QSpinBox(left);
    m_subspaces->setRange(kCodecLimits.subspaces.min, kCodecLimits.subspaces.max);
    m_subspaces->setValue(CompressOptions{}.codec.subspaces());
    m_subspaces->setToolTip(explain::subspaces());
    m_subspaces->setAccessibleName(tr("Subspaces"));
    form->addRow(tr("Subspaces"), m_subspaces);
    leftLayout->addLayout(form);

    m_advancedToggle = new QCheckBox(tr("Advanced"), left);
    m_advancedToggle->setToolTip(tr("Show the settings most people never need to change."));
    leftLayout->addWidget(m_advancedToggle);
    m_advanced = new QWidget(left);
    auto* advForm = new QFormLayout(m_advanced);
    advForm->setContentsMargins(20, 0, 0, 0);
    advForm->setFieldGrowthPolicy(QFormLayout::ExpandingFieldsGrow);
    m_vectorLength = new QSpinBox(m_advanced);
    m_vectorLength->setRange(0, kCodecLimits.d.max); // 0: as the preset
    m_vectorLength->setSpecialValueText(tr("As the preset"));
    m_vectorLength->setToolTip(explain::vectorLength());
    m_vectorLength->setAccessibleName(tr("Vector length"));
    advForm->addRow(tr("Vector length"), m_vectorLength);
    m_seed = new QSpinBox(m_advanced);
    m_seed->setRange(0, INT_MAX);
    m_seed->setValue(int(CompressOptions{}.seed));
    m_seed->setToolTip(explain::seed());
    m_seed->setAccessibleName(tr("Seed"));
    advForm->addRow(tr("Seed"), m_seed);
    m_threads = new QSpinBox(m_advanced);
    m_threads->setRange(0, 1024);
    m_threads->setSpecialValueText(tr("All cores (%1)").arg(QThread::idealThreadCount()));
    m_threads->setToolTip(explain::threads());
    m_threads->setAccessibleName(tr("Threads"));
    advForm->addRow(tr("Threads"), m_threads);
    const QString calibrationTip = explain::calibration();
    auto* calibrationRow = new QHBoxLayout;
    m_calibration = new QLineEdit(m_advanced);
    m_calibration->setPlaceholderText(tr("None"));
    m_calibration->setClearButtonEnabled(true);
    m_calibration->setToolTip(calibrationTip);
    m_calibration->setAccessibleName(tr("Calibration text"));
    auto* calibrationBrowse = new QPushButton(tr("Choose..."), m_advanced);
    calibrationBrowse->setToolTip(tr("Pick the plain-text file to calibrate with."));
    calibrationBrowse->setAccessibleName(tr("Choose calibration text"));
    calibrationRow->addWidget(m_calibration, 1);
    calibrationRow->addWidget(calibrationBrowse);
    advForm->addRow(tr("Calibration text"), calibrationRow);
    if (QWidget* label = advForm->labelForField(calibrationRow))
        label->setToolTip(calibrationTip);
    connect(calibrationBrowse, &QPushButton::clicked, this, [this] {
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Choose the calibration text"), m_calibration->text(),
                                         tr("Text files (*.txt *.text *.raw);;All files (*)"));
        if (!path.isEmpty())
            m_calibration->setText(path);
    });
    // With calibration text a fit is planned by the model's measured sensitivity (as the run
    // plans it): a new text plans the fit again.
    connect(m_calibration, &QLineEdit::editingFinished, this, [this] {
        if (fitMode() != FitMode::Preset)
            refreshFit();
    });
    m_advanced->setVisible(false);
    connect(m_advancedToggle, &QCheckBox::toggled, this, [this, scroll](bool on) {
        m_advanced->setVisible(on);
        if (on) // bring the opened settings into view (on a small screen they are below the fold)
            QTimer::singleShot(0, scroll, [scroll, this] { scroll->ensureWidgetVisible(m_advanced, 0, 8); });
    });
    leftLayout->addWidget(m_advanced);

    auto* outRow = new QHBoxLayout;
    m_output = new QLineEdit(left);
    m_output->setToolTip(tr("Where the compressed .novaq file is written."));
    m_output->setAccessibleName(tr("Output file"));
    auto* outBrowse = new QPushButton(tr("Choose..."), left);
    outBrowse->setToolTip(tr("Pick the folder and name of the compressed file."));
    outBrowse->setAccessibleName(tr("Choose output file"));
    outRow->addWidget(m_output, 1);
    outRow->addWidget(outBrowse);
    auto* outForm = new QFormLayout;
    outForm->addRow(tr("Output file"), outRow);
    leftLayout->addLayout(outForm);
    connect(m_output, &QLineEdit::textChanged, this, &SettingsPage::checkOutput);
    connect(outBrowse, &QPushButton::clicked, this, [this] {
        const QString path =
            QFileDialog::getSaveFileName(this, tr("Save the compressed model as"), m_output->text(),
                                         tr("NOVAQ files (*.novaq)"), nullptr, QFileDialog::DontConfirmOverwrite);
        if (!path.isEmpty())
            m_output->setText(path.endsWith(QStringLiteral(".novaq")) ? path : path + QStringLiteral(".novaq"));
    });

    leftLayout->addStretch();
    m_compress = new QPushButton(tr("Compress"), leftColumn);
    m_compress->setObjectName(QStringLiteral("primary"));
    m_compress->setMinimumHeight(40);
    m_compress->setToolTip(tr("Start compressing with these settings (Ctrl+Return)."));
    m_compress->setAccessibleName(tr("Compress"));
    leftColumnLayout->addWidget(m_compress);
    m_compress->setEnabled(false); // until a model is open
    connect(m_compress, &QPushButton::clicked, this, &SettingsPage::requestCompress);
    auto* shortcut = new QShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return), this);
    shortcut->setContext(Qt::WidgetWithChildrenShortcut);
    connect(shortcut, &QShortcut::activated, this, &SettingsPage::requestCompress);

    // Right: the preview.
    auto* right = new QWidget(splitter);
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(12, 0, 0, 0);
    rightLayout->addWidget(sectionTitle(tr("Preview"), right));
    m_previewModel = new ElidedLabel(Qt::ElideMiddle, right);
    rightLayout->addWidget(m_previewModel);
    // Size and ratio side by side, bits per weight below: the three fit a narrow preview.
    auto* figures = new QGridLayout;
    figures->setHorizontalSpacing(20);
    figures->setVerticalSpacing(2);
    m_previewSize = new QLabel(right);
    m_previewRatio = new QLabel(right);
    m_previewBits = new QLabel(right);
    for (QLabel* l : {m_previewSize, m_previewRatio, m_previewBits}) {
        QFont f = l->font();
        f.setPointSizeF(f.pointSizeF() * 1.3);
        f.setBold(true);
        l->setFont(f);
        l->setWordWrap(true);
    }
    figures->addWidget(m_previewSize, 0, 0);
    figures->addWidget(m_previewRatio, 0, 1);
    figures->addWidget(m_previewBits, 1, 0, 1, 2);
    figures->setColumnStretch(2, 1);
    m_previewSize->setToolTip(tr("The estimated size of the compressed file, everything included."));
    m_previewRatio->setToolTip(tr("How many times smaller than the source the file should be."));
    m_previewBits->setToolTip(explain::bitsPerWeight());
    rightLayout->addLayout(figures);
    m_previewWhy = new QLabel(right);
    m_previewWhy->setWordWrap(true);
    m_previewWhy->setAccessibleName(tr("Why the bits per weight differ from the chosen ones"));
    m_previewWhy->setToolTip(tr("Everything the file stores counts: tensors kept as they are, codebooks and "
                                "scales, and the file's index."));
    rightLayout->addWidget(m_previewWhy);
    m_previewCost = new QLabel(right);
    m_previewCost->setWordWrap(true);
    m_previewCost->setAccessibleName(tr("Estimated time and memory"));
    m_previewCost->setToolTip(tr("Estimated from a short test run on this computer and from the largest tensor; the "
                                 "real run may differ."));
    rightLayout->addWidget(m_previewCost);
    // The fitted plan's bits per tensor (Fit to), above the table of what happens to each.
    m_allocation = new AllocationChart(right);
    m_allocation->setToolTip(explain::allocationChart());
    m_allocation->setAccessibleName(tr("Bits per tensor of the fitted plan"));
    m_allocation->setFixedHeight(150);
    m_allocation->setVisible(false);
    rightLayout->addWidget(m_allocation);
    m_planModel = new TensorPlanModel(this);
    m_table = new QTableView(right);
    m_table->setModel(m_planModel);
    m_table->setAlternatingRowColors(true);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->verticalHeader()->hide();
    m_table->setWordWrap(false);
    m_table->setTextElideMode(Qt::ElideMiddle);
    // What happens to each tensor must stay in view at 1280 x 800: the name takes the room the
    // other columns leave (elided in the middle); kind and the technical how/why are in every
    // row's tooltip instead of columns of their own.
    m_table->setColumnHidden(TensorPlanModel::Kind, true);
    m_table->setColumnHidden(TensorPlanModel::Why, true);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setSectionResizeMode(TensorPlanModel::Name, QHeaderView::Stretch);
    m_table->horizontalHeader()->setStretchLastSection(false);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 8);
    m_table->setToolTip(tr("What will happen to each tensor: compressed, or kept as it is and why."));
    m_table->setAccessibleName(tr("Tensors and what will happen to them"));
    rightLayout->addWidget(m_table, 1);
    m_table->installEventFilter(this); // hides the Shape column when the table is narrow
    splitter->setStretchFactor(0, 5);
    splitter->setStretchFactor(1, 6);
    splitter->setChildrenCollapsible(false);

    connect(m_bitsSlider, &QSlider::valueChanged, this, [this](int i) {
        selectCard(size_t(i));
        const BitsPreset& p = bitsPresets()[size_t(i)];
        m_bitsValue->setText(tr("%1 bits (%2)").arg(p.bits, 0, 'f', 1).arg(presetTitle(size_t(i)).toLower()));
        showPreview();
    });
    connect(m_subspaces, &QSpinBox::valueChanged, this, &SettingsPage::refreshEstimates);
    connect(m_subspaces, &QSpinBox::valueChanged, this, &SettingsPage::refreshFit);
    connect(m_threads, &QSpinBox::valueChanged, this, &SettingsPage::refreshEstimates);
    connect(m_vectorLength, &QSpinBox::valueChanged, this, &SettingsPage::refreshEstimates);
    setBits(CompressOptions{}.codec.bits());
    m_bitsValue->setText(
        tr("%1 bits (%2)").arg(bits(), 0, 'f', 1).arg(capitalized(bitsPresets()[size_t(m_bitsSlider->value())].label)));
}

bool SettingsPage::eventFilter(QObject* watched, QEvent* event)
{
    // On a small screen the preview is narrow: the tensor names need the room more than the
    // shapes do (each row's tooltip still gives the shape).
    if (watched == m_table && event->type() == QEvent::Resize)
        m_table->setColumnHidden(TensorPlanModel::Shape, m_table->width() < 420);
    return QWidget::eventFilter(watched, event);
}

void SettingsPage::setBits(double value)
{
    const auto presets = bitsPresets();
    for (size_t i = 0; i < presets.size(); ++i)
        if (std::abs(presets[i].bits - value) < 1e-9) {
            m_bitsSlider->setValue(int(i));
            selectCard(i);
        }
}

void SettingsPage::selectCard(size_t index)
{
    for (size_t j = 0; j < m_cards.size(); ++j)
        m_cards[j]->setChecked(j == index);
}

double SettingsPage::bits() const { return bitsPresets()[size_t(m_bitsSlider->value())].bits; }

void SettingsPage::setOutputPath(const QString& path) { m_output->setText(path); }

void SettingsPage::setModel(const ModelInspection& inspection, const QString& label)
{
    m_model = inspection;
    m_label = label;
    m_banner->clear();
    // A default output beside the documents, named after the model.
    QString base = QFileInfo(QString::fromStdString(inspection.path.string())).completeBaseName();
    if (base.isEmpty())
        base = QStringLiteral("model");
    QString folder = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
    if (folder.isEmpty() || !QDir(folder).exists())
        folder = QDir::homePath();
    m_output->setText(QDir(folder).filePath(base + QStringLiteral(".novaq")));
    m_bannerIsOutput = false;
    checkOutput();
    m_previewModel->setText(tr("%1 - %2 - %3 parameters - %n tensor(s) - %4", nullptr, int(inspection.tensors.size()))
                                .arg(label, QString::fromStdString(inspection.format))
                                .arg(paramsText(inspection.params()))
                                .arg(sizeText(inspection.sourceBytes())));
    refreshEstimates();
    refreshFit();
}

void SettingsPage::clearModel()
{
    ++m_generation; // an estimate on its way is for the old model
    m_model = {};
    m_label.clear();
    m_pending = 0;
    m_estimates.clear();
    m_haveEstimates = false;
    m_banner->clear();
    m_bannerIsOutput = false;
    m_previewModel->setText(tr("No model: choose one on the Model step."));
    m_fitPlan.reset();
    ++m_fitGeneration;
    m_fitPending = 0;
    showFitControls();
    showCards();
    showPreview();
    checkOutput();
}

QString SettingsPage::outputProblem() const
{
    const QString path = m_output->text().trimmed();
    if (path.isEmpty())
        return tr("Type or choose where the compressed file should go.");
    const QFileInfo file(path);
    if (file.isDir())
        return tr("%1 is a folder. Add a file name, such as model.novaq.").arg(path);
    const QFileInfo folder(file.absolutePath());
    if (!folder.exists())
        return tr("The folder %1 does not exist. Create it, or choose another output file.").arg(folder.filePath());
    if (!folder.isDir())
        return tr("%1 is a file, not a folder. Choose another output file.").arg(folder.filePath());
    if (!folder.isWritable() || (file.exists() && !file.isWritable()))
        return tr("You may not write to %1. Choose a folder of your own, such as your Documents.")
            .arg(file.exists() ? path : folder.filePath());
    return {};
}

void SettingsPage::checkOutput()
{
    const QString problem = outputProblem();
    if (!problem.isEmpty() && hasModel()) {
        m_banner->showError(tr("The compressed file cannot be written there"), problem);
        m_bannerIsOutput = true;
    } else if (m_bannerIsOutput) {
        m_banner->clear();
        m_bannerIsOutput = false;
    }
    m_compress->setEnabled(hasModel() && problem.isEmpty());
}

void SettingsPage::refreshEstimates()
{
    if (m_model.path.empty())
        return;
    const int generation = ++m_generation;
    m_pending = 1;
    if (!m_bannerIsOutput)
        m_banner->clear(); // an old estimate's error; a new estimate is on its way
    for (ChoiceCard* card : m_cards)
        card->setEstimate(tr("estimating..."));
    const std::filesystem::path path = m_model.path;
    const int subspaces = m_subspaces->value();
    const int threads = m_threads->value();
    const int vectorLength = m_vectorLength->value();
    struct Estimates {
        std::vector<PresetEstimate> presets;
        std::vector<double> seconds;
        std::vector<uint64_t> peakBytes;
    };
    runTask<Estimates>(
        this,
        [path, subspaces, threads, vectorLength] {
            // Every preset on this model, from the engine's (analytic) planner: sizes, bits, order.
            Estimates all;
            all.presets = estimatePresets(path, subspaces, vectorLength);
            for (const PresetEstimate& e : all.presets) {
                all.seconds.push_back(
                    estimatedSeconds(e.inspection, calibratedEncodeRate(e.inspection.codec.resolve(), threads)));
                all.peakBytes.push_back(estimatedPeakBytes(e.inspection));
            }
            return all;
        },
        [this, generation](TaskOutcome<Estimates> outcome) {
            if (generation != m_generation)
                return; // a newer request is on its way
            m_pending = 0;
            if (!outcome.value) {
                m_estimates.clear();
                m_haveEstimates = false;
                m_banner->showError(wordError(outcome.kind, outcome.error, ErrorContext::Estimate,
                                              QString::fromStdString(m_model.path.string())));
                m_bannerIsOutput = false;
                showCards();
                return;
            }
            m_estimates = std::move(outcome.value->presets);
            m_seconds = std::move(outcome.value->seconds);
            m_peakBytes = std::move(outcome.value->peakBytes);
            m_haveEstimates = true;
            showCards();
            m_bitsValue->setText(
                tr("%1 bits (%2)").arg(bits(), 0, 'f', 1).arg(presetTitle(size_t(m_bitsSlider->value())).toLower()));
            showPreview();
            Q_EMIT estimatesUpdated();
        });
}

void SettingsPage::showPreview()
{
    if (m_fitPlan && fitMode() != FitMode::Preset) {
        const ModelInspection& e = *m_fitPlan;
        m_previewSize->setText(tr("about %1").arg(sizeText(e.estimatedFileBytes())));
        m_previewRatio->setText(tr("%1 smaller").arg(ratioText(estimatedRatio(e))));
        m_previewBits->setText(tr("%1 bits per weight").arg(bitsText(e.estimatedEffectiveBits())));
        const QString quality = explain::predictedQuality(e.predictedError);
        m_previewWhy->setText(
            quality.isEmpty() ? QString()
                              : tr("Predicted quality: %1 (each tensor gets the bits it needs most).").arg(quality));
        m_previewCost->setText(e.runMemory.limit > 0
                                   ? tr("Runs in about %1: the model %2, its memory of %3 tokens %4, working space %5.")
                                         .arg(sizeText(e.runMemory.total()), sizeText(e.runMemory.weights))
                                         .arg(e.runMemory.context)
                                         .arg(sizeText(e.runMemory.kvCache), sizeText(e.runMemory.scratch))
                                   : QString());
        m_sizeBanner->clear();
        m_planModel->setInspection(e);
        return;
    }
    const auto i = size_t(m_bitsSlider->value());
    if (!m_haveEstimates || i >= m_estimates.size()) {
        m_previewSize->setText(QStringLiteral("-"));
        m_previewRatio->clear();
        m_previewBits->clear();
        m_previewWhy->clear();
        m_previewCost->clear();
        m_planModel->clear();
        m_sizeBanner->clear();
        return;
    }
    const ModelInspection& e = m_estimates[i].inspection;
    m_previewSize->setText(tr("about %1").arg(sizeText(e.estimatedFileBytes())));
    m_previewRatio->setText(e.notSmallerThanSource() ? tr("not smaller")
                                                     : tr("%1 smaller").arg(ratioText(estimatedRatio(e))));
    m_previewBits->setText(tr("%1 bits per weight").arg(bitsText(e.estimatedEffectiveBits())));
    QStringList why;
    if (e.sourceAlreadyCompressed())
        why << tr("This model is already %1 bits per weight; tensors that would not get smaller keep their "
                  "source encoding.")
                   .arg(QString::number(e.sourceBitsPerWeight(), 'f', 1));
    if (const QString extra = extraBitsText(m_estimates[i].breakdown); !extra.isEmpty())
        why << tr("%1 bits chosen: %2.").arg(e.codec.bits(), 0, 'f', 1).arg(extra);
    m_previewWhy->setText(why.join(QLatin1Char(' ')));
    if (const QString warning = sizeWarning(); !warning.isEmpty())
        m_sizeBanner->showError(tr("The file would not get smaller"), warning);
    else
        m_sizeBanner->clear();
    if (i < m_seconds.size() && i < m_peakBytes.size())
        m_previewCost->setText(tr("Estimated time: about %1 - estimated working memory: about %2")
                                   .arg(durationText(m_seconds[i]), sizeText(m_peakBytes[i])));
    m_planModel->setInspection(e);
}

QString SettingsPage::previewText() const
{
    return QStringList{m_previewSize->text(), m_previewRatio->text(), m_previewBits->text(), m_previewWhy->text(),
                       m_previewCost->text()}
        .join(QStringLiteral(" | "));
}

std::vector<ChoiceCard*> SettingsPage::cardsInDisplayOrder() const
{
    std::vector<ChoiceCard*> cards;
    for (size_t i : m_order)
        cards.push_back(m_cards[i]);
    return cards;
}

QString SettingsPage::presetTitle(size_t index) const
{
    if (index >= m_estimates.size())
        return index < bitsPresets().size() ? capitalized(bitsPresets()[index].label) : QString();
    const std::string& title = m_estimates[index].title;
    if (title == "no gain here")
        return tr("No gain here");
    if (title == "best here")
        return tr("Best here");
    return capitalized(title);
}

// Why the effective bits exceed the chosen ones, the largest part first: "tensors kept at 16
// bits (the embedding, small tensors) add 0.9 bits; codebooks and scales add 0.3".
QString SettingsPage::extraBitsText(const EstimateBreakdown& b) const
{
    std::vector<std::pair<double, QString>> parts;
    if (b.keptExtraBits >= 0.05) {
        QStringList kinds;
        if (b.keptEmbedding)
            kinds << tr("the embedding");
        if (b.keptSmall)
            kinds << tr("small tensors");
        if (b.keptNorms)
            kinds << tr("norms");
        QString what = b.keptAt16Params == 0 ? tr("tensors kept as the source stores them")
                       : b.keptSourceParams > 0
                           ? tr("tensors kept at 16 bits (%1) or as the source stores them").arg(kinds.join(tr(", ")))
                           : tr("tensors kept at 16 bits (%1)").arg(kinds.join(tr(", ")));
        parts.emplace_back(b.keptExtraBits, what);
    }
    if (b.quantizedExtraBits >= 0.05)
        parts.emplace_back(b.quantizedExtraBits,
                           b.moreBitsForSomeRoles ? tr("codebooks, scales and more bits for the embedding and output")
                                                  : tr("codebooks and scales"));
    if (b.fileExtraBits >= 0.05)
        parts.emplace_back(b.fileExtraBits, tr("the file's index and alignment"));
    std::stable_sort(parts.begin(), parts.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    QStringList text;
    for (const auto& [bitsAdded, what] : parts)
        text << tr("%1 add %2 bits").arg(what).arg(bitsAdded, 0, 'f', 1);
    return text.join(tr("; "));
}

QString SettingsPage::cardNote(size_t index) const
{
    const PresetEstimate& e = m_estimates[index];
    if (e.dominatedBy >= 0) {
        const PresetEstimate& d = m_estimates[size_t(e.dominatedBy)];
        return tr("Gains nothing: %1 (%2 bits) is no larger.")
            .arg(presetTitle(size_t(e.dominatedBy)))
            .arg(d.preset.bits, 0, 'f', 1);
    }
    if (e.notSmallerThanSource)
        return tr("Not smaller than the source, already %1 bits per weight.")
            .arg(QString::number(e.inspection.sourceBitsPerWeight(), 'f', 1));
    // The largest reason the effective bits exceed the chosen ones, in a few words.
    const EstimateBreakdown& b = e.breakdown;
    const double largest = std::max({b.keptExtraBits, b.quantizedExtraBits, b.fileExtraBits});
    if (largest < 0.05)
        return {};
    if (largest == b.keptExtraBits)
        return tr("Kept tensors add %1 bits.").arg(largest, 0, 'f', 1);
    if (largest == b.quantizedExtraBits)
        return b.moreBitsForSomeRoles
                   ? tr("Codebooks and more bits for embedding and output add %1 bits.").arg(largest, 0, 'f', 1)
                   : tr("Codebooks and scales add %1 bits.").arg(largest, 0, 'f', 1);
    return tr("The file's index adds %1 bits.").arg(largest, 0, 'f', 1);
}

void SettingsPage::showCards()
{
    const auto presets = bitsPresets();
    const bool have = m_estimates.size() == m_cards.size();
    m_order.clear();
    if (have)
        m_order = displayOrder(m_estimates);
    else
        for (size_t i = 0; i < m_cards.size(); ++i)
            m_order.push_back(i);
    for (size_t i = 0; i < m_cards.size(); ++i) {
        ChoiceCard* card = m_cards[i];
        const BitsPreset& p = presets[i];
        card->setTitle(presetTitle(i));
        if (!have) {
            card->setDetail(tr("%1 bits per weight").arg(p.bits, 0, 'f', 1));
            card->setEstimate({});
            card->setNote({});
            continue;
        }
        const PresetEstimate& e = m_estimates[i];
        // The figures count everything the file stores; the chosen bits are the codes' alone.
        const QString quality = explain::predictedQuality(presetRelativeError(p.bits));
        const QString bitsLine =
            tr("%1 bits chosen, %2 in all").arg(e.inspection.codec.bits(), 0, 'f', 1).arg(bitsText(e.effectiveBits));
        card->setDetail(quality.isEmpty() ? bitsLine
                                          : bitsLine + QLatin1Char('\n') + capitalized(quality.toStdString()));
        card->setEstimate(
            e.notSmallerThanSource
                ? tr("about %1\nnot smaller than the source").arg(sizeText(e.fileBytes))
                : tr("about %1\n%2 smaller").arg(sizeText(e.fileBytes), ratioText(estimatedRatio(e.inspection))));
        card->setNote(cardNote(i), e.dominatedBy >= 0 || e.notSmallerThanSource);
        QString tip = tr("Compress to %1 bits per weight; fewer bits make a smaller file and a larger error.")
                          .arg(p.bits, 0, 'f', 1);
        if (const QString extra = extraBitsText(e.breakdown); !extra.isEmpty())
            tip += QLatin1Char('\n') + tr("In all %1 bits per weight: %2.").arg(bitsText(e.effectiveBits), extra);
        if (e.dominatedBy >= 0 &&
            e.breakdown.keptAt16Params > m_estimates[size_t(e.dominatedBy)].breakdown.keptAt16Params)
            tip += QLatin1Char('\n') + tr("With fewer bits more tensors stay at 16 bits: their codebooks would cost "
                                          "more than they save.");
        card->setToolTip(tip);
    }
    QList<QWidget*> shown;
    for (size_t i : m_order)
        shown << m_cards[i];
    m_cardGrid->setCardOrder(shown);
    for (size_t k = 1; k < m_order.size(); ++k) // Tab follows the cards as shown
        QWidget::setTabOrder(m_cards[m_order[k - 1]], m_cards[m_order[k]]);
}

QString SettingsPage::sizeWarning() const
{
    const auto i = size_t(m_bitsSlider->value());
    if (!m_haveEstimates || i >= m_estimates.size() || !m_estimates[i].notSmallerThanSource)
        return {};
    const ModelInspection& e = m_estimates[i].inspection;
    QString text = tr("At %1 bits the compressed file would be about %2, not smaller than the source (%3): this "
                      "model is already %4 bits per weight.")
                       .arg(e.codec.bits(), 0, 'f', 1)
                       .arg(sizeText(e.estimatedFileBytes()), sizeText(e.sourceBytes()),
                            QString::number(e.sourceBitsPerWeight(), 'f', 1));
    const size_t best = m_order.empty() ? i : m_order.front();
    if (best != i && !m_estimates[best].notSmallerThanSource)
        text += QLatin1Char(' ') + tr("%1 (%2 bits) would make it smaller.")
                                       .arg(presetTitle(best))
                                       .arg(m_estimates[best].preset.bits, 0, 'f', 1);
    else
        text += QLatin1Char(' ') + tr("No setting makes it smaller; the source file may serve as it is.");
    return text;
}

void SettingsPage::setConfirmLargerOutput(std::function<bool(const QString&)> confirm)
{
    m_confirmLarger = std::move(confirm);
}

CompressOptions SettingsPage::options() const
{
    CompressOptions o;
    o.input = m_model.path;
    o.sourceLabel = m_label.toStdString();
    o.output = std::filesystem::path(m_output->text().toStdString());
    o.threads = m_threads->value();
    o.seed = uint64_t(m_seed->value());
    o.calibration = std::filesystem::path(QFile::encodeName(calibrationPath()).toStdString());
    // Advanced > Vector length: the preset's codebooks at that length (expert settings), as the
    // estimates count it (estimatePresets).
    const BitsPreset& preset = bitsPresets()[size_t(m_bitsSlider->value())];
    o.codec = CodecSpec::presetAtLength(preset, m_vectorLength->value(), m_subspaces->value());
    if (m_fitPlan && fitMode() != FitMode::Preset) { // the engine re-plans the same way from the target
        o.targetBytes = m_fitFileTarget;
        o.targetText = m_fitTargetText;
        o.codec = CodecSpec::preset(preset.bits, m_subspaces->value()); // only its subspaces count
    }
    o.overwrite = true;
    return o;
}

void SettingsPage::requestCompress()
{
    if (m_model.path.empty())
        return;
    if (const QString problem = outputProblem(); !problem.isEmpty()) {
        checkOutput();
        return;
    }
    if (const QString text = calibrationPath(); !text.isEmpty() && !QFileInfo(text).isFile()) {
        m_banner->showError(tr("The calibration text was not found"),
                            tr("%1 is not a file. Choose a plain-text file under Advanced, or clear the field to "
                               "compress without calibration.")
                                .arg(text));
        setAdvancedVisible(true);
        return;
    }
    if (const QString warning = sizeWarning(); !warning.isEmpty()) { // told before it starts, and asked
        const QString question = warning + QStringLiteral("\n\n") + tr("Compress anyway?");
        const bool go = m_confirmLarger
                            ? m_confirmLarger(question)
                            : QMessageBox::question(this, tr("Compress anyway?"), question) == QMessageBox::Yes;
        if (!go)
            return;
    }
    if (QFileInfo::exists(m_output->text())) {
        const auto answer = QMessageBox::question(
            this, tr("Replace the file?"),
            tr("%1 already exists. Replace it when the compression finishes?").arg(m_output->text()));
        if (answer != QMessageBox::Yes)
            return;
    }
    m_banner->clear();
    Q_EMIT compressRequested(options());
}

void SettingsPage::setThreads(int threads) { m_threads->setValue(threads); }

void SettingsPage::setCalibrationPath(const QString& path) { m_calibration->setText(path); }

QString SettingsPage::calibrationPath() const { return m_calibration->text().trimmed(); }

void SettingsPage::setAdvancedVisible(bool visible) { m_advancedToggle->setChecked(visible); }

SettingsPage::FitMode SettingsPage::fitMode() const { return FitMode(m_fitMode->currentIndex()); }

void SettingsPage::setFitMode(FitMode mode) { m_fitMode->setCurrentIndex(int(mode)); }

void SettingsPage::setFitSize(const QString& text)
{
    m_fitSize->setText(text);
    if (fitMode() == FitMode::Size)
        refreshFit();
    else
        setFitMode(FitMode::Size);
}

void SettingsPage::setFitContext(int tokens)
{
    m_fitContext->setValue(tokens);
    if (fitMode() == FitMode::Memory)
        refreshFit();
}

void SettingsPage::setSystemMemory(std::function<std::optional<uint64_t>()> memory)
{
    m_systemMemory = std::move(memory);
}

QString SettingsPage::fitText() const { return m_fitResult->text(); }

void SettingsPage::showFitControls()
{
    const FitMode mode = fitMode();
    m_fitSize->setVisible(mode == FitMode::Size);
    m_fitContextLabel->setVisible(mode == FitMode::Memory);
    m_fitContext->setVisible(mode == FitMode::Memory);
    const bool plan = m_fitPlan.has_value() && mode != FitMode::Preset;
    m_allocation->setVisible(plan);
    m_fitResult->setVisible(mode != FitMode::Preset && !m_fitResult->text().isEmpty());
    if (mode != FitMode::Preset)
        selectCard(m_cards.size()); // no card: the plan is the fitted one
    else
        selectCard(size_t(m_bitsSlider->value()));
}

void SettingsPage::refreshFit()
{
    const int generation = ++m_fitGeneration;
    const FitMode mode = fitMode();
    m_fitPlan.reset();
    m_fitResult->clear();
    if (mode == FitMode::Preset || m_model.path.empty() ||
        (mode == FitMode::Size && m_fitSize->text().trimmed().isEmpty())) {
        m_fitPending = 0;
        showFitControls();
        showPreview();
        Q_EMIT fitUpdated();
        return;
    }
    const QString typed = mode == FitMode::Size ? m_fitSize->text().trimmed() : QString();
    std::optional<uint64_t> memory;
    if (mode == FitMode::Memory) {
        memory = m_systemMemory ? m_systemMemory() : std::nullopt;
        if (!memory) {
            m_fitPending = 0;
            m_banner->showError(tr("This computer does not say how much memory it has"),
                                tr("Fit to a size instead: type how large the file may be."));
            m_bannerIsOutput = false;
            showFitControls();
            Q_EMIT fitUpdated();
            return;
        }
    }
    m_fitPending = 1;
    m_fitResult->setText(tr("Planning..."));
    showFitControls();
    const std::filesystem::path path = m_model.path;
    const int subspaces = m_subspaces->value();
    const int64_t context = m_fitContext->value();
    // The text the run will calibrate on, when it is a file (the run itself names a bad one).
    std::filesystem::path calibration = calibrationPath().toStdString();
    if (std::error_code ec; !calibration.empty() && !std::filesystem::is_regular_file(calibration, ec))
        calibration.clear();
    struct Fit {
        ModelInspection plan;
        uint64_t fileTarget = 0;
        std::vector<double> bits;
        std::vector<std::string> names;
    };
    runTask<Fit>(
        this,
        [path, subspaces, context, typed, memory, calibration] {
            Fit fit;
            if (memory) {
                MemoryTarget t =
                    fitToMemory(path, *memory, context, subspaces, "this computer's memory", 0, calibration);
                fit.plan = std::move(t.fit.inspection);
                fit.fileTarget = t.fit.targetBytes;
            } else {
                const uint64_t bytes = parseByteSize("Fit to", typed.toStdString());
                TargetFit t = fitToTarget(path, bytes, 0, subspaces, "Fit to " + typed.toStdString(), calibration);
                fit.plan = std::move(t.inspection);
                fit.fileTarget = t.targetBytes;
            }
            for (const TensorBits& t : planTensorBits(fit.plan)) {
                fit.names.push_back(t.name);
                fit.bits.push_back(t.bits);
            }
            return fit;
        },
        [this, generation, typed, memory](TaskOutcome<Fit> outcome) {
            if (generation != m_fitGeneration)
                return;
            m_fitPending = 0;
            if (!outcome.value) {
                m_fitResult->clear();
                m_banner->showError(
                    wordError(outcome.kind, outcome.error, ErrorContext::FitTo, memory ? sizeText(*memory) : typed));
                m_bannerIsOutput = false;
                showFitControls();
                showPreview();
                Q_EMIT fitUpdated();
                return;
            }
            if (!m_bannerIsOutput)
                m_banner->clear();
            m_fitPlan = std::move(outcome.value->plan);
            m_fitFileTarget = outcome.value->fileTarget;
            const ModelInspection& p = *m_fitPlan;
            const QString quality = explain::predictedQuality(p.predictedError);
            if (memory) {
                m_fitTargetText = "Fit to this computer's memory (" + sizeText(*memory).toStdString() + ")";
                m_fitResult->setText(tr("The best file that runs in this computer's %1: about %2, %3 bits per "
                                        "weight, %4.")
                                         .arg(sizeText(*memory), sizeText(p.estimatedFileBytes()),
                                              bitsText(p.estimatedEffectiveBits()), quality));
            } else {
                m_fitTargetText = "Fit to " + typed.toStdString();
                m_fitResult->setText(
                    tr("The best file within %1: about %2, %3 bits per weight, %4.")
                        .arg(typed, sizeText(p.estimatedFileBytes()), bitsText(p.estimatedEffectiveBits()), quality));
            }
            m_allocation->setTensors(outcome.value->names, outcome.value->bits);
            showFitControls();
            showPreview();
            // On a small screen Fit to is below the cards: bring it and its line into view.
            QTimer::singleShot(0, m_scroll, [this] { m_scroll->ensureWidgetVisible(m_fitResult, 0, 24); });
            Q_EMIT fitUpdated();
        });
}

} // namespace novaq::ui
