#include "novaq/codec/encoder.h"

#include "novaq/codec/kernels.h"
#include "novaq/io/error.h"
#include "novaq/tensor/dtype.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace novaq {

namespace {

// Fixed-size chunks for every reduction: partial results are computed per chunk (in
// parallel) and added in chunk order, so sums do not depend on the thread count.
constexpr int64_t kChunk = 8192;

// Largest weight magnitude encoded as it is (2^32); see encodeMatrix.
constexpr float kLargestUnscaled = 4294967296.0f;

int64_t chunkCount(int64_t n) { return (n + kChunk - 1) / kChunk; }

float roundHalf(float x) noexcept { return halfToFloat(floatToHalf(x)); }

void checkCancelled(const CancelToken* cancel)
{
    if (cancel && cancel->cancelled())
        throw Error(ErrorKind::Cancelled, "cancelled");
}

void report(const ProgressFn& progress, double fraction, const char* stage)
{
    reportProgress(progress, fraction, 1.0, stage);
}

// The number of d-vectors in X; X must hold whole vectors.
int64_t vectorCount(std::span<const float> X, int d, const char* verb)
{
    if (d <= 0 || X.size() % static_cast<size_t>(d) != 0)
        internalError(std::string(verb) + " on a buffer that is not whole vectors");
    return static_cast<int64_t>(X.size() / static_cast<size_t>(d));
}

void checkCodebooks(const Codebooks& books, const char* verb)
{
    const auto D = static_cast<size_t>(books.d);
    if (books.d <= 0 || books.m1 <= 0 || books.m2 < 0 || books.c1.size() != static_cast<size_t>(books.m1) * D ||
        books.c2.size() != static_cast<size_t>(books.m2) * D)
        internalError(std::string(verb) + " with codebooks whose sizes do not match d, m1 and m2");
}

void checkCodes(const Codes& codes, int64_t n, const char* verb)
{
    if (codes.a.size() != static_cast<size_t>(n) || codes.b.size() != static_cast<size_t>(n))
        internalError(std::string(verb) + " with codes for another number of vectors");
}

// `count` distinct indices of [0, n), ascending (Floyd's algorithm, then sorted).
std::vector<int64_t> sampleIndices(int64_t n, int64_t count, SplitMix64& rng)
{
    if (count >= n) {
        std::vector<int64_t> all(static_cast<size_t>(n));
        std::iota(all.begin(), all.end(), int64_t{0});
        return all;
    }
    std::vector<int64_t> picked;
    picked.reserve(static_cast<size_t>(count));
    std::vector<bool> used(static_cast<size_t>(n), false);
    for (int64_t j = n - count; j < n; ++j) {
        const auto t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j + 1)));
        const int64_t pick = used[static_cast<size_t>(t)] ? j : t;
        used[static_cast<size_t>(pick)] = true;
        picked.push_back(pick);
    }
    std::sort(picked.begin(), picked.end());
    return picked;
}

// --- k-means ---------------------------------------------------------------------------------

// An index drawn with probability proportional to weight[i] (uniform when they sum to 0).
int64_t pickProportional(const std::vector<float>& weight, SplitMix64& rng)
{
    const auto n = static_cast<int64_t>(weight.size());
    double total = 0;
    for (float v : weight)
        total += v;
    if (!(total > 0))
        return static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    double target = rng.uniform() * total, acc = 0;
    for (int64_t i = 0; i < n; ++i) {
        acc += weight[static_cast<size_t>(i)];
        if (acc > target)
            return i;
    }
    return n - 1;
}

// k-means++ seeding of m centres (m x d) for n > 0 vectors: the first uniform, the rest with
// probability proportional to the squared distance to the nearest centre so far.
std::vector<float> seedCentres(const float* X, int64_t n, int d, int m, SplitMix64& rng)
{
    const auto D = static_cast<size_t>(d);
    std::vector<float> C(static_cast<size_t>(m) * D, 0.0f);
    std::vector<float> minDist(static_cast<size_t>(n), std::numeric_limits<float>::infinity());
    int64_t first = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
    std::copy_n(X + first * d, d, C.begin());
    for (int c = 1; c < m; ++c) {
        const float* prev = C.data() + static_cast<size_t>(c - 1) * D;
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 4096), [&](const tbb::blocked_range<int64_t>& r) {
            for (int64_t i = r.begin(); i != r.end(); ++i) {
                float s = 0;
                for (int t = 0; t < d; ++t) {
                    const float diff = X[i * d + t] - prev[t];
                    s += diff * diff;
                }
                minDist[static_cast<size_t>(i)] = std::min(minDist[static_cast<size_t>(i)], s);
            }
        });
        const int64_t pick = pickProportional(minDist, rng);
        std::copy_n(X + pick * d, d, C.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(c) * D));
    }
    return C;
}

