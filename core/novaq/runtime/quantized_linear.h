#pragma once
// Inference with a NOVAQ-quantized matrix W (rows x cols, y = W x) without decoding it.
//
// With W_ij = s_i t_j (C1_k[a_iv] + C2_k[b_iv])_(j mod d) + mu_i (quantized_tensor.h), where v is
// the vector holding column j and k its subspace,
//   y_i = s_i * sum_v (L1_v[a_iv] + L2_v[b_iv]) + mu_i * sum_j x_j,
//   L1_v[c] = C1_k[c] . (t o x)_v,   L2_v[c] = C2_k[c] . (t o x)_v,
// i.e. per vector position v a table over every entry of both stages (the column scale t folds
// into x, since the codebooks are shared by columns of different scales), then per row two
// look-ups and two additions per d weights instead of d multiply-adds.
//
// Summation order (what every implementation computes, so that all of them give the same bits):
// per row, sum1 = (((0 + L1_0[a_0]) + L1_1[a_1]) + ...) over v ascending, sum2 likewise over the
// stage-2 tables, then y_i = s_i * (sum1 + sum2) + mu_i * float(sum of x in double).

#include "novaq/codec/quantized_tensor.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace novaq {

// Instruction-set paths of the look-up sums and of the decoded product. Best is the widest this
// CPU has; Portable is plain C++ (and Eigen for the product). The look-up paths add the same
// numbers in the same order, so their results are bit-identical; the product paths sum in
// different orders and agree to f32 rounding (the tests hold each to the bound).
enum class SimdLevel { Best, Avx512, Avx2, Portable };
bool simdLevelAvailable(SimdLevel level) noexcept;
const char* simdLevelName(SimdLevel level) noexcept;

// How a mat-vec's look-ups sum. F32: f32 tables, exact (every SimdLevel gives the same bits).
// Int8: the tables of each 32 vector positions rounded to int8 with one scale (as llama.cpp
// rounds activations to 8 bits per block of 256 before its integer dot products), summed per
// row as integers, then one FMA per block: byte permutes instead of gathers. Needs codes of at
// most 8 bits (wider ones use F32); fast with AVX-512 VBMI (its Avx512 path), portable twin
// bit-identical. Its error against F32 is about 0.4% of an output's size (tests hold a bound).
// A matrix built with Int8 tables multiplies batches with the int8 product too (Gemm::Int8).
enum class Tables { F32, Int8 };
const char* tablesName(Tables tables) noexcept;
// Int8 where this CPU has AVX-512 VBMI (where the permutes make it pay), else F32.
Tables fastestTables() noexcept;

// How the decoded product multiplies (matMulDecoded). F32: decoded rows and X in f32, FMA
// kernels, within f32 rounding of the exact product. Bf16: the decoded rows t_j (C1 + C2)_j and
// the tokens rounded to bfloat16 (round to nearest even, f32 subnormals to zero: what
// VCVTNEPS2BF16 does), multiplied with AVX-512 BF16's VDPBF16PS (two multiply-adds per f32 lane
// and instruction, twice an FMA's), summed in f32. The bf16 rounding of both factors costs up to
// 2^-8 + 2^-18 relative per product (2^-9 each): |error| <= (2^-8 + 2^-18) * sum_j |s_i n_ij x_tj|
// plus the f32 bound (tests hold it, and an RMS error under 2^-8 of the outputs. size, i.e. under
// the int8 tables' ~0.4%). Its portable twin does what Intel defines VDPBF16PS to do (per f32 lane
// acc = fma(a_odd, b_odd, acc) then fma(a_even, b_even, acc), each rounded to nearest even; the
// products of two bf16 are exact in f32; tiny results flushed to zero), in scalar code. The
// tests hold the twin and the instruction to the same bound rather than to the same bits (an
// implementation may round the pair differently); on the Xeon measured they gave the same bits.
// Speed: on the Xeon measured (AVX512_BF16, VNNI, VBMI, no AMX) VDPBF16PS retires ~0.65 per ns
// against ~2.3 FMAs per ns (a 16-chain throughput loop each), so its 2x work per instruction
// nets ~0.6x the FMA kernel's GFLOP/s: Bf16 is opt-in (a CPU where the instruction is as fast as
// an FMA would gain up to 2x), never a default here. VNNI's VPDPBUSD ran at the FMA's rate with
// 4x its multiply-adds: an int8 product with per-block scales is the way to a faster GEMM here.
//
// Int8: the decoded rows and the tokens rounded to int8 with one scale per 32 columns (per row,
// per token: llama.cpp's Q8 blocks), integer dot products per block with AVX-512 VNNI's VPDPBUSD
// (unsigned x signed bytes: the rows offset by 128, each token's block sums correct it, once per
// token rather than per row), one FMA per block folding the products of the two scales. Its
// portable twin computes the same integers and the same f32 operations: bit-identical. Its error
// against F32 is about 1% of an output's size on Gaussian data (tests hold a bound), like the
// int8 tables'; the default of a matrix built with Tables::Int8 where the CPU has VNNI (else F32).
enum class Gemm { F32, Bf16, Int8 };
const char* gemmName(Gemm gemm) noexcept;
// Whether this CPU has VPDPBUSD (AVX512_VNNI); without it Int8 runs the (slow) portable twin.
bool int8GemmFast() noexcept;
// Whether this CPU has VDPBF16PS (AVX512_BF16); without it Bf16 runs the (slow) portable twin.
bool bf16GemmFast() noexcept;

