#include "ui/app_settings.h"

#include "novaq/sources/huggingface.h"
#include "novaq/sources/url_source.h"

#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

#include <array>

namespace novaq::ui {

namespace appsettings {

namespace {

constexpr const char* kToken = "hub/token";
constexpr const char* kHubCache = "hub/cacheFolder";
constexpr const char* kDownloads = "downloads/folder";
constexpr const char* kThreads = "compress/threads";

constexpr std::array<const char*, 3> kTokenVariables = {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"};
constexpr std::array<const char*, 2> kCacheVariables = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"};

struct StartEnvironment {
    QString tokenVariable; // the first token variable the user set, if any
    bool cacheSet = false;
};

const StartEnvironment& startEnvironment()
{
    static const StartEnvironment env = [] {
        StartEnvironment e;
        for (const char* v : kTokenVariables)
            if (!qEnvironmentVariableIsEmpty(v) && e.tokenVariable.isEmpty())
                e.tokenVariable = QString::fromLatin1(v);
        for (const char* v : kCacheVariables)
            e.cacheSet = e.cacheSet || !qEnvironmentVariableIsEmpty(v);
        return e;
    }();
    return env;
}

QString value(const char* key) { return QSettings().value(QString::fromLatin1(key)).toString(); }

void setValue(const char* key, const QVariant& v) { QSettings().setValue(QString::fromLatin1(key), v); }

} // namespace

QString storedToken() { return value(kToken); }
void setStoredToken(const QString& token) { setValue(kToken, token.trimmed()); }
QString hubCacheFolder() { return value(kHubCache); }
void setHubCacheFolder(const QString& folder) { setValue(kHubCache, folder.trimmed()); }
QString downloadFolder() { return value(kDownloads); }
void setDownloadFolder(const QString& folder) { setValue(kDownloads, folder.trimmed()); }
int threads() { return QSettings().value(QString::fromLatin1(kThreads), 0).toInt(); }
void setThreads(int threads) { setValue(kThreads, threads); }

void captureEnvironment() { (void)startEnvironment(); }

bool tokenFromEnvironment() { return !startEnvironment().tokenVariable.isEmpty(); }

QString tokenSourceText()
{
    const StartEnvironment& env = startEnvironment();
    if (!env.tokenVariable.isEmpty())
        return QObject::tr("In effect: the environment variable %1 (it wins over the token saved here).")
            .arg(env.tokenVariable);
    if (!storedToken().isEmpty())
        return QObject::tr("In effect: the token saved in NOVAQ Studio's settings.");
    QString file = qEnvironmentVariable("HF_TOKEN_PATH");
    if (file.isEmpty()) {
        QString home = qEnvironmentVariable("HF_HOME");
        if (home.isEmpty()) {
            const QString xdg = qEnvironmentVariable("XDG_CACHE_HOME");
            home =
                (xdg.isEmpty() ? QDir::homePath() + QStringLiteral("/.cache") : xdg) + QStringLiteral("/huggingface");
        }
        file = home + QStringLiteral("/token");
    }
    if (QFileInfo::exists(file))
        return QObject::tr("In effect: the token file %1 (from the huggingface-cli login).").arg(file);
    return QObject::tr("No token: public models work; gated and private ones need a token.");
}

void applyToEnvironment()
{
    const StartEnvironment& env = startEnvironment();
    if (env.tokenVariable.isEmpty()) {
        const QString token = storedToken();
        if (token.isEmpty())
            qunsetenv("HF_TOKEN");
        else
            qputenv("HF_TOKEN", token.toUtf8());
    }
    if (!env.cacheSet) {
        const QString cache = hubCacheFolder();
        if (cache.isEmpty())
            qunsetenv("HF_HUB_CACHE");
        else
            qputenv("HF_HUB_CACHE", QFile::encodeName(cache));
    }
}

std::filesystem::path effectiveDownloadFolder()
{
    const QString folder = downloadFolder();
    if (folder.isEmpty())
        return sources::defaultDownloadFolder();
    return std::filesystem::path(QFile::encodeName(folder).toStdString());
}

} // namespace appsettings

namespace {

QWidget* folderRow(QLineEdit* edit, QWidget* parent, const QString& title)
{
    auto* row = new QWidget(parent);
    auto* layout = new QHBoxLayout(row);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(edit, 1);
    auto* browse = new QPushButton(QObject::tr("Choose..."), row);
    browse->setToolTip(QObject::tr("Pick the folder in a file dialog."));
    browse->setAccessibleName(QObject::tr("Choose %1").arg(title));
    QObject::connect(browse, &QPushButton::clicked, row, [edit, row, title] {
        const QString f = QFileDialog::getExistingDirectory(row, title, edit->text());
        if (!f.isEmpty())
            edit->setText(f);
    });
    layout->addWidget(browse);
    return row;
}

} // namespace

SettingsDialog::SettingsDialog(QWidget* parent) : QDialog(parent)
{
    setWindowTitle(tr("NOVAQ Studio settings"));
    auto* layout = new QVBoxLayout(this);
    auto* form = new QFormLayout;
    layout->addLayout(form);

    m_token = new QLineEdit(this);
    m_token->setEchoMode(QLineEdit::Password);
    m_token->setPlaceholderText(appsettings::storedToken().isEmpty() ? tr("Paste a token (hf_...)")
                                                                     : tr("A token is saved; type to replace it"));
    m_token->setToolTip(
        tr("A Hugging Face access token lets you download gated and private models; it is never shown."));
    m_token->setAccessibleName(tr("Hugging Face token"));
    auto* tokenRow = new QWidget(this);
    auto* tokenLayout = new QHBoxLayout(tokenRow);
    tokenLayout->setContentsMargins(0, 0, 0, 0);
    tokenLayout->addWidget(m_token, 1);
    auto* forget = new QPushButton(tr("Forget"), tokenRow);
    forget->setToolTip(tr("Remove the token saved in NOVAQ Studio's settings."));
    forget->setAccessibleName(tr("Forget the saved token"));
    connect(forget, &QPushButton::clicked, this, [this] {
        appsettings::setStoredToken({});
        m_token->clear();
        m_token->setPlaceholderText(tr("Paste a token (hf_...)"));
        appsettings::applyToEnvironment();
        refreshTokenSource();
    });
    tokenLayout->addWidget(forget);
    form->addRow(tr("Hugging Face token"), tokenRow);
    m_tokenSource = new QLabel(this);
    m_tokenSource->setWordWrap(true);
    m_tokenSource->setAccessibleName(tr("Where the token in effect comes from"));
    form->addRow(QString(), m_tokenSource);

    m_hubCache = new QLineEdit(appsettings::hubCacheFolder(), this);
    m_hubCache->setPlaceholderText(QString::fromStdString(hf::HubSettings::fromEnvironment().cacheDir.string()));
    m_hubCache->setToolTip(tr("Where Hugging Face downloads are kept; other tools share this cache. Empty: the "
                              "default (an HF_HUB_CACHE variable wins)."));
    m_hubCache->setAccessibleName(tr("Hugging Face cache folder"));
    form->addRow(tr("Hugging Face cache"), folderRow(m_hubCache, this, tr("Hugging Face cache folder")));

    m_downloads = new QLineEdit(appsettings::downloadFolder(), this);
    m_downloads->setPlaceholderText(QString::fromStdString(sources::defaultDownloadFolder().string()));
    m_downloads->setToolTip(tr("Where models fetched from a web address are saved. Empty: the default."));
    m_downloads->setAccessibleName(tr("Download folder"));
    form->addRow(tr("Download folder"), folderRow(m_downloads, this, tr("Download folder")));

    m_threads = new QSpinBox(this);
    m_threads->setRange(0, 1024);
    m_threads->setSpecialValueText(tr("All cores (%1)").arg(QThread::idealThreadCount()));
    m_threads->setValue(appsettings::threads());
    m_threads->setToolTip(tr("How many processor cores a compression uses by default; the result is the same for "
                             "any number."));
    m_threads->setAccessibleName(tr("Threads"));
    form->addRow(tr("Threads"), m_threads);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons->button(QDialogButtonBox::Ok)->setToolTip(tr("Save these settings and use them from now on."));
    buttons->button(QDialogButtonBox::Cancel)->setToolTip(tr("Close without changing anything."));
    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &SettingsDialog::reject);
    layout->addWidget(buttons);
    refreshTokenSource();
    resize(640, sizeHint().height());
}

void SettingsDialog::refreshTokenSource() { m_tokenSource->setText(appsettings::tokenSourceText()); }

void SettingsDialog::accept()
{
    if (!m_token->text().trimmed().isEmpty())
        appsettings::setStoredToken(m_token->text());
    appsettings::setHubCacheFolder(m_hubCache->text());
    appsettings::setDownloadFolder(m_downloads->text());
    appsettings::setThreads(m_threads->value());
    appsettings::applyToEnvironment();
    QDialog::accept();
}

} // namespace novaq::ui
