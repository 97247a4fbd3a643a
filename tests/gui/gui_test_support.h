#pragma once
// What every NOVAQ Studio GUI suite does first.

#include "ui/application.h"

#include <QApplication>
#include <QStandardPaths>

// The app's resources (icons, styles), test paths for QSettings and the app's style and
// palette. In the global namespace: Q_INIT_RESOURCE declares the resource function here.
inline void setUpStudioForTests()
{
    Q_INIT_RESOURCE(novaq_studio);
    QStandardPaths::setTestModeEnabled(true);
    novaq::ui::setupApplication(*qApp);
}