// How the codes are held. Compact: stage-2 codes of at most 4 bits (the 1.5-bit preset's) two per
// byte, so that the codes take no more memory than in the file; every kernel reads the nibbles.
// Bytes: one byte each (the layout before; tests hold Compact to its bits).
enum class CodePacking { Compact, Bytes };

// A quantized matrix W prepared for inference: codebooks in f16 as in the file, widened to f32 for
// each call (the column scale is folded into x instead: it varies inside a vector that shares
// its codebook with other columns), codes
// unpacked to one byte (two above 8 bits; stage-2 codes of at most 4 bits two per byte) per stage
// and vector, interleaved by groups of 64 rows so that one int8 SIMD look-up serves 64 rows (and
// an f32 one 16); row scale and mean in f32. Memory: within 1% of the packed size at 1.5, 2 and
// 4 bits with CodePacking::Compact (1.3x at 1.5 bits with Bytes; the codebooks in f32, held in
// both layouts, took 1.05x; tests: under 1.02x); never
// rows * cols floats. Every method is const and safe to call from several threads; each call
// owns its scratch.
class QuantizedLinear {
public:
    // `tables`: what matVec without a level uses (Int8 falls back to F32 for codes above 8 bits).
    // `gemm`: what matMulDecoded without a Gemm (and so matMul) uses; Bf16 falls back to F32
    // where the CPU lacks AVX512_BF16 (its twin is a reference, not a fast path). Both are the
    // caller's choice between exact paths (F32, F32) and approximate fast ones. Without a gemm, the product follows the
    // tables: Int8 tables, Int8 product (where the CPU has VNNI); F32 tables, F32 product. LoadOptions::tables so
    // chooses both for the runtime.
    explicit QuantizedLinear(const QuantizedTensor& q, Tables tables = Tables::F32,
                             std::optional<Gemm> gemm = std::nullopt, CodePacking packing = CodePacking::Compact);
    Tables tables() const noexcept { return m_tables; }
    Gemm gemm() const noexcept { return m_gemm; }
    bool int8Capable() const noexcept { return m_width1 == 1 && m_width2 <= 1; }

    int64_t rows() const noexcept { return m_rows; }
    int64_t cols() const noexcept { return m_cols; }

    // y = W x (x: cols floats, y: rows floats) in the code domain. Parallel over groups of rows
    // (and over vector positions for the tables) when the matrix is large; the result does not
    // depend on the thread count. x and y may be the same buffer (square W).
    void matVec(std::span<const float> x, std::span<float> y) const;
    void matVec(std::span<const float> x, std::span<float> y, SimdLevel level) const;
    // With the given tables (Int8 on a matrix with wider codes: Error(Unsupported); Int8 has the
    // Avx512 path, meaning VBMI, and Portable; Avx2 means Portable there).
    void matVec(std::span<const float> x, std::span<float> y, SimdLevel level, Tables tables) const;

