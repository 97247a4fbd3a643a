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

namespace novaq {

namespace {

// Fixed-size chunks for every reduction: partial results are computed per chunk (in
// parallel) and added in chunk order, so sums do not depend on the thread count.
constexpr int64_t kChunk = 8192;

// Largest weight magnitude encoded as it is (2^32); see encodeMatrix.
constexpr float kLargestUnscaled = 4294967296.0f;

int64_t chunkCount(int64_t n) { return (n + kChunk - 1) / kChunk; }

// splitmix64: a small, portable, seedable generator (the standard library's distributions
// differ between implementations, and files must not).
struct Rng {
    uint64_t state;
    uint64_t next() noexcept
    {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    uint64_t below(uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
};

float roundHalf(float x) noexcept { return halfToFloat(floatToHalf(x)); }

void checkCancelled(const CancelToken* cancel)
{
    if (cancel && cancel->cancelled())
        throw Error(ErrorKind::Cancelled, "cancelled");
}

// `count` distinct indices of [0, n), ascending (Floyd's algorithm, then sorted).
std::vector<int64_t> sampleIndices(int64_t n, int64_t count, Rng& rng)
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

// k-means++ seeding, then Lloyd iterations. Empty clusters are repaired by splitting the
// largest cluster (deterministically). Returns m x d centroids.
std::vector<float> kmeans(const float* X, int64_t n, int d, int m, int iterations, Rng& rng,
                          std::vector<double>* objective, const CancelToken* cancel)
{
    const auto D = static_cast<size_t>(d);
    std::vector<float> C(static_cast<size_t>(m) * D, 0.0f);
    if (n == 0)
        return C;

    // Seeding: first centre uniform, the rest with probability proportional to D^2.
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
        double total = 0;
        for (float v : minDist)
            total += v;
        int64_t pick = 0;
        if (total > 0) {
            double target = rng.uniform() * total, acc = 0;
            pick = n - 1;
            for (int64_t i = 0; i < n; ++i) {
                acc += minDist[static_cast<size_t>(i)];
                if (acc > target) {
                    pick = i;
                    break;
                }
            }
        } else {
            pick = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
        }
        std::copy_n(X + pick * d, d, C.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(c) * D));
    }
    checkCancelled(cancel);

