#include "novaq/codec/kernels.h"

#include "novaq/io/cpu.h"

#include <Eigen/Core>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace novaq::kernels {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

constexpr int64_t kBlock = 256; // vectors per GEMM block
constexpr float kHuge = 1e30f;  // padding score: never the minimum

struct Best {
    float score;
    uint32_t flat; // a * m2p + b
};

// Scans the rows `list[0..count)` of the pair table: score(a, b) = cross[a][b] + (base[a] + q2[b]).
// `list` must be ascending: among equal scores the lowest (a, b) wins. The vector versions
// below compute every score with exactly this expression, in two passes: the minimum score
// (several independent running minima, no index bookkeeping on the hot path), then the
// first pair that reaches it.
Best scanScalar(const uint32_t* list, int count, const float* base, const float* cross, const float* q2, int m2p)
{
    Best best{std::numeric_limits<float>::infinity(), 0};
    for (int i = 0; i < count; ++i) {
        const uint32_t a = list[i];
        const float* row = cross + static_cast<size_t>(a) * static_cast<size_t>(m2p);
        for (int b = 0; b < m2p; ++b) {
            const float s = row[b] + (base[a] + q2[b]);
            if (s < best.score)
                best = {s, a * static_cast<uint32_t>(m2p) + static_cast<uint32_t>(b)};
        }
    }
    return best;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline __m256 rowMin8(const float* base, const float* cross, const float* q2, int m2p,
                                                      uint32_t a, __m256 acc)
{
    const __m256 bv = _mm256_set1_ps(base[a]);
    const float* row = cross + static_cast<size_t>(a) * static_cast<size_t>(m2p);
    for (int b0 = 0; b0 < m2p; b0 += 8)
        acc = _mm256_min_ps(acc, _mm256_add_ps(_mm256_loadu_ps(row + b0), _mm256_add_ps(bv, _mm256_loadu_ps(q2 + b0))));
    return acc;
}

// GCC 12's _mm512_min_ps uses _mm512_undefined_ps(), which its own -Wuninitialized flags
// (a known false positive in the compiler's header); silence it for the AVX-512 code only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) inline __m512 rowMin16(const float* base, const float* cross, const float* q2,
                                                          int m2p, uint32_t a, __m512 acc)
{
    const __m512 bv = _mm512_set1_ps(base[a]);
    const float* row = cross + static_cast<size_t>(a) * static_cast<size_t>(m2p);
    for (int b0 = 0; b0 < m2p; b0 += 16)
        acc = _mm512_min_ps(acc, _mm512_add_ps(_mm512_loadu_ps(row + b0), _mm512_add_ps(bv, _mm512_loadu_ps(q2 + b0))));
    return acc;
}

__attribute__((target("avx2"))) Best scanAvx2(const uint32_t* list, int count, const float* base, const float* cross,
                                              const float* q2, int m2p)
{
    const float inf = std::numeric_limits<float>::infinity();
    __m256 acc0 = _mm256_set1_ps(inf), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        acc0 = rowMin8(base, cross, q2, m2p, list[i], acc0);
        acc1 = rowMin8(base, cross, q2, m2p, list[i + 1], acc1);
        acc2 = rowMin8(base, cross, q2, m2p, list[i + 2], acc2);
        acc3 = rowMin8(base, cross, q2, m2p, list[i + 3], acc3);
    }
    for (; i < count; ++i)
        acc0 = rowMin8(base, cross, q2, m2p, list[i], acc0);
    alignas(32) std::array<float, 8> lanes;
    _mm256_store_ps(lanes.data(), _mm256_min_ps(_mm256_min_ps(acc0, acc1), _mm256_min_ps(acc2, acc3)));
    const float best = *std::min_element(lanes.begin(), lanes.end());
    const __m256 target = _mm256_set1_ps(best);
    for (i = 0; i < count; ++i) {
        const uint32_t a = list[i];
        const __m256 bv = _mm256_set1_ps(base[a]);
        const float* row = cross + static_cast<size_t>(a) * static_cast<size_t>(m2p);
        for (int b0 = 0; b0 < m2p; b0 += 8) {
            const __m256 v = _mm256_add_ps(_mm256_loadu_ps(row + b0), _mm256_add_ps(bv, _mm256_loadu_ps(q2 + b0)));
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, target, _CMP_EQ_OQ));
            if (mask)
                return {best, a * static_cast<uint32_t>(m2p) + static_cast<uint32_t>(b0 + __builtin_ctz(mask))};
        }
    }
    return scanScalar(list, count, base, cross, q2, m2p); // not reached for finite scores
}

