#include "ui/explanations.h"

#include "novaq/codec/codec_spec.h"

#include <QCoreApplication>

#include <optional>

namespace novaq::ui::explain {

namespace {

QString t(const char* text) { return QCoreApplication::translate("novaq::ui::Explanations", text); }

} // namespace

// The relative error is ||W - W'||^2 / ||W||^2 (core/novaq/pipeline/job.h). For ideal
// Gaussian weights no method can do better than 2^(-2R) at R bits per weight: 0.0625 at 2
// bits, 0.125 at 1.5; the "good" and "bad" ranges below are set from these limits.
QString relativeError()
{
    return t("Relative error: how much the compressed weights differ from the original ones. 0.05 means the "
             "difference holds 5% of what the weights hold (measured on their squares); 0 is a perfect copy. "
             "Smaller is better: under 0.1 is usually fine at 2 bits, 0.15 to 0.2 is normal at 1.5 bits, and above "
             "0.3 the model will likely answer noticeably worse.");
}

QString sqnr()
{
    return t("SQNR (signal-to-quantization-noise ratio): the relative error on a decibel scale, turned around so "
             "that larger is better. 10 dB is an error of 0.1, 13 dB of 0.05, 20 dB of 0.01. Above 10 dB is usually "
             "fine at 2 bits; below 5 dB the tensor lost a lot.");
}

QString bitsPerWeight()
{
    return t("Bits per weight: what each weight costs on average in the compressed file, codebooks and scales "
             "included. Originals use 16 bits per weight, so 2 bits is about 8 times smaller. Fewer bits make a "
             "smaller file and a larger error: 2 is a good balance, 1.5 is the smallest that usually still works, "
             "3 or 4 stay close to the original.");
}

QString subspaces()
{
    return t("Subspaces: the columns of each weight matrix are split into this many groups, and each group gets "
             "its own codebooks (tables of typical values). More groups fit the weights better (a smaller error) "
             "but store more codebooks (a slightly larger file). The default, 4, suits most models.");
}

QString vectorLength()
{
    return t("Vector length (d): how many weights share one code. Longer vectors make a smaller file with a larger "
             "error; the codebook sizes stay those of the preset. Leave it at the preset unless you are "
             "experimenting.");
}

QString tensorName() { return t("The tensor's name in the model: one weight matrix or vector."); }

QString tensorShape() { return t("Rows x columns of the tensor."); }

QString codecLabel()
{
    return t("How the tensor is stored. \"novaq d=8 8+4 K=4\" means: weights are coded 8 at a time (d), each group "
             "with an 8-bit code and then a 4-bit correction (two codebooks, 256 and 16 entries), in 4 column "
             "groups (K, the subspaces): (8 + 4) / 8 = 1.5 code bits per weight. \"f16\", \"bf16\" or \"f32\" "
             "means the tensor is kept as it was, because it is too small or too important to compress.");
}

QString ratio()
{
    return t("How many times smaller the compressed file is. 9x smaller turns a 13.6 MB model into about 1.5 MB. "
             "A 16-bit model compressed to 2 bits per weight is at most 8 times smaller; codebooks, scales and the "
             "small tensors that are kept take a little more.");
}

QString seed()
{
    return t("Seed: the random start of codebook training. The same seed and settings always give the same file; "
             "another seed gives a slightly different one, rarely a better one.");
}

QString threads()
{
    return t("Threads: how many processor cores to use. More is faster; the file is the same for any number.");
}

QString calibration()
{
    return t("A plain-text file in the model's language; when set, the compressor runs the original model on it and "
             "fits the compressed weights to what the model actually computes (Llama, Mistral, Qwen, Gemma and "
             "Phi-3 models). It makes the smallest presets answer much better; never judge the model on the same "
             "text.");
}

QString fitsInMemory()
{
    return t("Whether this computer has the memory to run the model: its weight files plus a quarter more (at "
             "least 512 MiB) for the context and working buffers, against this computer's memory (RAM). A model "
             "larger than memory may still be compressed, slowly, but will not run well here.");
}

QString codecLabelInWords(const QString& label)
{
    // The engine's label of a configuration (codecLabel, codec_spec.h), read back by its parser.
    std::optional<CodecSpec> spec;
    try {
        spec = CodecSpec::parse(label.trimmed().toStdString());
    } catch (const Error&) {
        // not a codec label: a kept format, below
    }
    if (spec && !spec->isPreset()) {
        const CodecConfig c = spec->resolve();
        const int d = c.d, b1 = c.b1, b2 = c.b2, k = c.subspaces;
        const double bits = c.codeBitsPerWeight();
        const QString codes =
            b2 > 0 ? t("an %1-bit code plus a %2-bit correction").arg(b1).arg(b2) : t("one %1-bit code").arg(b1);
        return t("Groups of %1 weights share a code: %2, %3 code bits per weight, in %4 column groups (subspaces).")
            .arg(d)
            .arg(codes)
            .arg(QString::number(bits, 'g', 3))
            .arg(k);
    }
    const QString lower = label.trimmed().toLower();
    if (lower == QStringLiteral("f16"))
        return t("Kept as it was: 16-bit floating point.");
    if (lower == QStringLiteral("bf16"))
        return t("Kept as it was: 16-bit brain floating point.");
    if (lower == QStringLiteral("f32"))
        return t("Kept as it was: 32-bit floating point.");
    return {};
}

QString glossaryHtml()
{
    const struct {
        QString term;
        QString text;
    } entries[] = {
        {t("Relative error"), relativeError()},  {t("SQNR"), sqnr()},
        {t("Bits per weight"), bitsPerWeight()}, {t("Smaller (the ratio)"), ratio()},
        {t("Subspaces"), subspaces()},           {t("Vector length"), vectorLength()},
        {t("Stored as"), codecLabel()},          {t("Fits in memory"), fitsInMemory()},
    };
    // Most texts open with their term ("SQNR (...): ..."): that opening goes in bold; the others
    // get the term in front.
    QString html;
    for (const auto& e : entries) {
        const qsizetype colon = e.text.indexOf(QStringLiteral(": "));
        const bool opensWithTerm = colon > 0 && colon < 80 && e.text.startsWith(e.term.left(4));
        const QString head = opensWithTerm ? e.text.left(colon + 1) : e.term + QLatin1Char(':');
        const QString rest = opensWithTerm ? e.text.mid(colon + 2) : e.text;
        html += QStringLiteral("<p><b>%1</b> %2</p>\n").arg(head.toHtmlEscaped(), rest.toHtmlEscaped());
    }
    return html;
}

QString fitTo()
{
    return t("Instead of a card: the best file no larger than a size you type, or the best one that runs in this "
             "computer's memory (its weights, its memory of the conversation and its working space counted).");
}

QString fitContext()
{
    return t("How many tokens of conversation the model should be able to remember while it runs; more tokens "
             "need more memory and leave less for the model.");
}

QString allocationChart()
{
    return t("Bits per weight of each tensor in the chosen plan, in model order: the tensors that matter most for "
             "the output get more bits.");
}

QString predictedQuality(double relativeError)
{
    // Thresholds from the measurements of kjv-llama-7m without calibration (README, "Quality by
    // preset": KL on held-out text, top-1 agreement), against each preset's mean relative error
    // (planner.cpp presetRelativeError): 4 bits 0.0059 -> KL 0.0029, top-1 94.7%; 3 bits 0.024 ->
    // KL 0.0061, 92.5%; 2.5 bits 0.043 -> KL 0.0099, 91.1%; 2 bits 0.073 -> KL 0.035, 84.3%;
    // 1.5 bits 0.153 -> KL 0.038, 82.6%; 1 bit 0.293 -> KL 0.133, 70.9%. So: at most 0.01
    // (KL under 0.003), at most 0.045 (KL under 0.01, the same next word more than 9 times in
    // 10), at most 0.16 (KL under 0.04, about 8 times in 10), and above.
    if (!(relativeError > 0))
        return {};
    if (relativeError <= 0.01)
        return t("very close to the original");
    if (relativeError <= 0.045)
        return t("close to the original");
    if (relativeError <= 0.16)
        return t("noticeably different");
    return t("far from the original");
}

} // namespace novaq::ui::explain
