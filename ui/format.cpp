#include "ui/format.h"

#include "novaq/pipeline/report.h"

#include <QCoreApplication>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace novaq::ui {

namespace {

QString tr(const char* text) { return QCoreApplication::translate("novaq::ui::Format", text); }

bool contains(const std::string& haystack, const char* needle) { return haystack.find(needle) != std::string::npos; }

} // namespace

QString sizeText(uint64_t bytes) { return QString::fromStdString(humanBytes(bytes)); }

QString ratioText(double ratio)
{
    if (!(ratio > 0) || !std::isfinite(ratio))
        return tr("n/a");
    return QStringLiteral("%1x").arg(ratio, 0, 'f', 1);
}

QString errorText(double relError)
{
    if (relError == 0.0)
        return QStringLiteral("0");
    if (!std::isfinite(relError))
        return tr("n/a");
    // Three significant digits, trailing zeros kept: 0.160, 0.0341, 1.2e-05.
    const double magnitude = std::floor(std::log10(std::abs(relError)));
    if (magnitude < -4)
        return QString::number(relError, 'e', 2);
    return QString::number(relError, 'f', std::max(0, int(2 - magnitude)));
}

QString bitsText(double bits) { return QString::number(bits, 'f', 2); }

QString durationText(double seconds)
{
    if (!(seconds >= 0) || !std::isfinite(seconds))
        return QStringLiteral("-:--");
    const auto total = static_cast<long long>(std::llround(seconds));
    return QStringLiteral("%1:%2").arg(total / 60).arg(total % 60, 2, 10, QLatin1Char('0'));
}

QString shapeText(const std::vector<int64_t>& shape)
{
    QStringList parts;
    for (int64_t d : shape)
        parts << QString::number(d);
    return parts.isEmpty() ? tr("scalar") : parts.join(QStringLiteral(" x "));
}

QString paramsText(uint64_t params)
{
    if (params >= 1'000'000'000ull)
        return QStringLiteral("%1 B").arg(double(params) / 1e9, 0, 'f', 1);
    if (params >= 1'000'000ull)
        return QStringLiteral("%1 M").arg(double(params) / 1e6, 0, 'f', 1);
    if (params >= 1'000ull)
        return QStringLiteral("%1 K").arg(double(params) / 1e3, 0, 'f', 1);
    return QString::number(params);
}

QString errorTitle(ErrorKind kind)
{
    switch (kind) {
    case ErrorKind::InvalidArgument:
        return tr("A setting is not valid");
    case ErrorKind::InvalidInput:
        return tr("This file is not a model NOVAQ can read");
    case ErrorKind::Unsupported:
        return tr("This model is not supported yet");
    case ErrorKind::Io:
        return tr("A file could not be read or written");
    case ErrorKind::Corrupt:
        return tr("This .novaq file is damaged");
    case ErrorKind::Cancelled:
        return tr("Cancelled");
    case ErrorKind::Network:
        return tr("The download failed");
    case ErrorKind::Internal:
        return tr("NOVAQ Studio made a mistake");
    }
    return tr("Something went wrong");
}

TensorKind tensorKind(const std::string& name)
{
    std::string n = name;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (contains(n, "norm") || contains(n, "bias"))
        return TensorKind::Other;
    if (contains(n, "embed") || contains(n, "lm_head") || contains(n, "wte") || contains(n, "wpe") ||
        n == "output.weight" || n.starts_with("output."))
        return TensorKind::EmbeddingOutput;
    if (contains(n, "attn") || contains(n, "attention") || contains(n, "q_proj") || contains(n, "k_proj") ||
        contains(n, "v_proj") || contains(n, "o_proj") || contains(n, ".wq") || contains(n, ".wk") ||
        contains(n, ".wv") || contains(n, ".wo") || contains(n, "qkv"))
        return TensorKind::Attention;
    if (contains(n, "mlp") || contains(n, "ffn") || contains(n, "feed_forward") || contains(n, "gate_proj") ||
        contains(n, "up_proj") || contains(n, "down_proj") || contains(n, ".w1") || contains(n, ".w2") ||
        contains(n, ".w3") || contains(n, "fc1") || contains(n, "fc2"))
        return TensorKind::Mlp;
    return TensorKind::Other;
}

QString tensorKindName(TensorKind kind)
{
    switch (kind) {
    case TensorKind::Attention:
        return tr("Attention");
    case TensorKind::Mlp:
        return tr("MLP");
    case TensorKind::EmbeddingOutput:
        return tr("Embedding / output");
    case TensorKind::Other:
        return tr("Other");
    }
    return {};
}

QColor tensorKindColor(TensorKind kind)
{
    switch (kind) {
    case TensorKind::Attention:
        return QColor(0x3b, 0x82, 0xf6); // blue
    case TensorKind::Mlp:
        return QColor(0xf5, 0x9e, 0x0b); // amber
    case TensorKind::EmbeddingOutput:
        return QColor(0x10, 0xb9, 0x81); // green
    case TensorKind::Other:
        return QColor(0x94, 0xa3, 0xb8); // slate
    }
    return {};
}

QColor accentColor() { return QColor(0x6d, 0x4a, 0xff); }

QColor accentTextColor(const QPalette& palette) { return isDark(palette) ? QColor(0xa8, 0x94, 0xff) : accentColor(); }

bool isDark(const QPalette& palette)
{
    return palette.color(QPalette::Window).lightness() < palette.color(QPalette::WindowText).lightness();
}

} // namespace novaq::ui
