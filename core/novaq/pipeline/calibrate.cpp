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

// Tile (i, j) of kTile x kTile outputs: H_ij += Xs_i^T Xs_j for j <= i, C_ij += Xt_i^T Xs_j for
// all j (C when Xt is given). Each tile is one GEMM over the chunk's tokens by one task: the
// same arithmetic at any thread count; H's lower triangle only (mirrored by the caller).
void addChunkProducts(const HessianMatrix& Xs, const HessianMatrix* Xt, HessianMatrix& H, HessianMatrix* C)
{
    constexpr int64_t kTile = 256;
    const int64_t cols = Xs.cols();
    const int64_t tiles = (cols + kTile - 1) / kTile;
    tbb::parallel_for(int64_t(0), tiles * tiles, [&](int64_t t) {
        const int64_t i = t / tiles, j = t % tiles;
        const int64_t r0 = i * kTile, c0 = j * kTile;
        const int64_t nr = std::min(kTile, cols - r0), nc = std::min(kTile, cols - c0);
        const int64_t rows = Xs.rows();
        // Straight into the tile of H (C) through the CPU's widest build (tensor/dense.h).
        if (j <= i)
            dense::gemm(dense::Op::T, dense::Op::N, nr, nc, rows, Xs.data() + r0, cols, Xs.data() + c0, cols,
                        H.data() + r0 * cols + c0, cols, true);
        if (Xt)
            dense::gemm(dense::Op::T, dense::Op::N, nr, nc, rows, Xt->data() + r0, cols, Xs.data() + c0, cols,
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
    m_teacherInputs.resize(4);
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

void Calibrator::teacherPass(int layer, bool keepInputs)
{
    if (m_teacherLayer >= layer)
        return;
    const auto t0 = std::chrono::steady_clock::now();
    const LlamaConfig& c = m_model.config;
    const int64_t mine = (m_endWindow - m_firstWindow) * m_ctx;
    if (keepInputs)
        for (int g = 0; g < 4; ++g)
            m_teacherInputs[static_cast<size_t>(g)].resize(static_cast<size_t>(mine * colsOf(c, g)));
    // Each window writes its own rows: the same values at any thread count.
    tbb::parallel_for(int64_t(0), m_endWindow - m_firstWindow, [&](int64_t w) {
        const InputObserver keep = [&](int, LinearInput s, const float* X, int64_t T, int64_t n) {
            std::copy_n(X, T * n, m_teacherInputs[static_cast<size_t>(s)].data() + w * m_ctx * n);
        };
        KvCache cache(m_original.config, m_ctx);
        forwardLayer(m_original, layer, m_teacher.data() + w * m_ctx * c.dim, m_ctx, cache,
                     keepInputs ? &keep : nullptr);
    });
    m_teacherLayer = layer;
    m_seconds[static_cast<size_t>(layer + 1)].teacher += secondsSince(t0);
    checkCancel(m_cancel);
}

void Calibrator::enterLayer(int layer)
{
    ensureHidden();
    const LlamaConfig& c = m_model.config;
    while (m_layer < layer) {
        if (m_layer >= 0) {
            // Move the hidden states through the finished block (its compressed weights), and
            // the teacher's through the original block (when no statistics asked for it).
            if (m_options.teacherTargets)
                teacherPass(m_layer, false);
            const auto t0 = std::chrono::steady_clock::now();
            tbb::parallel_for(int64_t(0), m_endWindow - m_firstWindow, [&](int64_t w) {
                KvCache cache(c, m_ctx);
                forwardLayer(m_model, m_layer, m_hidden.data() + w * m_ctx * c.dim, m_ctx, cache);
            });
            m_seconds[static_cast<size_t>(m_layer + 1)].statistics += secondsSince(t0);
            m_model.layers[static_cast<size_t>(m_layer)] = LlamaLayer{};
            if (m_options.teacherTargets)
                m_original.layers[static_cast<size_t>(m_layer)] = LlamaLayer{};
            for (auto& kept : m_teacherInputs)
                std::vector<float>().swap(kept);
            checkCancel(m_cancel);
        }
        ++m_layer;
        if (m_layer < c.layers) {
            m_model.layers[static_cast<size_t>(m_layer)] = loadLlamaLayer(m_reader, c, m_map, m_layer);
            if (m_options.teacherTargets)
                m_original.layers[static_cast<size_t>(m_layer)] = loadLlamaLayer(m_reader, c, m_map, m_layer);
        }
        m_cached.assign(4, false);
    }
}

// The student's inputs at `site` of windows [first, end) (this rank's), one row per token.
HessianMatrix Calibrator::studentInputs(int layer, LinearInput site, int64_t first, int64_t end, int64_t cols)
{
    const LlamaConfig& c = m_model.config;
    const int64_t window = m_ctx * c.dim;
    HessianMatrix Xs((end - first) * m_ctx, cols);
    tbb::parallel_for(first, end, [&](int64_t w) {
        if (m_cancel && m_cancel->cancelled())
            return;
        const int64_t at = (w - m_firstWindow) * window; // in this rank's windows
        float* into = Xs.data() + (w - first) * m_ctx * cols;
        if (layer < c.layers) {
            // The compressed block's forward, stopped at the input wanted: what comes
            // after it is not needed (an exception is the one way out of forwardLayer
            // without a change to the runtime's hot path).
            struct Stop {};
            const InputObserver stopAt = [&](int, LinearInput s, const float* X, int64_t T, int64_t n) {
                if (s != site)
                    return;
                std::copy_n(X, T * n, into);
                throw Stop{};
            };
            std::vector<float> hidden(m_hidden.begin() + at, m_hidden.begin() + at + window);
            KvCache cache(c, m_ctx);
            try {
                forwardLayer(m_model, layer, hidden.data(), m_ctx, cache, &stopAt);
            } catch (const Stop&) {
            }
        } else { // the output layer's input: the final norm of the last hidden states
            finalNorm(m_model, m_hidden.data() + at, m_ctx, into);
        }
    });
    checkCancel(m_cancel);
    return Xs;
}

// The original model's inputs at `site` of windows [first, end): kept by the teacher pass, or
// for the output layer the final norm of the teacher's hidden states.
HessianMatrix Calibrator::teacherInputs(int layer, LinearInput site, int64_t first, int64_t end, int64_t cols)
{
    const LlamaConfig& c = m_model.config;
    const int64_t rows = (end - first) * m_ctx;
    HessianMatrix Xt(rows, cols);
    if (layer < c.layers)
        std::copy_n(m_teacherInputs[static_cast<size_t>(site)].data() + (first - m_firstWindow) * m_ctx * cols,
                    rows * cols, Xt.data());
    else
        tbb::parallel_for(first, end, [&](int64_t w) {
            finalNorm(m_model, m_teacher.data() + (w - m_firstWindow) * m_ctx * c.dim, m_ctx,
                      Xt.data() + (w - first) * m_ctx * cols);
        });
    return Xt;
}

void Calibrator::accumulate(int layer, LinearInput site, int64_t cols, TensorCalibration& out)
{
    const LlamaConfig& c = m_model.config;
    const bool teacher = m_options.teacherTargets;
    if (teacher && layer < c.layers) {
        teacherPass(layer, true);
        if (m_teacherInputs[static_cast<size_t>(site)].empty())
            internalError("calibration statistics asked for twice");
    }
    const auto t0 = std::chrono::steady_clock::now();
    Cluster& ranks = cluster();
    const int64_t perChunk = (m_windows + kChunks - 1) / kChunks;
    // H and C are sums over chunks of windows, added in chunk order: H = ((0 + P_0) + P_1) + ...
    // One process adds each chunk's product straight into H (and C); a cluster keeps the
    // products of the chunks, sent by the rank that computed them to every rank, and adds them
    // in the same order: the same bits at any thread and rank count.
    HessianMatrix H = HessianMatrix::Zero(cols, cols), C;
    if (teacher)
        C = HessianMatrix::Zero(cols, cols);
    std::vector<ChunkProducts> parts(ranks.single() ? 0 : static_cast<size_t>(kChunks));
    for (int64_t ch = m_firstChunk; ch < m_endChunk; ++ch) {
        const int64_t first = std::min(m_windows, ch * perChunk), end = std::min(m_windows, (ch + 1) * perChunk);
        HessianMatrix* intoH = &H;
        HessianMatrix* intoC = &C;
        if (!ranks.single()) {
            ChunkProducts& part = parts[static_cast<size_t>(ch)];
            part.H.setZero(cols, cols);
            if (teacher)
                part.C.setZero(cols, cols);
            intoH = &part.H;
            intoC = &part.C;
        }
        if (first >= end)
            continue;
        const HessianMatrix Xs = studentInputs(layer, site, first, end, cols);
        HessianMatrix Xt;
        if (teacher)
            Xt = teacherInputs(layer, site, first, end, cols);
        addChunkProducts(Xs, teacher ? &Xt : nullptr, *intoH, teacher ? intoC : nullptr);
    }
    checkCancel(m_cancel);
    if (!ranks.single())
        addChunksInOrder(parts, cols, H, teacher ? &C : nullptr);
    H.triangularView<Eigen::StrictlyUpper>() = H.transpose();
    const float n = static_cast<float>(m_windows * m_ctx);
    out.H = damped(H / n, m_options.damping, out.columnImportance);
    if (teacher)
        out.C = C / n;
    // The teacher's inputs of this site are used once: later sites need the memory.
    if (layer < c.layers)
        std::vector<float>().swap(m_teacherInputs[static_cast<size_t>(site)]);
    m_seconds[static_cast<size_t>(layer + 1)].statistics += secondsSince(t0);
}

// A cluster: every chunk's products go from the rank that computed them to every rank, and are
// added in chunk order.
void Calibrator::addChunksInOrder(std::vector<ChunkProducts>& parts, int64_t cols, HessianMatrix& H, HessianMatrix* C)
{
    Cluster& ranks = cluster();
    for (int64_t ch = 0; ch < kChunks; ++ch) {
        ChunkProducts& part = parts[static_cast<size_t>(ch)];
        for (HessianMatrix* M : {&part.H, &part.C}) {
            if (M == &part.C && !C)
                continue;
            M->resize(cols, cols);
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
    return m_cache[g];
}

std::vector<float> Calibrator::targets(std::span<const float> W, int64_t rows, int64_t cols,
                                       const TensorCalibration& calibration)
{
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
        m_hidden.resize(mine.size() * static_cast<size_t>(c.dim));
        for (size_t t = 0; t < mine.size(); ++t)
            std::copy_n(What.data() + static_cast<size_t>(mine[t]) * static_cast<size_t>(c.dim), c.dim,
                        m_hidden.data() + t * static_cast<size_t>(c.dim));
        scaleEmbeddings(c, m_hidden.data(), static_cast<int64_t>(mine.size()));
        if (m_options.teacherTargets && m_teacher.empty()) { // the original embedding's rows
            std::vector<float> E(static_cast<size_t>(c.vocab) * static_cast<size_t>(c.dim));
            m_reader.readFloat(m_map.embedding, E);
            m_teacher.resize(m_hidden.size());
            for (size_t t = 0; t < mine.size(); ++t)
                std::copy_n(E.data() + static_cast<size_t>(mine[t]) * static_cast<size_t>(c.dim), c.dim,
                            m_teacher.data() + t * static_cast<size_t>(c.dim));
            scaleEmbeddings(c, m_teacher.data(), static_cast<int64_t>(mine.size()));
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
    if (s.layer != m_layer)
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