    std::vector<uint32_t> code(static_cast<size_t>(n));
    std::vector<float> dist(static_cast<size_t>(n));
    const int64_t chunks = chunkCount(n);
    std::vector<double> partSums(static_cast<size_t>(chunks) * static_cast<size_t>(m) * (D + 1));
    for (int it = 0; it < iterations; ++it) {
        kernels::assignNearest(X, n, d, C.data(), m, code.data(), dist.data());
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
        double obj = 0;
        for (float v : dist)
            obj += v;
        if (objective)
            objective->push_back(obj / static_cast<double>(n));
        std::vector<double> counts(static_cast<size_t>(m));
        for (int c = 0; c < m; ++c) {
            const double cnt = sums[static_cast<size_t>(c) * (D + 1) + D];
            counts[static_cast<size_t>(c)] = cnt;
            if (cnt > 0)
                for (int t = 0; t < d; ++t)
                    C[static_cast<size_t>(c) * D + static_cast<size_t>(t)] =
                        static_cast<float>(sums[static_cast<size_t>(c) * (D + 1) + static_cast<size_t>(t)] / cnt);
        }
        // Repair empty clusters: split the most populated one in two, nudged apart.
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
        checkCancelled(cancel);
    }
    return C;
}

// Least-squares refit of both codebooks for fixed codes: minimizes
// sum_i w_i ||x_i - C1[a_i] - C2[b_i]||^2 (+ a small pull towards the current entries, which
// keeps unused entries where they are and makes the system well posed).
void refitCodebooks(const float* X, const float* w, int64_t n, int d, const uint32_t* a, const uint32_t* b,
                    std::vector<float>& C1, int m1, std::vector<float>& C2, int m2)
{
    const auto D = static_cast<size_t>(d);
    const int M = m1 + m2;
    const size_t pairSize = static_cast<size_t>(m1) * static_cast<size_t>(m2);
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
    std::vector<double> sum(partSize, 0.0);
    for (int64_t ch = 0; ch < chunks; ++ch)
        for (size_t k = 0; k < partSize; ++k)
            sum[k] += parts[static_cast<size_t>(ch) * partSize + k];
    const double* cnt = sum.data();
    const double* pair = cnt + M;
    const double* rhs = pair + pairSize;

    double total = 0;
    for (int c = 0; c < m1; ++c)
        total += cnt[c];
    const double lambda = 1e-4 * std::max(total, 1e-30) / M;

    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(M, M);
    Eigen::MatrixXd R(M, d);
    for (int c = 0; c < M; ++c) {
        G(c, c) = cnt[c] + lambda;
        const float* old =
            c < m1 ? C1.data() + static_cast<size_t>(c) * D : C2.data() + static_cast<size_t>(c - m1) * D;
        for (int t = 0; t < d; ++t)
            R(c, t) = rhs[static_cast<size_t>(c) * D + static_cast<size_t>(t)] + lambda * old[t];
    }
    for (int p = 0; p < m1; ++p)
        for (int q = 0; q < m2; ++q) {
            const double v = pair[static_cast<size_t>(p) * static_cast<size_t>(m2) + static_cast<size_t>(q)];
            G(p, m1 + q) = v;
            G(m1 + q, p) = v;
        }
    Eigen::MatrixXd S;
    if (M <= 1100) {
        S = G.ldlt().solve(R);
    } else {
        // Large codebooks: block Gauss-Seidel (each block is diagonal), from the current entries.
        S.resize(M, d);
        for (int c = 0; c < M; ++c)
            for (int t = 0; t < d; ++t)
                S(c, t) = c < m1 ? C1[static_cast<size_t>(c) * D + static_cast<size_t>(t)]
                                 : C2[static_cast<size_t>(c - m1) * D + static_cast<size_t>(t)];
        for (int sweep = 0; sweep < 8; ++sweep)
            for (int c = 0; c < M; ++c) {
                Eigen::RowVectorXd acc = R.row(c) - G.row(c) * S + G(c, c) * S.row(c);
                S.row(c) = acc / G(c, c);
            }
    }
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

// Mean squared error of the two-stage reconstruction over n vectors, relative to ||x||^2.
double stageError(const float* X, int64_t n, int d, const uint32_t* a, const uint32_t* b, const std::vector<float>& C1,
                  const std::vector<float>& C2, int m2)
{
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int t = 0; t < d; ++t) {
            const float x = X[i * d + t];
            const float q = C1[a[i] * static_cast<uint32_t>(d) + static_cast<uint32_t>(t)] +
                            (m2 > 0 ? C2[b[i] * static_cast<uint32_t>(d) + static_cast<uint32_t>(t)] : 0.0f);
            err += double(x - q) * double(x - q);
            ref += double(x) * double(x);
        }
    return ref > 0 ? err / ref : 0.0;
}

void roundToHalf(std::vector<float>& v)
{
    for (float& x : v)
        x = roundHalf(x);
}

void writeBits(std::vector<uint8_t>& out, uint64_t pos, uint32_t value, int nbits)
{
    for (int k = 0; k < nbits; ++k, ++pos)
        if ((value >> k) & 1u)
            out[pos >> 3] = static_cast<uint8_t>(out[pos >> 3] | (1u << (pos & 7)));
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

QuantizedTensor encodeMatrix(std::span<const float> W, int64_t rows, int64_t cols, const CodecParams& params,
                             const CancelToken* cancel, const EncodeProgress& progress, EncodeStats* stats)
{
    const CodecConfig& cfg = params.config;
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

    auto report = [&](double f, const char* stage) {
        if (progress)
            progress(f, stage);
    };
    const int d = cfg.d;
    const auto D = static_cast<size_t>(d);
    const int m1 = 1 << cfg.b1;
    const int m2 = cfg.b2 > 0 ? 1 << cfg.b2 : 0;
    const int64_t vpr = vectorsPerRow(cols, d);
    const auto R = static_cast<size_t>(rows);
    const auto N = static_cast<size_t>(cols);
    Rng rng{params.seed};

    // 1. Normalization: row mean and RMS (double sums), then outlier columns.
    report(0.0, "normalize");
    std::vector<double> mu(R), sd(R);
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
    std::vector<float> rowMu(R), rowSd(R);
    for (size_t i = 0; i < R; ++i) {
        rowMu[i] = static_cast<float>(mu[i]);
        rowSd[i] = sd[i] > 0 ? static_cast<float>(sd[i]) : 1.0f;
    }

    std::vector<double> colSq(N, 0.0);
    {
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
    }
    std::vector<double> colRms(N);
    for (size_t j = 0; j < N; ++j)
        colRms[j] = std::sqrt(colSq[j] / static_cast<double>(rows));
    std::vector<float> colScale(N, 1.0f);
    bool hasColScale = false;
    {
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
            hasColScale = true;
            ++outliers;
        }
        if (stats)
            stats->outlierColumns = outliers;
    }
    // Importance: columns whose inputs are large get magnified before quantization (and
    // shrunk back by the stored column scale), so the codec's squared error becomes the
    // importance-weighted error sum_j h_j (w_ij - what_ij)^2 when the exponent is 1.
    const bool weighted = params.columnImportance.size() == N;
    std::vector<double> colWeight(N, 1.0);
    if (weighted) {
        double mean = 0;
        for (float h : params.columnImportance)
            mean += std::max(0.0f, h);
        mean /= static_cast<double>(N);
        if (mean > 0) {
            for (size_t j = 0; j < N; ++j) {
                const double h = std::max(double(params.columnImportance[j]) / mean, 1e-4);
                colWeight[j] = h;
                colScale[j] =
                    roundHalf(static_cast<float>(colScale[j] * std::pow(h, -0.5 * params.importanceExponent)));
            }
            hasColScale = true;
        }
    }
    const bool rowWeighted = params.rowImportance.size() == R;
    checkCancelled(cancel);

    // 2. Per subspace: gather normalized vectors, train, encode jointly, refit.
    std::vector<uint32_t> codeA(R * static_cast<size_t>(vpr)), codeB(R * static_cast<size_t>(vpr));
    std::vector<float> books;
    books.reserve(static_cast<size_t>(cfg.subspaces) * static_cast<size_t>(m1 + m2) * D);
    const double perSub = 0.9 / cfg.subspaces;
    for (int k = 0; k < cfg.subspaces; ++k) {
        const double f0 = 0.05 + perSub * k;
        const int64_t vb = subspaceBegin(vpr, cfg.subspaces, k);
        const int64_t ve = subspaceBegin(vpr, cfg.subspaces, k + 1);
        const int64_t nv = ve - vb;
        const int64_t n = rows * nv;
        std::vector<float> X(static_cast<size_t>(n) * D, 0.0f);
        std::vector<float> weight(static_cast<size_t>(n));
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 16), [&](const tbb::blocked_range<int64_t>& r) {
            for (int64_t i = r.begin(); i != r.end(); ++i) {
                const float* row = W.data() + i * cols;
                const float m = rowMu[static_cast<size_t>(i)], s = rowSd[static_cast<size_t>(i)];
                for (int64_t v = vb; v < ve; ++v) {
                    float* x = X.data() + static_cast<size_t>((i * nv + (v - vb)) * d);
                    for (int t = 0; t < d; ++t) {
                        const int64_t j = v * d + t;
                        if (j < cols)
                            x[t] = (row[j] - m) / (s * colScale[static_cast<size_t>(j)]);
                    }
                    weight[static_cast<size_t>(i * nv + (v - vb))] =
                        s * s * (rowWeighted ? params.rowImportance[static_cast<size_t>(i)] : 1.0f);
                }
            }
        });