// Per centre, the sum of its vectors and their count (m x (d + 1)): summed per chunk in
// parallel into partSums, then the chunks added in order.
std::vector<double> clusterSums(const float* X, int64_t n, int d, int m, const std::vector<uint32_t>& code,
                                std::vector<double>& partSums)
{
    const auto D = static_cast<size_t>(d);
    const int64_t chunks = chunkCount(n);
    std::fill(partSums.begin(), partSums.end(), 0.0);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, chunks), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t ch = r.begin(); ch != r.end(); ++ch) {
            double* part = partSums.data() + static_cast<size_t>(ch) * static_cast<size_t>(m) * (D + 1);
            for (int64_t i = ch * kChunk; i < std::min(n, (ch + 1) * kChunk); ++i) {
                double* cell = part + code[static_cast<size_t>(i)] * (D + 1);
                for (int t = 0; t < d; ++t)
                    cell[t] += X[i * d + t];
                cell[D] += 1.0;
            }
        }
    });
    std::vector<double> sums(static_cast<size_t>(m) * (D + 1), 0.0);
    for (int64_t ch = 0; ch < chunks; ++ch)
        for (size_t k = 0; k < sums.size(); ++k)
            sums[k] += partSums[static_cast<size_t>(ch) * sums.size() + k];
    return sums;
}

// Moves each non-empty centre to the mean of its vectors; returns the counts.
std::vector<double> moveCentres(const std::vector<double>& sums, int d, int m, std::vector<float>& C)
{
    const auto D = static_cast<size_t>(d);
    std::vector<double> counts(static_cast<size_t>(m));
    for (int c = 0; c < m; ++c) {
        const double cnt = sums[static_cast<size_t>(c) * (D + 1) + D];
        counts[static_cast<size_t>(c)] = cnt;
        if (cnt > 0)
            for (int t = 0; t < d; ++t)
                C[static_cast<size_t>(c) * D + static_cast<size_t>(t)] =
                    static_cast<float>(sums[static_cast<size_t>(c) * (D + 1) + static_cast<size_t>(t)] / cnt);
    }
    return counts;
}

// Repairs empty clusters: splits the most populated one in two, nudged apart.
void repairEmptyClusters(std::vector<double>& counts, int d, int m, std::vector<float>& C)
{
    const auto D = static_cast<size_t>(d);
    for (int c = 0; c < m; ++c) {
        if (counts[static_cast<size_t>(c)] > 0)
            continue;
        const auto big = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
        for (int t = 0; t < d; ++t) {
            const float v = C[big * D + static_cast<size_t>(t)];
            const float eps = (t % 2 == 0 ? 1.0f : -1.0f) * (1.0f / 1024.0f) * (std::abs(v) + 1e-3f);
            C[static_cast<size_t>(c) * D + static_cast<size_t>(t)] = v + eps;
            C[big * D + static_cast<size_t>(t)] = v - eps;
        }
        counts[static_cast<size_t>(c)] = counts[big] / 2;
        counts[big] -= counts[static_cast<size_t>(c)];
    }
}

// k-means++ seeding, then Lloyd iterations. Empty clusters are repaired by splitting the
// largest cluster (deterministically). Returns m x d centroids.
std::vector<float> kmeans(const float* X, int64_t n, int d, int m, int iterations, SplitMix64& rng,
                          std::vector<double>* objective, const CancelToken* cancel)
{
    if (n == 0)
        return std::vector<float>(static_cast<size_t>(m) * static_cast<size_t>(d), 0.0f);
    std::vector<float> C = seedCentres(X, n, d, m, rng);
    checkCancelled(cancel);

    std::vector<uint32_t> code(static_cast<size_t>(n));
    std::vector<float> dist(static_cast<size_t>(n));
    std::vector<double> partSums(static_cast<size_t>(chunkCount(n)) * static_cast<size_t>(m) *
                                 (static_cast<size_t>(d) + 1));
    for (int it = 0; it < iterations; ++it) {
        kernels::assignNearest(X, n, d, C.data(), m, code.data(), dist.data());
        const std::vector<double> sums = clusterSums(X, n, d, m, code, partSums);
        double obj = 0;
        for (float v : dist)
            obj += v;
        if (objective)
            objective->push_back(obj / static_cast<double>(n));
        std::vector<double> counts = moveCentres(sums, d, m, C);
        repairEmptyClusters(counts, d, m, C);
        checkCancelled(cancel);
    }
    return C;
}

// --- Least-squares refit of the codebooks ----------------------------------------------------

// The sums the refit needs, over n vectors with weights w_i (1 when w is null), M = m1 + m2
// entries: cnt[e] the weight of the vectors using entry e, pair[p * m2 + q] the weight of the
// vectors using stage-1 entry p and stage-2 entry q, rhs[e] (d values) their weighted sum.
// Summed per chunk in parallel, then the chunks added in order.
struct RefitSums {
    int M = 0;
    size_t pairSize = 0;
    std::vector<double> sum; // cnt[M], pair[m1 * m2], rhs[M * d]
    const double* cnt() const { return sum.data(); }
    const double* pair() const { return sum.data() + M; }
    const double* rhs() const { return sum.data() + M + pairSize; }
};