__attribute__((target("avx512f"))) Best scanAvx512(const uint32_t* list, int count, const float* base,
                                                   const float* cross, const float* q2, int m2p)
{
    const float inf = std::numeric_limits<float>::infinity();
    __m512 acc0 = _mm512_set1_ps(inf), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        acc0 = rowMin16(base, cross, q2, m2p, list[i], acc0);
        acc1 = rowMin16(base, cross, q2, m2p, list[i + 1], acc1);
        acc2 = rowMin16(base, cross, q2, m2p, list[i + 2], acc2);
        acc3 = rowMin16(base, cross, q2, m2p, list[i + 3], acc3);
    }
    for (; i < count; ++i)
        acc0 = rowMin16(base, cross, q2, m2p, list[i], acc0);
    alignas(64) std::array<float, 16> lanes;
    _mm512_store_ps(lanes.data(), _mm512_min_ps(_mm512_min_ps(acc0, acc1), _mm512_min_ps(acc2, acc3)));
    const float best = *std::min_element(lanes.begin(), lanes.end());
    const __m512 target = _mm512_set1_ps(best);
    for (i = 0; i < count; ++i) {
        const uint32_t a = list[i];
        const __m512 bv = _mm512_set1_ps(base[a]);
        const float* row = cross + static_cast<size_t>(a) * static_cast<size_t>(m2p);
        for (int b0 = 0; b0 < m2p; b0 += 16) {
            const __m512 v = _mm512_add_ps(_mm512_loadu_ps(row + b0), _mm512_add_ps(bv, _mm512_loadu_ps(q2 + b0)));
            const __mmask16 mask = _mm512_cmp_ps_mask(v, target, _CMP_EQ_OQ);
            if (mask)
                return {best, a * static_cast<uint32_t>(m2p) + static_cast<uint32_t>(b0 + __builtin_ctz(mask))};
        }
    }
    return scanScalar(list, count, base, cross, q2, m2p);
}

#pragma GCC diagnostic pop

bool haveAvx2() noexcept { return cpuHas(CpuFeature::Avx2); }

bool haveAvx512() noexcept { return cpuHas(CpuFeature::Avx512); }
#endif

Best scan(const uint32_t* list, int count, const float* base, const float* cross, const float* q2, int m2p)
{
#if defined(__x86_64__)
    if (m2p % 16 == 0 && haveAvx512())
        return scanAvx512(list, count, base, cross, q2, m2p);
    if (haveAvx2())
        return scanAvx2(list, count, base, cross, q2, m2p);
#endif
    return scanScalar(list, count, base, cross, q2, m2p);
}

// out[c] = bias[c] + sum_t x[t] * T[t][c] for c < m: one row of the product X (-2 C)^T plus
// the entry norms, i.e. ||x - C[c]||^2 - ||x||^2. With d = 4..8 a row-at-a-time kernel over
// the transposed codebook beats a general GEMM, whose packing dominates at such a small
// inner dimension. Additions run in the same order on every instruction set (no FMA
// contraction), so the scores and hence the codes are the same on every machine.
__attribute__((target_clones("avx512f", "avx2", "default"))) void affineScores(const float* x, int d, const float* T,
                                                                               const float* bias, int m, float* out)
{
    for (int c = 0; c < m; ++c)
        out[c] = bias[c];
    for (int t = 0; t < d; ++t) {
        const float xt = x[t];
        const float* row = T + static_cast<size_t>(t) * static_cast<size_t>(m);
        for (int c = 0; c < m; ++c)
            out[c] += xt * row[c];
    }
}

