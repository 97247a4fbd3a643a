#pragma once
// The app's own settings (QSettings): a Hugging Face token, the Hugging Face cache folder,
// the folder for URL downloads and the default number of threads. Environment variables
// still win: the values are applied to the process environment (qputenv) only where the
// user did not set the variable themselves, before any engine call reads it.

#include <QDialog>
#include <QString>

#include <filesystem>

class QLabel;
class QLineEdit;
class QSpinBox;

namespace novaq::ui {

namespace appsettings {

QString storedToken();
void setStoredToken(const QString& token);
QString hubCacheFolder(); // empty: the Hugging Face default
void setHubCacheFolder(const QString& folder);
QString downloadFolder(); // empty: NOVAQ's default
void setDownloadFolder(const QString& folder);
int threads(); // 0: all cores
void setThreads(int threads);

// Where the Hugging Face token in effect comes from, in words ("the environment variable
// HF_TOKEN", "NOVAQ Studio's settings", "the token file ...", or none). Never the token.
QString tokenSourceText();
// True when an environment variable set before the app started provides the token.
bool tokenFromEnvironment();
// The environment as it was when the app started (captured on the first call).
void captureEnvironment();
// Puts the stored settings into the process environment where the user's own variables do
// not already say something.
void applyToEnvironment();
// The folder URL downloads go to.
std::filesystem::path effectiveDownloadFolder();

} // namespace appsettings

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    explicit SettingsDialog(QWidget* parent = nullptr);
    void accept() override;

private:
    void refreshTokenSource();
    QLineEdit* m_token;
    QLabel* m_tokenSource;
    QLineEdit* m_hubCache;
    QLineEdit* m_downloads;
    QSpinBox* m_threads;
};

} // namespace novaq::ui
