#include "novaq/runtime/quantized_linear.h"

#include "novaq/io/cpu.h"
#include "novaq/io/error.h"
#include "novaq/tensor/dtype.h"

#include <Eigen/Core>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace novaq {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kGroup = 16;                           // rows served by one f32 SIMD look-up
constexpr int64_t kInterleave = 64;                      // the code interleave: 64 rows, one int8 look-up
constexpr int64_t kSubGroups = kInterleave / kGroup;     // f32 groups per interleave group
constexpr int64_t kBlockVecs = 32;                       // int8 tables: vector positions sharing one scale
constexpr int64_t kChunkGroups = 8;                      // groups whose sums stay in registers/L1 while tiles stream
constexpr int64_t kTileBytes = 32 << 10;                 // table bytes per tile of vector positions (L1-sized)
constexpr int64_t kParallelLookups = int64_t{1} << 15;   // rows * vectors above which look-ups go parallel
constexpr int64_t kParallelTableWork = int64_t{1} << 16; // cols * entries above which tables go parallel
constexpr int64_t kTableGrain = 64;                      // vector positions per table task
constexpr int64_t kKc = 256;      // columns per slice of the decoded product: an X tile slice stays in L1
constexpr int64_t kTablePad = 16; // floats after the last table: a 16-lane load of a small stage-2 table

// Arguments of one look-up kernel call: the sums of one group of 16 rows over vectors [v0, v1).
struct LookupArgs {
    const float* table; // [vec][entries]
    int64_t entries;    // m1 + m2
    int m1;
    const uint8_t* codes1; // this group's codes: [vec][64 rows], starting at its 16 rows
    const uint8_t* codes2; // null when m2 = 0; nibbles: [vec][32 bytes], at this group's 16 bytes
    int shift2;            // nibbles: 0 (rows 0-31 of the interleave) or 4 (rows 32-63)
};
using LookupFn = void (*)(const LookupArgs& a, int64_t v0, int64_t v1, float* acc1, float* acc2);

// Stage-2 codes of at most 4 bits are held two per byte (CodePacking::Compact): per 64-row group
// and vector position 32 bytes, byte r holding row r in its low nibble and row r + 32 in its high
// one. kNibbles stands for that width where the kernels take a width in bytes.
constexpr int kNibbles = 4;
inline int64_t codeStride(int width) { return width == kNibbles ? kInterleave / 2 : kInterleave; }

inline uint32_t loadCode(const uint8_t* p, int width, int64_t index) noexcept
{
    if (width == 1)
        return p[index];
    uint16_t c = 0;
    std::memcpy(&c, p + 2 * index, 2);
    return c;
}

// The portable twin: 16 lanes, each a running sum over v, exactly as the SIMD versions add.
template <int W1, int W2>
void lookupPortable(const LookupArgs& a, int64_t v0, int64_t v1, float* acc1, float* acc2)
{
    for (int64_t v = v0; v < v1; ++v) {
        const float* t1 = a.table + v * a.entries;
        for (int64_t r = 0; r < kGroup; ++r)
            acc1[r] += t1[loadCode(a.codes1, W1, v * kInterleave + r)];
        if constexpr (W2 > 0) {
            const float* t2 = t1 + a.m1;
            for (int64_t r = 0; r < kGroup; ++r) {
                if constexpr (W2 == kNibbles)
                    acc2[r] += t2[(a.codes2[v * codeStride(W2) + r] >> a.shift2) & 15];
                else
                    acc2[r] += t2[loadCode(a.codes2, W2, v * kInterleave + r)];
            }
        }
    }
}

#if defined(__x86_64__)
template <int W>
__attribute__((target("avx2"))) inline __m256i codes8(const uint8_t* codes, int64_t index, int shift = 0)
{
    if constexpr (W == kNibbles)
        return _mm256_and_si256(
            _mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + index))),
                              shift),
            _mm256_set1_epi32(15));
    else if constexpr (W == 1)
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + index)));
    else
        return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 2 * index)));
}

template <int W1, int W2>
__attribute__((target("avx2"))) void lookupAvx2(const LookupArgs& a, int64_t v0, int64_t v1, float* acc1, float* acc2)
{
    __m256 s1a = _mm256_loadu_ps(acc1), s1b = _mm256_loadu_ps(acc1 + 8);
    __m256 s2a = _mm256_loadu_ps(acc2), s2b = _mm256_loadu_ps(acc2 + 8);
    for (int64_t v = v0; v < v1; ++v) {
        const float* t1 = a.table + v * a.entries;
        s1a = _mm256_add_ps(s1a, _mm256_i32gather_ps(t1, codes8<W1>(a.codes1, v * kInterleave), 4));
        s1b = _mm256_add_ps(s1b, _mm256_i32gather_ps(t1, codes8<W1>(a.codes1, v * kInterleave + 8), 4));
        if constexpr (W2 > 0) {
            const float* t2 = t1 + a.m1;
            const int64_t at = v * codeStride(W2);
            s2a = _mm256_add_ps(s2a, _mm256_i32gather_ps(t2, codes8<W2>(a.codes2, at, a.shift2), 4));
            s2b = _mm256_add_ps(s2b, _mm256_i32gather_ps(t2, codes8<W2>(a.codes2, at + 8, a.shift2), 4));
        }
    }
    _mm256_storeu_ps(acc1, s1a);
    _mm256_storeu_ps(acc1 + 8, s1b);
    _mm256_storeu_ps(acc2, s2a);
    _mm256_storeu_ps(acc2 + 8, s2b);
}

// GCC 12's AVX-512 gather and min intrinsics use _mm512_undefined_*(), which its own
// -Wuninitialized flags (a false positive in the compiler's header, as in codec/kernels.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int W>
__attribute__((target("avx512f"))) inline __m512i codes16(const uint8_t* codes, int64_t index, int shift = 0)
{
    if constexpr (W == kNibbles)
        return _mm512_and_si512(
            _mm512_srli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + index))),
                              static_cast<unsigned>(shift)),
            _mm512_set1_epi32(15));
    else if constexpr (W == 1)
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + index)));
    else
        return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 2 * index)));
}

// Stage 1 by gathers; stage 2 by gathers too, or, when it has at most 16 entries, by one
// in-register permutation of its table (vpermps): a shuffle instead of 16 loads.
template <int W1, int W2, bool kPermute2>
__attribute__((target("avx512f"))) void lookupAvx512(const LookupArgs& a, int64_t v0, int64_t v1, float* acc1,
                                                     float* acc2)
{
    __m512 s1 = _mm512_loadu_ps(acc1);
    __m512 s2 = _mm512_loadu_ps(acc2);
    for (int64_t v = v0; v < v1; ++v) {
        const float* t1 = a.table + v * a.entries;
        s1 = _mm512_add_ps(s1, _mm512_i32gather_ps(codes16<W1>(a.codes1, v * kInterleave), t1, 4));
        if constexpr (W2 > 0) {
            const float* t2 = t1 + a.m1;
            if constexpr (kPermute2)
                s2 = _mm512_add_ps(s2, _mm512_permutexvar_ps(codes16<W2>(a.codes2, v * codeStride(W2), a.shift2),
                                                             _mm512_loadu_ps(t2)));
            else
                s2 = _mm512_add_ps(s2, _mm512_i32gather_ps(codes16<W2>(a.codes2, v * codeStride(W2), a.shift2), t2, 4));
        }
    }
    _mm512_storeu_ps(acc1, s1);
    _mm512_storeu_ps(acc2, s2);
}

// C[8][32] += A B: A is 8 decoded rows (kc columns, row stride lda), B a packed X slice [kc][32].
// 16 accumulators; per k two loads of B and 8 broadcasts of A for 16 FMAs, FMA-bound. Every C
// entry is one FMA chain over k ascending.
__attribute__((target("avx512f"))) void gemm8x32Avx512(const float* A, int64_t lda, const float* B, int64_t kc,
                                                       float* C)
{
    __m512 c[8][2];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
        c[r][0] = _mm512_loadu_ps(C + r * 32);
        c[r][1] = _mm512_loadu_ps(C + r * 32 + 16);
    }
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_loadu_ps(B + k * 32), b1 = _mm512_loadu_ps(B + k * 32 + 16);
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            const __m512 a = _mm512_set1_ps(A[r * lda + k]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
        _mm512_storeu_ps(C + r * 32, c[r][0]);
        _mm512_storeu_ps(C + r * 32 + 16, c[r][1]);
    }
}

// The same with one vector of 16 tokens: for T <= 16, where a 32-token tile would mostly compute
// padding.
__attribute__((target("avx512f"))) void gemm8x16Avx512(const float* A, int64_t lda, const float* B, int64_t kc,
                                                       float* C)
{
    __m512 c[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r)
        c[r] = _mm512_loadu_ps(C + r * 16);
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b = _mm512_loadu_ps(B + k * 16);
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r)
            c[r] = _mm512_fmadd_ps(_mm512_set1_ps(A[r * lda + k]), b, c[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r)
        _mm512_storeu_ps(C + r * 16, c[r]);
}
#pragma GCC diagnostic pop

// C[4][16] += A B with B packed [kc][16]: 8 accumulators (AVX2 has 16 registers).
__attribute__((target("avx2,fma"))) void gemm4x16Avx2(const float* A, int64_t lda, const float* B, int64_t kc, float* C)
{
    __m256 c[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
        c[r][0] = _mm256_loadu_ps(C + r * 16);
        c[r][1] = _mm256_loadu_ps(C + r * 16 + 8);
    }
    for (int64_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_loadu_ps(B + k * 16), b1 = _mm256_loadu_ps(B + k * 16 + 8);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
            const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
        _mm256_storeu_ps(C + r * 16, c[r][0]);
        _mm256_storeu_ps(C + r * 16 + 8, c[r][1]);
    }
}

// C[MR][16 NV] += A B in bf16: A is MR decoded rows in bf16 (row stride lda elements, column
// pairs adjacent), B a packed X slice [pair][16 NV tokens][2]; kp column pairs. Per pair NV loads
// of B, MR broadcasts of a row's pair and MR * NV VDPBF16PS (each 32 multiply-adds). Every C entry
// is one VDPBF16PS chain over the pairs ascending, whatever the blocking or thread count.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bf16"))) void gemmBf16Avx512(const uint16_t* A, int64_t lda, const uint16_t* B,
                                                                  int64_t kp, float* C)
{
    constexpr int NR = 16 * NV;
    __m512 c[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            c[r][v] = _mm512_loadu_ps(C + r * NR + v * 16);
    for (int64_t p = 0; p < kp; ++p) {
        __m512i b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            b[v] = _mm512_loadu_si512(B + (p * NR + v * 16) * 2);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            int32_t pair = 0;
            std::memcpy(&pair, A + r * lda + 2 * p, sizeof pair);
            const __m512i a = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
                c[r][v] = _mm512_dpbf16_ps(c[r][v], (__m512bh)a, (__m512bh)b[v]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            _mm512_storeu_ps(C + r * NR + v * 16, c[r][v]);
}

// n floats to bf16 with VCVTNEPS2BF16 (the rounding toBf16 spells out); the tail in scalar code.
uint16_t toBf16(float f) noexcept;
__attribute__((target("avx512f,avx512bf16"))) void toBf16Avx512(const float* in, int64_t n, uint16_t* out)
{
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + j)));
    for (; j < n; ++j)
        out[j] = toBf16(in[j]);
}

bool haveAvx512Bf16() noexcept { return cpuHas(CpuFeature::Avx512Bf16); }

bool haveAvx2() noexcept { return cpuHas(CpuFeature::Avx2); }