RefitSums accumulateRefitSums(const float* X, const float* w, int64_t n, int d, const uint32_t* a, const uint32_t* b,
                              int m1, int m2)
{
    const auto D = static_cast<size_t>(d);
    RefitSums s;
    s.M = m1 + m2;
    const int M = s.M;
    s.pairSize = static_cast<size_t>(m1) * static_cast<size_t>(m2);
    const size_t pairSize = s.pairSize;
    const size_t partSize = static_cast<size_t>(M) + pairSize + static_cast<size_t>(M) * D;
    const int64_t chunks = chunkCount(n);
    std::vector<double> parts(static_cast<size_t>(chunks) * partSize, 0.0);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, chunks), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t ch = r.begin(); ch != r.end(); ++ch) {
            double* cnt = parts.data() + static_cast<size_t>(ch) * partSize;
            double* pair = cnt + M;
            double* rhs = pair + pairSize;
            for (int64_t i = ch * kChunk; i < std::min(n, (ch + 1) * kChunk); ++i) {
                const double wi = w ? w[i] : 1.0;
                const uint32_t ai = a[i];
                cnt[ai] += wi;
                double* r1 = rhs + ai * D;
                for (int t = 0; t < d; ++t)
                    r1[t] += wi * X[i * d + t];
                if (m2 > 0) {
                    const uint32_t bi = b[i];
                    cnt[static_cast<uint32_t>(m1) + bi] += wi;
                    pair[static_cast<size_t>(ai) * static_cast<size_t>(m2) + bi] += wi;
                    double* r2 = rhs + (static_cast<size_t>(m1) + bi) * D;
                    for (int t = 0; t < d; ++t)
                        r2[t] += wi * X[i * d + t];
                }
            }
        }
    });
    s.sum.assign(partSize, 0.0);
    for (int64_t ch = 0; ch < chunks; ++ch)
        for (size_t k = 0; k < partSize; ++k)
            s.sum[k] += parts[static_cast<size_t>(ch) * partSize + k];
    return s;
}

// Entry c of the stacked codebooks [C1; C2], t-th value.
float stackedEntry(const std::vector<float>& C1, int m1, const std::vector<float>& C2, int c, int t, size_t D)
{
    return c < m1 ? C1[static_cast<size_t>(c) * D + static_cast<size_t>(t)]
                  : C2[static_cast<size_t>(c - m1) * D + static_cast<size_t>(t)];
}

// Large codebooks: block Gauss-Seidel for G S = R (each block is diagonal), from the
// current entries.
Eigen::MatrixXd gaussSeidel(const Eigen::MatrixXd& G, const Eigen::MatrixXd& R, const std::vector<float>& C1, int m1,
                            const std::vector<float>& C2)
{
    const auto M = static_cast<int>(G.rows());
    const auto d = static_cast<int>(R.cols());
    const auto D = static_cast<size_t>(d);
    Eigen::MatrixXd S(M, d);
    for (int c = 0; c < M; ++c)
        for (int t = 0; t < d; ++t)
            S(c, t) = stackedEntry(C1, m1, C2, c, t, D);
    for (int sweep = 0; sweep < 8; ++sweep)
        for (int c = 0; c < M; ++c) {
            Eigen::RowVectorXd acc = R.row(c) - G.row(c) * S + G(c, c) * S.row(c);
            S.row(c) = acc / G(c, c);
        }
    return S;
}

// Solves the refit's normal equations (G + lambda I) S = R + lambda C (the pull towards the
// current entries keeps unused entries where they are and makes the system well posed) and
// writes S into the codebooks unless it holds non-numbers.
void solveRefit(const RefitSums& s, int d, std::vector<float>& C1, int m1, std::vector<float>& C2, int m2)
{
    const auto D = static_cast<size_t>(d);
    const int M = s.M;
    const double* cnt = s.cnt();
    const double* pair = s.pair();
    const double* rhs = s.rhs();

    double total = 0;
    for (int c = 0; c < m1; ++c)
        total += cnt[c];
    const double lambda = 1e-4 * std::max(total, 1e-30) / M;

    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(M, M);
    Eigen::MatrixXd R(M, d);
    for (int c = 0; c < M; ++c) {
        G(c, c) = cnt[c] + lambda;
        for (int t = 0; t < d; ++t)
            R(c, t) =
                rhs[static_cast<size_t>(c) * D + static_cast<size_t>(t)] + lambda * stackedEntry(C1, m1, C2, c, t, D);
    }
    for (int p = 0; p < m1; ++p)
        for (int q = 0; q < m2; ++q) {
            const double v = pair[static_cast<size_t>(p) * static_cast<size_t>(m2) + static_cast<size_t>(q)];
            G(p, m1 + q) = v;
            G(m1 + q, p) = v;
        }
    const Eigen::MatrixXd S = M <= 1100 ? Eigen::MatrixXd(G.ldlt().solve(R)) : gaussSeidel(G, R, C1, m1, C2);
    if (!S.allFinite())
        return; // keep the current codebooks rather than write non-numbers
    for (int c = 0; c < M; ++c)
        for (int t = 0; t < d; ++t) {
            const auto v = static_cast<float>(S(c, t));
            if (c < m1)
                C1[static_cast<size_t>(c) * D + static_cast<size_t>(t)] = v;
            else
                C2[static_cast<size_t>(c - m1) * D + static_cast<size_t>(t)] = v;
        }
}

// --- Normalization ---------------------------------------------------------------------------

// Row mean and RMS about it, with double sums.
void rowMoments(std::span<const float> W, size_t R, size_t N, std::vector<double>& mu, std::vector<double>& sd)
{
    mu.resize(R);
    sd.resize(R);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, R, 16), [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i != r.end(); ++i) {
            const float* row = W.data() + i * N;
            double s = 0;
            for (size_t j = 0; j < N; ++j)
                s += row[j];
            const double m = s / static_cast<double>(N);
            double v = 0;
            for (size_t j = 0; j < N; ++j)
                v += (row[j] - m) * (row[j] - m);
            mu[i] = m;
            sd[i] = std::sqrt(v / static_cast<double>(N));
        }
    });
}