        // Training set: a seeded subsample when the subspace is large.
        std::vector<int64_t> pick = sampleIndices(n, std::max<int64_t>(params.trainVectors, 1), rng);
        const auto S = static_cast<int64_t>(pick.size());
        std::vector<float> T(static_cast<size_t>(S) * D), Tw(static_cast<size_t>(S));
        for (int64_t p = 0; p < S; ++p) {
            std::copy_n(X.data() + static_cast<size_t>(pick[static_cast<size_t>(p)]) * D, d,
                        T.data() + static_cast<size_t>(p) * D);
            Tw[static_cast<size_t>(p)] = weight[static_cast<size_t>(pick[static_cast<size_t>(p)])];
        }

        report(f0, "train");
        std::vector<float> C1 = kmeans(T.data(), S, d, m1, params.kmeansIterations, rng,
                                       stats ? &stats->kmeansObjective1 : nullptr, cancel);
        std::vector<float> C2;
        std::vector<uint32_t> ta(static_cast<size_t>(S)), tb(static_cast<size_t>(S), 0);
        if (m2 > 0) {
            kernels::assignNearest(T.data(), S, d, C1.data(), m1, ta.data(), nullptr);
            std::vector<float> res(T);
            for (int64_t p = 0; p < S; ++p)
                for (int t = 0; t < d; ++t)
                    res[static_cast<size_t>(p) * D + static_cast<size_t>(t)] -=
                        C1[ta[static_cast<size_t>(p)] * D + static_cast<size_t>(t)];
            C2 = kmeans(res.data(), S, d, m2, params.kmeansIterations, rng, stats ? &stats->kmeansObjective2 : nullptr,
                        cancel);
        }
        checkCancelled(cancel);

