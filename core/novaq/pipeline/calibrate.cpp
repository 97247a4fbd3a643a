#include "novaq/pipeline/calibrate.h"

#include "novaq/io/error.h"
#include "novaq/pipeline/cluster.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/session.h"
#include "novaq/tensor/dense.h"
#include "novaq/text/tokenizer.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace novaq {

namespace {

// Windows are split into this many fixed chunks, each summed in order into its own H and the
// chunks added in order: the same H at any thread count.
// On a cluster, rank r computes the chunks [r * kChunks / ranks, (r + 1) * kChunks / ranks).
constexpr int64_t kChunks = 8;

int64_t firstChunkOf(int rank, int ranks) { return int64_t(rank) * kChunks / ranks; }

int ownerOfChunk(int64_t chunk, int ranks)
{
    int r = 0;
    while (r + 1 < ranks && firstChunkOf(r + 1, ranks) <= chunk)
        ++r;
    return r;
}

LinearInput siteOf(int slot)
{
    switch (static_cast<LinearSlot>(slot)) {
    case LinearSlot::Q:
    case LinearSlot::K:
    case LinearSlot::V:
        return LinearInput::Attention;
    case LinearSlot::O:
        return LinearInput::AttentionOutput;
    case LinearSlot::Gate:
    case LinearSlot::Up:
        return LinearInput::Mlp;
    case LinearSlot::Down:
        break;
    }
    return LinearInput::MlpDown;
}

HessianMatrix damped(HessianMatrix H, double damping, std::vector<float>& diag)
{
    diag.resize(static_cast<size_t>(H.rows()));
    double mean = 0;
    for (int64_t j = 0; j < H.rows(); ++j) {
        diag[static_cast<size_t>(j)] = H(j, j);
        mean += H(j, j);
    }
    mean /= double(std::max<int64_t>(H.rows(), 1));
    const float add = static_cast<float>(damping * (mean > 0 ? mean : 1.0));
    for (int64_t j = 0; j < H.rows(); ++j)
        H(j, j) += add;
    return H;
}

int64_t colsOf(const LlamaConfig& c, int site)
{
    switch (static_cast<LinearInput>(site)) {
    case LinearInput::AttentionOutput:
        return c.qDim();
    case LinearInput::MlpDown:
        return c.hiddenDim;
    default:
        return c.dim;
    }
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One chunk's products, by tiles of kTile x kTile outputs: H_ij += Xs_i^T Xs_j for j <= i, and
// C_ij += Y_i^T Xs_j for every tile of C (Y's cols x Xs's cols) when Y is given (the teacher's
// inputs, or down's outputs). Each tile is one GEMM over the chunk's tokens by one task: the
// same arithmetic at any thread count; H's lower triangle only (mirrored by the caller).
// Tiles of 512 rather than 256: each GEMM packs its two panels of the chunk again, half as
// often per output (measured on 2 threads, 4096 tokens, 2048 columns: 46 -> 58 GFLOP/s).
void addChunkProducts(const HessianMatrix& Xs, const HessianMatrix* Y, HessianMatrix& H, HessianMatrix* C)
{
    constexpr int64_t kTile = kCalibrationTile;
    const int64_t cols = Xs.cols(), rows = Xs.rows();
    const int64_t tiles = (cols + kTile - 1) / kTile;
    const int64_t yCols = Y ? Y->cols() : 0;
    const int64_t yTiles = (yCols + kTile - 1) / kTile;
    tbb::parallel_for(int64_t(0), tiles * tiles + yTiles * tiles, [&](int64_t t) {
        // Straight into the tile of H (C) through the CPU's widest build (tensor/dense.h).
        if (t < tiles * tiles) {
            const int64_t i = t / tiles, j = t % tiles;
            if (j > i)
                return;
            const int64_t r0 = i * kTile, c0 = j * kTile;
            const int64_t nr = std::min(kTile, cols - r0), nc = std::min(kTile, cols - c0);
            dense::gemm(dense::Op::T, dense::Op::N, nr, nc, rows, Xs.data() + r0, cols, Xs.data() + c0, cols,
                        H.data() + r0 * cols + c0, cols, true);
            return;
        }
        t -= tiles * tiles;
        const int64_t i = t / tiles, j = t % tiles;
        const int64_t r0 = i * kTile, c0 = j * kTile;
        const int64_t nr = std::min(kTile, yCols - r0), nc = std::min(kTile, cols - c0);
        dense::gemm(dense::Op::T, dense::Op::N, nr, nc, rows, Y->data() + r0, yCols, Xs.data() + c0, cols,
                    C->data() + r0 * cols + c0, cols, true);
    });
}

} // namespace

Calibrator::Calibrator(const ModelReader& reader, const Tokenizer& tokenizer, const CalibrationOptions& options,
                       const CancelToken* cancel)
    : m_reader(reader), m_options(options), m_cancel(cancel)
{
    m_model.config = llamaConfig(reader);
    const LlamaConfig& c = m_model.config;
    m_map = llamaTensors(reader, c);
    m_model.layers.resize(static_cast<size_t>(c.layers));

    m_order.push_back(m_map.embedding);
    for (const auto& slots : m_map.linear)
        for (size_t t : slots)
            if (t != kNoTensor) // fused projections fill one slot of their group
                m_order.push_back(t);
    if (m_map.output)
        m_order.push_back(*m_map.output);

    m_ctx = std::min<int64_t>(options.ctx, c.maxSeq);
    const std::string text = readTextForEval(options.text);
    const int bos = bosOf(c, tokenizer);
    std::vector<int32_t> all = protocolTokens(tokenizer, text, DocumentSplit::Lines, bos, 0);
    for (int32_t& t : all)
        if (t < 0 || t >= c.vocab)
            throw Error(ErrorKind::InvalidInput, options.text.string() + ": the tokenizer gives id " +
                                                     std::to_string(t) + ", outside the model's vocabulary of " +
                                                     std::to_string(c.vocab));
    m_windows =
        std::min<int64_t>(static_cast<int64_t>(all.size()) / m_ctx, std::max<int64_t>(options.maxTokens / m_ctx, 1));
    if (m_windows < 1)
        throw Error(ErrorKind::InvalidArgument, options.text.string() + ": the calibration text gives " +
                                                    std::to_string(all.size()) + " tokens, fewer than one window of " +
                                                    std::to_string(m_ctx) + "; give a longer text");
    m_tokens.assign(all.begin(), all.begin() + m_windows * m_ctx);
    const Cluster& ranks = cluster();
    const int64_t perChunk = (m_windows + kChunks - 1) / kChunks;
    m_firstChunk = firstChunkOf(ranks.rank(), ranks.size());
    m_endChunk = firstChunkOf(ranks.rank() + 1, ranks.size());
    m_firstWindow = std::min(m_windows, m_firstChunk * perChunk);
    m_endWindow = std::min(m_windows, m_endChunk * perChunk);
    m_cache.resize(4);
    m_cached.assign(4, false);
    m_seconds.resize(static_cast<size_t>(c.layers) + 2);
    if (options.teacherTargets) {
        m_original.config = c;
        m_original.layers.resize(static_cast<size_t>(c.layers));
    }
}

Calibrator::~Calibrator() = default;

bool Calibrator::covers(size_t index) const
{
    return std::find(m_order.begin(), m_order.end(), index) != m_order.end();
}

int64_t Calibrator::shareKey(size_t index) const
{
    const Slot s = slotOf(index);
    if (s.layer < 0 || s.layer >= m_model.config.layers)
        return int64_t(s.layer) * 4;
    return int64_t(s.layer) * 4 + static_cast<int64_t>(siteOf(s.slot));
}

Calibrator::Slot Calibrator::slotOf(size_t index) const
{
    if (index == m_map.embedding)
        return {-1, 0};
    if (m_map.output && index == *m_map.output)
        return {m_model.config.layers, 0};
    for (size_t l = 0; l < m_map.linear.size() && index != kNoTensor; ++l)
        for (int k = 0; k < kLinearSlots; ++k)
            if (m_map.linear[l][static_cast<size_t>(k)] == index)
                return {static_cast<int>(l), k};
    internalError("tensor " + std::to_string(index) + " is not calibrated");
}

// Hidden states from the original embedding, when the embedding itself was not compressed.
void Calibrator::ensureHidden()
{
    if (m_hiddenReady)
        return;
    const LlamaConfig& c = m_model.config;
    std::vector<float> E(static_cast<size_t>(c.vocab) * static_cast<size_t>(c.dim));
    m_reader.readFloat(m_map.embedding, E);
    m_reader.release(m_map.embedding);
    done(m_map.embedding, E);
}

// Window w (this rank's numbering) of stream s from the input of site `from` on to that of site
// `to` (4: the block's output) through block `layer` of `model`. `into` (m_ctx rows), when
// non-null, gets the input of site `to`, or at 4 down's output less its bias (the teacher's
// Y_t). The parts are forwardLayer's (forwardLayerPart): the same bits as one forwardLayer.
void Calibrator::stepWindow(const LlamaModel& model, int layer, Stream& s, int64_t w, int from, int to,
                            float* into) const
{
    const LlamaConfig& c = m_model.config;
    const LlamaLayer& block = model.layers[static_cast<size_t>(layer)];
    const int64_t T = m_ctx, dim = c.dim, qDim = c.qDim();
    float* h = s.hidden.data() + w * T * dim;
    if (from == static_cast<int>(LinearInput::AttentionOutput))
        internalError("calibration: a stream never stops at the attention output");
    // The attention output, made here from the block's input (the residual stream does not
    // change before o) and not kept: two streams of it are tokens x q dim each.
    std::vector<float> att, x;
    if (from < 1 && to >= 1)
        att.resize(static_cast<size_t>(T * qDim));
    // The input of site p into out (T x its width): the attention output as made above; the
    // others from the residual stream (down's through the MLP's gate and up).
    const auto inputOf = [&](int p, float* out) {
        switch (static_cast<LinearInput>(p)) {
        case LinearInput::Attention:
            rmsNorm(h, block.attnNorm, c.normEps, T, dim, out);
            break;
        case LinearInput::AttentionOutput:
            std::copy_n(att.data(), T * qDim, out);
            break;
        case LinearInput::Mlp:
            rmsNorm(h, block.ffnNorm, c.normEps, T, dim, out);
            break;
        case LinearInput::MlpDown: {
            std::vector<float> xn(static_cast<size_t>(T * dim));
            rmsNorm(h, block.ffnNorm, c.normEps, T, dim, xn.data());
            forwardLayerPart(model, layer, LinearInput::Mlp, xn.data(), h, T, nullptr, out);
            break;
        }
        }
    };
    for (int p = from; p < to; ++p) {
        if (p == static_cast<int>(LinearInput::Attention)) {
            x.resize(static_cast<size_t>(T * dim));
            inputOf(p, x.data());
            KvCache cache(c, T);
            forwardLayerPart(model, layer, LinearInput::Attention, x.data(), h, T, &cache, att.data());
        } else if (p == static_cast<int>(LinearInput::AttentionOutput)) {
            x.resize(static_cast<size_t>(T * dim)); // the MLP's input, made again by inputOf when asked for
            forwardLayerPart(model, layer, LinearInput::AttentionOutput, att.data(), h, T, nullptr, x.data());
        } else if (p == static_cast<int>(LinearInput::MlpDown)) {
            x.resize(static_cast<size_t>(T * c.hiddenDim));
            inputOf(p, x.data());
            float* y = to == 4 ? into : nullptr;
            forwardLayerPart(model, layer, LinearInput::MlpDown, x.data(), h, T, nullptr, y);
            const std::vector<float>& bias = block.bias[static_cast<int>(LinearSlot::Down)];
            if (y && !bias.empty())
                for (int64_t t = 0; t < T; ++t)
                    for (int64_t i = 0; i < dim; ++i)
                        y[t * dim + i] -= bias[static_cast<size_t>(i)];
        } // from gate/up's site to down's: nothing to do, down's input is made when asked for
    }
    if (into && to < 4)
        inputOf(to, into);
}

// The rest of the current block for every window of s: its output, the next block's input.
void Calibrator::finishBlock(Stream& s, const LlamaModel& model, double& seconds)
{
    const auto t0 = std::chrono::steady_clock::now();
    if (s.part < 4)
        tbb::parallel_for(int64_t(0), m_endWindow - m_firstWindow,
                          [&](int64_t w) { stepWindow(model, m_layer, s, w, s.part, 4, nullptr); });
    s.part = 0;
    seconds += secondsSince(t0);
    checkCancel(m_cancel);
}

void Calibrator::enterLayer(int layer)
{
    ensureHidden();
    const LlamaConfig& c = m_model.config;
    while (m_layer < layer) {
        if (m_layer >= 0) {
            // Move the hidden states through the finished block (its compressed weights), and
            // the teacher's through the original block.
            CalibrationSeconds& seconds = m_seconds[static_cast<size_t>(m_layer + 1)];
            if (m_options.teacherTargets)
                finishBlock(m_teacher, m_original, seconds.teacher);
            finishBlock(m_student, m_model, seconds.statistics);
            m_model.layers[static_cast<size_t>(m_layer)] = LlamaLayer{};
            if (m_options.teacherTargets)
                m_original.layers[static_cast<size_t>(m_layer)] = LlamaLayer{};
        }
        ++m_layer;
        if (m_layer < c.layers) {
            m_model.layers[static_cast<size_t>(m_layer)] = loadLlamaLayer(m_reader, c, m_map, m_layer);
            if (m_options.teacherTargets)
                m_original.layers[static_cast<size_t>(m_layer)] = loadLlamaLayer(m_reader, c, m_map, m_layer);
        }
        m_cached.assign(4, false);
        for (TensorCalibration& kept : m_cache)
            kept = TensorCalibration{};
    }
}

void Calibrator::accumulate(int layer, LinearInput site, int64_t cols, TensorCalibration& out)
{
    const LlamaConfig& c = m_model.config;
    const bool teacher = m_options.teacherTargets;
    const bool output = layer == c.layers;
    const int p = static_cast<int>(site);
    // down_proj (its input wider than its output): W C = Y_t^T X_s from the teacher's outputs,
    // dim x ffn, rather than C = X_t^T X_s, ffn x ffn, one GEMM and a cols^2 solve saved.
    const bool products = teacher && !output && site == LinearInput::MlpDown;
    const int64_t yCols = products ? c.dim : cols;
    const int teacherTo = products ? 4 : p;
    if (output ? m_outputDone : (m_student.part > p || (teacher && m_teacher.part > p)))
        internalError("calibration statistics asked for out of order");
    Cluster& ranks = cluster();
    const int64_t perChunk = (m_windows + kChunks - 1) / kChunks;
    CalibrationSeconds& seconds = m_seconds[static_cast<size_t>(layer + 1)];
    // H and C are sums over chunks of windows, added in chunk order: H = ((0 + P_0) + P_1) + ...
    // One process adds each chunk's product straight into H (and C); a cluster keeps the
    // products of the chunks, sent by the rank that computed them to every rank, and adds them
    // in the same order: the same bits at any thread and rank count.
    HessianMatrix H = HessianMatrix::Zero(cols, cols), C;
    if (teacher)
        C = HessianMatrix::Zero(yCols, cols);
    std::vector<ChunkProducts> parts(ranks.single() ? 0 : static_cast<size_t>(kChunks));
    for (int64_t ch = m_firstChunk; ch < m_endChunk; ++ch) {
        const int64_t first = std::min(m_windows, ch * perChunk), end = std::min(m_windows, (ch + 1) * perChunk);
        HessianMatrix* intoH = &H;
        HessianMatrix* intoC = &C;
        if (!ranks.single()) {
            ChunkProducts& part = parts[static_cast<size_t>(ch)];
            part.H.setZero(cols, cols);
            if (teacher)
                part.C.setZero(yCols, cols);
            intoH = &part.H;
            intoC = &part.C;
        }
        if (first >= end)
            continue;
        // The chunk's windows, teacher and student, moved on to the site (the teacher past
        // down, for its outputs) and their inputs there.
        const int64_t rows = (end - first) * m_ctx;
        HessianMatrix Y;
        if (teacher) {
            const auto t0 = std::chrono::steady_clock::now();
            Y.resize(rows, yCols);
            tbb::parallel_for(first, end, [&](int64_t w) {
                if (m_cancel && m_cancel->cancelled())
                    return;
                float* into = Y.data() + (w - first) * m_ctx * yCols;
                if (output)
                    finalNorm(m_model, m_teacher.hidden.data() + (w - m_firstWindow) * m_ctx * c.dim, m_ctx, into);
                else
                    stepWindow(m_original, layer, m_teacher, w - m_firstWindow, m_teacher.part, teacherTo, into);
            });
            seconds.teacher += secondsSince(t0);
            checkCancel(m_cancel);
        }
        const auto t0 = std::chrono::steady_clock::now();
        HessianMatrix Xs(rows, cols);
        tbb::parallel_for(first, end, [&](int64_t w) {
            if (m_cancel && m_cancel->cancelled())
                return;
            float* into = Xs.data() + (w - first) * m_ctx * cols;
            if (output)
                finalNorm(m_model, m_student.hidden.data() + (w - m_firstWindow) * m_ctx * c.dim, m_ctx, into);
            else
                stepWindow(m_model, layer, m_student, w - m_firstWindow, m_student.part, p, into);
        });
        checkCancel(m_cancel);
        addChunkProducts(Xs, teacher ? &Y : nullptr, *intoH, teacher ? intoC : nullptr);
        seconds.statistics += secondsSince(t0);
    }
    checkCancel(m_cancel);
    const auto t0 = std::chrono::steady_clock::now();
    if (output) { // nothing comes after the output layer: the streams are done with
        m_outputDone = true;
        for (Stream* s : {&m_student, &m_teacher})
            *s = Stream{};
    } else {
        // The streams stop at the attention output only for its statistics: they stay at the
        // block's input (the attention output is made again from it for o's successors).
        const auto reached = [](int part) {
            return part == static_cast<int>(LinearInput::AttentionOutput) ? static_cast<int>(LinearInput::Attention)
                                                                          : part;
        };
        m_student.part = reached(p);
        if (teacher)
            m_teacher.part = reached(teacherTo);
        // The matrices a stream has gone past are not used again (down's input is made from
        // gate and up): the teacher's block is gone once it has passed down, before down's
        // targets and refit, the block's largest.
        const auto release = [&](LlamaModel& model, int part) {
            LlamaLayer& block = model.layers[static_cast<size_t>(layer)];
            for (int slot = 0; slot < kLinearSlots; ++slot) {
                const int at = static_cast<int>(siteOf(slot));
                if (at < part &&
                    !(part == static_cast<int>(LinearInput::MlpDown) && at == static_cast<int>(LinearInput::Mlp)))
                    block.linear[slot].reset();
            }
        };
        release(m_model, m_student.part);
        if (teacher)
            release(m_original, m_teacher.part);
    }
    if (!ranks.single())
        addChunksInOrder(parts, cols, yCols, H, teacher ? &C : nullptr);
    H.triangularView<Eigen::StrictlyUpper>() = H.transpose();
    const float n = static_cast<float>(m_windows * m_ctx);
    H /= n;
    out.H = damped(std::move(H), m_options.damping, out.columnImportance);
    if (teacher) {
        C /= n;
        (products ? out.WC : out.C) = std::move(C);
    }
    seconds.statistics += secondsSince(t0);
}

// A cluster: every chunk's products go from the rank that computed them to every rank, and are
// added in chunk order.
void Calibrator::addChunksInOrder(std::vector<ChunkProducts>& parts, int64_t cols, int64_t cRows, HessianMatrix& H,
                                  HessianMatrix* C)
{
    Cluster& ranks = cluster();
    for (int64_t ch = 0; ch < kChunks; ++ch) {
        ChunkProducts& part = parts[static_cast<size_t>(ch)];
        for (HessianMatrix* M : {&part.H, &part.C}) {
            if (M == &part.C && !C)
                continue;
            M->resize(M == &part.C ? cRows : cols, cols);
            ranks.broadcast({reinterpret_cast<std::byte*>(M->data()), static_cast<size_t>(M->size()) * sizeof(float)},
                            ownerOfChunk(ch, ranks.size()), m_cancel);
        }
        H += part.H;
        if (C)
            *C += part.C;
        part = ChunkProducts{};
    }
}

TensorCalibration Calibrator::statistics(size_t index)
{
    const Slot s = slotOf(index);
    const LlamaConfig& c = m_model.config;
    TensorCalibration out;
    if (s.layer < 0) {
        std::vector<double> counts(static_cast<size_t>(c.vocab), 1.0);
        for (int32_t t : m_tokens)
            counts[static_cast<size_t>(t)] += 1.0;
        double mean = 0;
        for (double x : counts)
            mean += x;
        mean /= double(counts.size());
        out.rowImportance.resize(counts.size());
        for (size_t i = 0; i < counts.size(); ++i)
            out.rowImportance[i] = static_cast<float>(counts[i] / mean);
        return out;
    }
    enterLayer(s.layer);
    if (s.layer == c.layers) {
        if (m_model.finalNorm.empty()) {
            m_model.finalNorm = readFinalNorm(m_reader, c, m_map);
        }
        accumulate(s.layer, LinearInput::Attention, c.dim, out);
        return out;
    }
    const LinearInput site = siteOf(s.slot);
    const auto g = static_cast<size_t>(site);
    if (!m_cached[g]) {
        // Inputs are asked for in block order: the statistics of the ones before are done with.
        for (size_t k = 0; k < g; ++k) {
            m_cache[k] = TensorCalibration{};
            m_cached[k] = false;
        }
        accumulate(s.layer, site, colsOf(c, static_cast<int>(site)), m_cache[g]);
        m_cached[g] = true;
    }
    if (site == LinearInput::MlpDown) { // read by down alone: handed over rather than copied (ffn^2)
        m_cached[g] = false;
        return std::move(m_cache[g]);
    }
    return m_cache[g];
}

std::vector<float> Calibrator::targets(std::span<const float> W, int64_t rows, int64_t cols,
                                       const TensorCalibration& calibration)
{
    if (calibration.WC.size() > 0)
        return m_targets.solveProducts(W, rows, cols, calibration.H, calibration.WC, calibration.columnImportance);
    if (calibration.C.size() == 0)
        return {};
    return m_targets.solve(W, rows, cols, calibration.H, calibration.C, calibration.columnImportance);
}

void Calibrator::done(size_t index, std::span<const float> What)
{
    const Slot s = slotOf(index);
    const LlamaConfig& c = m_model.config;
    if (s.layer < 0) {
        // This rank's windows only (all of them on a single rank).
        const std::span<const int32_t> mine(m_tokens.data() + m_firstWindow * m_ctx,
                                            static_cast<size_t>((m_endWindow - m_firstWindow) * m_ctx));
        m_student.hidden.resize(mine.size() * static_cast<size_t>(c.dim));
        for (size_t t = 0; t < mine.size(); ++t)
            std::copy_n(What.data() + static_cast<size_t>(mine[t]) * static_cast<size_t>(c.dim), c.dim,
                        m_student.hidden.data() + t * static_cast<size_t>(c.dim));
        scaleEmbeddings(c, m_student.hidden.data(), static_cast<int64_t>(mine.size()));
        if (m_options.teacherTargets && m_teacher.hidden.empty()) { // the original embedding's rows
            std::vector<float> E(static_cast<size_t>(c.vocab) * static_cast<size_t>(c.dim));
            m_reader.readFloat(m_map.embedding, E);
            m_teacher.hidden.resize(m_student.hidden.size());
            for (size_t t = 0; t < mine.size(); ++t)
                std::copy_n(E.data() + static_cast<size_t>(mine[t]) * static_cast<size_t>(c.dim), c.dim,
                            m_teacher.hidden.data() + t * static_cast<size_t>(c.dim));
            scaleEmbeddings(c, m_teacher.hidden.data(), static_cast<int64_t>(mine.size()));
        }
        m_hiddenReady = true;
        return;
    }
    if (s.layer == c.layers)
        return; // nothing comes after the output layer
    // A block whose matrices were all kept asked for no statistics: the hidden states move
    // on to it here.
    if (s.layer > m_layer)
        enterLayer(s.layer);
    if (s.layer != m_layer || static_cast<int>(siteOf(s.slot)) < m_student.part)
        internalError("calibration out of model order");
    LlamaLayer& layer = m_model.layers[static_cast<size_t>(s.layer)];
    const Linear& old = *layer.linear[s.slot];
    RowMatrix W = Eigen::Map<const RowMatrix>(What.data(), old.rows(), old.cols());
    layer.linear[s.slot] = makeDenseLinear(std::move(W));
    // Inputs downstream of this layer change.
    for (int g = static_cast<int>(siteOf(s.slot)) + 1; g < 4; ++g)
        m_cached[static_cast<size_t>(g)] = false;
}

} // namespace novaq