// RMS of each column of the row-normalized matrix, summed over fixed blocks of 256 rows in
// parallel, then the blocks added in order.
std::vector<double> columnRms(std::span<const float> W, int64_t rows, size_t N, const std::vector<float>& rowMu,
                              const std::vector<float>& rowSd)
{
    std::vector<double> colSq(N, 0.0);
    const int64_t rowChunks = (rows + 255) / 256;
    std::vector<double> parts(static_cast<size_t>(rowChunks) * N, 0.0);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, rowChunks), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t ch = r.begin(); ch != r.end(); ++ch) {
            double* part = parts.data() + static_cast<size_t>(ch) * N;
            for (int64_t i = ch * 256; i < std::min(rows, (ch + 1) * 256); ++i) {
                const float* row = W.data() + static_cast<size_t>(i) * N;
                for (size_t j = 0; j < N; ++j) {
                    const double z = (row[j] - rowMu[static_cast<size_t>(i)]) / rowSd[static_cast<size_t>(i)];
                    part[j] += z * z;
                }
            }
        }
    });
    for (int64_t ch = 0; ch < rowChunks; ++ch)
        for (size_t j = 0; j < N; ++j)
            colSq[j] += parts[static_cast<size_t>(ch) * N + j];
    std::vector<double> colRms(N);
    for (size_t j = 0; j < N; ++j)
        colRms[j] = std::sqrt(colSq[j] / static_cast<double>(rows));
    return colRms;
}

// Outlier columns (RMS above outlierThreshold x the median, at most outlierFraction of
// them, largest first) get scale RMS / median; returns how many.
int scaleOutlierColumns(const std::vector<double>& colRms, const CodecParams& params, std::vector<float>& colScale)
{
    const size_t N = colRms.size();
    std::vector<double> sorted(colRms);
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(N / 2), sorted.end());
    const double median = sorted[N / 2];
    const auto budget = static_cast<size_t>(std::floor(params.outlierFraction * static_cast<double>(N)));
    std::vector<size_t> order(N);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t p, size_t q) { return colRms[p] > colRms[q]; });
    int outliers = 0;
    for (size_t k = 0; k < budget && median > 0; ++k) {
        const size_t j = order[k];
        if (colRms[j] <= params.outlierThreshold * median)
            break;
        colScale[j] = roundHalf(static_cast<float>(colRms[j] / median));
        ++outliers;
    }
    return outliers;
}

// Importance: columns whose inputs are large get magnified before quantization (and
// shrunk back by the stored column scale), so the codec's squared error becomes the
// importance-weighted error sum_j h_j (w_ij - what_ij)^2 when the exponent is 1. Returns
// whether it changed the column scales (no importance given, or all of it zero: no).
bool applyColumnImportance(const CodecParams& params, std::vector<float>& colScale, std::vector<double>& colWeight)
{
    const size_t N = colScale.size();
    if (params.columnImportance.size() != N)
        return false;
    double mean = 0;
    for (float h : params.columnImportance)
        mean += std::max(0.0f, h);
    mean /= static_cast<double>(N);
    if (!(mean > 0))
        return false;
    for (size_t j = 0; j < N; ++j) {
        const double h = std::max(double(params.columnImportance[j]) / mean, 1e-4);
        colWeight[j] = h;
        colScale[j] = roundHalf(static_cast<float>(colScale[j] * std::pow(h, -0.5 * params.importanceExponent)));
    }
    return true;
}

// --- Packing ---------------------------------------------------------------------------------

void writeBits(std::vector<uint8_t>& out, uint64_t pos, uint32_t value, int nbits)
{
    for (int k = 0; k < nbits; ++k, ++pos)
        if ((value >> k) & 1u)
            out[pos >> 3] = static_cast<uint8_t>(out[pos >> 3] | (1u << (pos & 7)));
}

// Per-subspace codes (rows x (ve - vb) each, row by row) into one rows x vpr array per stage.
void scatterCodes(const std::vector<Codes>& codes, int64_t rows, int64_t vpr, int subspaces,
                  std::vector<uint32_t>& codeA, std::vector<uint32_t>& codeB)
{
    codeA.assign(static_cast<size_t>(rows * vpr), 0);
    codeB.assign(codeA.size(), 0);
    for (int k = 0; k < subspaces; ++k) {
        const int64_t vb = subspaceBegin(vpr, subspaces, k);
        const int64_t nv = subspaceBegin(vpr, subspaces, k + 1) - vb;
        const Codes& c = codes[static_cast<size_t>(k)];
        checkCodes(c, rows * nv, "packTensor");
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t v = 0; v < nv; ++v) {
                codeA[static_cast<size_t>(i * vpr + vb + v)] = c.a[static_cast<size_t>(i * nv + v)];
                codeB[static_cast<size_t>(i * vpr + vb + v)] = c.b[static_cast<size_t>(i * nv + v)];
            }
    }
}

// For fixed codes, the scale a_i and offset b_i of each row that minimize
// sum_j h_j (W_ij - (a_i * t_ij + b_i))^2, t = colScale o decoded codes (what the file stores).
struct RowFit {
    std::vector<double> scale, offset;
};