bool haveAvx512() noexcept { return cpuHas(CpuFeature::Avx512); }

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void halvesAvx512(const uint16_t* in, size_t n, float* out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_maskz_cvtph_ps(__mmask16(0xFFFF),
                                                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
    for (; i < n; ++i)
        out[i] = halfToFloat(in[i]);
}

__attribute__((target("avx,f16c"))) void halvesF16c(const uint16_t* in, size_t n, float* out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    for (; i < n; ++i)
        out[i] = halfToFloat(in[i]);
}
#endif
#endif // the x86-64 kernels

// f16 bits to f32, exactly (every f16 value is an f32 value; the instructions convert as
// halfToFloat does): the held codebooks and row scales widened for one call's kernels.
void halvesToFloats(const uint16_t* in, size_t n, float* out)
{
#if defined(__x86_64__)
    if (haveAvx512()) {
        halvesAvx512(in, n, out);
        return;
    }
    if (cpuHas(CpuFeature::F16c)) {
        halvesF16c(in, n, out);
        return;
    }
#endif
    for (size_t i = 0; i < n; ++i)
        out[i] = halfToFloat(in[i]);
}

template <int W1, int W2>
LookupFn pickFor(SimdLevel level, bool smallStage2)
{
    switch (level) {
#if defined(__x86_64__)
    case SimdLevel::Avx512:
        return smallStage2 ? &lookupAvx512<W1, W2, true> : &lookupAvx512<W1, W2, false>;
    case SimdLevel::Avx2:
        return &lookupAvx2<W1, W2>;
#endif
    default:
        return &lookupPortable<W1, W2>;
    }
}

LookupFn pickLookup(SimdLevel level, int w1, int w2, int m2)
{
    const bool small = m2 > 0 && m2 <= 16;
    if (w1 == 1)
        return w2 == 0          ? pickFor<1, 0>(level, small)
               : w2 == 1        ? pickFor<1, 1>(level, small)
               : w2 == kNibbles ? pickFor<1, kNibbles>(level, small)
                                : pickFor<1, 2>(level, small);
    if (w2 == kNibbles)
        return pickFor<2, kNibbles>(level, small);
    return w2 == 0 ? pickFor<2, 0>(level, small) : w2 == 1 ? pickFor<2, 1>(level, small) : pickFor<2, 2>(level, small);
}

SimdLevel resolve(SimdLevel level)
{
    if (level != SimdLevel::Best)
        return level;
    if (simdLevelAvailable(SimdLevel::Avx512))
        return SimdLevel::Avx512;
    if (simdLevelAvailable(SimdLevel::Avx2))
        return SimdLevel::Avx2;
    return SimdLevel::Portable;
}

// C[MR][NR] += A B over kc columns: A is a slice of MR decoded rows (row stride lda), B a slice of
// NR tokens packed [kc][NR]. fn is null on the portable path, which multiplies with Eigen instead.
using GemmFn = void (*)(const float* A, int64_t lda, const float* B, int64_t kc, float* C);
struct GemmKernel {
    GemmFn fn;
    int64_t mr, nr;
};

GemmKernel pickGemm(SimdLevel level, int64_t T)
{
#if defined(__x86_64__)
    if (level == SimdLevel::Avx512)
        return T > 16 ? GemmKernel{&gemm8x32Avx512, 8, 32} : GemmKernel{&gemm8x16Avx512, 8, 16};
    if (level == SimdLevel::Avx2)
        return {&gemm4x16Avx2, 4, 16};
#endif
    (void)level;
    (void)T;
    return {nullptr, 0, 0};
}

void checkAvailable(SimdLevel level)
{
    if (!simdLevelAvailable(level))
        throw Error(ErrorKind::Unsupported,
                    std::string("the ") + simdLevelName(level) + " path needs an instruction set this CPU lacks");
}

// out[c] = sum_t x[t] * BT[t][c] for c < m: the tables of one vector position.
__attribute__((target_clones("avx512f", "avx2", "default"))) void tableRow(const float* x, int d, const float* BT,
                                                                           int64_t m, float* out)
{
    const float x0 = x[0];
    for (int64_t c = 0; c < m; ++c)
        out[c] = x0 * BT[c];
    for (int t = 1; t < d; ++t) {
        const float xt = x[t];
        const float* row = BT + t * m;
        for (int64_t c = 0; c < m; ++c)
            out[c] += xt * row[c];
    }
}

// One decoded row from the offsets of its entries in the codebooks: out[j] = s t_j (e1 + e2)_j + mu
// (kWithScales, the expression decode() evaluates), else t_j (e1 + e2)_j. No FMA in either clone,
// so every clone rounds exactly as decode() does. D > 0: d as a constant (straight SIMD).
#if defined(__clang__)
// Clang 14 (the fuzz preset's compiler) cannot multiversion a function template: one build.
#define NOVAQ_TEMPLATE_CLONES_AVX2
#else
#define NOVAQ_TEMPLATE_CLONES_AVX2 __attribute__((target_clones("avx2", "default")))
#endif
template <int D, bool kTwoStages, bool kWithScales>
NOVAQ_TEMPLATE_CLONES_AVX2 void decodeRowFromOffsets(const float* books, const uint32_t* off1, const uint32_t* off2,
                                                     const float* colScale, int dRun, int64_t cols, float s, float mu,
                                                     float* row)
{
    const int64_t d = D > 0 ? D : dRun;
    const int64_t whole = cols / d; // vectors with all d columns inside the row
    auto one = [&](int64_t v, int64_t n) {
        // Into a local buffer first: every load precedes the store, so the compiler need not
        // fear aliasing between the row and the codebooks, and vectorizes the whole vector.
        const float* e1 = books + off1[v];
        const float* e2 = books + off2[v];
        const float* t = colScale + v * d;
        float buf[D > 0 ? D : 32];
        for (int64_t k = 0; k < n; ++k) {
            const float value = kTwoStages ? e1[k] + e2[k] : e1[k];
            buf[k] = kWithScales ? s * t[k] * value + mu : t[k] * value;
        }
        float* o = row + v * d;
        for (int64_t k = 0; k < n; ++k)
            o[k] = buf[k];
    };
    for (int64_t v = 0; v < whole; ++v)
        one(v, d);
    if (whole * d < cols)
        one(whole, cols - whole * d);
}

// matMul's choice between T look-up passes (cost T * L) and the decoded product (D + T * G):
// look-ups while T * (L - G) < D. Unit costs in nanoseconds on one thread, measured with
// novaq_bench --matvec and per-kernel timings (4096 x 4096, Xeon with AVX-512, GCC 12 -O3); only
// their ratios matter. They put the crossover at T ~ 24 for d8 8+4, 8 for d8 8+8, 3 for d4 8+8,
// where the benchmark measured ~16, 8-12 and 4-5 (near it both paths cost about the same).
struct UnitCosts {
    double gatheredStage; // per row and vector position, one stage looked up by gathers / loads
    double permutedStage; // per row and vector position, a stage of <= 16 entries (AVX-512 permute)
    double fma;           // per weight and token in the decoded product
};
constexpr double kTableEntryCost = 0.06; // per column and table entry (building the tables)
constexpr double kDecodeCost = 0.45;     // per weight: codes to f32 with the column scale

UnitCosts unitCosts(SimdLevel level)
{
    switch (level) {
    case SimdLevel::Avx512:
        return {0.28, 0.035, 0.025};
    case SimdLevel::Avx2:
        return {0.25, 0.25, 0.05};
    default:
        return {0.4, 0.4, 0.12}; // scalar look-ups; Eigen's GEMM at SSE2 width
    }
}

bool haveAvx512Vbmi() noexcept;

// The int8 tables (Avx512 = VBMI) and the bf16 product (VDPBF16PS), same units, fitted to
// novaq_bench --matvec on 2048 x 5632 at 1.5 and 2 bits (one thread, a shared Xeon: ratios to
// the FMA kernel measured in the same run, T = 256). A lone int8 mat-vec took 200-260 us there,
// but a token in T passes 450-690 us (the crossover table shows the same step from T = 8): the
// costs below fit the passes, what matMul runs. Against ~535 us per token of decode + FMA, look-
// ups win at 1.5 bits (model: at any T) and lose at 2 bits (model: up to T = 60), at 4 bits (d4)
// earlier still (model: 29); small matrices (few rows per table entry) decode soon (512 x 1376:
// model 5). VDPBF16PS ran at 1.35-1.6x the FMA kernel's time.
constexpr double kInt8Stage = 0.032;      // per row, vector position and stage: VBMI permutes, integer sums
constexpr double kInt8TableEntry = 0.098; // per column and table entry: f32 tables, then rounded to int8
constexpr double kBf16Dot = 0.037;        // per weight and token, VDPBF16PS kernel
constexpr double kBf16DecodeCost = 0.5;   // per weight: codes to f32, then to bf16
// kInt8Dot re-measured after the one-pass decode (perf profile of novaq_bench --tokens --prompt-only
// on the 1B model, one thread): the kernel 0.0048 ns per weight and token, the decode 0.5 ns per
// weight, the int8 look-up passes of gate/up 157 us per token (the model above: 147). With 0.012
// the 1.5-bit prompt took look-ups for gate and up (2.5x the product's time there).
constexpr double kInt8Dot = 0.005;      // per weight and token, VPDPBUSD kernel with its block scales
constexpr double kInt8DecodeCost = 0.5; // per weight: codes to f32, then rounded to int8
bool haveAvx512Vnni() noexcept;

int64_t lookupCrossover(int64_t rows, int64_t cols, int64_t vpr, int m1, int m2, SimdLevel level, Tables tables,
                        Gemm gemm)
{
    const UnitCosts c = unitCosts(level);
    const double rv = static_cast<double>(rows * vpr), weights = static_cast<double>(rows * cols);
    double L = 0; // one token's look-ups
    if (tables == Tables::Int8 && level == SimdLevel::Avx512 && haveAvx512Vbmi()) {
        L = rv * kInt8Stage * (m2 > 0 ? 2 : 1) + static_cast<double>(cols * (m1 + m2)) * kInt8TableEntry;
    } else {
        const double stage2 = m2 == 0 ? 0.0 : m2 <= 16 ? c.permutedStage : c.gatheredStage;
        L = rv * (c.gatheredStage + stage2) + static_cast<double>(cols * (m1 + m2)) * kTableEntryCost;
    }
    const bool bf16 = gemm == Gemm::Bf16 && level == SimdLevel::Avx512;
    const bool int8 = gemm == Gemm::Int8 && level == SimdLevel::Avx512 && haveAvx512Vnni();
    const double D = weights * (bf16 ? kBf16DecodeCost : int8 ? kInt8DecodeCost : kDecodeCost);
    const double G = weights * (bf16 ? kBf16Dot : int8 ? kInt8Dot : c.fma);
    if (L <= G)
        return std::numeric_limits<int64_t>::max();
    return std::max<int64_t>(1, static_cast<int64_t>(D / (L - G)));
}

// sum(x) in double: eight running sums (element j into sum j mod 8), then added pairwise. One
// order on every path; eight chains instead of one (a single chain waits on each addition's
// latency, ~5% of a prompt's time once per token and matrix).
float sumOf(const float* x, int64_t n)
{
    double lane[8] = {};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; ++k)
            lane[k] += x[j + k];
    for (; j < n; ++j)
        lane[j % 8] += x[j];
    return static_cast<float>(((lane[0] + lane[1]) + (lane[2] + lane[3])) +
                              ((lane[4] + lane[5]) + (lane[6] + lane[7])));
}

// ---- bf16 product ---------------------------------------------------------------------------
// f32 to bfloat16 as VCVTNEPS2BF16 defines it: zeros and subnormals to a zero of their sign,
// NaN kept (made quiet), else round to nearest even on the upper 16 bits (overflow gives inf).
uint16_t toBf16(float f) noexcept
{
    uint32_t b = 0;
    std::memcpy(&b, &f, sizeof b);
    if ((b & 0x7F800000u) == 0)
        return static_cast<uint16_t>((b >> 16) & 0x8000u);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u)
        return static_cast<uint16_t>((b >> 16) | 0x0040u);
    return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

inline float fromBf16(uint16_t h) noexcept
{
    const uint32_t b = uint32_t{h} << 16;
    float f = 0;
    std::memcpy(&f, &b, sizeof f);
    return f;
}

void toBf16Portable(const float* in, int64_t n, uint16_t* out)
{
    for (int64_t j = 0; j < n; ++j)
        out[j] = toBf16(in[j]);
}

