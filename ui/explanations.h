#pragma once
// The app's explanations of its figures and words, in one place so that every header, card,
// field and the Guide say the same thing: what it means, what is good, what is bad. Plain
// sentences for people who are not quantization experts; the technical word follows.

#include <QString>

namespace novaq::ui::explain {

QString relativeError();   // the relative error of a tensor or a model
QString sqnr();            // signal-to-quantization-noise ratio, dB
QString bitsPerWeight();   // effective bits per weight
QString subspaces();       // the column groups with their own codebooks
QString vectorLength();    // d: how many weights share one code
QString codecLabel();      // "novaq d=8 8+4 K=4" and the kept formats ("f16")
QString ratio();           // "9.1x smaller"
QString seed();            // codebook training's random start
QString threads();         // processor cores
QString calibration();     // the calibration text
QString fitsInMemory();    // the memory hint of the model lists
QString tensorName();      // the Tensor column of both tensor tables
QString tensorShape();     // the Shape column of both tensor tables
QString fitTo();           // the Settings page's "Fit to": a size, or this computer's memory
QString fitContext();      // the context length "Fit to this computer's memory" counts
QString allocationChart(); // the bits-per-tensor chart of a fitted plan

// The predicted quality of a plan in words, from the planner's predicted relative error
// (planner.h presetRelativeError, or ModelInspection::predictedError of a fitted plan):
// "very close to the original", "close to the original", "noticeably different", "far from the
// original". Empty for 0 (not known). The thresholds and the measurements they come from are in
// explanations.cpp.
QString predictedQuality(double relativeError);

// One label in words: "novaq d=8 8+4 K=4" -> "Groups of 8 weights share a code: an 8-bit code
// plus a 4-bit correction, 1.5 code bits per weight, in 4 column groups." A kept tensor's
// format ("f16", "bf16", "f32") -> "Kept as it was: 16-bit floating point." Empty when the
// label is neither.
QString codecLabelInWords(const QString& label);

// "Explained" sections for the Guide: "<h3>Term</h3><p>explanation</p>" for each figure.
QString glossaryHtml();

} // namespace novaq::ui::explain
