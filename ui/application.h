#pragma once
// What novaq-studio sets up before it shows the window: names (for QSettings), the Fusion
// style over the system palette with one accent colour, the icon.

#include <QString>

class QApplication;

namespace novaq::ui {

class MainWindow;

void setupApplication(QApplication& app);

// For the README's screenshots only (NOVAQ_STUDIO_SCREENSHOTS=folder): opens the demo model,
// grabs every page, compresses it and grabs the compress and results pages, then quits.
void runScreenshotTour(MainWindow* window, const QString& folder);

} // namespace novaq::ui