// The twin of one VDPBF16PS chain: over column pairs ascending, acc = fma(a_odd, b_odd, acc) then
// fma(a_even, b_even, acc), each rounded once to nearest even (the product of two bf16 is exact in
// f32), a subnormal result flushed to a zero of its sign, as Intel's definition of the instruction
// reads. (The FMA clone only makes std::fma one instruction; the result is the same.)
__attribute__((target_clones("fma", "default"))) float dotBf16(const uint16_t* a, const uint16_t* b, int64_t kp)
{
    auto step = [](float x, float y, float acc) {
        const float r = std::fma(x, y, acc);
        return std::abs(r) < std::numeric_limits<float>::min() ? std::copysign(0.0f, r) : r;
    };
    float acc = 0.0f;
    for (int64_t p = 0; p < kp; ++p) {
        acc = step(fromBf16(a[2 * p + 1]), fromBf16(b[2 * p + 1]), acc);
        acc = step(fromBf16(a[2 * p]), fromBf16(b[2 * p]), acc);
    }
    return acc;
}

// ---- int8 tables ---------------------------------------------------------------------------
// The tables of kBlockVecs vector positions share one scale: entries rounded to int8 (round to
// nearest even of e * 127 / max|e| over the block), summed per row as integers over the block
// (at most 32 * 2 * 127 = 8128: int16 holds it), then acc = fma(float(sum), scale, acc) over the
// blocks in order. Integer sums are exact, so the portable twin and the VBMI kernel agree bit for
// bit. Each stage's table is padded with zeros to a whole number of 64 bytes (one zmm register).

struct Int8Args {
    const int8_t* tables; // [vec][stride]: stage 1 (p1 bytes), then stage 2
    int64_t stride;       // bytes per vector position
    int64_t p1;           // stage-1 bytes: m1 rounded up to 64
    bool twoStages;
    const uint8_t* codes1; // this 64-row group's codes: [vec][64 rows]
    const uint8_t* codes2; // null when m2 = 0; nibbles: [vec][32 bytes]
    bool nibbles2;         // stage-2 codes two per byte
};
using Int8Fn = void (*)(const Int8Args& a, int64_t v0, int64_t v1, float scale, float* acc);

inline int64_t padTo64(int64_t n) { return (n + 63) / 64 * 64; }

void int8Portable(const Int8Args& a, int64_t v0, int64_t v1, float scale, float* acc)
{
    for (int64_t r = 0; r < kInterleave; ++r) {
        int32_t sum = 0;
        for (int64_t v = v0; v < v1; ++v) {
            const int8_t* t = a.tables + v * a.stride;
            sum += t[a.codes1[v * kInterleave + r]];
            if (a.twoStages)
                sum += t[a.p1 + (a.nibbles2 ? (a.codes2[v * kInterleave / 2 + r % 32] >> (r / 32 * 4)) & 15
                                            : a.codes2[v * kInterleave + r])];
        }
        acc[r] = std::fma(static_cast<float>(sum), scale, acc[r]);
    }
}

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics use _mm512_undefined_*() (the same false positive as above).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
bool haveAvx512Vbmi() noexcept { return cpuHas(CpuFeature::Avx512Vbmi); }

// 64 look-ups in a table of E int8 entries (E = 64, 128 or 256) by byte permutes: vpermb reads
// one register, vpermi2b two; 256 entries take two vpermi2b and a blend on the index's top bit.
template <int E>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline __m512i lookup64(const int8_t* t, __m512i idx)
{
    if constexpr (E == 64) {
        return _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(t));
    } else if constexpr (E == 128) {
        return _mm512_permutex2var_epi8(_mm512_loadu_si512(t), idx, _mm512_loadu_si512(t + 64));
    } else {
        const __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), idx, _mm512_loadu_si512(t + 64));
        const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), idx, _mm512_loadu_si512(t + 192));
        return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
    }
}

template <int E1, int E2, bool kNib2 = false>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void int8Avx512(const Int8Args& a, int64_t v0, int64_t v1,
                                                                       float scale, float* acc)
{
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512(); // int16 sums of rows 0-31, 32-63
    for (int64_t v = v0; v < v1; ++v) {
        const int8_t* t = a.tables + v * a.stride;
        __m512i l = lookup64<E1>(t, _mm512_loadu_si512(a.codes1 + v * kInterleave));
        __m512i l16lo = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(l));
        __m512i l16hi = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(l, 1));
        if constexpr (E2 > 0) {
            __m512i idx2;
            if constexpr (kNib2) { // 32 bytes: rows 0-31 in the low nibbles, 32-63 in the high ones
                const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.codes2 + v * kInterleave / 2));
                idx2 = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(b), _mm256_srli_epi16(b, 4), 1),
                                        _mm512_set1_epi8(15));
            } else {
                idx2 = _mm512_loadu_si512(a.codes2 + v * kInterleave);
            }
            const __m512i m = lookup64<E2>(t + a.p1, idx2);
            l16lo = _mm512_add_epi16(l16lo, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(m)));
            l16hi = _mm512_add_epi16(l16hi, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(m, 1)));
        }
        lo = _mm512_add_epi16(lo, l16lo);
        hi = _mm512_add_epi16(hi, l16hi);
    }
    const __m512 s = _mm512_set1_ps(scale);
    const __m512i parts[4] = {
        _mm512_cvtepi16_epi32(_mm512_castsi512_si256(lo)), _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(lo, 1)),
        _mm512_cvtepi16_epi32(_mm512_castsi512_si256(hi)), _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(hi, 1))};
    for (int q = 0; q < 4; ++q)
        _mm512_storeu_ps(acc + 16 * q, _mm512_fmadd_ps(_mm512_cvtepi32_ps(parts[q]), s, _mm512_loadu_ps(acc + 16 * q)));
}

// out[e] = round-to-nearest-even(in[e] * inv) for e < n: the same bits as roundTables' loop.
__attribute__((target("avx512f,avx512bw"))) void roundAvx512(const float* in, int64_t n, float inv, int8_t* out)
{
    const __m512 s = _mm512_set1_ps(inv);
    int64_t e = 0;
    for (; e + 16 <= n; e += 16)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + e),
                         _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(in + e), s))));
    for (; e < n; ++e)
        out[e] = static_cast<int8_t>(std::lrint(in[e] * inv));
}

// The f32 tables of vector positions [v0, v1) into out ([v - v0][m]) and their largest magnitude:
// per 16 entries, d FMAs into one register (x_t broadcast, the transposed codebook row loaded),
// four positions at a time when they share a codebook (its rows then load once for the four).
// Each entry is fma(x_{d-1}, B, ... fma(x_1, B, x_0 * B)), the same chain for every position.
__attribute__((target("avx512f"))) float tablesAvx512(const float* xt, int d, const float* booksT,
                                                      const uint32_t* bookOf, int64_t m, int64_t v0, int64_t v1,
                                                      float* out)
{
    __m512 largest = _mm512_setzero_ps();
    int64_t v = v0;
    for (; v + 4 <= v1 && bookOf[v] == bookOf[v + 3]; v += 4) {
        const float* BT = booksT + bookOf[v];
        const float* x = xt + v * d;
        float* o = out + (v - v0) * m;
        for (int64_t c = 0; c < m; c += 16) {
            const __mmask16 k = m - c >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (m - c)) - 1);
            __m512 b = _mm512_maskz_loadu_ps(k, BT + c);
            __m512 a0 = _mm512_mul_ps(_mm512_set1_ps(x[0]), b), a1 = _mm512_mul_ps(_mm512_set1_ps(x[d]), b);
            __m512 a2 = _mm512_mul_ps(_mm512_set1_ps(x[2 * d]), b), a3 = _mm512_mul_ps(_mm512_set1_ps(x[3 * d]), b);
            for (int t = 1; t < d; ++t) {
                b = _mm512_maskz_loadu_ps(k, BT + t * m + c);
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(x[t]), b, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(x[d + t]), b, a1);
                a2 = _mm512_fmadd_ps(_mm512_set1_ps(x[2 * d + t]), b, a2);
                a3 = _mm512_fmadd_ps(_mm512_set1_ps(x[3 * d + t]), b, a3);
            }
            _mm512_mask_storeu_ps(o + c, k, a0);
            _mm512_mask_storeu_ps(o + m + c, k, a1);
            _mm512_mask_storeu_ps(o + 2 * m + c, k, a2);
            _mm512_mask_storeu_ps(o + 3 * m + c, k, a3);
            largest = _mm512_max_ps(largest, _mm512_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)),
                                                           _mm512_max_ps(_mm512_abs_ps(a2), _mm512_abs_ps(a3))));
        }
    }
    for (; v < v1; ++v) {
        const float* BT = booksT + bookOf[v];
        const float* x = xt + v * d;
        float* o = out + (v - v0) * m;
        for (int64_t c = 0; c < m; c += 16) {
            const __mmask16 k = m - c >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (m - c)) - 1);
            __m512 a = _mm512_mul_ps(_mm512_set1_ps(x[0]), _mm512_maskz_loadu_ps(k, BT + c));
            for (int t = 1; t < d; ++t)
                a = _mm512_fmadd_ps(_mm512_set1_ps(x[t]), _mm512_maskz_loadu_ps(k, BT + t * m + c), a);
            _mm512_mask_storeu_ps(o + c, k, a);
            largest = _mm512_max_ps(largest, _mm512_abs_ps(a));
        }
    }
    return _mm512_reduce_max_ps(largest);
}

template <int E1>
Int8Fn pickInt8Avx512(int64_t p2, bool nibbles2)
{
    switch (p2) {
    case 0:
        return &int8Avx512<E1, 0>;
    case 64:
        return nibbles2 ? &int8Avx512<E1, 64, true> : &int8Avx512<E1, 64>;
    case 128:
        return &int8Avx512<E1, 128>;
    default:
        return &int8Avx512<E1, 256>;
    }
}
#pragma GCC diagnostic pop
#else
bool haveAvx512Vbmi() noexcept { return false; }
bool haveAvx512Bf16() noexcept { return false; }
#endif

Int8Fn pickInt8(SimdLevel level, int64_t p1, int64_t p2, bool nibbles2)
{
#if defined(__x86_64__)
    if (level == SimdLevel::Avx512)
        return p1 == 64    ? pickInt8Avx512<64>(p2, nibbles2)
               : p1 == 128 ? pickInt8Avx512<128>(p2, nibbles2)
                           : pickInt8Avx512<256>(p2, nibbles2);
#endif
    (void)p1;
    (void)p2;
    (void)nibbles2;
    (void)level;
    return &int8Portable;
}

// ---- int8 product --------------------------------------------------------------------------
// Every kQBlock columns share a scale: of a decoded row i (w_ib = max|n_ij| / 127 over block b,
// q_ij = rne(n_ij * 127 / max) in [-127, 127]) and of a token t (a_tb and p_tj likewise). VPDPBUSD
// multiplies unsigned by signed bytes, so a row is stored as u_ij = q_ij + 128 in [1, 255]: the
// integer dot of a block is D = sum u p = sum q p + 128 ps_tb, ps_tb the token block's sum of p,
// kept with the token as -128 ps_tb (the kernel starts its sum there: one number per token and
// block, not per row). Then per row and token acc = fma(float(sum q p), a_tb * w_ib, acc) over
// the blocks in order, and y_ti = s_i acc + mu_i sum(x_t). |sum q p| <= 32 * 127 * 127 < 2^24:
// exact in f32. Integer
// sums are exact in any order, so the VNNI kernel and the portable twin, which round the same
// numbers the same way and fold the blocks in the same order, give the same bits.
constexpr int64_t kQBlock = 32;

// n floats (a whole number of blocks) to int8 by blocks: q, the block scales, and (sums not null)
// 128 * the negated block sums of q. Portable: std::lrint (round to nearest even).
void quantizeBlocksPortable(const float* in, int64_t n, int8_t* q, float* scales, int32_t* negSums)
{
    for (int64_t b = 0; b * kQBlock < n; ++b) {
        const float* x = in + b * kQBlock;
        float largest = 0.0f;
        for (int64_t j = 0; j < kQBlock; ++j)
            largest = std::max(largest, std::fabs(x[j]));
        const float inv = largest > 0.0f ? 127.0f / largest : 0.0f;
        scales[b] = largest / 127.0f;
        int32_t sum = 0;
        for (int64_t j = 0; j < kQBlock; ++j) {
            const auto v = static_cast<int8_t>(std::lrint(x[j] * inv));
            q[b * kQBlock + j] = v;
            sum += v;
        }
        if (negSums)
            negSums[b] = -128 * sum;
    }
}

