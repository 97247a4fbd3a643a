#include "ui/help_page.h"

#include "ui/explanations.h"

#include <QCoreApplication>
#include <QDesktopServices>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTextBrowser>
#include <QUrl>
#include <QVBoxLayout>

namespace novaq::ui {

QString readmePath()
{
    const QString appDir = QCoreApplication::applicationDirPath();
    const QStringList candidates{
        QDir(appDir).filePath(QStringLiteral("../share/doc/novaq-studio/README.md")),
        QStringLiteral("/usr/share/doc/novaq-studio/README.md"),
#ifdef NOVAQ_SOURCE_DIR
        QStringLiteral(NOVAQ_SOURCE_DIR "/README.md"), // a run from the build tree
#endif
    };
    for (const QString& path : candidates)
        if (QFileInfo(path).isFile())
            return QFileInfo(path).canonicalFilePath();
    return {};
}

QString guideHtml()
{
    QFile file(QStringLiteral(":/text/guide.html"));
    if (!file.open(QIODevice::ReadOnly))
        return HelpDialog::tr("<p>The guide is missing from this build.</p>");
    QString html = QString::fromUtf8(file.readAll());
    html.replace(QStringLiteral("<!-- GLOSSARY -->"), explain::glossaryHtml());
    const QString readme = readmePath();
    const QString manual =
        readme.isEmpty()
            ? QString()
            : HelpDialog::tr(
                  "<p>The full manual, with every command and what the file holds: <a href=\"%1\">%2</a>.</p>")
                  .arg(QUrl::fromLocalFile(readme).toString(QUrl::FullyEncoded), readme.toHtmlEscaped());
    html.replace(QStringLiteral("<!-- MANUAL -->"), manual);
    return html;
}

HelpDialog::HelpDialog(QWidget* parent) : QDialog(parent)
{
    setWindowTitle(tr("NOVAQ Studio Guide"));
    setAccessibleName(tr("Guide"));
    auto* layout = new QVBoxLayout(this);
    m_browser = new QTextBrowser(this);
    m_browser->setObjectName(QStringLiteral("guide"));
    m_browser->setAccessibleName(tr("Guide text"));
    // Links inside the guide scroll to their section; others (the README) open outside.
    m_browser->setOpenLinks(false);
    connect(m_browser, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        if (url.scheme().isEmpty() && !url.fragment().isEmpty())
            m_browser->scrollToAnchor(url.fragment());
        else
            QDesktopServices::openUrl(url);
    });
    m_browser->document()->setDocumentMargin(16);
    m_browser->setHtml(guideHtml());
    layout->addWidget(m_browser, 1);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    layout->addWidget(buttons);
    // Roomy, but never larger than the window it helps (a 1024 x 600 screen included).
    const QSize wanted(760, 700);
    resize(parent ? wanted.boundedTo(parent->window()->size() - QSize(40, 40)).expandedTo(QSize(480, 360)) : wanted);
}

} // namespace novaq::ui