// Row i of the stored codebooks and codes times the column scales, before row scale and offset.
void decodeRowNormalized(const std::vector<float>& books, const std::vector<int>& subspaceOf, const CodecConfig& cfg,
                         int64_t cols, const uint32_t* codeA, const uint32_t* codeB, const std::vector<float>& colScale,
                         std::vector<float>& qrow)
{
    const int d = cfg.d;
    const auto D = static_cast<size_t>(d);
    const int m1 = 1 << cfg.b1;
    const int m2 = cfg.b2 > 0 ? 1 << cfg.b2 : 0;
    const size_t perSubspace = static_cast<size_t>(m1 + m2) * D;
    for (size_t v = 0; v < subspaceOf.size(); ++v) {
        const float* base = books.data() + static_cast<size_t>(subspaceOf[v]) * perSubspace;
        for (int t = 0; t < d; ++t) {
            const int64_t j = static_cast<int64_t>(v) * d + t;
            if (j >= cols)
                break;
            float val = base[codeA[v] * D + static_cast<size_t>(t)];
            if (m2 > 0)
                val += base[(static_cast<size_t>(m1) + codeB[v]) * D + static_cast<size_t>(t)];
            qrow[static_cast<size_t>(j)] = colScale[static_cast<size_t>(j)] * val;
        }
    }
}

// Weighted least squares of row ~ a * qrow + b; (fallbackA, fallbackB) when degenerate.
void fitRowAffine(const float* row, const std::vector<float>& qrow, const std::vector<double>& colWeight,
                  double fallbackA, double fallbackB, double& ai, double& bi)
{
    double sq = 0, sqq = 0, sw = 0, swq = 0, nn = 0;
    for (size_t j = 0; j < qrow.size(); ++j) {
        const double h = colWeight[j];
        sq += h * qrow[j];
        sqq += h * double(qrow[j]) * qrow[j];
        sw += h * row[j];
        swq += h * double(row[j]) * qrow[j];
        nn += h;
    }
    const double det = sqq * nn - sq * sq;
    ai = fallbackA;
    bi = fallbackB;
    if (det > 1e-12 * std::max(1.0, sqq * nn)) {
        ai = (swq * nn - sq * sw) / det;
        bi = (sw - ai * sq) / nn;
    }
}

RowFit fitRows(std::span<const float> W, int64_t rows, int64_t cols, const CodecConfig& cfg, const Normalization& norm,
               const std::vector<float>& books, const std::vector<uint32_t>& codeA, const std::vector<uint32_t>& codeB)
{
    const int64_t vpr = vectorsPerRow(cols, cfg.d);
    const auto R = static_cast<size_t>(rows);
    const auto N = static_cast<size_t>(cols);
    std::vector<int> subspaceOf(static_cast<size_t>(vpr));
    for (int k = 0; k < cfg.subspaces; ++k)
        for (int64_t v = subspaceBegin(vpr, cfg.subspaces, k); v < subspaceBegin(vpr, cfg.subspaces, k + 1); ++v)
            subspaceOf[static_cast<size_t>(v)] = k;
    RowFit fit;
    fit.scale.resize(R);
    fit.offset.resize(R);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, R, 16), [&](const tbb::blocked_range<size_t>& r) {
        std::vector<float> qrow(N);
        for (size_t i = r.begin(); i != r.end(); ++i) {
            const size_t at = i * static_cast<size_t>(vpr);
            decodeRowNormalized(books, subspaceOf, cfg, cols, codeA.data() + at, codeB.data() + at, norm.colScale,
                                qrow);
            fitRowAffine(W.data() + i * N, qrow, norm.colWeight, norm.rowSd[i], norm.mean[i], fit.scale[i],
                         fit.offset[i]);
        }
    });
    return fit;
}

// Row scales and means in f16 relative to one f32 tensor scale g = the largest of them:
// f16 holds up to 65504; dividing by g keeps every stored value in [-1, 1].
void storeRows(const RowFit& fit, QuantizedTensor& q)
{
    const size_t R = fit.scale.size();
    double g = 0;
    for (size_t i = 0; i < R; ++i)
        g = std::max({g, std::abs(fit.scale[i]), std::abs(fit.offset[i])});
    q.scale = g > 0 ? static_cast<float>(g) : 1.0f;
    q.rowMean.resize(R);
    q.rowScale.resize(R);
    for (size_t i = 0; i < R; ++i) {
        q.rowScale[i] = floatToHalf(static_cast<float>(fit.scale[i] / q.scale));
        q.rowMean[i] = floatToHalf(static_cast<float>(fit.offset[i] / q.scale));
    }
}

// The codes as a bit stream: per row, per vector, b1 bits then b2 bits, LSB first.
std::vector<uint8_t> packCodes(const std::vector<uint32_t>& codeA, const std::vector<uint32_t>& codeB, int b1, int b2)
{
    const int bits = b1 + b2;
    std::vector<uint8_t> out((codeA.size() * static_cast<size_t>(bits) + 7) / 8, 0);
    uint64_t pos = 0;
    for (size_t v = 0; v < codeA.size(); ++v) {
        writeBits(out, pos, codeA[v], b1);
        writeBits(out, pos + static_cast<uint64_t>(b1), codeB[v], b2);
        pos += static_cast<uint64_t>(bits);
    }
    return out;
}

// --- encodeMatrix's steps --------------------------------------------------------------------