// The portable twin of the product: rows [0, nr) of Au (offset bytes, row stride lda; block
// scales at stride ldb) against tokens [0, T) of Xs (signed bytes, row stride lda) with their
// scales Sa and corrections Ca (-128 ps_tb; both stride ldb); C[t][i] (row stride ldc) = the
// folded sum.
void gemmInt8Portable(const uint8_t* Au, const float* Sw, int64_t nr, const int8_t* Xs, const float* Sa,
                      const int32_t* Ca, int64_t T, int64_t lda, int64_t ldb, float* C, int64_t ldc)
{
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < nr; ++i) {
            float acc = 0.0f;
            for (int64_t b = 0; b < ldb; ++b) {
                int32_t dot = Ca[t * ldb + b];
                const uint8_t* a = Au + i * lda + b * kQBlock;
                const int8_t* x = Xs + t * lda + b * kQBlock;
                for (int64_t j = 0; j < kQBlock; ++j)
                    dot += int32_t{a[j]} * int32_t{x[j]};
                acc = std::fma(static_cast<float>(dot), Sa[t * ldb + b] * Sw[i * ldb + b], acc);
            }
            C[t * ldc + i] = acc;
        }
}

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
bool haveAvx512Vnni() noexcept { return cpuHas(CpuFeature::Avx512Vnni); }

// quantizeBlocksPortable's numbers with AVX-512 (a block of 32 in two registers): the largest
// magnitude is exact in any order, the scale and its inverse are the same scalar divisions, and
// VCVTPS2DQ rounds to nearest even as lrint does.
__attribute__((target("avx512f,avx512bw"))) void quantizeBlocksAvx512(const float* in, int64_t n, int8_t* q,
                                                                      float* scales, int32_t* negSums)
{
    static_assert(kQBlock == 32);
    for (int64_t b = 0; b * kQBlock < n; ++b) {
        const float* x = in + b * kQBlock;
        const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        const float largest = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        const float inv = largest > 0.0f ? 127.0f / largest : 0.0f;
        scales[b] = largest / 127.0f;
        const __m512 s = _mm512_set1_ps(inv);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, s)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, s));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQBlock), _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kQBlock + 16), _mm512_cvtsepi32_epi8(q1));
        if (negSums)
            negSums[b] = -128 * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

// One row's blocks of 32 columns [0, blocks) decoded from its codes and rounded, as
// decodeRowFromOffsets (without scales: t_j (e1 + e2)_j, an f32 sum then an f32 product) followed
// by quantizeBlocksAvx512 compute them, stored with the offset (u = q + 128): the same bits,
// without the f32 row in memory. D = 4 or 8 (a block holds whole vectors; 16 columns are 16 / D
// vectors, loaded and joined in a register). The codes are read where they lie (stage 1 a byte
// per 64 rows and vector; stage 2 a byte, or a nibble of a byte per 32); the divisions of 16
// blocks run as one vector division (IEEE division rounds the same in a lane as in a scalar).
struct RowCodes {
    const uint8_t* codes1; // the row's stage-1 code of vector v at codes1[64 v]
    const uint8_t* codes2; // stage 2: codes2[stride2 v] (>> shift2 & 15 for nibbles); null: none
    int64_t stride2;
    unsigned shift2;
    bool nibbles2;
};

template <int D>
__attribute__((target("avx512f"))) inline __m512 entries16(const float* books, const uint32_t* off)
{
    if constexpr (D == 8) {
        const __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(books + off[0])));
        return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(books + off[1])), 1));
    } else {
        __m512 r = _mm512_castps128_ps512(_mm_loadu_ps(books + off[0]));
        r = _mm512_insertf32x4(r, _mm_loadu_ps(books + off[1]), 1);
        r = _mm512_insertf32x4(r, _mm_loadu_ps(books + off[2]), 2);
        return _mm512_insertf32x4(r, _mm_loadu_ps(books + off[3]), 3);
    }
}

template <int D, bool kTwoStages>
__attribute__((target("avx512f,avx512bw"))) void
decodeQuantizeAvx512(const float* books, const uint32_t* bookOf, uint32_t m1, const RowCodes& rc, const float* colScale,
                     int64_t blocks, uint8_t* u, float* scales)
{
    static_assert(kQBlock == 32 && (D == 4 || D == 8));
    constexpr int64_t kVecs = kQBlock / D; // vectors per block
    constexpr int64_t kGroup16 = 16;       // blocks per vector division
    alignas(64) float x[kGroup16][kQBlock];
    alignas(64) float largest[kGroup16];
    alignas(64) float inv[kGroup16];
    const __m512i offset = _mm512_set1_epi32(128);
    for (int64_t g0 = 0; g0 < blocks; g0 += kGroup16) {
        const int64_t n = std::min(kGroup16, blocks - g0);
        for (int64_t g = 0; g < n; ++g) {
            const int64_t v0 = (g0 + g) * kVecs;
            uint32_t off1[kVecs], off2[kVecs];
            for (int64_t k = 0; k < kVecs; ++k) {
                const int64_t v = v0 + k;
                const uint32_t base = bookOf[v];
                off1[k] = base + uint32_t{rc.codes1[v * kInterleave]} * D;
                if constexpr (kTwoStages) {
                    const uint32_t c = rc.codes2[v * rc.stride2];
                    off2[k] = base + (m1 + (rc.nibbles2 ? (c >> rc.shift2) & 15u : c)) * D;
                }
            }
            __m512 h[2];
            for (int half = 0; half < 2; ++half) {
                __m512 e = entries16<D>(books, off1 + half * kVecs / 2);
                if constexpr (kTwoStages)
                    e = _mm512_add_ps(e, entries16<D>(books, off2 + half * kVecs / 2));
                h[half] = _mm512_mul_ps(_mm512_loadu_ps(colScale + (g0 + g) * kQBlock + 16 * half), e);
                _mm512_store_ps(x[g] + 16 * half, h[half]);
            }
            largest[g] = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(h[0]), _mm512_abs_ps(h[1])));
        }
        const __mmask16 lanes = static_cast<__mmask16>((1u << n) - 1);
        const __m512 l = _mm512_maskz_loadu_ps(lanes, largest);
        const __mmask16 positive = _mm512_mask_cmp_ps_mask(lanes, l, _mm512_setzero_ps(), _CMP_GT_OQ);
        _mm512_store_ps(inv, _mm512_maskz_div_ps(positive, _mm512_set1_ps(127.0f), l));
        _mm512_mask_storeu_ps(scales + g0, lanes, _mm512_div_ps(l, _mm512_set1_ps(127.0f)));
        for (int64_t g = 0; g < n; ++g) {
            const __m512 s = _mm512_set1_ps(inv[g]);
            for (int half = 0; half < 2; ++half) {
                const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(x[g] + 16 * half), s));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(u + (g0 + g) * kQBlock + 16 * half),
                                 _mm512_cvtepi32_epi8(_mm512_add_epi32(q, offset)));
            }
        }
    }
}

// C[MR][16 NV] = the folded sums of MR quantized rows (offset bytes, row stride lda; scales at
// stride ldb = blocks) against a packed token tile B ([k / 4][16 NV tokens][4 signed bytes]) with
// its scales Sa and corrections Ca ([block][16 NV] each). Per block and 4 columns NV loads of B,
// MR broadcasts of a row's 4 bytes and MR * NV VPDPBUSD (64 multiply-adds each); per block the
// sums start at the tokens' corrections (NV loads), then one conversion, multiply and FMA per
// register.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void
gemmInt8Vnni(const uint8_t* A, const float* Sw, const int8_t* B, const float* Sa, const int32_t* Ca, int64_t lda,
             int64_t ldb, float* C)
{
    constexpr int NR = 16 * NV;
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            acc[r][v] = _mm512_setzero_ps();
    for (int64_t b = 0; b < ldb; ++b) {
        __m512i dot[MR][NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            const __m512i start = _mm512_loadu_si512(Ca + b * NR + v * 16);
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r)
                dot[r][v] = start;
        }
        const int8_t* Bb = B + b * kQBlock * NR;
        const uint8_t* Ab = A + b * kQBlock;
#pragma GCC unroll 8
        for (int kq = 0; kq < kQBlock / 4; ++kq) {
            __m512i bv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
                bv[v] = _mm512_loadu_si512(Bb + (kq * NR + v * 16) * 4);
#pragma GCC unroll 8
            for (int r = 0; r < MR; ++r) {
                int32_t four = 0;
                std::memcpy(&four, Ab + r * lda + kq * 4, sizeof four);
                const __m512i a = _mm512_set1_epi32(four);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v)
                    dot[r][v] = _mm512_dpbusd_epi32(dot[r][v], a, bv[v]);
            }
        }
        __m512 sa[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            sa[v] = _mm512_loadu_ps(Sa + b * NR + v * 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const __m512 w = _mm512_set1_ps(Sw[r * ldb + b]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
                acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), _mm512_mul_ps(sa[v], w), acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            _mm512_storeu_ps(C + r * NR + v * 16, acc[r][v]);
}
// y[i] = fma(rs[i], c[i * stride], rm[i] * sx) for i < n: one token's outputs of a block of rows
// from the kernels' tiles (C[row][token], `stride` tokens per row), 16 rows per store.
__attribute__((target("avx512f"))) void finishRowsAvx512(const float* c, int64_t stride, int64_t n, const float* rs,
                                                         const float* rm, float sx, float* y)
{
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int>(stride)));
    const __m512 s = _mm512_set1_ps(sx);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, index, c + i * stride, 4);
        const __m512 r =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, rs + i), v, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, rm + i), s));
        _mm512_mask_storeu_ps(y + i, k, r);
    }
}
#pragma GCC diagnostic pop
#else
bool haveAvx512Vnni() noexcept { return false; }
#endif

} // namespace

bool simdLevelAvailable(SimdLevel level) noexcept
{
    switch (level) {
    case SimdLevel::Best:
    case SimdLevel::Portable:
        return true;
#if defined(__x86_64__)
    case SimdLevel::Avx2:
        return haveAvx2();
    case SimdLevel::Avx512:
        return haveAvx512();
#endif
    default:
        return false;
    }
}

const char* simdLevelName(SimdLevel level) noexcept
{
    switch (level) {
    case SimdLevel::Best:
        return "best";
    case SimdLevel::Avx512:
        return "avx512";
    case SimdLevel::Avx2:
        return "avx2";
    case SimdLevel::Portable:
        return "portable";
    }
    return "?";
}

const char* tablesName(Tables tables) noexcept { return tables == Tables::Int8 ? "int8" : "f32"; }

const char* gemmName(Gemm gemm) noexcept
{
    switch (gemm) {
    case Gemm::Bf16:
        return "bf16";
    case Gemm::Int8:
        return "int8";
    default:
        return "f32";
    }
}

bool int8GemmFast() noexcept { return haveAvx512Vnni(); }

bool bf16GemmFast() noexcept { return haveAvx512Bf16(); }

Tables fastestTables() noexcept { return haveAvx512Vbmi() ? Tables::Int8 : Tables::F32; }

