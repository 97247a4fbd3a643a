#pragma once
// Teacher-guided refinement, the data side: runs the model over calibration text one
// transformer block at a time and hands the compressor, for each linear layer in model
// order, the statistics of that layer's inputs: H = X^T X / n (damped) and its diagonal.
//
// Error feedback: the inputs are those the already-compressed layers produce. The hidden
// states of the calibration tokens start from the (compressed) embedding; within a block,
// q/k/v are fitted to the normed hidden states, o to the attention output computed with
// the compressed q/k/v, gate/up to the MLP input after the compressed o, and down to the
// gated-MLP output of the compressed gate/up; then the block, fully compressed, moves the
// hidden states on to the next one.
//
// Work per block: one forward of the original block (the teacher) and one of the compressed
// block (the student) over the calibration tokens, each resumed part by part
// (forwardLayerPart): stopped at a site's input until that site's statistics are taken (and,
// for the student, its layers compressed), then continued from there. Nothing but the residual
// stream is kept between two parts: the inputs of q/k/v and gate/up are its norms; the
// attention output (o's input) and down's (ffn wide) are made when o's and down's statistics
// are taken and made again when the stream goes on (o: with gate/up's; down: at the block's end).
// H (and C) of a site are one rank update (one GEMM) per chunk of windows, shared by every
// matrix that reads the site's input. down_proj, wider than its output, takes W C = Y_t^T X_s
// from the teacher's outputs Y_t instead of C (ffn x ffn).
// Memory: one block's weights (twice, each matrix let go once its stream has passed it), the
// two residual streams (tokens x dim each), one chunk of inputs and one H and C per site at a
// time, never the whole model.
//
// On a cluster (cluster.h) each rank holds the hidden states of its own whole chunks of
// windows only, runs the teacher and the student over them, and the chunk partials of H and
// C go to every rank to be added in chunk order: the same statistics at any rank count.

#include "novaq/codec/refine.h"
#include "novaq/formats/model_reader.h"
#include "novaq/pipeline/job.h"
#include "novaq/pipeline/teacher_targets.h"
#include "novaq/runtime/llama.h"

#include <filesystem>
#include <memory>
#include <span>
#include <vector>

namespace novaq {

class Tokenizer;

// The side of the square tiles H = X^T X and C are summed by (one GEMM per tile and chunk);
// calibration_estimate measures its rate with the same tiles.
inline constexpr int64_t kCalibrationTile = 512;

struct CalibrationOptions {
    std::filesystem::path text;
    int ctx = 256;             // tokens per window
    int64_t maxTokens = 32768; // calibration tokens used at most (whole windows)
    double damping = 0.01;     // H += damping * mean(diag H) * I
    // Fit each layer to the original model's output on the original inputs (X_t W^T) rather
    // than to the original weights on the compressed inputs (X_s W^T): the refit then also
    // corrects what the compressed layers before it got wrong.
    bool teacherTargets = true;
};

// Where a calibrated run spends its time, in seconds (wall clock).
struct CalibrationSeconds {
    double teacher = 0;    // forwards of the original blocks
    double statistics = 0; // forwards of the compressed blocks, H and C
};

struct TensorCalibration {
    HessianMatrix H;                     // cols x cols, X_s^T X_s / n damped; empty for the embedding
    HessianMatrix C;                     // X_t^T X_s / n (teacher targets), else empty
    HessianMatrix WC;                    // down_proj: W C = Y_t^T X_s / n (rows x cols) instead of C
    std::vector<float> columnImportance; // diag of H (before damping)
    std::vector<float> rowImportance;    // embedding: how often each token occurs (+1), mean 1
};

class Calibrator {
public:
    // Tokenizes the text (non-empty lines, [BOS] + ids each) and keeps whole windows.
    // Throws Error(Unsupported) for models the runtime cannot run, Error(InvalidArgument)
    // when the text is too short for one window.
    Calibrator(const ModelReader& reader, const Tokenizer& tokenizer, const CalibrationOptions& options,
               const CancelToken* cancel);
    ~Calibrator();

