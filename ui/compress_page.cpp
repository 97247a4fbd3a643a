#include "ui/compress_page.h"

#include "ui/charts.h"
#include "ui/error_wording.h"
#include "ui/format.h"
#include "ui/jobs.h"
#include "ui/table_models.h"
#include "ui/widgets.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QShortcut>
#include <QSplitter>
#include <QTableView>
#include <QTime>
#include <QToolButton>
#include <QVBoxLayout>

namespace novaq::ui {

CompressPage::CompressPage(QWidget* parent) : QWidget(parent)
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(24, 16, 24, 16);
    m_title = new ElidedLabel(Qt::ElideMiddle, this);
    m_title->setText(tr("Compressing"));
    QFont hf = m_title->font();
    hf.setPointSizeF(hf.pointSizeF() * 1.6);
    hf.setBold(true);
    m_title->setFont(hf);
    layout->addWidget(m_title);
    m_banner = new ErrorBanner(this);
    layout->addWidget(m_banner);

    auto* top = new QHBoxLayout;
    auto* bars = new QVBoxLayout;
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 1000);
    m_progress->setMinimumHeight(28);
    m_progress->setTextVisible(true);
    m_progress->setFormat(QStringLiteral("%p%"));
    m_progress->setToolTip(tr("How much of the model is done, by number of weights."));
    m_progress->setAccessibleName(tr("Overall progress"));
    m_status = new ElidedLabel(Qt::ElideMiddle, this); // a long tensor name never widens the page
    m_status->setText(tr("Waiting to start..."));
    QFont sf = m_status->font();
    sf.setPointSizeF(sf.pointSizeF() * 1.1);
    m_status->setFont(sf);
    m_status->setAccessibleName(tr("Current tensor and time left"));
    bars->addWidget(m_progress);
    bars->addWidget(m_status);
    top->addLayout(bars, 1);
    m_cancel = new QPushButton(tr("Cancel"), this);
    m_cancel->setMinimumHeight(36);
    m_cancel->setToolTip(tr("Stop now (Esc); nothing is written."));
    m_cancel->setAccessibleName(tr("Cancel compression"));
    m_back = new QPushButton(tr("Back to settings"), this);
    m_back->setMinimumHeight(36);
    m_back->setToolTip(tr("Change the settings and try again."));
    m_back->hide();
    top->addWidget(m_cancel, 0, Qt::AlignTop);
    top->addWidget(m_back, 0, Qt::AlignTop);
    layout->addLayout(top);
    connect(m_cancel, &QPushButton::clicked, this, &CompressPage::cancelRequested);
    connect(m_back, &QPushButton::clicked, this, &CompressPage::backToSettings);
    // Esc is the window's shortcut (MainWindow), so that it works whatever has the focus.

    auto* vsplit = new QSplitter(Qt::Vertical, this);
    auto* charts = new QSplitter(Qt::Horizontal, vsplit);
    m_errorChart = new ErrorBarChart(charts);
    m_ratioChart = new RatioLineChart(charts);
    charts->setStretchFactor(0, 3);
    charts->setStretchFactor(1, 2);
    m_results = new TensorResultModel(this);
    m_table = new QTableView(vsplit);
    m_table->setModel(m_results);
    m_table->setAlternatingRowColors(true);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->verticalHeader()->hide();
    m_table->setWordWrap(false);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setSectionResizeMode(TensorResultModel::Name, QHeaderView::Stretch);
    m_table->verticalHeader()->setDefaultSectionSize(m_table->fontMetrics().height() + 8);
    m_table->setToolTip(tr("Every finished tensor with its error and size."));
    m_table->setAccessibleName(tr("Finished tensors"));
    vsplit->setStretchFactor(0, 3);
    vsplit->setStretchFactor(1, 2);
    layout->addWidget(vsplit, 1);

    m_logToggle = new QToolButton(this);
    m_logToggle->setText(tr("Log"));
    m_logToggle->setCheckable(true);
    m_logToggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_logToggle->setArrowType(Qt::RightArrow);
    m_logToggle->setAutoRaise(true);
    m_logToggle->setToolTip(tr("Show or hide the messages of this run."));
    m_logToggle->setAccessibleName(tr("Show log"));
    m_log = new QPlainTextEdit(this);
    m_log->setReadOnly(true);
    m_log->setMaximumHeight(110);
    m_log->setAccessibleName(tr("Log"));
    m_log->hide();
    connect(m_logToggle, &QToolButton::toggled, this, [this](bool on) {
        m_log->setVisible(on);
        m_logToggle->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
    });
    layout->addWidget(m_logToggle);
    layout->addWidget(m_log);
}