QuantizedLinear::QuantizedLinear(const QuantizedTensor& q, Tables tables, std::optional<Gemm> gemm, CodePacking packing)
{
    if (std::string problem = validateConfig(q.config); !problem.empty())
        throw Error(ErrorKind::InvalidArgument, "quantized matrix has invalid codec settings: " + problem);
    if (q.rows <= 0 || q.cols <= 0)
        throw Error(ErrorKind::InvalidArgument, "quantized matrix has an empty shape");
    const CodecConfig& c = q.config;
    if (q.rowMean.size() != static_cast<size_t>(q.rows) || q.rowScale.size() != static_cast<size_t>(q.rows) ||
        q.colScale.size() != (q.hasColScale ? static_cast<size_t>(q.cols) : size_t{0}) ||
        q.codes.size() * 8 < static_cast<size_t>(q.rows * vectorsPerRow(q.cols, c.d) * (c.b1 + c.b2)))
        throw Error(ErrorKind::InvalidArgument, "quantized matrix parts do not match its shape");

    m_rows = q.rows;
    m_cols = q.cols;
    m_d = c.d;
    m_m1 = 1 << c.b1;
    m_m2 = c.b2 > 0 ? 1 << c.b2 : 0;
    m_entries = m_m1 + m_m2;
    m_vpr = vectorsPerRow(q.cols, c.d);
    m_groups = (q.rows + kGroup - 1) / kGroup;
    m_width1 = c.b1 > 8 ? 2 : 1;
    m_width2 = c.b2 == 0 ? 0 : c.b2 > 8 ? 2 : 1;
    m_nibbles2 = packing == CodePacking::Compact && c.b2 > 0 && c.b2 <= 4;
    const auto books = static_cast<size_t>(c.subspaces * m_entries * m_d);
    if (q.codebooks.size() != books)
        throw Error(ErrorKind::InvalidArgument, "quantized matrix codebooks do not match its codec settings");

    loadCodebooks(q);
    m_rowScaleHalf.assign(q.rowScale.begin(), q.rowScale.begin() + m_rows);
    m_rowMeanHalf.assign(q.rowMean.begin(), q.rowMean.begin() + m_rows);
    m_scale = q.scale;
    m_tables = int8Capable() ? tables : Tables::F32;
    // Without a choice, the product follows the tables: rounded (int8) or exact (f32). A fast
    // path the CPU lacks falls back to the exact product (its twin is a reference, not a speed).
    const Gemm wanted = gemm.value_or(tables == Tables::Int8 ? Gemm::Int8 : Gemm::F32);
    m_gemm = wanted == Gemm::Bf16 && haveAvx512Bf16()   ? Gemm::Bf16
             : wanted == Gemm::Int8 && haveAvx512Vnni() ? Gemm::Int8
                                                        : Gemm::F32;
    m_lookupMaxTokens = lookupCrossover(m_rows, m_cols, m_vpr, m_m1, m_m2, resolve(SimdLevel::Best), m_tables, m_gemm);
    m_colScale.assign(static_cast<size_t>(m_cols), 1.0f); // ones when the tensor has none, as decode() does
    if (q.hasColScale)
        for (size_t j = 0; j < m_colScale.size(); ++j)
            m_colScale[j] = halfToFloat(q.colScale[j]);

    interleaveCodes(q);
}

// m_booksT (f16, per subspace transposed) and m_bookOf from q's codebooks.
void QuantizedLinear::loadCodebooks(const QuantizedTensor& q)
{
    const CodecConfig& c = q.config;
    m_booksT.resize(q.codebooks.size());
    for (int k = 0; k < c.subspaces; ++k)
        for (int64_t e = 0; e < m_entries; ++e)
            for (int t = 0; t < m_d; ++t)
                m_booksT[static_cast<size_t>((k * m_d + t) * m_entries + e)] =
                    q.codebooks[static_cast<size_t>((k * m_entries + e) * m_d + t)];
    m_bookOf.resize(static_cast<size_t>(m_vpr));
    for (int k = 0; k < c.subspaces; ++k)
        for (int64_t v = subspaceBegin(m_vpr, c.subspaces, k); v < subspaceBegin(m_vpr, c.subspaces, k + 1); ++v)
            m_bookOf[static_cast<size_t>(v)] = static_cast<uint32_t>(k * m_entries * m_d);
}

// m_codes1 and m_codes2 from q's packed codes.
void QuantizedLinear::interleaveCodes(const QuantizedTensor& q)
{
    // Codes: [group of 64 rows][vec][64 rows], padding rows of the last group hold code 0.
    const int64_t interleaved = (m_rows + kInterleave - 1) / kInterleave;
    const auto slots = static_cast<size_t>(interleaved * m_vpr * kInterleave);
    m_codes1.assign(slots * static_cast<size_t>(m_width1), 0);
    m_codes2.assign(m_nibbles2 ? slots / 2 : slots * static_cast<size_t>(m_width2), 0);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, interleaved, 1), [&](const tbb::blocked_range<int64_t>& range) {
        for (int64_t g = range.begin(); g != range.end(); ++g)
            for (int64_t r = 0; r < kInterleave && g * kInterleave + r < m_rows; ++r)
                for (int64_t v = 0; v < m_vpr; ++v) {
                    uint32_t a = 0, b = 0;
                    readCodes(q, g * kInterleave + r, v, a, b);
                    const auto slot = static_cast<size_t>((g * m_vpr + v) * kInterleave + r);
                    const auto a16 = static_cast<uint16_t>(a), b16 = static_cast<uint16_t>(b);
                    std::memcpy(m_codes1.data() + slot * static_cast<size_t>(m_width1), &a16,
                                static_cast<size_t>(m_width1));
                    if (m_nibbles2)
                        m_codes2[static_cast<size_t>((g * m_vpr + v) * kInterleave / 2 + r % 32)] |=
                            static_cast<uint8_t>(b << (r / 32 * 4));
                    else if (m_width2 > 0)
                        std::memcpy(m_codes2.data() + slot * static_cast<size_t>(m_width2), &b16,
                                    static_cast<size_t>(m_width2));
                }
    });
}

void QuantizedLinear::tableBooks(std::vector<float>& out) const
{
    out.resize(m_booksT.size());
    halvesToFloats(m_booksT.data(), m_booksT.size(), out.data());
}

std::vector<float> QuantizedLinear::decodeBooks() const
{
    std::vector<float> transposed, books(m_booksT.size());
    tableBooks(transposed);
    const int64_t subspaces = static_cast<int64_t>(m_booksT.size()) / (m_entries * m_d);
    for (int64_t k = 0; k < subspaces; ++k)
        for (int t = 0; t < m_d; ++t)
            for (int64_t e = 0; e < m_entries; ++e)
                books[static_cast<size_t>((k * m_entries + e) * m_d + t)] =
                    transposed[static_cast<size_t>((k * m_d + t) * m_entries + e)];
    return books;
}

