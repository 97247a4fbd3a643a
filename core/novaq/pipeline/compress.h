#pragma once
// `novaq local` as an engine call: read, plan, quantize, write. The GUI calls the same.
//
// Determinism: the same input, settings and seed give a byte-identical .novaq file at any
// thread count. Wall-clock times are therefore reported by the run (events, summary,
// --json) but never written into the file.

#include "novaq/codec/codec_config.h"
#include "novaq/codec/codec_spec.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/report.h"

#include <filesystem>
#include <vector>

namespace novaq {

struct RankShare; // cluster.h

struct CompressOptions {
    std::filesystem::path input;  // a model file or folder
    std::filesystem::path output; // the .novaq file to write
    std::string sourceLabel;      // what the user named (defaults to input)
    CodecSpec codec;              // the --bits preset or the expert settings, with the subspaces
    int threads = 0;              // 0: all cores
    uint64_t seed = CodecParams{}.seed;
    bool overwrite = true;
    // Teacher-guided refinement: calibration text (empty: none) and how many of its tokens
    // to use (0: chosen from the layer width, defaultCalibrationTokens() in planner.h).
    // Families of the architecture table only (runtime/architecture.h).
    std::filesystem::path calibration;
    int64_t calibrationTokens = 0;
    // Carry the source's tokenizer files inside the .novaq file (their size counts in the
    // file). Without them, eval/generate find the tokenizer in the source folder the
    // manifest names, or take --tokenizer / --against.
    bool attachTokenizer = false;
    // A cluster run (`mpirun -n N novaq local`, cluster.h): rank 0 fills in each rank's share
    // of the work. Unused by a single process.
    std::vector<RankShare>* shares = nullptr;
    // Make it fit (--target-size / --target-bits): per-tensor presets chosen so that the file
    // lands just under this many bytes, or effective bits per weight (everything counted);
    // 0: off. When on, only the subspaces of `codec` are used.
    uint64_t targetBytes = 0;
    double targetBits = 0;
    std::string targetText; // the option as given ("--target-size 2.2MB"), for messages and the file
    // Benchmarks only (novaq_bench --make-novaq): a short encode (fewer k-means iterations and
    // training vectors, no refit rounds): the same layout and size, worse codes; for measuring
    // the runtime's speed on large models, whose full encode takes far longer.
    bool quickEncode = false;
};

// Throws Error on bad options, unreadable input, write failure or cancel; in every such
// case no output file is left behind (an existing file at `output` is untouched).
ModelReport compressModel(const CompressOptions& options, ProgressSink* sink, const CancelToken* cancel);

// Where the embedded demo model is: $NOVAQ_DEMO_MODEL, the installed data folder next to
// the executable (../share/novaq-studio/models/kjv-llama-7m, or ../../share/... from
// libexec/novaq), or the source tree.
std::filesystem::path demoModelPath(const std::filesystem::path& executable);

} // namespace novaq