inline void insertSmallest(float x, uint32_t c, int k, int& size, uint32_t* idx, float* val)
{
    if (size == k && !(x < val[k - 1]))
        return;
    int pos = size < k ? size++ : k - 1;
    while (pos > 0 && x < val[pos - 1]) {
        val[pos] = val[pos - 1];
        idx[pos] = idx[pos - 1];
        --pos;
    }
    val[pos] = x;
    idx[pos] = c;
}

void selectSmallestScalar(const float* v, int m, int k, uint32_t* idx, float* val)
{
    float threshold = std::numeric_limits<float>::infinity();
    if (k <= 8 && m % 8 == 0 && m >= 8) {
        std::array<float, 8> lane;
        std::copy_n(v, 8, lane.begin());
        for (int c0 = 8; c0 < m; c0 += 8)
            for (size_t l = 0; l < 8; ++l)
                lane[l] = v[c0 + static_cast<int>(l)] < lane[l] ? v[c0 + static_cast<int>(l)] : lane[l];
        threshold = *std::max_element(lane.begin(), lane.end());
    }
    int size = 0;
    for (int c = 0; c < m; ++c)
        if (v[c] <= threshold)
            insertSmallest(v[c], static_cast<uint32_t>(c), k, size, idx, val);
    std::sort(idx, idx + size);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void selectSmallestAvx2(const float* v, int m, int k, uint32_t* idx, float* val)
{
    __m256 lanes = _mm256_loadu_ps(v);
    for (int c0 = 8; c0 < m; c0 += 8)
        lanes = _mm256_min_ps(_mm256_loadu_ps(v + c0), lanes);
    alignas(32) std::array<float, 8> lm;
    _mm256_store_ps(lm.data(), lanes);
    const __m256 thr = _mm256_set1_ps(*std::max_element(lm.begin(), lm.end()));
    int size = 0;
    for (int c0 = 0; c0 < m; c0 += 8) {
        auto mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + c0), thr, _CMP_LE_OQ)));
        while (mask) {
            const int c = c0 + __builtin_ctz(mask);
            insertSmallest(v[c], static_cast<uint32_t>(c), k, size, idx, val);
            mask &= mask - 1;
        }
    }
    std::sort(idx, idx + size);
}
#endif

// The `k` smallest of v[0..m) (ties: lower index), written to idx ascending by index.
// For k <= 8, a threshold first: split v into 8 interleaved groups; the 8 group minima are
// 8 distinct entries, so the largest of them is at least the k-th smallest value and every
// entry of the answer lies at or under it. Only those entries go through the insertion into
// a short sorted list.
void selectSmallest(const float* v, int m, int k, uint32_t* idx, float* val)
{
#if defined(__x86_64__)
    if (k <= 8 && m % 8 == 0 && m >= 8 && haveAvx2())
        return selectSmallestAvx2(v, m, k, idx, val);
#endif
    selectSmallestScalar(v, m, k, idx, val);
}

float squaredNorm(const float* x, int d)
{
    float s = 0;
    for (int t = 0; t < d; ++t)
        s += x[t] * x[t];
    return s;
}

} // namespace

void assignNearestRef(const float* X, int64_t n, int d, const float* C, int m, uint32_t* code, float* dist2)
{
    for (int64_t i = 0; i < n; ++i) {
        const float* x = X + i * d;
        float best = std::numeric_limits<float>::infinity();
        uint32_t arg = 0;
        for (int c = 0; c < m; ++c) {
            float s = 0;
            for (int t = 0; t < d; ++t) {
                const float diff = x[t] - C[c * d + t];
                s += diff * diff;
            }
            if (s < best) {
                best = s;
                arg = static_cast<uint32_t>(c);
            }
        }
        code[i] = arg;
        if (dist2)
            dist2[i] = best;
    }
}

