#pragma once
// What a calibrated run (`novaq local --calibration TEXT`) would cost on this computer, before
// it starts: `novaq inspect --calibration TEXT`. The work is counted from the model's shapes
// (calibrate.h: one forward of each original block over the calibration tokens, one of the
// compressed block resumed at each input, H and C as GEMMs over the tokens, teacher targets
// and refits per matrix) and turned into seconds by rates measured here in a short probe (a
// dense block-shaped product, a tile GEMM, a teacher-target solve and a refit on small
// matrices, each the best of five runs, and the plain encoding rate): about a second of work.
// The estimate is for the cores free: on a machine busy with other jobs a run takes longer.

#include "novaq/formats/model_reader.h"
#include "novaq/pipeline/inspect.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace novaq {

struct CalibrationEstimate {
    int64_t tokens = 0;          // calibration tokens the run would use
    int64_t textTokens = 0;      // what the text gives (whole windows)
    int64_t widestInput = 0;     // the widest linear-layer input of the model
    bool tokensFromWidth = true; // chosen from the layer width (no --calibration-tokens)
    int blocks = 0;
    // Seconds, per phase of the whole run (report.h PhaseSeconds).
    double teacher = 0, statistics = 0, encoding = 0, targets = 0, refit = 0;
    double plainSeconds = 0; // the same run without calibration (encoding only)
    uint64_t peakBytes = 0;  // resident memory at the peak, estimated
    double probeSeconds = 0; // what measuring the rates took
    double seconds() const noexcept { return teacher + statistics + encoding + targets + refit; }
    nlohmann::json toJson() const;
    std::string text() const; // lines for `novaq inspect`
};

// Throws Error(Unsupported) for models the runtime cannot run, like calibration does.
// tokens 0: chosen from the layer width (planner.h defaultCalibrationTokens); threads 0: all.
CalibrationEstimate estimateCalibratedRun(const ModelReader& reader, const std::filesystem::path& modelPath,
                                          const ModelInspection& inspection, const std::filesystem::path& text,
                                          int64_t tokens, int threads);

} // namespace novaq
