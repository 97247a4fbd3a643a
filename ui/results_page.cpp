#include "ui/results_page.h"

#include "ui/charts.h"
#include "ui/error_wording.h"
#include "ui/explanations.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/try_it_page.h"
#include "ui/widgets.h"

#include "novaq/pipeline/export.h"
#include "novaq/pipeline/validate.h"

#include <QDesktopServices>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QRegularExpression>
#include <QSaveFile>
#include <QScrollArea>
#include <QSplitter>
#include <QUrl>
#include <QVBoxLayout>

namespace novaq::ui {

SummaryTexts summaryTexts(const ModelReport& r)
{
    SummaryTexts t;
    t.sizes = QStringLiteral("%1 -> %2").arg(sizeText(r.sourceBytes), sizeText(r.fileBytes));
    t.sizesCaption = ResultsPage::tr("original -> compressed file");
    t.ratio = ResultsPage::tr("%1 smaller").arg(ratioText(r.ratioVsSource()));
    t.ratioCaption = ResultsPage::tr("than the source; %1 smaller than a 16-bit copy").arg(ratioText(r.ratioVs16Bit()));
    t.bits = bitsText(r.effectiveBits());
    t.bitsCaption = ResultsPage::tr("bits per weight, everything included");
    t.meanError = errorText(r.meanRelError());
    t.meanCaption = ResultsPage::tr("mean relative error (by weights)");
    t.worstError = errorText(r.worstRelError());
    t.worstCaption = ResultsPage::tr("worst error (%1)").arg(QString::fromStdString(r.worstTensor()));
    t.time = r.seconds > 0 ? durationText(r.seconds) : QStringLiteral("-");
    t.timeCaption =
        r.seconds > 0 ? ResultsPage::tr("time to compress (m:ss)") : ResultsPage::tr("time (not stored in the file)");
    return t;
}

ResultsPage::ResultsPage(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(24, 16, 24, 16);
    m_title = new ElidedLabel(Qt::ElideMiddle, this);
    m_title->setText(tr("Results"));
    QFont hf = m_title->font();
    hf.setPointSizeF(hf.pointSizeF() * 1.6);
    hf.setBold(true);
    m_title->setFont(hf);
    layout->addWidget(m_title);
    m_banner = new ErrorBanner(this);
    layout->addWidget(m_banner);

    // The cards rewrap into fewer columns on a narrow page and the charts (150 pixels high at
    // least) take the height that is left, so the page fits 1024 x 600 with its buttons in view.
    QWidget* body = this;
    QVBoxLayout* bodyLayout = layout;
    auto* grid = new CardGrid(3, 180, body);
    const QStringList captions{tr("original -> compressed file"), tr("smaller"),     tr("bits per weight"),
                               tr("mean relative error"),         tr("worst error"), tr("time")};
    // Each card says what its number means and what is good (explanations.h, shared with the
    // tables and the Guide).
    const QStringList tips{
        tr("The size of the source weights and of the compressed file."),
        tr("How many times smaller the file is than the source, and than a 16-bit copy.") + QStringLiteral("\n\n") +
            explain::ratio(),
        explain::bitsPerWeight(),
        tr("The average relative error of the compressed tensors, each counted by its number of weights.") +
            QStringLiteral("\n\n") + explain::relativeError(),
        tr("The largest relative error of any compressed tensor, and which one. A worst tensor far above the mean "
           "is worth a look in the table on the Compress step; the output layer and the embedding are kept at "
           "more bits for that reason.") +
            QStringLiteral("\n\n") + explain::relativeError(),
        tr("How long the compression took.")};
    for (int i = 0; i < captions.size(); ++i) {
        auto* card = new SummaryCard(captions[i], body);
        card->setToolTip(tips[i]);
        grid->addCard(card);
        m_cards.push_back(card);
    }
    bodyLayout->addWidget(grid);

    auto* charts = new QSplitter(Qt::Horizontal, body);
    m_errorChart = new ErrorBarChart(charts);
    m_histogram = new ErrorHistogramChart(charts);
    charts->setStretchFactor(0, 3);
    charts->setStretchFactor(1, 2);
    bodyLayout->addWidget(charts, 1);

    m_quality = new QLabel(this);
    m_quality->setWordWrap(true);
    m_quality->setAccessibleName(tr("Quality check"));
    m_quality->hide();
    layout->addWidget(m_quality);
    m_busy = new QLabel(this);
    m_busy->hide();
    layout->addWidget(m_busy);
    auto* buttons = new QHBoxLayout;
    m_validate = new QPushButton(tr("Validate"), this);
    m_validate->setToolTip(tr("Check the file: structure, checksums, and that every tensor decodes."));
    m_export = new QPushButton(tr("Export..."), this);
    m_export->setToolTip(tr("Write the decompressed weights as a safetensors file other tools can read."));
    m_folder = new QPushButton(tr("Show in folder"), this);
    m_folder->setToolTip(tr("Open the folder that holds the compressed file."));
    m_save = new QPushButton(tr("Save report..."), this);
    m_save->setToolTip(tr("Save these figures, and the quality check when there is one, as a JSON file."));
    m_another = new QPushButton(tr("Compress another"), this);
    m_another->setToolTip(tr("Go back and choose another model."));
    m_tryIt = new QPushButton(tr("Try it"), this);
    m_tryIt->setObjectName(QStringLiteral("primary"));
    m_tryIt->setToolTip(tr("Chat with the compressed model beside the original, and check its quality."));
    for (QPushButton* b : {m_validate, m_export, m_folder, m_save, m_another, m_tryIt}) {
        b->setMinimumHeight(36);
        b->setAccessibleName(b->text().remove(QStringLiteral("...")));
    }
    buttons->addWidget(m_validate);
    buttons->addWidget(m_export);
    buttons->addWidget(m_folder);
    buttons->addWidget(m_save);
    buttons->addStretch();
    buttons->addWidget(m_another);
    buttons->addWidget(m_tryIt);
    layout->addLayout(buttons);
    connect(m_validate, &QPushButton::clicked, this, &ResultsPage::validate);
    connect(m_export, &QPushButton::clicked, this, &ResultsPage::exportSafetensors);
    connect(m_folder, &QPushButton::clicked, this, &ResultsPage::showInFolder);
    connect(m_another, &QPushButton::clicked, this, &ResultsPage::compressAnother);
    connect(m_save, &QPushButton::clicked, this, &ResultsPage::saveReportAs);
    connect(m_tryIt, &QPushButton::clicked, this, &ResultsPage::tryItRequested);
}

void ResultsPage::showReport(const ModelReport& report)
{
    m_report = report;
    m_banner->clear();
    m_title->setText(tr("%1 is ready").arg(QFileInfo(QString::fromStdString(report.output.string())).fileName()));
    m_title->setToolTip(QString::fromStdString(report.output.string()));
    const SummaryTexts t = summaryTexts(report);
    m_cards[0]->setValue(t.sizes, t.sizesCaption);
    m_cards[1]->setValue(t.ratio, t.ratioCaption);
    m_cards[2]->setValue(t.bits, t.bitsCaption);
    m_cards[3]->setValue(t.meanError, t.meanCaption);
    m_cards[4]->setValue(t.worstError, t.worstCaption);
    m_cards[5]->setValue(t.time, t.timeCaption);
    m_errorChart->setTensors(report.tensors);
    m_histogram->setTensors(report.tensors);
    m_quality->setVisible(report.quality.has_value());
    if (report.quality)
        setQuality(*report.quality);
}

void ResultsPage::setQuality(const QualityCheck& check)
{
    m_report.quality = check;
    const QualityTexts t = qualityTexts(check);
    m_quality->setText(tr("Quality check: %1 %2").arg(t.verdict, t.detail));
    m_quality->show();
}

QString ResultsPage::qualityLine() const { return m_report.quality ? m_quality->text() : QString(); }

bool ResultsPage::saveReport(const QString& path)
{
    // QSaveFile: a failed write leaves an existing report as it was, never half-written.
    QSaveFile f(path);
    const std::string json = m_report.toJson().dump(2) + "\n";
    if (!f.open(QIODevice::WriteOnly) || f.write(json.data(), qint64(json.size())) != qint64(json.size()) ||
        !f.commit()) {
        m_banner->showError(errorTitle(ErrorKind::Io),
                            tr("%1 could not be written: %2. Choose another place.").arg(path, f.errorString()));
        return false;
    }
    m_banner->showInfo(tr("Report saved"), tr("The figures were written to %1.").arg(path));
    return true;
}

void ResultsPage::saveReportAs()
{
    QString suggestion = QString::fromStdString(m_report.output.string());
    suggestion.replace(QRegularExpression(QStringLiteral("\\.novaq$")), QStringLiteral(".report.json"));
    const QString target =
        QFileDialog::getSaveFileName(this, tr("Save the report"), suggestion, tr("JSON files (*.json)"));
    if (!target.isEmpty())
        saveReport(target);
}

void ResultsPage::setBusy(bool busy, const QString& what)
{
    m_busy->setText(what);
    m_busy->setVisible(busy);
    m_validate->setEnabled(!busy);
    m_export->setEnabled(!busy);
}

void ResultsPage::validate()
{
    const std::filesystem::path file = m_report.output;
    m_banner->clear(); // the last check's or export's message: this one is on its way
    setBusy(true, tr("Checking %1...").arg(QString::fromStdString(file.filename().string())));
    runTask<ValidateReport>(
        this, [file] { return validateNovaq(file, std::nullopt, nullptr, nullptr); },
        [this](TaskOutcome<ValidateReport> outcome) {
            setBusy(false);
            if (!outcome.value) {
                m_banner->showError(wordError(outcome.kind, outcome.error, ErrorContext::Validate,
                                              QString::fromStdString(m_report.output.string())));
                Q_EMIT validated(false);
                return;
            }
            const ValidateReport& v = *outcome.value;
            if (v.ok) {
                m_banner->showInfo(tr("The file is valid"),
                                   tr("Format %1.%2, %n tensor(s): structure and checksums are right and every tensor "
                                      "decodes to finite values.",
                                      nullptr, int(v.tensorCount))
                                       .arg(v.major)
                                       .arg(v.minor));
            } else {
                QStringList problems;
                for (const std::string& p : v.problems)
                    problems << QString::fromStdString(p);
                for (const TensorCheck& c : v.tensors)
                    if (!c.ok)
                        problems << QStringLiteral("%1: %2").arg(QString::fromStdString(c.name),
                                                                 QString::fromStdString(c.problem));
                m_banner->showError(tr("The file has problems"),
                                    problems.mid(0, 5).join(QLatin1Char('\n')) +
                                        tr("\nCompress the model again to get a good file."));
            }
            Q_EMIT validated(v.ok);
        });
}

void ResultsPage::exportSafetensors()
{
    const QString source = QString::fromStdString(m_report.output.string());
    QString suggestion = source;
    suggestion.replace(QRegularExpression(QStringLiteral("\\.novaq$")), QStringLiteral(".safetensors"));
    const QString target =
        QFileDialog::getSaveFileName(this, tr("Export as safetensors"), suggestion, tr("Safetensors (*.safetensors)"));
    if (target.isEmpty())
        return;
    const std::filesystem::path in = m_report.output;
    const std::filesystem::path out = target.toStdString();
    m_banner->clear();
    setBusy(true, tr("Exporting to %1...").arg(target));
    runTask<bool>(
        this,
        [in, out] {
            novaq::exportSafetensors(in, out, DType::F16, nullptr, nullptr);
            return true;
        },
        [this, target](TaskOutcome<bool> outcome) {
            setBusy(false);
            if (outcome.value)
                m_banner->showInfo(tr("Exported"), tr("The weights were written to %1 (16-bit).").arg(target));
            else
                m_banner->showError(wordError(outcome.kind, outcome.error, ErrorContext::Export, target));
        });
}

void ResultsPage::showInFolder()
{
    const QString folder = QFileInfo(QString::fromStdString(m_report.output.string())).absolutePath();
    QDesktopServices::openUrl(QUrl::fromLocalFile(folder));
}

} // namespace novaq::ui