void assignNearest(const float* X, int64_t n, int d, const float* C, int m, uint32_t* code, float* dist2)
{
    std::vector<float> norms(static_cast<size_t>(m));
    for (int c = 0; c < m; ++c)
        norms[static_cast<size_t>(c)] = squaredNorm(C + c * d, d);
    const ConstRowMap Cm(C, m, d);
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks), [&](const tbb::blocked_range<int64_t>& r) {
        RowMatrix D;
        for (int64_t blk = r.begin(); blk != r.end(); ++blk) {
            const int64_t i0 = blk * kBlock;
            const int64_t nb = std::min(kBlock, n - i0);
            const ConstRowMap Xb(X + i0 * d, nb, d);
            D.resize(nb, m);
            D.noalias() = Xb * Cm.transpose();
            for (int64_t i = 0; i < nb; ++i) {
                const float* drow = D.data() + i * m;
                float best = std::numeric_limits<float>::infinity();
                uint32_t arg = 0;
                for (int c = 0; c < m; ++c) {
                    const float s = norms[static_cast<size_t>(c)] - 2.0f * drow[c];
                    if (s < best) {
                        best = s;
                        arg = static_cast<uint32_t>(c);
                    }
                }
                code[i0 + i] = arg;
                if (dist2)
                    dist2[i0 + i] = std::max(0.0f, best + squaredNorm(X + (i0 + i) * d, d));
            }
        }
    });
}

JointTables makeJointTables(const float* C1, int m1, const float* C2, int m2, int d)
{
    JointTables t;
    t.d = d;
    t.m1 = m1;
    t.m2 = m2;
    t.m2p = std::max(8, (m2 + 7) / 8 * 8);
    t.c1.assign(C1, C1 + static_cast<size_t>(m1) * static_cast<size_t>(d));
    if (m2 > 0)
        t.c2.assign(C2, C2 + static_cast<size_t>(m2) * static_cast<size_t>(d));
    t.norm1.resize(static_cast<size_t>(m1));
    for (int a = 0; a < m1; ++a)
        t.norm1[static_cast<size_t>(a)] = squaredNorm(C1 + a * d, d);
    t.cross.assign(static_cast<size_t>(m1) * static_cast<size_t>(t.m2p), kHuge);
    for (int a = 0; a < m1; ++a) {
        float* row = t.cross.data() + static_cast<size_t>(a) * static_cast<size_t>(t.m2p);
        if (m2 == 0) {
            row[0] = 0.0f;
            continue;
        }
        for (int b = 0; b < m2; ++b) {
            float dot = 0;
            for (int k = 0; k < d; ++k)
                dot += C1[a * d + k] * C2[b * d + k];
            row[b] = squaredNorm(C2 + b * d, d) + 2.0f * dot;
        }
    }
    t.t1.assign(static_cast<size_t>(d) * static_cast<size_t>(m1), 0.0f);
    for (int a = 0; a < m1; ++a)
        for (int k = 0; k < d; ++k)
            t.t1[static_cast<size_t>(k) * static_cast<size_t>(m1) + static_cast<size_t>(a)] = -2.0f * C1[a * d + k];
    t.t2.assign(static_cast<size_t>(d) * static_cast<size_t>(t.m2p), 0.0f);
    for (int b = 0; b < m2; ++b)
        for (int k = 0; k < d; ++k)
            t.t2[static_cast<size_t>(k) * static_cast<size_t>(t.m2p) + static_cast<size_t>(b)] = -2.0f * C2[b * d + k];
    return t;
}