// Checks the settings and the shape; returns the largest magnitude. Throws on NaN or infinity.
float checkInput(std::span<const float> W, int64_t rows, int64_t cols, const CodecConfig& cfg)
{
    if (std::string problem = validateConfig(cfg); !problem.empty())
        throw Error(ErrorKind::InvalidArgument, "codec settings: " + problem);
    if (rows <= 0 || cols <= 0 || W.size() != static_cast<size_t>(rows * cols))
        internalError("encodeMatrix shape does not match the data");
    float maxAbs = 0;
    for (float x : W) {
        if (!std::isfinite(x))
            throw Error(ErrorKind::InvalidInput,
                        "the tensor holds NaN or infinite values; such a model cannot be quantized (check the source)");
        maxAbs = std::max(maxAbs, std::abs(x));
    }
    return maxAbs;
}

// Codebooks for one subspace: trained on a seeded sample of its vectors, then alternating
// joint encoding and least-squares refits on that sample.
Codebooks trainSubspace(const SubspaceVectors& sub, const CodecParams& params, SplitMix64& rng, double f0,
                        double perSub, const ProgressFn& progress, const CancelToken* cancel, EncodeStats* stats)
{
    const CodecConfig& cfg = params.config;
    const int m1 = 1 << cfg.b1;
    const int m2 = cfg.b2 > 0 ? 1 << cfg.b2 : 0;
    const TrainingSet T = sampleTrainingSet(sub, cfg.d, std::max<int64_t>(params.trainVectors, 1), rng);
    report(progress, f0, "train");
    Codebooks books = trainCodebooks(T.X, cfg.d, m1, m2, params.kmeansIterations, rng, cancel, stats);
    checkCancelled(cancel);

    report(progress, f0 + perSub * 0.4, "refit");
    for (int it = 0; it < params.refitIterations; ++it) {
        const Codes codes = computeCodes(books, T.X, jointBeam(params, m1, m2));
        refitCodebooks(books, T.X, T.weight, codes);
        if (stats)
            stats->refitError.push_back(codesError(books, T.X, codes));
        checkCancelled(cancel);
    }
    return books;
}

// Encodes every vector of the subspace, then one more least-squares refit of the codebooks
// for these codes over all vectors (it can only lower the error, and it removes most of the
// gap between the training sample and the whole tensor), `fullRounds` times.
Codes encodeSubspace(Codebooks& books, const SubspaceVectors& sub, const CodecParams& params, double f0, double perSub,
                     const ProgressFn& progress, const CancelToken* cancel)
{
    const int beam = jointBeam(params, books.m1, books.m2);
    const int rounds = std::max(params.fullRounds, 1);
    Codes codes;
    for (int round = 0; round < rounds; ++round) {
        report(progress, f0 + perSub * (0.6 + 0.4 * round / rounds), "encode");
        codes = computeCodes(books, sub.X, beam);
        checkCancelled(cancel);
        refitCodebooks(books, sub.X, sub.weight, codes);
    }
    return codes;
}

} // namespace

double relativeError(std::span<const float> W, std::span<const float> What)
{
    if (W.size() != What.size())
        internalError("relativeError on tensors of different sizes");
    const auto n = static_cast<int64_t>(W.size());
    const int64_t chunks = chunkCount(n);
    std::vector<double> err(static_cast<size_t>(chunks)), ref(static_cast<size_t>(chunks));
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, chunks), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t ch = r.begin(); ch != r.end(); ++ch) {
            double e = 0, s = 0;
            for (int64_t i = ch * kChunk; i < std::min(n, (ch + 1) * kChunk); ++i) {
                const double x = W[static_cast<size_t>(i)];
                const double diff = x - double(What[static_cast<size_t>(i)]);
                e += diff * diff;
                s += x * x;
            }
            err[static_cast<size_t>(ch)] = e;
            ref[static_cast<size_t>(ch)] = s;
        }
    });
    double e = 0, s = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) {
        e += err[static_cast<size_t>(ch)];
        s += ref[static_cast<size_t>(ch)];
    }
    if (s == 0)
        return e == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    return e / s;
}

double sqnrDb(double relError)
{
    if (relError <= 0)
        return 999.0;
    return -10.0 * std::log10(relError);
}

Normalization normalizeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params)
{
    if (rows <= 0 || cols <= 0 || W.size() != static_cast<size_t>(rows * cols))
        internalError("normalizeMatrix shape does not match the data");
    const auto R = static_cast<size_t>(rows);
    const auto N = static_cast<size_t>(cols);
    Normalization norm;
    std::vector<double> sd;
    rowMoments(W, R, N, norm.mean, sd);
    norm.rowMean.resize(R);
    norm.rowSd.resize(R);
    for (size_t i = 0; i < R; ++i) {
        norm.rowMean[i] = static_cast<float>(norm.mean[i]);
        norm.rowSd[i] = sd[i] > 0 ? static_cast<float>(sd[i]) : 1.0f;
    }
    norm.colScale.assign(N, 1.0f);
    norm.outlierColumns = scaleOutlierColumns(columnRms(W, rows, N, norm.rowMean, norm.rowSd), params, norm.colScale);
    norm.hasColScale = norm.outlierColumns > 0;
    norm.colWeight.assign(N, 1.0);
    if (applyColumnImportance(params, norm.colScale, norm.colWeight))
        norm.hasColScale = true;
    return norm;
}