void QuantizedLinear::buildTables(const float* x, float* table) const
{
    std::vector<float> booksT;
    tableBooks(booksT);
    // x o t, zero-padded to whole vectors.
    std::vector<float> xt(static_cast<size_t>(m_vpr * m_d), 0.0f);
    for (int64_t j = 0; j < m_cols; ++j)
        xt[static_cast<size_t>(j)] = x[j] * m_colScale[static_cast<size_t>(j)];
    auto body = [&](int64_t v0, int64_t v1) {
        for (int64_t v = v0; v < v1; ++v) {
            tableRow(xt.data() + v * m_d, m_d, booksT.data() + m_bookOf[static_cast<size_t>(v)], m_entries,
                     table + v * m_entries);
        }
    };
    if (m_cols * m_entries < kParallelTableWork)
        body(0, m_vpr);
    else
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, m_vpr, kTableGrain),
                          [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

void QuantizedLinear::lookupSums(const float* table, SimdLevel level, float* sums) const
{
    const LookupFn fn = pickLookup(resolve(level), m_width1, m_nibbles2 ? kNibbles : m_width2, m_m2);
    const int64_t tile = std::max<int64_t>(1, kTileBytes / (m_entries * static_cast<int64_t>(sizeof(float))));
    // Group g (16 rows) starts at slot (g / 4) * vpr * 64 + (g % 4) * 16 of the interleave.
    auto groupSlot = [&](int64_t g) { return (g / kSubGroups) * m_vpr * kInterleave + (g % kSubGroups) * kGroup; };
    auto body = [&](int64_t g0, int64_t g1) {
        float acc1[kChunkGroups * kGroup], acc2[kChunkGroups * kGroup];
        for (int64_t c0 = g0; c0 < g1; c0 += kChunkGroups) {
            const int64_t c1 = std::min(g1, c0 + kChunkGroups);
            std::fill(std::begin(acc1), std::end(acc1), 0.0f);
            std::fill(std::begin(acc2), std::end(acc2), 0.0f);
            for (int64_t v0 = 0; v0 < m_vpr; v0 += tile) {
                const int64_t v1 = std::min(m_vpr, v0 + tile);
                for (int64_t g = c0; g < c1; ++g) {
                    // Nibbles: the 64-row group's 32 bytes, 16 rows at byte (g % 4 % 2) * 16, shifted by
                    // (g % 4 / 2) * 4.
                    const int64_t nibbleSlot = (g / kSubGroups) * m_vpr * kInterleave / 2 + g % kSubGroups % 2 * kGroup;
                    const LookupArgs args{table,
                                          m_entries,
                                          m_m1,
                                          m_codes1.data() + groupSlot(g) * m_width1,
                                          m_width2 == 0 ? nullptr
                                          : m_nibbles2  ? m_codes2.data() + nibbleSlot
                                                        : m_codes2.data() + groupSlot(g) * m_width2,
                                          static_cast<int>(g % kSubGroups / 2 * 4)};
                    fn(args, v0, v1, acc1 + (g - c0) * kGroup, acc2 + (g - c0) * kGroup);
                }
            }
            for (int64_t i = c0 * kGroup; i < std::min(m_rows, c1 * kGroup); ++i)
                sums[i] = acc1[i - c0 * kGroup] + acc2[i - c0 * kGroup];
        }
    };
    if (m_rows * m_vpr < kParallelLookups)
        body(0, m_groups);
    else
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, m_groups, kChunkGroups),
                          [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

void QuantizedLinear::matVec(std::span<const float> x, std::span<float> y) const
{
    matVec(x, y, SimdLevel::Best, m_tables);
}

void QuantizedLinear::matVec(std::span<const float> x, std::span<float> y, SimdLevel level) const
{
    matVec(x, y, level, Tables::F32);
}

void QuantizedLinear::matVec(std::span<const float> x, std::span<float> y, SimdLevel level, Tables tables) const
{
    if (x.size() != static_cast<size_t>(m_cols) || y.size() != static_cast<size_t>(m_rows))
        throw Error(ErrorKind::InvalidArgument, "mat-vec with a " + std::to_string(m_rows) + "x" +
                                                    std::to_string(m_cols) + " matrix got x of " +
                                                    std::to_string(x.size()) + " and y of " + std::to_string(y.size()));
    checkAvailable(level);
    if (tables == Tables::Int8) {
        if (!int8Capable())
            throw Error(ErrorKind::Unsupported, "int8 tables need codes of at most 8 bits");
        matVecInt8(x.data(), y.data(), level);
        return;
    }
    // Everything that reads x comes before y is written, so x and y may be the same buffer.
    // Scratch: the tables (not zeroed: every entry is written, only the padding is cleared).
    const auto tableSize = static_cast<size_t>(m_vpr * m_entries + kTablePad);
    std::unique_ptr<float[]> table(new float[tableSize]);
    std::fill(table.get() + tableSize - kTablePad, table.get() + tableSize, 0.0f);
    buildTables(x.data(), table.get());
    const float sx = sumOf(x.data(), m_cols);
    lookupSums(table.get(), level, y.data());
    float s[kScaleRows], mu[kScaleRows];
    for (int64_t r0 = 0; r0 < m_rows; r0 += kScaleRows) {
        const int64_t n = std::min(kScaleRows, m_rows - r0);
        rowScales(r0, n, s, mu);
        for (int64_t i = 0; i < n; ++i)
            y[static_cast<size_t>(r0 + i)] = s[i] * y[static_cast<size_t>(r0 + i)] + mu[i] * sx;
    }
}

// shape: long on purpose (a kernel: scratch, int8 tables and the block loop share their buffers and read as one pass)
void QuantizedLinear::matVecInt8(const float* x, float* y, SimdLevel level) const
{
    const SimdLevel use = level == SimdLevel::Best   ? (haveAvx512Vbmi() ? SimdLevel::Avx512 : SimdLevel::Portable)
                          : level == SimdLevel::Avx2 ? SimdLevel::Portable
                                                     : level;
    if (use == SimdLevel::Avx512 && !haveAvx512Vbmi())
        throw Error(ErrorKind::Unsupported, "the int8 avx512 path needs AVX-512 VBMI, which this CPU lacks");
    const int64_t p1 = padTo64(m_m1), p2 = m_m2 > 0 ? padTo64(m_m2) : 0, stride = p1 + p2;
    const int64_t blocks = (m_vpr + kBlockVecs - 1) / kBlockVecs;
    // Scratch of the calling thread, kept between calls (a token's mat-vecs allocate nothing once
    // warm): x o t zero-padded to whole vectors, the int8 tables, the block scales. Taken out of
    // the thread's slot for the call: a mat-vec that a waiting thread runs meanwhile (TBB may
    // hand it another task while this one waits for its parallel loops) finds the slot empty.
    struct Scratch {
        std::vector<float> xt, scales, booksT;
        std::vector<int8_t> tables;
    };
    thread_local Scratch threadScratch;
    Scratch scratch = std::move(threadScratch);
    threadScratch = {};
    struct PutBack {
        Scratch& from;
        ~PutBack() { threadScratch = std::move(from); }
    } putBack{scratch};
    tableBooks(scratch.booksT);
    const float* const booksT = scratch.booksT.data();
    std::vector<float>& xt = scratch.xt;
    xt.assign(static_cast<size_t>(m_vpr * m_d), 0.0f);
    for (int64_t j = 0; j < m_cols; ++j)
        xt[static_cast<size_t>(j)] = x[j] * m_colScale[static_cast<size_t>(j)];
    scratch.tables.resize(static_cast<size_t>(m_vpr * stride));
    int8_t* const tables = scratch.tables.data();
    std::vector<float>& scales = scratch.scales;
    scales.resize(static_cast<size_t>(blocks));
    const bool vbmi = use == SimdLevel::Avx512;
    // Per block: its f32 tables (in a block-sized scratch), the largest magnitude, the rounding.
    auto build = [&](int64_t b0, int64_t b1) {
        thread_local std::vector<float> f; // one block's f32 tables
        f.resize(static_cast<size_t>(kBlockVecs * m_entries));
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t v0 = b * kBlockVecs, v1 = std::min(m_vpr, v0 + kBlockVecs);
            // The f32 tables by the widest FMA kernel this CPU has, whatever the look-up path (as
            // for the f32 tables); the largest magnitude is exact in any order; each entry rounds
            // its product (one f32 multiply) to the nearest integer, ties to even, on both paths.
            float largest = 0.0f;
#if defined(__x86_64__)
            if (haveAvx512())
                largest = tablesAvx512(xt.data(), m_d, booksT, m_bookOf.data(), m_entries, v0, v1, f.data());
            else
#endif
            {
                for (int64_t v = v0; v < v1; ++v)
                    tableRow(xt.data() + v * m_d, m_d, booksT + m_bookOf[static_cast<size_t>(v)], m_entries,
                             f.data() + (v - v0) * m_entries);
                for (int64_t e = 0; e < (v1 - v0) * m_entries; ++e)
                    largest = std::max(largest, std::fabs(f[static_cast<size_t>(e)]));
            }
            const float inv = largest > 0.0f ? 127.0f / largest : 0.0f;
            scales[static_cast<size_t>(b)] = largest / 127.0f;
            for (int64_t v = v0; v < v1; ++v) {
                const float* row = f.data() + (v - v0) * m_entries;
                int8_t* t = tables + v * stride;
                std::fill(t, t + stride, int8_t{0});
#if defined(__x86_64__)
                if (vbmi) {
                    roundAvx512(row, m_m1, inv, t);
                    roundAvx512(row + m_m1, m_m2, inv, t + p1);
                    continue;
                }
#endif
                for (int64_t e = 0; e < m_m1; ++e)
                    t[e] = static_cast<int8_t>(std::lrint(row[e] * inv));
                for (int64_t e = 0; e < m_m2; ++e)
                    t[p1 + e] = static_cast<int8_t>(std::lrint(row[m_m1 + e] * inv));
            }
        }
    };
    if (m_cols * m_entries < kParallelTableWork)
        build(0, blocks);
    else
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1),
                          [&](const tbb::blocked_range<int64_t>& r) { build(r.begin(), r.end()); });
    const float sx = sumOf(x, m_cols);

    const Int8Fn fn = pickInt8(use, p1, p2, m_nibbles2);
    const int64_t interleaved = (m_rows + kInterleave - 1) / kInterleave;
    constexpr int64_t kChunk = 4; // 64-row groups whose sums stay in L1 while a block's tables are reused
    static_assert(kChunk * kInterleave <= kScaleRows);
    auto body = [&](int64_t g0, int64_t g1) {
        float acc[kChunk * kInterleave];
        for (int64_t c0 = g0; c0 < g1; c0 += kChunk) {
            const int64_t c1 = std::min(g1, c0 + kChunk);
            std::fill(std::begin(acc), std::end(acc), 0.0f);
            for (int64_t b = 0; b < blocks; ++b) {
                const int64_t v0 = b * kBlockVecs, v1 = std::min(m_vpr, v0 + kBlockVecs);
                for (int64_t g = c0; g < c1; ++g) {
                    const int64_t slot = g * m_vpr * kInterleave;
                    const Int8Args args{tables,
                                        stride,
                                        p1,
                                        m_m2 > 0,
                                        m_codes1.data() + slot,
                                        m_m2 > 0 ? m_codes2.data() + (m_nibbles2 ? slot / 2 : slot) : nullptr,
                                        m_nibbles2};
                    fn(args, v0, v1, scales[static_cast<size_t>(b)], acc + (g - c0) * kInterleave);
                }
            }
            const int64_t r0 = c0 * kInterleave, n = std::min(m_rows, c1 * kInterleave) - r0;
            float s[kScaleRows], mu[kScaleRows];
            rowScales(r0, n, s, mu);
            for (int64_t i = 0; i < n; ++i)
                y[r0 + i] = s[i] * acc[i] + mu[i] * sx;
        }
    };
    if (m_rows * m_vpr < kParallelLookups)
        body(0, interleaved);
    else
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, interleaved, kChunk),
                          [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

void QuantizedLinear::matMul(const float* X, int64_t T, float* Y) const
{
    if (T <= m_lookupMaxTokens)
        for (int64_t t = 0; t < T; ++t) // with this matrix's tables
            matVec(std::span<const float>(X + t * m_cols, static_cast<size_t>(m_cols)),
                   std::span<float>(Y + t * m_rows, static_cast<size_t>(m_rows)));
    else
        matMulDecoded(X, T, Y);
}

void QuantizedLinear::matMulLookup(const float* X, int64_t T, float* Y, SimdLevel level) const
{
    for (int64_t t = 0; t < T; ++t)
        matVec(std::span<const float>(X + t * m_cols, static_cast<size_t>(m_cols)),
               std::span<float>(Y + t * m_rows, static_cast<size_t>(m_rows)), level);
}

void QuantizedLinear::matMulDecoded(const float* X, int64_t T, float* Y, SimdLevel level) const
{
    matMulDecoded(X, T, Y, level, m_gemm);
}

// shape: long on purpose (a kernel: the Eigen twin and the FMA tiling share the row blocks and the epilogue)
void QuantizedLinear::matMulDecoded(const float* X, int64_t T, float* Y, SimdLevel level, Gemm gemm) const
{
    checkAvailable(level);
    if (T <= 0)
        return;
    if (gemm == Gemm::Bf16) {
        matMulBf16(X, T, Y, resolve(level) == SimdLevel::Avx512 && haveAvx512Bf16());
        return;
    }
    if (gemm == Gemm::Int8) {
        matMulInt8(X, T, Y, resolve(level) == SimdLevel::Avx512 && haveAvx512Vnni());
        return;
    }
    const int64_t K = m_cols;
    const std::vector<float> books = decodeBooks();
    std::vector<float> sx(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t)
        sx[static_cast<size_t>(t)] = sumOf(X + t * K, K);
    const int64_t blocks = (m_rows + kDecodeRows - 1) / kDecodeRows;
    // y_ti = s_i * (X N^T)_ti + mu_i * sum(x_t), N = the block's rows of t_j (C1 + C2)_j.
    // s and mu: the block's row scales (rowScales), widened once per block, not per token.
    auto finish = [&](int64_t r0, int64_t nb, int64_t t, const float* sums, const float* s, const float* mu) {
        for (int64_t i = 0; i < nb; ++i)
            Y[t * m_rows + r0 + i] = s[i] * sums[i] + mu[i] * sx[static_cast<size_t>(t)];
    };
    const GemmKernel kernel = pickGemm(resolve(level), T);
    if (!kernel.fn) {
        // Portable: Eigen's GEMM on each decoded block.
        const Eigen::Map<const RowMatrix> Xm(X, T, K);
        tbb::enumerable_thread_specific<std::pair<RowMatrix, RowMatrix>> scratch;
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& range) {
            auto& [Nb, P] = scratch.local();
            for (int64_t blk = range.begin(); blk != range.end(); ++blk) {
                const int64_t r0 = blk * kDecodeRows, nb = std::min(kDecodeRows, m_rows - r0);
                Nb.resize(nb, K);
                decodeRows(r0, nb, Nb.data(), K, false, books.data());
                P.resize(T, nb);
                P.noalias() = Xm * Nb.transpose();
                float s[kScaleRows], mu[kScaleRows];
                rowScales(r0, nb, s, mu);
                for (int64_t t = 0; t < T; ++t)
                    finish(r0, nb, t, P.data() + t * nb, s, mu);
            }
        });
        return;
    }

    // FMA kernels. X is repacked once into tiles of NR tokens, [tile][k][NR] (zeros past T). Each
    // block of rows is decoded row-major with a padded stride (the MR rows a kernel reads then
    // fall in different cache sets; zero rows up to whole MR-row tiles); then per slice of kKc
    // columns, C[tile][row][NR] += N[rows][slice] Xp[slice][NR] for every token tile and row
    // tile: the X slice stays in L1 across the row tiles, the N slice in L2 across the token
    // tiles. Each C entry is one FMA chain over k ascending, whatever the thread count.
    const int64_t NR = kernel.nr, MR = kernel.mr, tiles = (T + NR - 1) / NR;
    std::vector<float> Xp(static_cast<size_t>(tiles * K * NR), 0.0f);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, tiles, 1), [&](const tbb::blocked_range<int64_t>& range) {
        for (int64_t tile = range.begin(); tile != range.end(); ++tile)
            for (int64_t u = 0; u < NR && tile * NR + u < T; ++u) {
                const float* x = X + (tile * NR + u) * K;
                float* dst = Xp.data() + tile * K * NR + u;
                for (int64_t k = 0; k < K; ++k)
                    dst[k * NR] = x[k];
            }
    });
    const int64_t paddedRows = (kDecodeRows + MR - 1) / MR * MR;
    const int64_t ldn = K + 16; // padded row stride: the MR rows a kernel reads do not share cache sets
    struct Scratch {
        std::vector<float> N, C, sums;
    };
    tbb::enumerable_thread_specific<Scratch> scratch;
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& range) {
        Scratch& s = scratch.local();
        s.N.resize(static_cast<size_t>(paddedRows * ldn));
        s.C.resize(static_cast<size_t>(tiles * paddedRows * NR));
        s.sums.resize(static_cast<size_t>(paddedRows));
        for (int64_t blk = range.begin(); blk != range.end(); ++blk) {
            const int64_t r0 = blk * kDecodeRows, nb = std::min(kDecodeRows, m_rows - r0);
            const int64_t nbp = (nb + MR - 1) / MR * MR;
            decodeRows(r0, nb, s.N.data(), ldn, false, books.data());
            std::fill(s.N.begin() + nb * ldn, s.N.begin() + nbp * ldn, 0.0f);
            std::fill(s.C.begin(), s.C.begin() + tiles * nbp * NR, 0.0f);
            for (int64_t k0 = 0; k0 < K; k0 += kKc) {
                const int64_t kc = std::min(kKc, K - k0);
                for (int64_t tile = 0; tile < tiles; ++tile) {
                    const float* xp = Xp.data() + (tile * K + k0) * NR;
                    for (int64_t i0 = 0; i0 < nbp; i0 += MR)
                        kernel.fn(s.N.data() + i0 * ldn + k0, ldn, xp, kc, s.C.data() + (tile * nbp + i0) * NR);
                }
            }
            float rs[kScaleRows], rm[kScaleRows];
            rowScales(r0, nb, rs, rm);
            for (int64_t tile = 0; tile < tiles; ++tile)
                for (int64_t u = 0; u < NR && tile * NR + u < T; ++u) {
                    for (int64_t i = 0; i < nb; ++i)
                        s.sums[static_cast<size_t>(i)] = s.C[static_cast<size_t>((tile * nbp + i) * NR + u)];
                    finish(r0, nb, tile * NR + u, s.sums.data(), rs, rm);
                }
        }
    });
}

