#pragma once
// How the app writes numbers and sorts tensors into kinds (ui.md "Numbers"). Text only:
// the figures themselves come from the engine.

#include "novaq/io/error.h"

#include <QColor>
#include <QPalette>
#include <QString>

#include <cstdint>
#include <string>
#include <vector>

namespace novaq::ui {

QString sizeText(uint64_t bytes);                     // engine's humanBytes: "13.6 MiB"
QString ratioText(double ratio);                      // "9.1x"
QString errorText(double relError);                   // three significant digits: "0.162", "0.00341"
QString bitsText(double bits);                        // "1.62"
QString durationText(double seconds);                 // m:ss, "0:42", "12:05"
QString shapeText(const std::vector<int64_t>& shape); // "288 x 768"
QString paramsText(uint64_t params);                  // "6.8 M"

// The banner title for an engine error kind ("The file could not be read", ...).
QString errorTitle(ErrorKind kind);

enum class TensorKind { Attention, Mlp, EmbeddingOutput, Other };
// From the tensor's name: attention (q/k/v/o projections, attn), MLP (gate/up/down, mlp,
// ffn), embedding or output head (embed, tok_embeddings, lm_head, output), anything else.
TensorKind tensorKind(const std::string& name);
QString tensorKindName(TensorKind kind);
QColor tensorKindColor(TensorKind kind);
inline constexpr int kTensorKindCount = 4;

// The app's one accent colour: fills (primary buttons, progress, the current step, bars).
QColor accentColor();
// The accent for thin lines and text on the palette's base colour: lighter on a dark palette,
// where the fill colour would be too dim to read.
QColor accentTextColor(const QPalette& palette);

// True for a dark palette (light text on a dark window), whether the system's or ours.
bool isDark(const QPalette& palette);

} // namespace novaq::ui
