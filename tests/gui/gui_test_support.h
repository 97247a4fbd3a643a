#pragma once
// What every NOVAQ Studio GUI suite does first.

#include "ui/application.h"

#include <QApplication>
#include <QRect>
#include <QStandardPaths>
#include <QString>
#include <QWidget>

// The app's resources (icons, styles), test paths for QSettings and the app's style and
// palette. In the global namespace: Q_INIT_RESOURCE declares the resource function here.
inline void setUpStudioForTests()
{
    Q_INIT_RESOURCE(novaq_studio);
    QStandardPaths::setTestModeEnabled(true);
    novaq::ui::setupApplication(*qApp);
}

// The button is shown, and its whole rectangle lies inside every ancestor up to the window (so
// neither the window's edge nor a scroll area's viewport cuts it off).
inline bool wholeInWindow(QWidget* window, QWidget* w, QString* why)
{
    if (!w->isVisible()) {
        *why = QStringLiteral("'%1' is not visible").arg(w->accessibleName());
        return false;
    }
    QRect r = w->rect();
    QWidget* child = w;
    while (child != window && child->parentWidget()) {
        r.translate(child->pos());
        child = child->parentWidget();
        if (!child->rect().contains(r)) {
            *why = QStringLiteral("'%1' at (%2,%3 %4x%5) is cut off by %6 (%7x%8) in a %9x%10 window")
                       .arg(w->accessibleName())
                       .arg(r.x())
                       .arg(r.y())
                       .arg(r.width())
                       .arg(r.height())
                       .arg(QString::fromLatin1(child->metaObject()->className()))
                       .arg(child->width())
                       .arg(child->height())
                       .arg(window->width())
                       .arg(window->height());
            return false;
        }
    }
    return true;
}