SubspaceVectors gatherSubspace(std::span<const float> W, int64_t rows, int64_t cols, const Normalization& norm,
                               const CodecParams& params, int k)
{
    const int d = params.config.d;
    const int64_t vpr = vectorsPerRow(cols, d);
    SubspaceVectors sub;
    sub.vb = subspaceBegin(vpr, params.config.subspaces, k);
    sub.ve = subspaceBegin(vpr, params.config.subspaces, k + 1);
    const int64_t vb = sub.vb, ve = sub.ve, nv = ve - vb;
    const int64_t n = rows * nv;
    const bool rowWeighted = params.rowImportance.size() == static_cast<size_t>(rows);
    sub.X.assign(static_cast<size_t>(n) * static_cast<size_t>(d), 0.0f);
    sub.weight.resize(static_cast<size_t>(n));
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 16), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t i = r.begin(); i != r.end(); ++i) {
            const float* row = W.data() + i * cols;
            const float m = norm.rowMean[static_cast<size_t>(i)], s = norm.rowSd[static_cast<size_t>(i)];
            for (int64_t v = vb; v < ve; ++v) {
                float* x = sub.X.data() + static_cast<size_t>((i * nv + (v - vb)) * d);
                for (int t = 0; t < d; ++t) {
                    const int64_t j = v * d + t;
                    if (j < cols)
                        x[t] = (row[j] - m) / (s * norm.colScale[static_cast<size_t>(j)]);
                }
                sub.weight[static_cast<size_t>(i * nv + (v - vb))] =
                    s * s * (rowWeighted ? params.rowImportance[static_cast<size_t>(i)] : 1.0f);
            }
        }
    });
    return sub;
}

TrainingSet sampleTrainingSet(const SubspaceVectors& sub, int d, int64_t count, SplitMix64& rng)
{
    const auto D = static_cast<size_t>(d);
    const int64_t n = vectorCount(sub.X, d, "sampleTrainingSet");
    const std::vector<int64_t> pick = sampleIndices(n, count, rng);
    TrainingSet T;
    T.X.resize(pick.size() * D);
    T.weight.resize(pick.size());
    for (size_t p = 0; p < pick.size(); ++p) {
        std::copy_n(sub.X.data() + static_cast<size_t>(pick[p]) * D, d, T.X.data() + p * D);
        T.weight[p] = sub.weight[static_cast<size_t>(pick[p])];
    }
    return T;
}

Codebooks trainCodebooks(std::span<const float> X, int d, int m1, int m2, int iterations, SplitMix64& rng,
                         const CancelToken* cancel, EncodeStats* stats)
{
    const int64_t n = vectorCount(X, d, "trainCodebooks");
    Codebooks books;
    books.d = d;
    books.m1 = m1;
    books.m2 = m2;
    books.c1 = kmeans(X.data(), n, d, m1, iterations, rng, stats ? &stats->kmeansObjective1 : nullptr, cancel);
    if (m2 > 0) {
        const auto D = static_cast<size_t>(d);
        std::vector<uint32_t> nearest(static_cast<size_t>(n));
        kernels::assignNearest(X.data(), n, d, books.c1.data(), m1, nearest.data(), nullptr);
        std::vector<float> res(X.begin(), X.end());
        for (int64_t p = 0; p < n; ++p)
            for (int t = 0; t < d; ++t)
                res[static_cast<size_t>(p) * D + static_cast<size_t>(t)] -=
                    books.c1[nearest[static_cast<size_t>(p)] * D + static_cast<size_t>(t)];
        books.c2 = kmeans(res.data(), n, d, m2, iterations, rng, stats ? &stats->kmeansObjective2 : nullptr, cancel);
    }
    return books;
}

int jointBeam(const CodecParams& params, int m1, int m2) noexcept
{
    return m1 * std::max(m2, 1) <= params.exactJointLimit ? 0 : params.beamWidth;
}

Codes computeCodes(const Codebooks& books, std::span<const float> X, int beam)
{
    checkCodebooks(books, "computeCodes");
    const int64_t n = vectorCount(X, books.d, "computeCodes");
    Codes codes;
    codes.a.resize(static_cast<size_t>(n));
    codes.b.resize(static_cast<size_t>(n));
    const kernels::JointTables tables =
        kernels::makeJointTables(books.c1.data(), books.m1, books.c2.data(), books.m2, books.d);
    kernels::encodeJoint(X.data(), n, tables, beam, codes.a.data(), codes.b.data());
    return codes;
}

std::vector<float> decodeCodes(const Codebooks& books, const Codes& codes)
{
    checkCodebooks(books, "decodeCodes");
    const auto D = static_cast<size_t>(books.d);
    const size_t n = codes.a.size();
    checkCodes(codes, static_cast<int64_t>(n), "decodeCodes");
    std::vector<float> out(n * D);
    for (size_t i = 0; i < n; ++i)
        for (size_t t = 0; t < D; ++t)
            out[i * D + t] = books.c1[codes.a[i] * D + t] + (books.m2 > 0 ? books.c2[codes.b[i] * D + t] : 0.0f);
    return out;
}

void refitCodebooks(Codebooks& books, std::span<const float> X, std::span<const float> weight, const Codes& codes)
{
    checkCodebooks(books, "refitCodebooks");
    const int64_t n = vectorCount(X, books.d, "refitCodebooks");
    checkCodes(codes, n, "refitCodebooks");
    if (!weight.empty() && weight.size() != static_cast<size_t>(n))
        internalError("refitCodebooks with weights for another number of vectors");
    const RefitSums sums = accumulateRefitSums(X.data(), weight.empty() ? nullptr : weight.data(), n, books.d,
                                               codes.a.data(), codes.b.data(), books.m1, books.m2);
    solveRefit(sums, books.d, books.c1, books.m1, books.c2, books.m2);
}

