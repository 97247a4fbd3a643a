#include "novaq/pipeline/calibration_estimate.h"

#include "novaq/codec/encoder.h"
#include "novaq/codec/refine.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/calibrate.h"
#include "novaq/pipeline/planner.h"
#include "novaq/pipeline/report.h"
#include "novaq/pipeline/teacher_targets.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/session.h"
#include "novaq/tensor/dense.h"
#include "novaq/text/tokenizer.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>

namespace novaq {

namespace {

// The best of five runs: what the work takes when the cores are free (on a shared machine a
// single short run measures the other jobs as much as this one).
double secondsOf(const std::function<void()>& f)
{
    double best = 1e30;
    for (int k = 0; k < 5; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

HessianMatrix gaussianMatrix(int64_t rows, int64_t cols, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    HessianMatrix X(rows, cols);
    for (int64_t i = 0; i < X.size(); ++i)
        X.data()[i] = gauss(rng);
    return X;
}

// Rates of this machine (floating-point operations per second, or the like), measured on
// small matrices with the code paths calibration runs.
struct Rates {
    double forward = 0; // a dense block-shaped product (LlamaModel's dense Linear)
    double gemm = 0;    // H and C tiles (calibrate.cpp)
    double targets = 0; // TeacherTargets::solve, per (7/3 cols^3 + 2 rows cols^2)
    double refit = 0;   // refineForOutput, per rows cols^2
};

Rates measureRates(int64_t dim, const CodecConfig& config)
{
    Rates r;
    // The forward: 256 tokens (a window) through a dim x dim matrix. Probes of the model's own
    // widths: on a 512-row matrix (and 1,024-token tiles, and a 256 x 512 refit below) the
    // rates were 1.4-1.6x below what a 1B-class run reaches (its estimate 2,700-2,850 s for a
    // 2,072 s run, 2026-12-06).
    const int64_t cols = std::clamp<int64_t>(dim, 64, 4096), T = 256, rows = cols;
    // Four windows at once, as calibrate.cpp runs its windows (one forward call alone ran at
    // two thirds of that rate).
    constexpr int64_t kWindows = 4;
    const std::unique_ptr<Linear> linear = makeDenseLinear(gaussianMatrix(rows, cols, 1));
    const HessianMatrix X = gaussianMatrix(T, cols, 2);
    std::vector<HessianMatrix> Y(kWindows, HessianMatrix(T, rows));
    const double best = secondsOf([&] {
        tbb::parallel_for(int64_t(0), kWindows, [&](int64_t w) { linear->forward(X.data(), T, Y[size_t(w)].data()); });
    });
    r.forward = 2.0 * double(kWindows * T * rows * cols) / std::max(best, 1e-9);
    // The tiles: kCalibrationTile square outputs over 4096 tokens (a chunk's worth), in
    // parallel as calibrate.cpp runs them.
    constexpr int64_t kTokens = 4096;
    const int64_t gc = std::min<int64_t>(cols, 1024), tile = kCalibrationTile, tiles = (gc + tile - 1) / tile;
    const HessianMatrix Xg = gaussianMatrix(kTokens, gc, 3);
    const double g = secondsOf([&] {
        tbb::parallel_for(int64_t(0), tiles * tiles, [&](int64_t t) {
            const int64_t i = t / tiles, j = t % tiles;
            const int64_t nr = std::min(tile, gc - i * tile), nc = std::min(tile, gc - j * tile);
            HessianMatrix out(nr, nc);
            dense::gemm(dense::Op::T, dense::Op::N, nr, nc, kTokens, Xg.data() + i * tile, gc, Xg.data() + j * tile, gc,
                        out.data(), nc, false);
        });
    });
    r.gemm = 2.0 * double(kTokens) * double(gc * gc) / std::max(g, 1e-9);
    // Teacher targets and a refit of a 256 x dim matrix (at most 2048 columns).
    const int64_t pr = 256, pc = std::min<int64_t>(cols, 2048);
    const HessianMatrix Xp = gaussianMatrix(1024, pc, 4);
    HessianMatrix H = Xp.transpose() * Xp / 1024.0f;
    std::vector<float> diag(static_cast<size_t>(pc));
    for (int64_t j = 0; j < pc; ++j) {
        diag[static_cast<size_t>(j)] = H(j, j);
        H(j, j) += 0.01f;
    }
    const HessianMatrix W = gaussianMatrix(pr, pc, 5);
    const std::vector<float> w(W.data(), W.data() + W.size());
    std::vector<float> goal;
    const double t = secondsOf([&] {
        TeacherTargets fresh; // a factorization each time
        goal = fresh.solve(w, pr, pc, H, H, diag);
    });
    r.targets = (7.0 / 3.0 * double(pc) * pc * pc + 2.0 * double(pr) * pc * pc) / std::max(t, 1e-9);
    CodecParams params;
    params.config = config;
    const QuantizedTensor q = encodeMatrix(goal, pr, pc, params);
    const double f = secondsOf([&] {
        QuantizedTensor copy = q;
        (void)refineForOutput(copy, goal, H);
    });
    r.refit = double(pr) * pc * pc / std::max(f, 1e-9);
    return r;
}

// The calibration tokens the run would use: whole windows of the text, at most those asked for
// (tokens 0: chosen from the layer width).
void countTokens(CalibrationEstimate& est, const ModelReader& reader, const std::filesystem::path& modelPath,
                 const LlamaConfig& c, const std::filesystem::path& text, int64_t tokens, int64_t ctx)
{
    est.blocks = c.layers;
    est.widestInput = std::max({c.dim, c.qDim(), c.hiddenDim});
    est.tokensFromWidth = tokens <= 0;
    {
        const std::unique_ptr<Tokenizer> tokenizer = findTokenizer(reader, modelPath);
        const std::vector<int32_t> all =
            protocolTokens(*tokenizer, readTextForEval(text), DocumentSplit::Lines, bosOf(c, *tokenizer), 0);
        est.textTokens = static_cast<int64_t>(all.size()) / ctx * ctx;
    }
    const int64_t wanted = tokens > 0 ? tokens : defaultCalibrationTokens(est.widestInput);
    est.tokens = std::min(est.textTokens, std::max<int64_t>(wanted / ctx, 1) * ctx);
}

// Work per block, from the shapes (calibrate.cpp): the teacher's forward and the compressed
// block's, each resumed at each input (the attention output made twice: for o's statistics
// and for gate/up's; the student's down input twice: for its statistics and when the block
// ends), and the H, C and W C GEMMs.
void estimateBlockWork(CalibrationEstimate& est, const LlamaConfig& c, bool hasOutput, int64_t ctx, const Rates& rates)
{
    const double N = double(est.tokens), dim = double(c.dim), qDim = double(c.qDim()), kvDim = double(c.kvDim()),
                 ffn = double(c.hiddenDim);
    const double qkv = 2 * (qDim + 2 * kvDim) * dim + 2 * qDim * double(ctx); // with attention, per token
    const double o = 2 * dim * qDim, gateUp = 4 * ffn * dim, down = 2 * dim * ffn;
    const double full = qkv + o + gateUp + down;
    est.teacher = double(c.layers) * N * (full + qkv) / rates.forward;
    double gemm = 0;
    for (double cols : {dim, qDim, dim})
        gemm += 3 * N * cols * cols;           // H: half of 2 N cols^2 (lower tiles), C: 2 N cols^2
    gemm += N * ffn * ffn + 2 * N * dim * ffn; // down: H, and W C = Y_t^T X_s
    gemm *= double(c.layers);
    if (hasOutput)
        gemm += 3 * N * dim * dim;
    est.statistics = double(c.layers) * N * (full + qkv + gateUp) / rates.forward + gemm / rates.gemm;
}

// Per matrix: encoding (as a plain run), targets (a factor per input, W M per matrix), refit.
void estimateMatrixWork(CalibrationEstimate& est, const ModelReader& reader, const LlamaConfig& c,
                        const LlamaTensorMap& map, const ModelInspection& inspection, int threads, const Rates& rates)
{
    const double dim = double(c.dim), qDim = double(c.qDim()), ffn = double(c.hiddenDim);
    // Encoding measured per codec the plan uses (the embedding and output often get a higher
    // preset); measureEncodeTimes keeps each in the process.
    double targetWork = 0, refitWork = 0;
    for (const TensorInspection& t : inspection.tensors) {
        if (!t.quantize)
            continue;
        est.plainSeconds += measureEncodeTimes(t.config, threads).secondsFor(t.info.rows(), t.info.cols(), t.config);
        if (t.info.name == reader.tensors()[map.embedding].name) // no H: rows weighted by token counts
            continue;
        const double rows = double(t.info.rows()), cols = double(t.info.cols());
        targetWork += 2 * rows * cols * cols;
        refitWork += rows * cols * cols;
    }
    // A factor and the map M per input (down: a factor only, its rows solved as the W M above).
    for (double cols : {dim, qDim, dim})
        targetWork += double(c.layers) * 7.0 / 3.0 * cols * cols * cols;
    targetWork += double(c.layers) / 3.0 * ffn * ffn * ffn;
    est.encoding = est.plainSeconds;
    est.targets = targetWork / rates.targets;
    est.refit = refitWork / rates.refit;
}

// Peak memory: two streams of hidden states throughout, and the larger of two phases.
// A block: its weights twice (compressed and original, as floats), a chunk of inputs of the
// widest site and of the teacher's, the statistics of the widest input (H handed over, W C, the factor: 12 cols^2
// bytes and more) and a matrix being compressed (W, its target, its decode and the refit's
// W H). The embedding and the output: a plain run's working set and the embedding as floats.
uint64_t estimatePeakBytes(const CalibrationEstimate& est, const ModelReader& reader, const LlamaConfig& c,
                           const LlamaTensorMap& map, const ModelInspection& inspection)
{
    const double N = double(est.tokens), dim = double(c.dim);
    double blockParams = 0, largest = 0;
    for (size_t slot : map.linear.front())
        if (slot != kNoTensor) {
            blockParams += double(reader.tensors()[slot].numel());
            largest = std::max(largest, double(reader.tensors()[slot].numel()));
        }
    const double widest = double(est.widestInput);
    const double block = 2 * blockParams * 4 + (N / 8) * (widest + dim) * 4 + 16 * widest * widest + 16 * largest;
    const double ends = double(estimatedPeakBytes(inspection)) + double(c.vocab) * dim * 4;
    const double peak = 2 * N * dim * 4 + std::max(block, ends) + 64e6;
    return static_cast<uint64_t>(peak);
}

} // namespace

CalibrationEstimate estimateCalibratedRun(const ModelReader& reader, const std::filesystem::path& modelPath,
                                          const ModelInspection& inspection, const std::filesystem::path& text,
                                          int64_t tokens, int threads)
{
    const auto t0 = std::chrono::steady_clock::now();
    const LlamaConfig c = llamaConfig(reader);
    const LlamaTensorMap map = llamaTensors(reader, c);
    const int64_t ctx = std::min<int64_t>(256, c.maxSeq); // CalibrationOptions::ctx
    CalibrationEstimate est;
    countTokens(est, reader, modelPath, c, text, tokens, ctx);
    Rates rates;
    if (threads > 0) {
        tbb::task_arena arena(threads);
        arena.execute([&] { rates = measureRates(c.dim, inspection.codec.resolve()); });
    } else {
        rates = measureRates(c.dim, inspection.codec.resolve());
    }
    estimateBlockWork(est, c, map.output.has_value(), ctx, rates);
    estimateMatrixWork(est, reader, c, map, inspection, threads, rates);
    est.peakBytes = estimatePeakBytes(est, reader, c, map, inspection);
    est.probeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return est;
}

nlohmann::json CalibrationEstimate::toJson() const
{
    return {{"tokens", tokens},
            {"text_tokens", textTokens},
            {"widest_input", widestInput},
            {"tokens_from", tokensFromWidth ? "layer width" : "option"},
            {"seconds", seconds()},
            {"plain_seconds", plainSeconds},
            {"phases",
             {{"teacher", teacher},
              {"statistics", statistics},
              {"encoding", encoding},
              {"targets", targets},
              {"refit", refit}}},
            {"peak_bytes", peakBytes},
            {"probe_seconds", probeSeconds}};
}

std::string CalibrationEstimate::text() const
{
    char line[640];
    std::snprintf(line, sizeof line,
                  "calibration tokens      %lld of the text's %lld (%s; widest layer input %lld)\n"
                  "calibrated run          about %.0f s on this computer now (teacher pass %.0f, statistics %.0f, "
                  "encoding %.0f, targets %.0f, refits %.0f; without calibration about %.0f s)\n"
                  "calibrated peak memory  about %s\n",
                  static_cast<long long>(tokens), static_cast<long long>(textTokens),
                  tokensFromWidth ? "chosen from the layer width" : "--calibration-tokens",
                  static_cast<long long>(widestInput), seconds(), teacher, statistics, encoding, targets, refit,
                  plainSeconds, humanBytes(peakBytes).c_str());
    std::string out = line;
    if (tokens < widestInput)
        out += "WARNING                 fewer calibration tokens than the widest layer input: the refit keeps the "
               "original weights where the text never reaches; give a longer text\n";
    return out;
}

} // namespace novaq