void encodeJoint(const float* X, int64_t n, const JointTables& t, int beam, uint32_t* a, uint32_t* b)
{
    const int d = t.d, m1 = t.m1, m2 = t.m2, m2p = t.m2p;
    const bool exact = beam <= 0 || beam >= m1;
    const std::vector<float> zeros(static_cast<size_t>(m2p), 0.0f);
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks), [&](const tbb::blocked_range<int64_t>& r) {
        std::vector<float> base(static_cast<size_t>(m1));
        std::vector<float> q2(static_cast<size_t>(m2p), 0.0f);
        std::vector<uint32_t> all(static_cast<size_t>(m1));
        std::iota(all.begin(), all.end(), 0u);
        std::vector<uint32_t> cand(all);
        std::vector<float> candVal(static_cast<size_t>(m1));
        for (int64_t blk = r.begin(); blk != r.end(); ++blk) {
            const int64_t i0 = blk * kBlock;
            const int64_t nb = std::min(kBlock, n - i0);
            for (int64_t i = 0; i < nb; ++i) {
                const float* x = X + (i0 + i) * d;
                // base[a] = ||C1[a]||^2 - 2 x.C1[a];  q2[b] = -2 x.C2[b] (0 in the padding)
                affineScores(x, d, t.t1.data(), t.norm1.data(), m1, base.data());
                if (m2 > 0)
                    affineScores(x, d, t.t2.data(), zeros.data(), m2p, q2.data());
                Best best{};
                if (exact) {
                    best = scan(all.data(), m1, base.data(), t.cross.data(), q2.data(), m2p);
                } else {
                    selectSmallest(base.data(), m1, beam, cand.data(), candVal.data());
                    best = scan(cand.data(), beam, base.data(), t.cross.data(), q2.data(), m2p);
                }
                a[i0 + i] = best.flat / static_cast<uint32_t>(m2p);
                b[i0 + i] = m2 > 0 ? best.flat % static_cast<uint32_t>(m2p) : 0u;
            }
        }
    });
}

void encodeJointRef(const float* X, int64_t n, int d, const float* C1, int m1, const float* C2, int m2, int beam,
                    uint32_t* a, uint32_t* b)
{
    const bool exact = beam <= 0 || beam >= m1;
    std::vector<uint32_t> cand(static_cast<size_t>(m1));
    std::vector<float> d1(static_cast<size_t>(m1));
    for (int64_t i = 0; i < n; ++i) {
        const float* x = X + i * d;
        for (int c = 0; c < m1; ++c) {
            float s = 0;
            for (int k = 0; k < d; ++k) {
                const float diff = x[k] - C1[c * d + k];
                s += diff * diff;
            }
            d1[static_cast<size_t>(c)] = s;
        }
        std::iota(cand.begin(), cand.end(), 0u);
        int count = m1;
        if (!exact) {
            std::stable_sort(cand.begin(), cand.end(), [&](uint32_t p, uint32_t q) { return d1[p] < d1[q]; });
            count = beam;
            std::sort(cand.begin(), cand.begin() + beam);
        }
        float best = std::numeric_limits<float>::infinity();
        uint32_t ba = 0, bb = 0;
        for (int j = 0; j < count; ++j) {
            const uint32_t c1 = cand[static_cast<size_t>(j)];
            for (int c2 = 0; c2 < std::max(m2, 1); ++c2) {
                float s = 0;
                for (int k = 0; k < d; ++k) {
                    const float r = x[k] - C1[c1 * static_cast<uint32_t>(d) + static_cast<uint32_t>(k)] -
                                    (m2 > 0 ? C2[c2 * d + k] : 0.0f);
                    s += r * r;
                }
                if (s < best) {
                    best = s;
                    ba = c1;
                    bb = static_cast<uint32_t>(c2);
                }
            }
        }
        a[i] = ba;
        b[i] = bb;
    }
}

} // namespace novaq::kernels