double codesError(const Codebooks& books, std::span<const float> X, const Codes& codes)
{
    checkCodebooks(books, "codesError");
    const int d = books.d;
    const int64_t n = vectorCount(X, d, "codesError");
    checkCodes(codes, n, "codesError");
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int t = 0; t < d; ++t) {
            const float x = X[static_cast<size_t>(i * d + t)];
            const float q =
                books.c1[codes.a[static_cast<size_t>(i)] * static_cast<uint32_t>(d) + static_cast<uint32_t>(t)] +
                (books.m2 > 0
                     ? books.c2[codes.b[static_cast<size_t>(i)] * static_cast<uint32_t>(d) + static_cast<uint32_t>(t)]
                     : 0.0f);
            err += double(x - q) * double(x - q);
            ref += double(x) * double(x);
        }
    return ref > 0 ? err / ref : 0.0;
}

QuantizedTensor packTensor(std::span<const float> W, int64_t rows, int64_t cols, const CodecConfig& cfg,
                           const Normalization& norm, const std::vector<Codebooks>& books,
                           const std::vector<Codes>& codes)
{
    const auto K = static_cast<size_t>(cfg.subspaces);
    if (books.size() != K || codes.size() != K || norm.colScale.size() != static_cast<size_t>(cols) ||
        norm.rowSd.size() != static_cast<size_t>(rows) || W.size() != static_cast<size_t>(rows * cols))
        internalError("packTensor parts do not match the shape and codec settings");
    QuantizedTensor q;
    q.rows = rows;
    q.cols = cols;
    q.config = cfg;
    q.hasColScale = norm.hasColScale;
    if (q.hasColScale) {
        q.colScale.resize(norm.colScale.size());
        for (size_t j = 0; j < norm.colScale.size(); ++j)
            q.colScale[j] = floatToHalf(norm.colScale[j]);
    }
    // The codebooks as the file stores them (f16); the row fit uses these values.
    std::vector<float> flat;
    for (const Codebooks& b : books) {
        checkCodebooks(b, "packTensor");
        if (b.d != cfg.d || b.m1 != 1 << cfg.b1 || b.m2 != (cfg.b2 > 0 ? 1 << cfg.b2 : 0))
            internalError("packTensor codebooks do not match the codec settings");
        for (float x : b.c1)
            flat.push_back(roundHalf(x));
        for (float x : b.c2)
            flat.push_back(roundHalf(x));
    }
    q.codebooks.resize(flat.size());
    for (size_t i = 0; i < flat.size(); ++i)
        q.codebooks[i] = floatToHalf(flat[i]);
    std::vector<uint32_t> codeA, codeB;
    scatterCodes(codes, rows, vectorsPerRow(cols, cfg.d), cfg.subspaces, codeA, codeB);
    storeRows(fitRows(W, rows, cols, cfg, norm, flat, codeA, codeB), q);
    q.codes = packCodes(codeA, codeB, cfg.b1, cfg.b2);
    return q;
}

QuantizedTensor encodeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params,
                             const CancelToken* cancel, const ProgressFn& progress, EncodeStats* stats)
{
    const CodecConfig& cfg = params.config;
    const float maxAbs = checkInput(W, rows, cols, cfg);
    // Below, squared row scales and differences of weights are formed in float: weights near
    // the float maximum would overflow them (and give NaN codebooks). Every stage is exact
    // under scaling by a power of two, so such a matrix is encoded as W * 2^-e, with 2^e
    // folded into the stored tensor scale. Real weights are far below the threshold.
    if (maxAbs > kLargestUnscaled) {
        int e = 0;
        (void)std::frexp(maxAbs, &e);
        std::vector<float> scaled(W.size());
        for (size_t i = 0; i < W.size(); ++i)
            scaled[i] = std::ldexp(W[i], -e);
        QuantizedTensor q = encodeMatrix(scaled, rows, cols, params, cancel, progress, stats);
        q.scale = std::ldexp(q.scale, e); // may overflow to infinity: callers check the decode
        return q;
    }

    // 1. Normalization: row mean and RMS, outlier columns, importance.
    report(progress, 0.0, "normalize");
    const Normalization norm = normalizeMatrix(W, rows, cols, params);
    if (stats)
        stats->outlierColumns = norm.outlierColumns;
    checkCancelled(cancel);

    // 2. Per subspace: gather normalized vectors, train, encode jointly, refit.
    SplitMix64 rng{params.seed};
    std::vector<Codebooks> books;
    std::vector<Codes> codes;
    const double perSub = 0.9 / cfg.subspaces;
    for (int k = 0; k < cfg.subspaces; ++k) {
        const double f0 = 0.05 + perSub * k;
        const SubspaceVectors sub = gatherSubspace(W, rows, cols, norm, params, k);
        books.push_back(trainSubspace(sub, params, rng, f0, perSub, progress, cancel, stats));
        codes.push_back(encodeSubspace(books.back(), sub, params, f0, perSub, progress, cancel));
        checkCancelled(cancel);
    }

    // 3. Row refit and packing (f16 codebooks and row scales, bit-packed codes).
    report(progress, 0.96, "rows");
    QuantizedTensor q = packTensor(W, rows, cols, cfg, norm, books, codes);
    report(progress, 1.0, "done");
    return q;
}

} // namespace novaq