    // Y (T x rows) = X (T x cols) W^T, both row-major; the result does not depend on the thread
    // count. Two strategies, public for tests and the benchmark:
    //  - matMulLookup: T passes of matVec; cost per token = one mat-vec.
    //  - matMulDecoded: blocks of kDecodeRows rows decoded to f32 (t_j folded in), each multiplied
    //    by X with a register-blocked AVX-512 (8 rows x 32 tokens) or AVX2 (4 x 16) FMA kernel,
    //    then scaled by s_i and shifted by mu_i sum(x_t). The portable path uses Eigen instead:
    //    the library is built for baseline x86-64, where Eigen's GEMM runs at SSE2 width (20-25
    //    GFLOP/s on one Xeon core against 80-130 for the AVX-512 kernel). Scratch per thread:
    //    kDecodeRows x cols floats, plus X repacked once; never the whole matrix.
    // matMul takes look-ups for T <= lookupMaxTokens(), else the decoded product. Decoding costs
    // ~10-20 mat-vecs, so look-ups win only for short batches. The crossover comes from a cost
    // model of both paths calibrated with novaq_bench --matvec: on 4096 x 4096, one thread, it
    // measured T ~ 16 at 1.5 bits (d8 8+4; model: 24), 8-12 at 2 bits (d8 8+8; model: 8), 4-5 at
    // 4 bits (d4 8+8; model: 3); near it both paths cost about the same. At T = 256 the decoded
    // product ran at 80-130 GFLOP/s, 3-6x dense f32 Eigen GEMM and 2.5-17x the look-up passes.
    //  - With Gemm::Bf16, blocks of rows are decoded to bf16 and X is packed to bf16 once; an
    //    8 rows x 32 tokens (8 x 16 for T <= 16) VDPBF16PS kernel multiplies them (novaq_bench
    //    --matvec, "decode + bf16 dot kernel"; ~0.6x the FMA kernel on the Xeon measured).
    //  - With Gemm::Int8, X is rounded to int8 once per call, blocks of rows are decoded and
    //    rounded in one pass (AVX-512, d 4 and 8), and a 4 rows x 32 tokens (8 x 16 for T <= 16)
    //    VPDPBUSD kernel multiplies them (novaq_bench --matvec, "decode + int8 VNNI kernel": 2.0-2.5x the FMA
    //    kernel's rate on 2048 x 5632, T = 256, one thread). Scratch per thread is kept between
    //    calls (thread_local): a warm call allocates nothing.
    // matMul looks up with this matrix's tables; the crossover follows them. Int8 tables (VBMI)
    // cost less per token than f32 ones, so they keep look-ups for longer batches: on a 1B-class
    // matrix (2048 x 5632, one thread, T = 256) int8 look-up passes took 114 ms at 1.5 bits
    // against 139 for decode + FMA (the model: look-ups at any T), 177 against 137 at 2 bits
    // (model: look-ups up to T = 60). The unit costs (lookupCrossover in the .cpp) were re-measured
    // with novaq_bench --matvec; the f32-table figures above stand. With the int8 product (VNNI,
    // the default with int8 tables) decoding pays sooner: on 2048 x 5632, one thread, at a load
    // of 11 the kernel ran 2.0-2.5x the FMA kernel at T = 256; the passes and the int8 product
    // cost the same near T ~ 64 at 1.5 bits (model: 55) and ~ 32 at 2 bits (model: 24). Since the
    // one-pass decode the kernel's cost per weight and token is 0.4x the figure that model used
    // (kInt8Dot, re-measured on the 1B model's prompt): on 5632 x 2048 the model now decodes from
    // T ~ 64 at 1.5 bits (before: never below 640, and the 1.5-bit prompt ran look-ups).
    void matMul(const float* X, int64_t T, float* Y) const;
    void matMulLookup(const float* X, int64_t T, float* Y, SimdLevel level = SimdLevel::Best) const;
    // Without a Gemm: this matrix's gemm().
    void matMulDecoded(const float* X, int64_t T, float* Y, SimdLevel level = SimdLevel::Best) const;
    // Gemm::Bf16 takes the VDPBF16PS kernel on Best or Avx512 where the CPU has AVX512_BF16 and
    // the portable twin otherwise (Avx2 and Portable included); Gemm::Int8 the VPDPBUSD kernel
    // on Best or Avx512 where the CPU has AVX512_VNNI, else its twin.
    void matMulDecoded(const float* X, int64_t T, float* Y, SimdLevel level, Gemm gemm) const;
    int64_t lookupMaxTokens() const noexcept { return m_lookupMaxTokens; }
    static constexpr int64_t kDecodeRows = 128; // rows decoded at a time

