#pragma once
// Help > Guide (F1): a five-minute read for someone who is not a quantization expert. What
// compression does, which preset to pick, what the numbers mean (from explanations.h, the
// same words as the tooltips) and what to do with the .novaq file; the text is the compiled-in
// resource :/text/guide.html.

#include <QDialog>
#include <QString>

class QTextBrowser;

namespace novaq::ui {

// The README, when this computer has one for the app (the source tree of a build, or the
// installed documentation); empty otherwise.
QString readmePath();

// The Guide's HTML with the explanations and the README link filled in.
QString guideHtml();

class HelpDialog : public QDialog {
    Q_OBJECT
public:
    explicit HelpDialog(QWidget* parent = nullptr);
    QTextBrowser* browser() const noexcept { return m_browser; }

private:
    QTextBrowser* m_browser;
};

} // namespace novaq::ui
