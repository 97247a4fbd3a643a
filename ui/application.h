#pragma once
// What novaq-studio sets up before it shows the window: names (for QSettings), the Fusion
// style over the system palette (or a light or dark one of ours) with one accent colour, the
// icon.

#include <QPalette>
#include <QString>

class QApplication;
class QCoreApplication;

namespace novaq::ui {

class MainWindow;

enum class Theme { System, Light, Dark };

// NOVAQ_STUDIO_THEME=light or dark picks our own palette; anything else follows the system.
Theme themeFromEnvironment();
// Our palettes over the Fusion style, with the accent colour.
QPalette lightPalette();
QPalette darkPalette();

void setupApplication(QApplication& app, Theme theme = themeFromEnvironment());

// Installs the English plural forms of the counted texts (":/i18n/novaq_studio_en.qm") once;
// setupApplication calls it. False when the resource is missing.
bool installPluralForms(QCoreApplication& app);

// "<folder>/<page>.png", or "<folder>/<page>-dark.png" while the application palette is dark.
QString screenshotPath(const QString& folder, const QString& page);

// For the README's screenshots only (NOVAQ_STUDIO_SCREENSHOTS=folder): opens the demo model,
// grabs every page (Settings also with Advanced open), compresses it and grabs the compress
// and results pages, then Try it with an answer and a quality check, then quits.
void runScreenshotTour(MainWindow* window, const QString& folder);

} // namespace novaq::ui