// The bf16 product: as the f32 one, with the decoded rows and X rounded to bf16 (toBf16) and
// VDPBF16PS chains (fast) or their scalar twin (dotBf16) for the sums. Columns are padded with a
// zero to whole pairs (a zero product leaves a chain's sum as it is).
// shape: long on purpose (a kernel: decode, rounding and the VDPBF16PS tiles read as one pass)
void QuantizedLinear::matMulBf16(const float* X, int64_t T, float* Y, bool fast) const
{
    const int64_t K = m_cols, kp = (K + 1) / 2, kpad = 2 * kp;
    const std::vector<float> books = decodeBooks();
    std::vector<float> sx(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t)
        sx[static_cast<size_t>(t)] = sumOf(X + t * K, K);
    const int64_t blocks = (m_rows + kDecodeRows - 1) / kDecodeRows;
    // s and mu: the block's row scales (rowScales), widened once per block, not per token.
    auto finish = [&](int64_t r0, int64_t nb, int64_t t, const float* sums, const float* s, const float* mu) {
        for (int64_t i = 0; i < nb; ++i)
            Y[t * m_rows + r0 + i] = s[i] * sums[i] + mu[i] * sx[static_cast<size_t>(t)];
    };
#if defined(__x86_64__)
    auto convert = fast ? &toBf16Avx512 : &toBf16Portable;
#else
    auto convert = &toBf16Portable;
#endif
    constexpr int64_t kDecodeChunk = 8; // rows decoded to f32 at a time before rounding to bf16
    struct Scratch {
        std::vector<float> F, C, sums;
        std::vector<uint16_t> N;
    };
    tbb::enumerable_thread_specific<Scratch> scratch;
    // Rows [r0, r0 + nb) of N = t_j (C1 + C2)_j in bf16 into s.N (row stride ld, zero past K).
    auto decodeBlock = [&](Scratch& s, int64_t r0, int64_t nb, int64_t ld) {
        for (int64_t c0 = 0; c0 < nb; c0 += kDecodeChunk) {
            const int64_t n = std::min(kDecodeChunk, nb - c0);
            decodeRows(r0 + c0, n, s.F.data(), K, false, books.data());
            for (int64_t i = 0; i < n; ++i) {
                uint16_t* row = s.N.data() + (c0 + i) * ld;
                convert(s.F.data() + i * K, K, row);
                std::fill(row + K, row + ld, uint16_t{0});
            }
        }
    };

    if (!fast) {
        // The portable twin: X row-major in bf16, one dotBf16 per output.
        std::vector<uint16_t> Xb(static_cast<size_t>(T * kpad), 0);
        for (int64_t t = 0; t < T; ++t)
            toBf16Portable(X + t * K, K, Xb.data() + t * kpad);
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& range) {
            Scratch& s = scratch.local();
            s.F.resize(static_cast<size_t>(kDecodeChunk * K));
            s.N.resize(static_cast<size_t>(kDecodeRows * kpad));
            s.sums.resize(static_cast<size_t>(kDecodeRows));
            for (int64_t blk = range.begin(); blk != range.end(); ++blk) {
                const int64_t r0 = blk * kDecodeRows, nb = std::min(kDecodeRows, m_rows - r0);
                decodeBlock(s, r0, nb, kpad);
                float rs[kScaleRows], rm[kScaleRows];
                rowScales(r0, nb, rs, rm);
                for (int64_t t = 0; t < T; ++t) {
                    for (int64_t i = 0; i < nb; ++i)
                        s.sums[static_cast<size_t>(i)] = dotBf16(s.N.data() + i * kpad, Xb.data() + t * kpad, kp);
                    finish(r0, nb, t, s.sums.data(), rs, rm);
                }
            }
        });
        return;
    }

#if defined(__x86_64__)
    // X packed once into tiles of NR tokens, [tile][pair][NR][2] (zeros past T and past K); the
    // rest as in the f32 product, with slices of kKc / 2 pairs.
    const bool wide = T > 16;
    const int64_t MR = 8, NR = wide ? 32 : 16, tiles = (T + NR - 1) / NR;
    const auto kernel = wide ? &gemmBf16Avx512<8, 2> : &gemmBf16Avx512<8, 1>;
    const int64_t kcPairs = kKc / 2;
    std::vector<uint16_t> Xp(static_cast<size_t>(tiles * kpad * NR), 0);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, tiles, 1), [&](const tbb::blocked_range<int64_t>& range) {
        std::vector<uint16_t> row(static_cast<size_t>(kpad), 0);
        for (int64_t tile = range.begin(); tile != range.end(); ++tile)
            for (int64_t u = 0; u < NR && tile * NR + u < T; ++u) {
                toBf16Avx512(X + (tile * NR + u) * K, K, row.data());
                uint16_t* dst = Xp.data() + tile * kpad * NR + 2 * u;
                for (int64_t p = 0; p < kp; ++p) {
                    dst[p * 2 * NR] = row[static_cast<size_t>(2 * p)];
                    dst[p * 2 * NR + 1] = row[static_cast<size_t>(2 * p + 1)];
                }
            }
    });
    const int64_t paddedRows = (kDecodeRows + MR - 1) / MR * MR;
    const int64_t ldn = kpad + 32; // padded row stride: the MR rows a kernel reads do not share cache sets
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& range) {
        Scratch& s = scratch.local();
        s.F.resize(static_cast<size_t>(kDecodeChunk * K));
        s.N.resize(static_cast<size_t>(paddedRows * ldn));
        s.C.resize(static_cast<size_t>(tiles * paddedRows * NR));
        s.sums.resize(static_cast<size_t>(paddedRows));
        for (int64_t blk = range.begin(); blk != range.end(); ++blk) {
            const int64_t r0 = blk * kDecodeRows, nb = std::min(kDecodeRows, m_rows - r0);
            const int64_t nbp = (nb + MR - 1) / MR * MR;
            decodeBlock(s, r0, nb, ldn);
            std::fill(s.N.begin() + nb * ldn, s.N.begin() + nbp * ldn, uint16_t{0});
            std::fill(s.C.begin(), s.C.begin() + tiles * nbp * NR, 0.0f);
            for (int64_t p0 = 0; p0 < kp; p0 += kcPairs) {
                const int64_t pc = std::min(kcPairs, kp - p0);
                for (int64_t tile = 0; tile < tiles; ++tile) {
                    const uint16_t* xp = Xp.data() + (tile * kp + p0) * 2 * NR;
                    for (int64_t i0 = 0; i0 < nbp; i0 += MR)
                        kernel(s.N.data() + i0 * ldn + 2 * p0, ldn, xp, pc, s.C.data() + (tile * nbp + i0) * NR);
                }
            }
            float rs[kScaleRows], rm[kScaleRows];
            rowScales(r0, nb, rs, rm);
            for (int64_t tile = 0; tile < tiles; ++tile)
                for (int64_t u = 0; u < NR && tile * NR + u < T; ++u) {
                    for (int64_t i = 0; i < nb; ++i)
                        s.sums[static_cast<size_t>(i)] = s.C[static_cast<size_t>((tile * nbp + i) * NR + u)];
                    finish(r0, nb, tile * NR + u, s.sums.data(), rs, rm);
                }
        }
    });
#endif
}

// The int8 product (see kQBlock): tokens rounded once per call, blocks of rows decoded a few at a
// time, rounded, then multiplied by the VNNI kernel (4 rows x 32 tokens, or 8 x 16 for T <= 16)
// or the portable twin. Scratch per thread, kept between calls: nothing is allocated once warm.
// shape: long on purpose (a kernel: per-thread scratch, token rounding and the register tiles read as one pass)
void QuantizedLinear::matMulInt8(const float* X, int64_t T, float* Y, bool vnni) const
{
    const int64_t K = m_cols, nB = (K + kQBlock - 1) / kQBlock, Kp = nB * kQBlock;
    const bool wide = T > 16;
    const int64_t MR = wide ? 4 : 8, NR = vnni ? (wide ? 32 : 16) : 1;
    const int64_t tiles = (T + NR - 1) / NR;
    auto quantize = [vnni](const float* in, int64_t n, int8_t* q, float* scales, int32_t* negSums) {
#if defined(__x86_64__)
        if (vnni) {
            quantizeBlocksAvx512(in, n, q, scales, negSums);
            return;
        }
#endif
        (void)vnni;
        quantizeBlocksPortable(in, n, q, scales, negSums);
    };
    // The calling thread's scratch, taken out of its slot for the call (as matVecInt8's): the
    // tokens in signed bytes, [tile][k / 4][NR][4] (VNNI) or [t][k] (portable), their block
    // scales and corrections [tile][block][NR] or [t][block], and sum(x_t).
    struct CallScratch {
        std::vector<int8_t> Xs;
        std::vector<float> Sa, sx;
        std::vector<int32_t> Ca;
    };
    thread_local CallScratch threadScratch;
    CallScratch call = std::move(threadScratch);
    threadScratch = {};
    struct PutBack {
        CallScratch& from;
        ~PutBack() { threadScratch = std::move(from); }
    } putBack{call};
    call.Xs.assign(static_cast<size_t>(tiles * NR * Kp), int8_t{0}); // padding tokens: p = 0
    call.Sa.assign(static_cast<size_t>(tiles * NR * nB), 0.0f);
    call.Ca.assign(static_cast<size_t>(tiles * NR * nB), 0);
    call.sx.resize(static_cast<size_t>(T));
    int8_t* const Xs = call.Xs.data();
    float* const Sa = call.Sa.data();
    int32_t* const Ca = call.Ca.data();
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, T, 4), [&](const tbb::blocked_range<int64_t>& range) {
        thread_local std::vector<float> row;
        thread_local std::vector<int8_t> q;
        thread_local std::vector<float> scales;
        thread_local std::vector<int32_t> corrections;
        row.assign(static_cast<size_t>(Kp), 0.0f);
        q.resize(static_cast<size_t>(Kp));
        scales.resize(static_cast<size_t>(nB));
        corrections.resize(static_cast<size_t>(nB));
        for (int64_t t = range.begin(); t != range.end(); ++t) {
            std::copy(X + t * K, X + (t + 1) * K, row.begin());
            quantize(row.data(), Kp, q.data(), scales.data(), corrections.data());
            const int64_t tile = t / NR, u = t % NR;
            for (int64_t k = 0; k < Kp; k += 4) // 4 bytes at a time into the tile
                std::memcpy(Xs + (tile * Kp + k) * NR + u * 4, q.data() + k, 4);
            for (int64_t b = 0; b < nB; ++b) {
                Sa[(tile * nB + b) * NR + u] = scales[static_cast<size_t>(b)];
                Ca[(tile * nB + b) * NR + u] = corrections[static_cast<size_t>(b)];
            }
            call.sx[static_cast<size_t>(t)] = sumOf(X + t * K, K);
        }
    });

    const int64_t blocks = (m_rows + kDecodeRows - 1) / kDecodeRows;
    const int64_t paddedRows = (kDecodeRows + MR - 1) / MR * MR;
    const std::vector<float> books = decodeBooks();
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, 1), [&](const tbb::blocked_range<int64_t>& range) {
        // This worker's scratch: a block of rounded rows (offset bytes) with their scales, the
        // folded sums. Nothing inside waits for other tasks, so thread_local is safe.
        struct Scratch {
            std::vector<float> Sw, C;
            std::vector<uint8_t> Au;
        };
        thread_local Scratch s;
        s.Au.resize(static_cast<size_t>(paddedRows * Kp));
        s.Sw.resize(static_cast<size_t>(paddedRows * nB));
        s.C.resize(static_cast<size_t>(tiles * NR * paddedRows));
        for (int64_t blk = range.begin(); blk != range.end(); ++blk) {
            const int64_t r0 = blk * kDecodeRows, nb = std::min(kDecodeRows, m_rows - r0);
            const int64_t nbp = (nb + MR - 1) / MR * MR;
            float rs[kScaleRows], rm[kScaleRows];
            rowScales(r0, nb, rs, rm);
            decodeQuantizeRows(r0, nb, Kp, s.Au.data(), s.Sw.data(), vnni, books.data());
            std::fill(s.Au.begin() + nb * Kp, s.Au.begin() + nbp * Kp, uint8_t{128}); // padding rows: q = 0
            std::fill(s.Sw.begin() + nb * nB, s.Sw.begin() + nbp * nB, 0.0f);
            if (!vnni) {
                // C[t][i]: the twin, token by token.
                gemmInt8Portable(s.Au.data(), s.Sw.data(), nb, Xs, Sa, Ca, T, Kp, nB, s.C.data(), nb);
                for (int64_t t = 0; t < T; ++t)
                    for (int64_t i = 0; i < nb; ++i)
                        Y[t * m_rows + r0 + i] = std::fma(rs[i], s.C[static_cast<size_t>(t * nb + i)],
                                                          rm[i] * call.sx[static_cast<size_t>(t)]);
                continue;
            }
#if defined(__x86_64__)
            // C[tile][row][NR]: per token tile, every row tile (the tile's tokens stay in L2), then
            // that tile's outputs (their stores to Y overlap the next tile's products).
            const auto kernel = wide ? &gemmInt8Vnni<4, 2> : &gemmInt8Vnni<8, 1>;
            for (int64_t tile = 0; tile < tiles; ++tile) {
                float* C = s.C.data() + tile * nbp * NR;
                for (int64_t i0 = 0; i0 < nbp; i0 += MR)
                    kernel(s.Au.data() + i0 * Kp, s.Sw.data() + i0 * nB, Xs + tile * Kp * NR, Sa + tile * nB * NR,
                           Ca + tile * nB * NR, Kp, nB, C + i0 * NR);
                for (int64_t u = 0; u < NR && tile * NR + u < T; ++u) {
                    const int64_t t = tile * NR + u;
                    finishRowsAvx512(C + u, NR, nb, rs, rm, call.sx[static_cast<size_t>(t)], Y + t * m_rows + r0);
                }
            }
#endif
        }
    });
}