void CompressPage::begin(const QString& modelLabel, const QString& output)
{
    m_banner->clear();
    m_title->setText(tr("Compressing %1").arg(modelLabel));
    m_progress->setValue(0);
    m_status->setText(tr("Opening the model..."));
    m_errorChart->clear();
    m_ratioChart->clear();
    m_results->clear();
    m_log->clear();
    m_tensorCount = 0;
    log(tr("Writing %1").arg(output));
    setRunning(true);
}

void CompressPage::setRunning(bool running)
{
    m_cancel->setVisible(running);
    m_cancel->setEnabled(running);
    m_back->setVisible(!running);
}

void CompressPage::onStarted(int tensorCount)
{
    m_tensorCount = tensorCount;
    log(tr("Started: %n tensor(s)", nullptr, tensorCount));
}

void CompressPage::onProgress(const CompressProgress& p)
{
    m_progress->setValue(int(p.overallFraction * 1000.0));
    const QString left =
        p.remainingSeconds < 0 ? tr("estimating time left") : tr("%1 left").arg(durationText(p.remainingSeconds));
    if (p.tensorIndex >= p.tensorCount)
        m_status->setText(tr("Writing the file..."));
    else
        m_status->setText(
            tr("Tensor %1 of %2 - %3 - %4").arg(p.tensorIndex + 1).arg(p.tensorCount).arg(p.tensorName, left));
}

void CompressPage::onTensorFinished(int index, const TensorResult& result, const RunningTotals& totals)
{
    m_results->append(result);
    m_table->scrollToBottom();
    m_errorChart->appendTensor(result);
    m_ratioChart->appendPoint(index + 1, totals);
    log(tr("%1: %2, error %3")
            .arg(QString::fromStdString(result.name), QString::fromStdString(result.storedAs),
                 errorText(result.relError)));
}

void CompressPage::onFinished(const ModelReport& report)
{
    m_progress->setValue(1000);
    m_status->setText(tr("Done in %1 - %2 -> %3")
                          .arg(durationText(report.seconds), sizeText(report.sourceBytes), sizeText(report.fileBytes)));
    log(tr("Finished: %1").arg(QString::fromStdString(report.output.string())));
    setRunning(false);
}

void CompressPage::onFailed(ErrorKind kind, const QString& message)
{
    m_banner->showError(wordError(kind, message, ErrorContext::Compress));
    m_status->setText(tr("Stopped: nothing was written."));
    log(message);
    setRunning(false);
}

void CompressPage::onCancelled()
{
    m_banner->showInfo(tr("Cancelled"), tr("The compression was stopped and no file was written. Change the settings "
                                           "and start again when you are ready."));
    m_status->setText(tr("Cancelled: nothing was written."));
    log(tr("Cancelled"));
    setRunning(false);
}

bool CompressPage::requestCancel()
{
    if (!m_cancel->isVisible() || !m_cancel->isEnabled())
        return false;
    Q_EMIT cancelRequested();
    return true;
}

QString CompressPage::statusLine() const { return m_status->text(); }

void CompressPage::log(const QString& line)
{
    m_log->appendPlainText(QTime::currentTime().toString(QStringLiteral("HH:mm:ss ")) + line);
}

} // namespace novaq::ui
