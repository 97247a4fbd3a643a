#pragma once
// The steps of compressModel (compress.cpp) that stand on their own: resolve the options,
// check the input, describe the settings, compress one tensor, describe the file. Private to
// the pipeline; the engine's entry point is compress.h.
//
// compressModel runs them in this order:
//   resolveCodec (compress.cpp),
//   checkRunOptions                    options -> a codec and usable paths
//   checkBeforeCompressing             the model -> refused early, naming file and tensor
//   plan (planner.h / inspect.h)       a TensorPlan per tensor; compressSettings describes it
//   TensorCompressor::compress         one tensor -> its payload and record (cluster_work.h)
//   manifestJson                       the records -> the manifest the writer commits

#include "novaq/codec/codec_config.h"
#include "novaq/container/manifest.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/progress.h"
#include "novaq/pipeline/cluster_work.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/planner.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace novaq {

class Calibrator;
struct TargetFit; // inspect.h

// --- Resolve

// --threads and --output; rank 0 also checks that the output's folder exists, that it is not
// the input and (without overwrite) that it does not exist. A target runs as one process.
void checkRunOptions(const CompressOptions& options, bool targeted);

// What `validate` refuses in a .novaq file is refused here, before any work, as malformed input
// naming the file and the tensor: an empty, duplicate or non-UTF-8 tensor name (a .novaq
// manifest names every tensor once, in JSON), NaN or infinite weights (as 32-bit floats).
void checkBeforeCompressing(const ModelReader& reader, std::vector<float>& scratch, const CancelToken* cancel);

// --- Plan

// The bytes --with-tokenizer adds to the file (its files, aligned, and their manifest
// entries, at most): what a target leaves for the tensors. 0 without the option.
uint64_t attachedTokenizerBytes(const CompressOptions& options);

// The run's "settings" as the manifest and the report carry them. With a target (`fit`), d/b1/b2
// are the smallest preset's, where the fit starts (every tensor's record has its own codec).
nlohmann::json compressSettings(const CompressOptions& options, const PlanOptions& plan, const TargetFit* fit);

// --- Compress one tensor

// The record's fields that come from the source tensor: name, shape, source type, bytes in.
void setSourceFields(TensorRecord& rec, const TensorInfo& info);

// "novaq d=8 8+4 K=4", "F16", or the GGUF block type: what a finished tensor is stored as.
std::string storedAs(const TensorRecord& r);

// Compresses tensors one at a time as their plans say, into payloads and records. Holds the
// scratch buffers of the run (sized for the largest tensor once), so it is made once per run.
class TensorCompressor {
public:
    TensorCompressor(const ModelReader& reader, const CompressOptions& options, const CancelToken* cancel);

    // Tensor `index` as `plan` says: quantized (`calibrator` non-null: fitted to the calibration
    // statistics, teacher targets and refit), its GGUF blocks kept, its bytes kept, or kept as
    // floats. `phases` receives the seconds of this tensor's encoding, targets and refit. The
    // outcome's What is set for a calibrated quantized tensor only. `progress` is told the fraction
    // of the tensor done (total 1) and its stage, as encodeMatrix tells it (encoder.h).
    TensorOutcome compress(size_t index, const TensorPlan& plan, Calibrator* calibrator, const ProgressFn& progress,
                           PhaseSeconds& phases);

    // The weights buffer (what was last read); the run reads kept calibrated tensors into it.
    std::vector<float>& weights() noexcept { return m_W; }

private:
    struct Stored { // what one storage branch gives: the payload and the record's figures
        std::vector<std::byte> payload;
        double unrefinedOutputError = -1;
    };
    void quantize(size_t index, const TensorPlan& plan, Calibrator* calibrator, const ProgressFn& progress,
                  PhaseSeconds& phases, TensorRecord& rec, Stored& out);
    void keepBytes(size_t index, TensorRecord& rec, Stored& out, TensorEncoding encoding) const;
    void keepFaithfully(DType preferred, TensorRecord& rec, Stored& out);
    void keepAs(DType target, TensorRecord& rec, Stored& out);
    CodecParams codecParams(const TensorPlan& plan, const std::string& name) const;

    const ModelReader& m_reader;
    const CompressOptions& m_options;
    const CancelToken* m_cancel;
    std::vector<float> m_W;    // the tensor's weights as read
    std::vector<float> m_What; // what the file will give back
};

// A finished tensor's figures for the report (record filled in, `numel` its parameters).
TensorResult tensorResult(const TensorRecord& rec, uint64_t numel, const TensorOutcome& out);

// --- Write

// The manifest of the file: format and version, writer, source, architecture, model config,
// settings, tensor records and the attachments (written already, their entries given).
nlohmann::json manifestJson(const CompressOptions& options, const ModelReader& reader, const ModelReport& report,
                            uint16_t minor, nlohmann::json records, const nlohmann::json& attachments);

} // namespace novaq