        // Alternate joint encoding and least-squares refits on the training set.
        report(f0 + perSub * 0.4, "refit");
        for (int it = 0; it < params.refitIterations; ++it) {
            const kernels::JointTables tables = kernels::makeJointTables(C1.data(), m1, C2.data(), m2, d);
            const int beam = m1 * std::max(m2, 1) <= params.exactJointLimit ? 0 : params.beamWidth;
            kernels::encodeJoint(T.data(), S, tables, beam, ta.data(), tb.data());
            refitCodebooks(T.data(), Tw.data(), S, d, ta.data(), tb.data(), C1, m1, C2, m2);
            if (stats)
                stats->refitError.push_back(stageError(T.data(), S, d, ta.data(), tb.data(), C1, C2, m2));
            checkCancelled(cancel);
        }

        // Encode every vector, then one more least-squares refit of the codebooks for these
        // codes over all vectors (it can only lower the error, and it removes most of the
        // gap between the training sample and the whole tensor). The file stores f16.
        const int beam = m1 * std::max(m2, 1) <= params.exactJointLimit ? 0 : params.beamWidth;
        std::vector<uint32_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        const int rounds = std::max(params.fullRounds, 1);
        for (int round = 0; round < rounds; ++round) {
            report(f0 + perSub * (0.6 + 0.4 * round / rounds), "encode");
            const kernels::JointTables tables = kernels::makeJointTables(C1.data(), m1, C2.data(), m2, d);
            kernels::encodeJoint(X.data(), n, tables, beam, a.data(), b.data());
            checkCancelled(cancel);
            refitCodebooks(X.data(), weight.data(), n, d, a.data(), b.data(), C1, m1, C2, m2);
        }
        roundToHalf(C1);
        roundToHalf(C2);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t v = 0; v < nv; ++v) {
                codeA[static_cast<size_t>(i * vpr + vb + v)] = a[static_cast<size_t>(i * nv + v)];
                codeB[static_cast<size_t>(i * vpr + vb + v)] = b[static_cast<size_t>(i * nv + v)];
            }
        books.insert(books.end(), C1.begin(), C1.end());
        books.insert(books.end(), C2.begin(), C2.end());
        checkCancelled(cancel);
    }

    // 3. Row refit: for fixed codes, the scale a_i and offset b_i of each row that minimize
    // ||W_i - (a_i * t o q_i + b_i)||^2, stored in f16 relative to one f32 tensor scale.
    report(0.96, "rows");
    QuantizedTensor q;
    q.rows = rows;
    q.cols = cols;
    q.config = cfg;
    q.hasColScale = hasColScale;
    if (hasColScale) {
        q.colScale.resize(N);
        for (size_t j = 0; j < N; ++j)
            q.colScale[j] = floatToHalf(colScale[j]);
    }
    q.codebooks.resize(books.size());
    for (size_t i = 0; i < books.size(); ++i)
        q.codebooks[i] = floatToHalf(books[i]);
    std::vector<int> subspaceOf(static_cast<size_t>(vpr));
    for (int k = 0; k < cfg.subspaces; ++k)
        for (int64_t v = subspaceBegin(vpr, cfg.subspaces, k); v < subspaceBegin(vpr, cfg.subspaces, k + 1); ++v)
            subspaceOf[static_cast<size_t>(v)] = k;
    const size_t perSubspace = static_cast<size_t>(m1 + m2) * D;
    std::vector<double> fitA(R), fitB(R);
    tbb::parallel_for(tbb::blocked_range<size_t>(0, R, 16), [&](const tbb::blocked_range<size_t>& r) {
        std::vector<float> qrow(N);
        for (size_t i = r.begin(); i != r.end(); ++i) {
            for (int64_t v = 0; v < vpr; ++v) {
                const float* base =
                    books.data() + static_cast<size_t>(subspaceOf[static_cast<size_t>(v)]) * perSubspace;
                const uint32_t ca = codeA[i * static_cast<size_t>(vpr) + static_cast<size_t>(v)];
                const uint32_t cb = codeB[i * static_cast<size_t>(vpr) + static_cast<size_t>(v)];
                for (int t = 0; t < d; ++t) {
                    const int64_t j = v * d + t;
                    if (j >= cols)
                        break;
                    float val = base[ca * D + static_cast<size_t>(t)];
                    if (m2 > 0)
                        val += base[(static_cast<size_t>(m1) + cb) * D + static_cast<size_t>(t)];
                    qrow[static_cast<size_t>(j)] = colScale[static_cast<size_t>(j)] * val;
                }
            }
            const float* row = W.data() + i * N;
            double sq = 0, sqq = 0, sw = 0, swq = 0, nn = 0;
            for (size_t j = 0; j < N; ++j) {
                const double h = colWeight[j];
                sq += h * qrow[j];
                sqq += h * double(qrow[j]) * qrow[j];
                sw += h * row[j];
                swq += h * double(row[j]) * qrow[j];
                nn += h;
            }
            const double det = sqq * nn - sq * sq;
            double ai = rowSd[i], bi = mu[i];
            if (det > 1e-12 * std::max(1.0, sqq * nn)) {
                ai = (swq * nn - sq * sw) / det;
                bi = (sw - ai * sq) / nn;
            }
            fitA[i] = ai;
            fitB[i] = bi;
        }
    });
    double g = 0;
    for (size_t i = 0; i < R; ++i)
        g = std::max({g, std::abs(fitA[i]), std::abs(fitB[i])});
    // f16 holds up to 65504; dividing by g keeps every stored value in [-1, 1].
    q.scale = g > 0 ? static_cast<float>(g) : 1.0f;
    q.rowMean.resize(R);
    q.rowScale.resize(R);
    for (size_t i = 0; i < R; ++i) {
        q.rowScale[i] = floatToHalf(static_cast<float>(fitA[i] / q.scale));
        q.rowMean[i] = floatToHalf(static_cast<float>(fitB[i] / q.scale));
    }

    // 4. Pack the codes: per row, per vector, b1 bits then b2 bits, LSB first.
    const int bits = cfg.b1 + cfg.b2;
    q.codes.assign((R * static_cast<size_t>(vpr) * static_cast<size_t>(bits) + 7) / 8, 0);
    uint64_t pos = 0;
    for (size_t v = 0; v < codeA.size(); ++v) {
        writeBits(q.codes, pos, codeA[v], cfg.b1);
        writeBits(q.codes, pos + static_cast<uint64_t>(cfg.b1), codeB[v], cfg.b2);
        pos += static_cast<uint64_t>(bits);
    }
    report(1.0, "done");
    return q;
}

} // namespace novaq