    // Row `row` of W decoded, bit-identical to that row of decode() (out: cols floats).
    void decodeRow(int64_t row, std::span<float> out) const;

    // Bytes held by this object (codes, codebooks, scales), not counting per-call scratch.
    size_t memoryBytes() const noexcept;

private:
    void loadCodebooks(const QuantizedTensor& q);
    void interleaveCodes(const QuantizedTensor& q);
    void buildTables(const float* x, float* table) const;
    void matVecInt8(const float* x, float* y, SimdLevel level) const;
    void lookupSums(const float* table, SimdLevel level, float* sums) const;
    // s_i and mu_i of rows [r0, r0 + n), n <= kScaleRows, into s and mu: exactly the f32 products
    // g * half the kernels used to hold.
    static constexpr int64_t kScaleRows = 256;
    static_assert(kDecodeRows <= kScaleRows);
    void rowScales(int64_t r0, int64_t n, float* s, float* mu) const;
    void rowOffsets(int64_t i, uint32_t* off1, uint32_t* off2) const;
    // The codebooks widened to f32 for one call: as the tables read them ([subspace][d][entries])
    // and as decoding reads them ([subspace][entries][d]).
    void tableBooks(std::vector<float>& out) const;
    std::vector<float> decodeBooks() const;
    // `books`: decodeBooks().
    void decodeRows(int64_t row0, int64_t count, float* out, int64_t ld, bool withScales, const float* books) const;
    // Rows decoded (as decodeRows without scales) and rounded to int8 by blocks of 32 columns,
    // stored offset by 128 (u: Kp bytes per row; block scales: Kp / 32 per row).
    void decodeQuantizeRows(int64_t row0, int64_t count, int64_t Kp, uint8_t* u, float* scales, bool simd,
                            const float* books) const;
    void matMulBf16(const float* X, int64_t T, float* Y, bool fast) const;
    void matMulInt8(const float* X, int64_t T, float* Y, bool vnni) const;
    template <int D, bool kTwoStages, bool kWithScales>
    void decodeRowsImpl(int64_t row0, int64_t count, float* out, int64_t ld, const float* books) const;

    int64_t m_rows = 0, m_cols = 0;
    int m_d = 0, m_m1 = 0, m_m2 = 0;
    int64_t m_entries = 0;          // m1 + m2: table entries per vector position
    int64_t m_vpr = 0;              // vectors per row
    int64_t m_groups = 0;           // groups of 16 rows (the f32 look-ups' unit)
    int m_width1 = 1, m_width2 = 1; // bytes per stage-1 / stage-2 code (0: no stage 2)
    bool m_nibbles2 = false;        // stage-2 codes two per byte (CodePacking::Compact, at most 4 bits)
    int64_t m_lookupMaxTokens = 1;
    Tables m_tables = Tables::F32;
    Gemm m_gemm = Gemm::F32;
    std::vector<uint8_t> m_codes1; // [group of 64 rows][vec][64 rows], m_width1 bytes each (code 0 pads)
    std::vector<uint8_t> m_codes2; // same for stage 2 (empty when m2 = 0); nibbles: [group][vec][32 bytes],
                                   // byte r = row r (low nibble) | row r + 32 (high nibble)
    // [subspace][d][m1 + m2]: the file's f16 codebooks (stage-1 then stage-2 entries), transposed
    // for the tables; held as f16 so that the matrix takes no more memory than in the file, widened
    // to f32 per call (tableBooks, decodeBooks: 16K values at 2 bits, a microsecond with F16C).
    std::vector<uint16_t> m_booksT;
    std::vector<uint32_t> m_bookOf; // per vector position: offset of its subspace in the codebooks
    // rowScale_i and rowMean_i as the file holds them (f16), and g: s_i = g * rowScale_i and
    // mu_i = g * rowMean_i are widened per call (rowScales), not held in f32 (1.6 MB on a 1B model).
    std::vector<uint16_t> m_rowScaleHalf, m_rowMeanHalf;
    float m_scale = 1.0f;
    std::vector<float> m_colScale; // t_j (ones when the tensor has none)
};

// The plain scalar twin of matVec: y = W x element by element from the layout, in double.
void quantizedMatVecReference(const QuantizedTensor& q, std::span<const float> x, std::span<float> y);

} // namespace novaq