void QuantizedLinear::rowScales(int64_t r0, int64_t n, float* s, float* mu) const
{
    halvesToFloats(m_rowScaleHalf.data() + r0, static_cast<size_t>(n), s);
    halvesToFloats(m_rowMeanHalf.data() + r0, static_cast<size_t>(n), mu);
    for (int64_t i = 0; i < n; ++i) {
        s[i] *= m_scale;
        mu[i] *= m_scale;
    }
}

// The offsets in the codebooks (decodeBooks) of row i's entries (off1: stage 1; off2: stage 2 when there is one),
// d floats per entry.
void QuantizedLinear::rowOffsets(int64_t i, uint32_t* off1, uint32_t* off2) const
{
    const auto d = static_cast<uint32_t>(m_d);
    const int64_t slot0 = (i / kInterleave) * m_vpr * kInterleave + i % kInterleave; // (i, v): slot0 + 64 v
    const int64_t nibble0 = (i / kInterleave) * m_vpr * kInterleave / 2 + i % 32;    // (i, v): + 32 v
    const unsigned nibbleShift = i % kInterleave / 32 * 4;
    for (int64_t v = 0; v < m_vpr; ++v) {
        const uint32_t base = m_bookOf[static_cast<size_t>(v)];
        off1[v] = base + loadCode(m_codes1.data(), m_width1, slot0 + v * kInterleave) * d;
        if (m_m2 > 0) {
            const uint32_t b = m_nibbles2
                                   ? (m_codes2[static_cast<size_t>(nibble0 + v * kInterleave / 2)] >> nibbleShift) & 15u
                                   : loadCode(m_codes2.data(), m_width2, slot0 + v * kInterleave);
            off2[v] = base + (static_cast<uint32_t>(m_m1) + b) * d;
        }
    }
}

// The codebook offsets of a row, the calling thread's, kept between calls (the products decode a
// few rows at a time: nothing is allocated once warm). Nothing that uses them waits.
namespace {
struct RowOffsets {
    std::vector<uint32_t> off1, off2;
    void resize(int64_t vpr)
    {
        off1.resize(static_cast<size_t>(vpr));
        off2.resize(static_cast<size_t>(vpr));
    }
};
thread_local RowOffsets tOffsets;
} // namespace

// Rows [row0, row0 + count) into out (count x cols). kWithScales: W itself, computed exactly as
// decode() does; else the normalized part t_j * (C1[a] + C2[b])_j that matMulDecoded scales later.
// D > 0: the vector length as a constant (the common 4 and 8), so the inner loop is straight SIMD.
template <int D, bool kTwoStages, bool kWithScales>
void QuantizedLinear::decodeRowsImpl(int64_t row0, int64_t count, float* out, int64_t ld, const float* books) const
{
    tOffsets.resize(m_vpr);
    uint32_t* off1 = tOffsets.off1.data();
    uint32_t* off2 = tOffsets.off2.data();
    for (int64_t i = row0; i < row0 + count; ++i) {
        // First the codebook offsets of the row's entries (the branchy part), then the arithmetic.
        rowOffsets(i, off1, off2);
        float s = 0.0f, mu = 0.0f;
        rowScales(i, 1, &s, &mu);
        decodeRowFromOffsets<D, kTwoStages, kWithScales>(books, off1, off2, m_colScale.data(), m_d, m_cols, s, mu,
                                                         out + (i - row0) * ld);
    }
}

void QuantizedLinear::decodeQuantizeRows(int64_t row0, int64_t count, int64_t Kp, uint8_t* u, float* scales, bool simd,
                                         const float* books) const
{
    const int64_t nB = Kp / kQBlock;
#if defined(__x86_64__)
    if (simd && (m_d == 4 || m_d == 8) && m_width1 == 1 && m_width2 <= 1) {
        const bool two = m_m2 > 0;
        const auto kernel = m_d == 8 ? (two ? &decodeQuantizeAvx512<8, true> : &decodeQuantizeAvx512<8, false>)
                                     : (two ? &decodeQuantizeAvx512<4, true> : &decodeQuantizeAvx512<4, false>);
        const int64_t full = m_cols / kQBlock; // blocks inside the row
        const auto d = static_cast<uint32_t>(m_d), m1 = static_cast<uint32_t>(m_m1);
        for (int64_t i = row0; i < row0 + count; ++i) {
            const int64_t slot0 = (i / kInterleave) * m_vpr * kInterleave + i % kInterleave;
            RowCodes rc{m_codes1.data() + slot0, nullptr, kInterleave, 0, m_nibbles2};
            if (two && m_nibbles2) {
                rc.codes2 = m_codes2.data() + (i / kInterleave) * m_vpr * kInterleave / 2 + i % 32;
                rc.stride2 = kInterleave / 2;
                rc.shift2 = static_cast<unsigned>(i % kInterleave / 32 * 4);
            } else if (two) {
                rc.codes2 = m_codes2.data() + slot0;
            }
            uint8_t* ui = u + (i - row0) * Kp;
            float* si = scales + (i - row0) * nB;
            kernel(books, m_bookOf.data(), m1, rc, m_colScale.data(), full, ui, si);
            if (full < nB) { // the partial last block: decodeRowFromOffsets' numbers, zeros after the row
                float tail[kQBlock] = {};
                for (int64_t j = full * kQBlock; j < m_cols; ++j) {
                    const int64_t v = j / m_d, k = j % m_d;
                    const uint32_t base = m_bookOf[static_cast<size_t>(v)];
                    float value = books[base + uint32_t{rc.codes1[v * kInterleave]} * d + static_cast<uint32_t>(k)];
                    if (two) {
                        const uint32_t c = rc.codes2[v * rc.stride2];
                        value += books[base + (m1 + (rc.nibbles2 ? (c >> rc.shift2) & 15u : c)) * d +
                                       static_cast<uint32_t>(k)];
                    }
                    tail[j - full * kQBlock] = m_colScale[static_cast<size_t>(j)] * value;
                }
                auto* qt = reinterpret_cast<int8_t*>(ui + full * kQBlock);
                quantizeBlocksAvx512(tail, kQBlock, qt, si + full, nullptr);
                for (int64_t j = 0; j < kQBlock; ++j)
                    ui[full * kQBlock + j] ^= 0x80u; // q + 128
            }
        }
        return;
    }
#endif
    // The definition: each row decoded to f32 (zeros after it), rounded by blocks, offset by 128.
    thread_local std::vector<float> row;
    row.assign(static_cast<size_t>(Kp), 0.0f);
    for (int64_t i = row0; i < row0 + count; ++i) {
        uint8_t* ui = u + (i - row0) * Kp;
        auto* qi = reinterpret_cast<int8_t*>(ui);
        decodeRows(i, 1, row.data(), Kp, false, books);
#if defined(__x86_64__)
        if (simd)
            quantizeBlocksAvx512(row.data(), Kp, qi, scales + (i - row0) * nB, nullptr);
        else
#endif
            quantizeBlocksPortable(row.data(), Kp, qi, scales + (i - row0) * nB, nullptr);
        for (int64_t j = 0; j < Kp; ++j)
            ui[j] ^= 0x80u; // q + 128
    }
}

void QuantizedLinear::decodeRows(int64_t row0, int64_t count, float* out, int64_t ld, bool withScales,
                                 const float* books) const
{
    auto forD = [&]<int D>() {
        if (m_m2 > 0)
            withScales ? decodeRowsImpl<D, true, true>(row0, count, out, ld, books)
                       : decodeRowsImpl<D, true, false>(row0, count, out, ld, books);
        else
            withScales ? decodeRowsImpl<D, false, true>(row0, count, out, ld, books)
                       : decodeRowsImpl<D, false, false>(row0, count, out, ld, books);
    };
    if (m_d == 8)
        forD.operator()<8>();
    else if (m_d == 4)
        forD.operator()<4>();
    else
        forD.operator()<0>();
}

void QuantizedLinear::decodeRow(int64_t row, std::span<float> out) const
{
    if (row < 0 || row >= m_rows || out.size() != static_cast<size_t>(m_cols))
        throw Error(ErrorKind::InvalidArgument, "decodeRow " + std::to_string(row) + " of a " + std::to_string(m_rows) +
                                                    "x" + std::to_string(m_cols) + " matrix into " +
                                                    std::to_string(out.size()) + " floats");
    decodeRows(row, 1, out.data(), m_cols, true, decodeBooks().data());
}

size_t QuantizedLinear::memoryBytes() const noexcept
{
    return sizeof(*this) + m_codes1.capacity() + m_codes2.capacity() + m_booksT.capacity() * sizeof(uint16_t) +
           (m_rowScaleHalf.capacity() + m_rowMeanHalf.capacity()) * sizeof(uint16_t) +
           m_colScale.capacity() * sizeof(float) + m_bookOf.capacity() * sizeof(uint32_t);
}

void quantizedMatVecReference(const QuantizedTensor& q, std::span<const float> x, std::span<float> y)
{
    if (x.size() != static_cast<size_t>(q.cols) || y.size() != static_cast<size_t>(q.rows))
        throw Error(ErrorKind::InvalidArgument, "reference mat-vec got vectors of the wrong size");
    // The layout's own element-by-element decode, then plain dot products in double.
    std::vector<float> W(static_cast<size_t>(q.rows * q.cols));
    decodeReference(q, W);
    for (int64_t i = 0; i < q.rows; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < q.cols; ++j)
            sum += double(W[static_cast<size_t>(i * q.cols + j)]) * double(x[static_cast<size_t>(j)]);
        y[static_cast<size_t>(i)] = static_cast<float>(sum);
    }
}

} // namespace novaq
