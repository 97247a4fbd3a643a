#pragma once
// The codec choice as one value: a `--bits` preset, or the expert d/b1/b2, plus the subspaces.
// Every place that turns settings into a CodecConfig goes through it (the CLI, the app's main
// window and settings page, compress, the planner, inspect, the bench), so the rules, the
// limits (kCodecLimits, codec_config.h) and the words of the errors are the same everywhere.
// CompressOptions and PlanOptions carry one (pipeline/compress.h, planner.h).
//
// A preset and expert settings differ in one rule, which compression and every estimate
// follow alike (the planner applies it): a preset is the balanced allocation (the embedding,
// the output and the first block get a higher preset, planner.h), expert settings are taken as
// given for every tensor, even when they equal a preset's d/b1/b2 ("--d 8 --b1 8 --b2 0" is not
// "--bits 1"). Whether a spec is a preset is how it was made, never worked out from its fields.
//
// String form, in the spirit of faiss's index_factory (parse and toString round-trip):
//   "novaq bits=1.5 K=4"    the preset of kBitsPresets with these bits, in K subspaces
//   "novaq d=8 8+4 K=4"     expert: vector length d, stage bits b1+b2, K subspaces (the label)
// Words are separated by spaces; " K=..." may be left out (then CodecConfig{}.subspaces).
// The first word is the tensor encoding the codec writes ("novaq", manifest.h). A codec
// variant is a new encoding name with its own words, never new words under "novaq": older
// readers would take the variant's tensors for plain novaq ones (container/novaq_file.h).
//
// JSON form (fromJson and toJson round-trip):
//   {"bits": 1.5, "subspaces": 4}                  a preset
//   {"d": 8, "b1": 8, "b2": 4, "subspaces": 4}     expert; the manifest's "codec" object is
//                                                  this plus "col_scale" (codecConfigToJson)

#include "novaq/codec/codec_config.h"
#include "novaq/io/error.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace novaq {

class CodecSpec {
public:
    // The default, what `novaq local` uses without --bits: the 1.5-bit preset ("compact") in
    // CodecConfig{}.subspaces subspaces, which is CodecConfig{}.
    CodecSpec() noexcept;

    // Each factory checks the fields against kCodecLimits and throws Error(InvalidArgument)
    // naming the field, the value and what is allowed.
    // The preset of kBitsPresets with these bits (to 1e-9): "--bits 1.7 is not a preset; choose
    // one of 1, 1.5, ..." otherwise.
    static CodecSpec preset(double bits, int subspaces);
    // Expert settings, even when they equal a preset's (see above).
    static CodecSpec expert(const CodecConfig& config);
    // The app's Advanced > Vector length: 0 is the preset itself, another length the preset's
    // codebook bits at that vector length (expert settings).
    static CodecSpec presetAtLength(const BitsPreset& preset, int vectorLength, int subspaces);

    // The string form above. Throws Error(InvalidArgument) quoting the text and naming the
    // word that is wrong, its value and what is allowed.
    static CodecSpec parse(std::string_view text);
    // The JSON form above. Throws Error(kind) naming the field under `where` (e.g.
    // "settings.codec.b1: expected an integer 1..12, found 17").
    static CodecSpec fromJson(const nlohmann::json& j, const std::string& where,
                              ErrorKind kind = ErrorKind::InvalidInput);

    // A preset: the balanced allocation applies (see above).
    bool isPreset() const noexcept { return m_preset < kBitsPresets.size(); }
    // The row of kBitsPresets, or nullptr for expert settings.
    const BitsPreset* presetRow() const noexcept { return isPreset() ? &kBitsPresets[m_preset] : nullptr; }
    // The preset's bits, or the code bits per weight of expert settings ((b1 + b2) / d).
    double bits() const noexcept { return isPreset() ? kBitsPresets[m_preset].bits : m_config.codeBitsPerWeight(); }
    int subspaces() const noexcept { return m_config.subspaces; }
    // The configuration the encoder takes.
    CodecConfig resolve() const noexcept { return m_config; }

    std::string toString() const; // the string form
    std::string label() const;    // codecLabel(resolve()): what the reports show as "stored as"
    nlohmann::json toJson() const;

    bool operator==(const CodecSpec&) const = default;

private:
    CodecSpec(size_t preset, const CodecConfig& config) : m_preset(preset), m_config(config) {}

    size_t m_preset = kBitsPresets.size(); // row of kBitsPresets; size() for expert settings
    CodecConfig m_config;
};

// "novaq d=8 8+4 K=4": how reports and inspect name a quantized tensor's configuration.
std::string codecLabel(const CodecConfig& config);
// The presets' bits for messages and help: "1, 1.5, 2, 2.5, 3, 4, 5, 6".
std::string presetListText();

// The manifest's codec fields, {"d", "b1", "b2", "subspaces"}, and back. The reader requires
// every field, an integer inside kCodecLimits; it throws Error(kind) with
// "WHERE.FIELD: missing" or "WHERE.FIELD: expected an integer LO..HI, found VALUE".
nlohmann::json codecConfigToJson(const CodecConfig& config);
CodecConfig codecConfigFromJson(const nlohmann::json& codec, const std::string& where, ErrorKind kind);

} // namespace novaq