    // The tensors calibration covers, in the order they must be compressed: embedding, each
    // block's q k v o gate up down, output (when not tied).
    const std::vector<size_t>& order() const noexcept { return m_order; }
    bool covers(size_t index) const;
    int64_t tokens() const noexcept { return m_windows * m_ctx; }

    // Statistics for tensor `index` (the next one in order()).
    TensorCalibration statistics(size_t index);
    // Teacher targets (teacher_targets.h): the weights W* (rows x cols, row-major) that best
    // map the compressed model's inputs to the original's outputs, W* = W (C + delta I) H^-1;
    // quantizing towards W* instead of W minimizes ||X_t W^T - X_s What^T||. Empty when the
    // statistics hold no C (teacher targets off, or the embedding): quantize W itself. The
    // solve is kept for the next matrices with the same statistics (q/k/v, gate/up).
    std::vector<float> targets(std::span<const float> W, int64_t rows, int64_t cols,
                               const TensorCalibration& calibration);
    // What tensor `index` became (decoded), so later layers see its effect.
    void done(size_t index, std::span<const float> What);
    // Tensors with the same key (consecutive in order()) share their statistics and can be
    // compressed at the same time: q/k/v of a block, gate/up.
    int64_t shareKey(size_t index) const;
    // The block a tensor belongs to: -1 the embedding, 0.. layers - 1, layers the output.
    int blockOf(size_t index) const { return slotOf(index).layer; }
    int blocks() const noexcept { return m_model.config.layers; }
    // Time spent so far, per block (index blockOf() + 1: the embedding first, the output last).
    const std::vector<CalibrationSeconds>& seconds() const noexcept { return m_seconds; }

private:
    struct Slot {
        int layer = -1; // -1: embedding, layers: output
        int slot = 0;
    };
    Slot slotOf(size_t index) const;
    // One forward of the current block over this rank's windows, resumable at each site.
    struct Stream {
        std::vector<float> hidden; // tokens x dim: the residual stream
        int part = 0;              // the site (LinearInput) whose input the stream has reached; 4: the block's end
    };
    void ensureHidden();
    void enterLayer(int layer);
    void finishBlock(Stream& s, const LlamaModel& model, double& seconds);
    void stepWindow(const LlamaModel& model, int layer, Stream& s, int64_t w, int from, int to, float* into) const;
    void accumulate(int layer, LinearInput site, int64_t cols, TensorCalibration& out);
    struct ChunkProducts { // one chunk of windows' share of H and C (a cluster)
        HessianMatrix H, C;
    };
    void addChunksInOrder(std::vector<ChunkProducts>& parts, int64_t cols, int64_t cRows, HessianMatrix& H,
                          HessianMatrix* C);

    const ModelReader& m_reader;
    CalibrationOptions m_options;
    const CancelToken* m_cancel;
    LlamaModel m_model; // config, and the weights of the current block only
    LlamaTensorMap m_map;
    std::vector<size_t> m_order;
    std::vector<int32_t> m_tokens; // m_windows * m_ctx inputs
    int64_t m_windows = 0;
    int64_t m_ctx = 0;
    int64_t m_firstChunk = 0, m_endChunk = 0; // this rank's chunks of windows
    int64_t m_firstWindow = 0, m_endWindow = 0;
    Stream m_student;      // through the compressed layers
    Stream m_teacher;      // through the original model (teacher targets)
    LlamaModel m_original; // the current block's original weights (teacher targets)
    std::vector<CalibrationSeconds> m_seconds;
    bool m_hiddenReady = false;
    bool m_outputDone = false;              // the output layer's statistics are taken: the streams are freed
    int m_layer = -1;                       // block whose weights are loaded
    std::vector<TensorCalibration> m_cache; // per LinearInput of the current block
    std::vector<bool> m_cached;
    TeacherTargets m_targets; // keeps its solve for the matrices that share an input
};

} // namespace novaq
