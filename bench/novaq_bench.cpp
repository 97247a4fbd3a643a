// novaq_bench: relative error, its ratio to the Gaussian rate-distortion bound 2^(-2R),
// effective bits, weights per second and peak memory, for
//   - a rows x cols i.i.d. Gaussian matrix,
//   - the same with a few outlier columns (x10),
//   - every tensor the planner quantizes in the demo model,
// at each requested --bits. Also writes large synthetic safetensors files for memory runs.
// With --matvec, inference speed instead, for a rows x cols Gaussian matrix at each --bits
// (default 1.5,2,4), median of --repeat calls, one thread and all threads: y = W x dense (f32 with
// Eigen and with a hand AVX-512 kernel, f16 converted on the fly) against QuantizedLinear's
// code-domain matVec; Y = X W^T for 256 tokens, Eigen GEMM against QuantizedLinear's decoded
// product (FMA kernel, bf16 VDPBF16PS kernel where the CPU has AVX512_BF16, and Eigen) and its
// look-up passes; and where matMul switches between them (f32 or int8 tables, FMA or bf16 kernel).
//
//   novaq_bench [--bits 1.5,2] [--rows 4096] [--cols 4096] [--threads N] [--repeat R]
//               [--no-demo] [--demo PATH] [--make-safetensors FILE --gib G]
//   novaq_bench --matvec [--bits 1.5,2,4] [--rows 4096] [--cols 4096] [--threads N] [--repeat 31]
//   novaq_bench --tokens FILE.novaq [--demo ORIGINAL | --no-dense] [--threads N] [--tables int8|f32]
//               [--prompt-only]
//   novaq_bench --int8-gemm [--bits 1.5,2] [--rows 4096] [--cols 4096] [--threads N] [--repeat 9]
//   novaq_bench [--bits B] --make-novaq MODEL OUT.novaq   (a quick encode, for --tokens on big models)
//   novaq_bench --calibrate MODEL --calibration TEXT [--bits 2] [--calibration-tokens N] [--threads N]
// With --calibrate, the cost of teacher-guided refinement: the same model compressed without and
// with calibration in one run, the time per phase (teacher pass, statistics, encoding, teacher
// targets, refits) in total and per block, the ratio calibrated / (plain + teacher pass) and the
// peak resident set after each run.
// With --tokens, the token rate of the Llama runtime: generation (128 tokens one at a time after a
// 16-token prompt, greedy, KV cache) and prompt (a 256-token prompt and its first token), best of
// three, for the .novaq file in the code domain with f32 and int8 tables (--tables: one of them;
// int8 tables come with the int8 product where the CPU has VNNI) and, unless --no-dense, the
// original as dense F32 weights and the .novaq file decoded to F32. --prompt-only: the prompt rate
// alone (generation shows 0), e.g. to profile the batched path with perf. "prompt t/CPU-s": prompt
// tokens per CPU second of the process (all threads; wall time is what the rate columns divide by).
// It first measures the memory read bandwidth with those threads (readBandwidth) and prints each
// row's generation as a share of it ("of ceiling": every weight is read once per token).

#include "novaq/codec/codec_spec.h"
#include "novaq/codec/encoder.h"
#include "novaq/container/open_model.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/cpu.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/compress.h"
#include "novaq/pipeline/planner.h"
#include "novaq/runtime/eval.h"
#include "novaq/runtime/llama.h"
#include "novaq/runtime/quantized_linear.h"
#include "novaq/tensor/dtype.h"

#include <Eigen/Core>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds of this process so far (user + system, all threads): on a shared machine the rate per
// CPU second moves less with the load than the rate per wall second (the quoted figure).
double cpuSeconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

double peakRssMiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// The process's resident high-water mark (VmHWM) back to its current size (Linux: writing 5 to
// /proc/self/clear_refs), so that a later peakRssKb() measures from here.
void resetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// VmHWM of /proc/self/status in KiB (0 where there is none).
double peakRssKb()
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmHWM:"))
            return std::stod(line.substr(6));
    return 0;
}

// Bytes of the KV cache of `positions` positions (KvCache: keys and values, f32).
uint64_t kvCacheBytes(const novaq::LlamaConfig& c, int64_t positions)
{
    return 2 * uint64_t(c.layers) * uint64_t(positions) * uint64_t(c.kvDim()) * sizeof(float);
}

std::string cpuModel()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("model name"))
            return line.substr(line.find(':') + 2);
    return "unknown";
}

std::vector<float> gaussian(size_t n, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v)
        x = dist(rng);
    return v;
}

struct Row {
    std::string name;
    double bits;
    double relError, bound, effBits, wps, seconds;
};

Row runOne(const std::string& name, const std::vector<float>& W, int64_t rows, int64_t cols,
           const novaq::CodecParams& params, double bits, int repeat)
{
    double best = 1e300;
    novaq::QuantizedTensor q;
    for (int r = 0; r < repeat; ++r) {
        const auto t0 = Clock::now();
        q = novaq::encodeMatrix(W, rows, cols, params);
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::vector<float> What(W.size());
    novaq::decode(q, What);
    const double rel = novaq::relativeError(W, What);
    const double eff = 8.0 * static_cast<double>(novaq::payloadBytes(rows, cols, q.config, q.hasColScale)) /
                       static_cast<double>(rows * cols);
    return {name, bits, rel, rel / std::pow(2.0, -2.0 * eff), eff, static_cast<double>(rows * cols) / best, best};
}

void printRow(const Row& r)
{
    std::printf("%-44s %5.2f %9.5f %8.3f %9.4f %12.2f %9.2f %9.1f\n", r.name.c_str(), r.bits, r.relError, r.bound,
                r.effBits, r.wps / 1e6, r.seconds, peakRssMiB());
    std::fflush(stdout);
}

void makeSafetensors(const std::string& path, double gib)
{
    // F16 tensors of 4096 x 8192 (64 MiB each) until the size is reached.
    const int64_t rows = 4096, cols = 8192;
    const auto count = static_cast<int64_t>(std::ceil(gib * 1024.0 / 64.0));
    std::ostringstream h;
    h << "{\"__metadata__\":{\"format\":\"pt\"}";
    const uint64_t bytes = static_cast<uint64_t>(rows * cols) * 2;
    for (int64_t t = 0; t < count; ++t)
        h << ",\"layers." << t << ".weight\":{\"dtype\":\"F16\",\"shape\":[" << rows << "," << cols
          << "],\"data_offsets\":[" << bytes * static_cast<uint64_t>(t) << "," << bytes * static_cast<uint64_t>(t + 1)
          << "]}";
    h << "}";
    std::string header = h.str();
    while (header.size() % 8)
        header.push_back(' ');
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    std::vector<uint16_t> buf(static_cast<size_t>(cols));
    std::mt19937_64 rng(7);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    for (int64_t t = 0; t < count; ++t)
        for (int64_t i = 0; i < rows; ++i) {
            for (auto& x : buf)
                x = novaq::floatToHalf(dist(rng));
            out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 2));
        }
    std::printf("wrote %s: %lld tensors of %lldx%lld F16\n", path.c_str(), static_cast<long long>(count),
                static_cast<long long>(rows), static_cast<long long>(cols));
}

// ---- --matvec: inference speed ---------------------------------------------------------------

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;
constexpr int64_t kDenseBlock = 256; // rows per TBB task of the dense baselines

// Median wall time of `n` calls of f, after one warm-up call.
double medianSeconds(int n, const std::function<void()>& f)
{
    f();
    std::vector<double> t;
    for (int r = 0; r < std::max(n, 1); ++r) {
        const auto t0 = Clock::now();
        f();
        t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// fn(r0, r1) over blocks of kDenseBlock rows, in parallel.
void overRowBlocks(int64_t rows, const std::function<void(int64_t, int64_t)>& fn)
{
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, (rows + kDenseBlock - 1) / kDenseBlock, 1),
                      [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t b = r.begin(); b != r.end(); ++b)
                              fn(b * kDenseBlock, std::min(rows, (b + 1) * kDenseBlock));
                      });
}

#if defined(__x86_64__)
// Dense baselines at the full SIMD width: the project's Eigen is compiled for baseline x86-64
// (no -march), so these show what a dense mat-vec does with AVX-512 FMA on this machine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <typename T>
__attribute__((target("avx512f"))) inline __m512 load16(const T* p)
{
    if constexpr (sizeof(T) == 4)
        return _mm512_loadu_ps(p);
    else
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// y[i] = W[i] . x for rows [r0, r1); W is f32, or f16 bits converted on the fly.
template <typename T>
__attribute__((target("avx512f"))) void gemvAvx512(const T* W, int64_t r0, int64_t r1, int64_t n, const float* x,
                                                   float* y)
{
    for (int64_t i = r0; i < r1; ++i) {
        const T* w = W + i * n;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t j = 0;
        for (; j + 64 <= n; j += 64) {
            a0 = _mm512_fmadd_ps(load16(w + j), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(load16(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
            a2 = _mm512_fmadd_ps(load16(w + j + 32), _mm512_loadu_ps(x + j + 32), a2);
            a3 = _mm512_fmadd_ps(load16(w + j + 48), _mm512_loadu_ps(x + j + 48), a3);
        }
        for (; j + 16 <= n; j += 16)
            a0 = _mm512_fmadd_ps(load16(w + j), _mm512_loadu_ps(x + j), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; j < n; ++j) {
            if constexpr (sizeof(T) == 4)
                s += w[j] * x[j];
            else
                s += novaq::halfToFloat(w[j]) * x[j];
        }
        y[i] = s;
    }
}
#pragma GCC diagnostic pop
#endif

struct SpeedRow {
    std::string what;
    int threads;
    double seconds;     // per call
    double weightBytes; // bytes of the weight representation read per call
    double flops;       // 2 * rows * cols * tokens
};

void printSpeedHeader(const char* title)
{
    std::printf("\n%s\n%-46s %7s %11s %9s %8s %9s %9s\n", title, "kernel", "threads", "us/call", "weightMB", "GB/s",
                "GFLOP/s", "vs dense");
}

void printSpeed(const SpeedRow& r, double denseSeconds)
{
    std::printf("%-46s %7d %11.1f %9.1f %8.2f %9.2f %8.2fx\n", r.what.c_str(), r.threads, r.seconds * 1e6,
                r.weightBytes / 1e6, r.weightBytes / r.seconds / 1e9, r.flops / r.seconds / 1e9,
                denseSeconds / r.seconds);
    std::fflush(stdout);
}

// The 1-minute load average: timings on a shared machine are only as good as it is idle.
std::string loadAverage()
{
    std::ifstream in("/proc/loadavg");
    std::string first;
    in >> first;
    return first.empty() ? "unknown" : first;
}

// The codec at --bits B: the preset in 4 subspaces (the CLI's default); nullopt, said on
// stderr, when B is not a preset.
std::optional<novaq::CodecConfig> presetConfig(double bits)
{
    try {
        return novaq::CodecSpec::preset(bits, 4).resolve();
    } catch (const novaq::Error& e) {
        std::fprintf(stderr, "novaq_bench: %s\n", e.what());
        return std::nullopt;
    }
}

// A quick encode for the speed benchmarks: the layout and size of `novaq local`, worse codes.
novaq::CodecParams quickParams(const novaq::CodecConfig& config)
{
    novaq::CodecParams params;
    params.config = config;
    params.kmeansIterations = 2;
    params.trainVectors = 8192;
    params.refitIterations = 0;
    params.fullRounds = 1;
    return params;
}

// --int8-gemm: the prompt's product alone, Y = X W^T (T = 256) with the int8 product (decode +
// VNNI kernel) on a rows x cols Gaussian W, one thread and all threads: median milliseconds and
// GOP/s (2 rows cols T / time; VPDPBUSD does 64 multiply-adds per instruction).
int runInt8Gemm(const std::vector<double>& bitsList, int64_t rows, int64_t cols, int useThreads, int repeat)
{
    if (!novaq::int8GemmFast()) {
        std::fprintf(stderr, "novaq_bench: --int8-gemm needs AVX512_VNNI (else the portable twin runs)\n");
        return 1;
    }
    const int64_t T = 256;
    const std::vector<float> W = gaussian(static_cast<size_t>(rows * cols), 1);
    const std::vector<float> X = gaussian(static_cast<size_t>(T * cols), 3);
    std::vector<float> Y(static_cast<size_t>(T * rows));
    std::printf("load average %s at start; int8 product Y = X W^T, T = %lld, W %lldx%lld; median of %d calls\n",
                loadAverage().c_str(), static_cast<long long>(T), static_cast<long long>(rows),
                static_cast<long long>(cols), repeat);
    for (double bits : bitsList) {
        const std::optional<novaq::CodecConfig> config = presetConfig(bits);
        if (!config)
            return 2;
        const novaq::CodecParams params = quickParams(*config);
        const novaq::QuantizedLinear lin(novaq::encodeMatrix(W, rows, cols, params), novaq::Tables::Int8);
        for (int threads : {1, useThreads}) {
            tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
            const double s = medianSeconds(
                repeat, [&] { lin.matMulDecoded(X.data(), T, Y.data(), novaq::SimdLevel::Best, novaq::Gemm::Int8); });
            std::printf("%.1f bits (d%d %d+%d), %d thread(s): %8.2f ms %8.1f GOP/s\n", bits, config->d, config->b1,
                        config->b2, threads, s * 1e3, 2.0 * double(rows * cols * T) / s * 1e-9);
            if (useThreads == 1)
                break;
        }
    }
    return 0;
}

int runMatVec(const std::vector<double>& bitsList, int64_t rows, int64_t cols, int useThreads, int repeat)
{
    const int gemmRepeat = std::max(3, repeat / 6);
    const int64_t T = 256;
    std::vector<int> threadCounts{1};
    if (useThreads > 1)
        threadCounts.push_back(useThreads);
    std::printf("load average %s at start. y = W x and Y = X W^T (T = %lld) for a %lldx%lld Gaussian W; median of "
                "%d mat-vec calls, %d mat-mul calls.\n'vs dense' = time of dense f32 Eigen at the same thread count / "
                "this time; GB/s counts the bytes of the weights' in-memory form (memoryBytes for the codes), "
                "GFLOP/s is 2 rows cols T / time.\n",
                loadAverage().c_str(), static_cast<long long>(T), static_cast<long long>(rows),
                static_cast<long long>(cols), repeat, gemmRepeat);

    const std::vector<float> W = gaussian(static_cast<size_t>(rows * cols), 1);
    std::vector<uint16_t> W16(W.size());
    for (size_t i = 0; i < W.size(); ++i)
        W16[i] = novaq::floatToHalf(W[i]);
    const std::vector<float> x = gaussian(static_cast<size_t>(cols), 2);
    const std::vector<float> X = gaussian(static_cast<size_t>(T * cols), 3);
    std::vector<float> y(static_cast<size_t>(rows)), Y(static_cast<size_t>(T * rows));
    const ConstRowMap Wm(W.data(), rows, cols);
    const Eigen::Map<const Eigen::VectorXf> xv(x.data(), cols);
    const ConstRowMap Xm(X.data(), T, cols);
    const double flops1 = 2.0 * static_cast<double>(rows * cols);

    // Quantize once per preset (speed does not depend on code quality: a short encode).
    struct Quantized {
        double bits;
        std::string label;
        std::unique_ptr<novaq::QuantizedLinear> lin;
        std::unique_ptr<novaq::QuantizedLinear> int8; // Tables::Int8: the runtime's default here
        std::unique_ptr<novaq::QuantizedLinear> bf16; // Tables::Int8 and Gemm::Bf16
    };
    std::vector<Quantized> quantized;
    for (double bits : bitsList) {
        const std::optional<novaq::CodecConfig> config = presetConfig(bits);
        if (!config)
            return 2;
        const novaq::CodecParams params = quickParams(*config);
        const auto t0 = Clock::now();
        const novaq::QuantizedTensor q = novaq::encodeMatrix(W, rows, cols, params);
        const auto t1 = Clock::now();
        auto lin = std::make_unique<novaq::QuantizedLinear>(q);
        const auto t2 = Clock::now();
        auto int8 = std::make_unique<novaq::QuantizedLinear>(q, novaq::Tables::Int8);
        auto bf16 = std::make_unique<novaq::QuantizedLinear>(q, novaq::Tables::Int8, novaq::Gemm::Bf16);
        char label[96];
        std::snprintf(label, sizeof label, "NOVAQ %.1f bits (d%d %d+%d)", bits, config->d, config->b1, config->b2);
        std::printf("%s: packed %.1f MB, in memory %.1f MB; encode %.1f s (short), prepare %.0f ms\n", label,
                    static_cast<double>(novaq::payloadBytes(rows, cols, q.config, q.hasColScale)) / 1e6,
                    static_cast<double>(lin->memoryBytes()) / 1e6, std::chrono::duration<double>(t1 - t0).count(),
                    std::chrono::duration<double>(t2 - t1).count() * 1e3);
        quantized.push_back({bits, label, std::move(lin), std::move(int8), std::move(bf16)});
    }
    const double f32Bytes = 4.0 * static_cast<double>(rows * cols);

    printSpeedHeader("mat-vec y = W x");
    for (int threads : threadCounts) {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
        const bool par = threads > 1;
        const double dense = medianSeconds(repeat, [&] {
            if (!par) {
                Eigen::Map<Eigen::VectorXf>(y.data(), rows).noalias() = Wm * xv;
                return;
            }
            overRowBlocks(rows, [&](int64_t r0, int64_t r1) {
                Eigen::Map<Eigen::VectorXf>(y.data() + r0, r1 - r0).noalias() = Wm.middleRows(r0, r1 - r0) * xv;
            });
        });
        printSpeed({"dense f32, Eigen", threads, dense, f32Bytes, flops1}, dense);
#if defined(__x86_64__)
        if (novaq::cpuHas(novaq::CpuFeature::Avx512)) {
            const double f32 = medianSeconds(repeat, [&] {
                overRowBlocks(rows,
                              [&](int64_t r0, int64_t r1) { gemvAvx512(W.data(), r0, r1, cols, x.data(), y.data()); });
            });
            printSpeed({"dense f32, AVX-512 FMA kernel", threads, f32, f32Bytes, flops1}, dense);
            const double f16 = medianSeconds(repeat, [&] {
                overRowBlocks(
                    rows, [&](int64_t r0, int64_t r1) { gemvAvx512(W16.data(), r0, r1, cols, x.data(), y.data()); });
            });
            printSpeed({"dense f16 -> f32 on the fly, AVX-512", threads, f16, f32Bytes / 2, flops1}, dense);
        }
#endif
        for (const Quantized& qz : quantized) {
            const double s = medianSeconds(repeat, [&] { qz.lin->matVec(x, y, novaq::SimdLevel::Best); });
            printSpeed({qz.label + ", f32 tables", threads, s, static_cast<double>(qz.lin->memoryBytes()), flops1},
                       dense);
            if (!qz.lin->int8Capable())
                continue;
            const double s8 =
                medianSeconds(repeat, [&] { qz.lin->matVec(x, y, novaq::SimdLevel::Best, novaq::Tables::Int8); });
            printSpeed({qz.label + ", int8 tables", threads, s8, static_cast<double>(qz.lin->memoryBytes()), flops1},
                       dense);
        }
    }

    printSpeedHeader(("mat-mul Y = X W^T, T = " + std::to_string(T)).c_str());
    for (int threads : threadCounts) {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
        const double dense = medianSeconds(gemmRepeat, [&] {
            overRowBlocks(rows, [&](int64_t r0, int64_t r1) {
                Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>> Yb(Y.data() + r0, T, r1 - r0,
                                                                  Eigen::OuterStride<>(rows));
                Yb.noalias() = Xm * Wm.middleRows(r0, r1 - r0).transpose();
            });
        });
        printSpeed({"dense f32, Eigen GEMM", threads, dense, f32Bytes, flops1 * T}, dense);
        for (const Quantized& qz : quantized) {
            const double dec = medianSeconds(gemmRepeat, [&] { qz.lin->matMulDecoded(X.data(), T, Y.data()); });
            printSpeed({qz.label + ", decode + FMA kernel", threads, dec, static_cast<double>(qz.lin->memoryBytes()),
                        flops1 * T},
                       dense);
            if (novaq::bf16GemmFast()) { // else its portable twin: slow, not a rate to quote
                const double bf = medianSeconds(gemmRepeat, [&] {
                    qz.lin->matMulDecoded(X.data(), T, Y.data(), novaq::SimdLevel::Best, novaq::Gemm::Bf16);
                });
                printSpeed({qz.label + ", decode + bf16 dot kernel", threads, bf,
                            static_cast<double>(qz.lin->memoryBytes()), flops1 * T},
                           dense);
            }
            if (novaq::int8GemmFast()) { // else its portable twin: slow, not a rate to quote
                const double i8 = medianSeconds(gemmRepeat, [&] {
                    qz.lin->matMulDecoded(X.data(), T, Y.data(), novaq::SimdLevel::Best, novaq::Gemm::Int8);
                });
                printSpeed({qz.label + ", decode + int8 VNNI kernel", threads, i8,
                            static_cast<double>(qz.lin->memoryBytes()), flops1 * T},
                           dense);
            }
            const double eig = medianSeconds(
                gemmRepeat, [&] { qz.lin->matMulDecoded(X.data(), T, Y.data(), novaq::SimdLevel::Portable); });
            printSpeed({qz.label + ", decode + Eigen GEMM", threads, eig, static_cast<double>(qz.lin->memoryBytes()),
                        flops1 * T},
                       dense);
            const double lut = medianSeconds(gemmRepeat, [&] { qz.lin->matMulLookup(X.data(), T, Y.data()); });
            printSpeed({qz.label + ", T look-up passes", threads, lut, static_cast<double>(qz.lin->memoryBytes()) * T,
                        flops1 * T},
                       dense);
            if (qz.int8->tables() == novaq::Tables::Int8 && novaq::fastestTables() == novaq::Tables::Int8) {
                // matMul with int8 tables: what the runtime does with a prompt where the CPU has VBMI.
                const double m8 = medianSeconds(gemmRepeat, [&] { qz.int8->matMul(X.data(), T, Y.data()); });
                printSpeed({qz.label + ", matMul, int8 tables" + (T <= qz.int8->lookupMaxTokens() ? " (look-ups)" : ""),
                            threads, m8, static_cast<double>(qz.lin->memoryBytes()), flops1 * T},
                           dense);
            }
        }
    }

    // Where matMul switches from look-up passes to the decoded product (lookupMaxTokens, a cost
    // model): with f32 tables and the FMA kernel (exact paths), int8 tables (the runtime's default
    // where the CPU has VBMI) and the FMA kernel, int8 tables and the bf16 kernel.
    auto maxTokens = [](int64_t n) {
        return n == std::numeric_limits<int64_t>::max() ? std::string("any") : std::to_string(n);
    };
    std::printf("\nmatMul crossover, one thread: microseconds per token, look-up passes / decoded product; "
                "matMul takes look-ups up to the T in brackets\n%-46s",
                "preset, tables / product");
    const std::vector<int64_t> tokens{1, 2, 4, 8, 16, 32, 64};
    for (int64_t t : tokens)
        std::printf(" %16s", ("T=" + std::to_string(t)).c_str());
    std::printf("\n");
    {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
        for (const Quantized& qz : quantized)
            for (const novaq::QuantizedLinear* lin : {qz.lin.get(), qz.int8.get(), qz.bf16.get()}) {
                if (lin != qz.lin.get() && (!lin->int8Capable() || novaq::fastestTables() != novaq::Tables::Int8))
                    continue; // the int8 tables' portable twin: not a rate to quote
                if (lin == qz.bf16.get() && lin->gemm() != novaq::Gemm::Bf16)
                    continue; // no AVX512_BF16: the same as the row above
                std::printf("%-46s", (qz.label + ", " + novaq::tablesName(lin->tables()) + " / " +
                                      novaq::gemmName(lin->gemm()) + " [" + maxTokens(lin->lookupMaxTokens()) + "]")
                                         .c_str());
                for (int64_t t : tokens) {
                    const double lut = medianSeconds(gemmRepeat, [&] {
                        for (int64_t u = 0; u < t; ++u) // matMul's look-up passes, with this matrix's tables
                            lin->matVec(std::span<const float>(X.data() + u * cols, static_cast<size_t>(cols)),
                                        std::span<float>(Y.data() + u * rows, static_cast<size_t>(rows)));
                    });
                    const double dec = medianSeconds(gemmRepeat, [&] { lin->matMulDecoded(X.data(), t, Y.data()); });
                    std::printf(" %7.0f / %6.0f", lut * 1e6 / static_cast<double>(t),
                                dec * 1e6 / static_cast<double>(t));
                }
                std::printf("\n");
                std::fflush(stdout);
            }
    }
    return 0;
}

// ---- --tokens: the runtime's token rate ------------------------------------------------------

// tables: "int8" or "f32" runs that row only (with the product it implies), empty: both.
// promptOnly: the prompt rate alone (no generation run; for profiling the batched path).
// The memory read bandwidth of this machine with the threads the run may use: the best of three
// passes summing a 1 GiB buffer (larger than any cache), in bytes per second. Generation reads
// every weight once per token, so weights held x tokens/s over this is the share of the
// ceiling a runtime reaches (issue 17).
double readBandwidth()
{
    const size_t n = (size_t(1) << 30) / sizeof(uint64_t);
    std::vector<uint64_t> buffer(n);
    for (size_t i = 0; i < n; ++i)
        buffer[i] = i;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        std::vector<uint64_t> partial(1024, 0);
        const auto t0 = Clock::now();
        tbb::parallel_for(tbb::blocked_range<size_t>(0, partial.size(), 1), [&](const tbb::blocked_range<size_t>& r) {
            for (size_t c = r.begin(); c < r.end(); ++c) {
                const size_t b = c * (n / partial.size()), e = (c + 1) * (n / partial.size());
                uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (size_t i = b; i < e; i += 4) {
                    s0 += buffer[i];
                    s1 += buffer[i + 1];
                    s2 += buffer[i + 2];
                    s3 += buffer[i + 3];
                }
                partial[c] = s0 + s1 + s2 + s3;
            }
        });
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        uint64_t sum = 0;
        for (uint64_t p : partial)
            sum += p;
        if (sum != uint64_t(n) * (n - 1) / 2) // the compiler must not drop the reads
            std::printf("bandwidth probe: wrong sum\n");
        best = std::max(best, double(n * sizeof(uint64_t)) / s);
    }
    return best;
}

int runTokens(const std::string& original, const std::string& compressed, bool withDense, const std::string& tables,
              bool promptOnly)
{
    const auto origReader = withDense ? novaq::openModel(original) : nullptr;
    const auto compReader = novaq::openModel(compressed);
    novaq::LoadOptions decoded, f32, int8;
    decoded.decodeQuantized = true;
    f32.tables = novaq::Tables::F32;
    int8.tables = novaq::Tables::Int8;
    // Each row's model is loaded when the row runs and dropped after it, so that its peak
    // resident set is its own (the process's high-water mark is reset before it loads).
    struct RuntimeRow {
        const char* label;
        const novaq::ModelReader* reader;
        novaq::LoadOptions options;
        bool compressed;
    };
    std::vector<RuntimeRow> rows;
    if (withDense)
        rows.push_back({"original, dense f32 (Eigen)", origReader.get(), {}, false});
    if (tables != "int8")
        rows.push_back({"novaq, code domain, f32 tables", compReader.get(), f32, true});
    // Int8 tables bring the int8 product (VNNI) for prompts; elsewhere their portable twins: slow,
    // not a rate to quote.
    if (tables != "f32" && novaq::fastestTables() == novaq::Tables::Int8)
        rows.push_back(
            {novaq::int8GemmFast() ? "novaq, code domain, int8 tables+product" : "novaq, code domain, int8 tables",
             compReader.get(), int8, true});
    if (withDense)
        rows.push_back({"novaq, decoded to f32 at load", compReader.get(), decoded, true});
    auto promptOf = [](int n) {
        std::vector<int32_t> p;
        for (int i = 0; i < n; ++i)
            p.push_back(1 + (i * 37) % 200);
        return p;
    };
    const std::vector<int32_t> shortPrompt = promptOf(16), longPrompt = promptOf(256);
    novaq::GenerateOptions gen;
    gen.maxTokens = 128;
    gen.stopAtEos = false;
    novaq::GenerateOptions one = gen;
    one.maxTokens = 1;
    std::printf("token rate, %s, best of 3: generation = 128 tokens one at a time (greedy) after a 16-token "
                "prompt; prompt = a 256-token prompt and its first token, per prompt token\n",
                compressed.c_str());
    const double bandwidth = readBandwidth();
    std::printf(
        "memory read bandwidth: %.1f GB/s (1 GiB summed, best of 3, these threads); \"of ceiling\" = MiB held x "
        "generation t/s / that\n",
        bandwidth / 1e9);
    std::printf("%-34s %12s %16s %16s %16s %11s\n", "weights", "MiB held", "generation t/s", "prompt t/s",
                "prompt t/CPU-s", "of ceiling");
    struct MemoryLine {
        const char* label;
        double peakKb, weightBytes, kvBytes;
        bool compressed;
    };
    std::vector<MemoryLine> memory;
    for (RuntimeRow& row : rows) {
        resetPeakRss();
        struct {
            novaq::LlamaModel model;
        } r{novaq::loadLlama(*row.reader, row.options)};
        double bestGen = 0, bestPrompt = 0, bestPromptCpu = 0;
        for (int rep = 0; rep < 3; ++rep) {
            auto t0 = Clock::now();
            const auto out = promptOnly ? std::vector<int32_t>{} : novaq::generate(r.model, shortPrompt, gen);
            const auto t1 = Clock::now();
            if (rep == 0) // the generation's peak: the prompt's batch below holds larger buffers
                memory.push_back({row.label, peakRssKb(), double(r.model.weightBytes()),
                                  double(kvCacheBytes(r.model.config, int64_t(shortPrompt.size()) + gen.maxTokens)),
                                  row.compressed});
            const double cpu0 = cpuSeconds();
            (void)novaq::generate(r.model, longPrompt, one);
            const double cpu = cpuSeconds() - cpu0;
            const auto t2 = Clock::now();
            // The generation time holds the 16-token prompt too: a small share of 128 tokens.
            bestGen = std::max(bestGen, double(out.size()) / std::chrono::duration<double>(t1 - t0).count());
            bestPrompt =
                std::max(bestPrompt, double(longPrompt.size()) / std::chrono::duration<double>(t2 - t1).count());
            bestPromptCpu = std::max(bestPromptCpu, double(longPrompt.size()) / cpu);
        }
        std::printf("%-34s %12.2f %16.1f %16.1f %16.1f %10.0f%%\n", row.label,
                    double(r.model.memoryBytes()) / (1 << 20), bestGen, bestPrompt, bestPromptCpu,
                    100.0 * double(r.model.memoryBytes()) * bestGen / bandwidth);
        std::fflush(stdout);
    }
    // Issue 17's bar: peak memory while generating at most 1.1x (the file + the KV cache).
    const double fileBytes = double(std::filesystem::file_size(compressed));
    double tensorBytes = 0;
    for (const novaq::TensorInfo& t : compReader->tensors())
        tensorBytes += double(t.nbytes);
    std::printf("\nmemory while generating (peak RSS from loading through the 128 tokens; libraries included; KV "
                "cache f32, allocated for the run's %lld positions): file %.0f bytes (tensors %.0f)\n",
                static_cast<long long>(int64_t(shortPrompt.size()) + gen.maxTokens), fileBytes, tensorBytes);
    std::printf("%-34s %14s %14s %14s %12s %14s\n", "weights", "peak RSS KiB", "weights held", "KV cache",
                "held/tensors", "peak/(file+KV)");
    for (const MemoryLine& m : memory) {
        if (m.compressed)
            std::printf("%-34s %14.0f %14.0f %14.0f %12.3f %14.3f\n", m.label, m.peakKb, m.weightBytes, m.kvBytes,
                        m.weightBytes / tensorBytes, m.peakKb * 1024.0 / (fileBytes + m.kvBytes));
        else
            std::printf("%-34s %14.0f %14.0f %14.0f %12s %14s\n", m.label, m.peakKb, m.weightBytes, m.kvBytes, "-",
                        "-");
    }
    return 0;
}

} // namespace

void printPhases(const char* label, const novaq::PhaseSeconds& p, double wall)
{
    std::printf("%-12s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", label, p.teacher, p.statistics, p.encoding, p.targets,
                p.refit, wall);
}

int runCalibrate(const std::string& model, const std::string& text, double bits, int64_t tokens)
{
    const std::filesystem::path out = std::filesystem::temp_directory_path() / "novaq_bench_calibrate.novaq";
    novaq::CompressOptions options;
    options.input = model;
    options.output = out;
    options.codec = novaq::CodecSpec::preset(bits, options.codec.subspaces());
    std::printf("--calibrate %s --bits %g, load average %s at the start\n", model.c_str(), bits, loadAverage().c_str());
    const novaq::ModelReport plain = novaq::compressModel(options, nullptr, nullptr);
    const double plainRss = peakRssMiB();
    std::printf("plain: %.1f s, peak RSS %.0f MiB, load average %s\n", plain.seconds, plainRss, loadAverage().c_str());
    std::fflush(stdout);
    options.calibration = text;
    options.calibrationTokens = tokens;
    const novaq::ModelReport cal = novaq::compressModel(options, nullptr, nullptr);
    std::filesystem::remove(out);
    std::printf("calibrated: %.1f s with %lld tokens, peak RSS %.0f MiB (the process's, both runs), load average "
                "%s\n\n",
                cal.seconds, static_cast<long long>(cal.settings["calibration"].value("tokens", int64_t(0))),
                peakRssMiB(), loadAverage().c_str());
    std::printf("%-12s %9s %9s %9s %9s %9s %9s\n", "seconds", "teacher", "stats", "encode", "targets", "refit", "wall");
    printPhases("plain", plain.phases, plain.seconds);
    printPhases("calibrated", cal.phases, cal.seconds);
    for (size_t b = 0; b < cal.blockPhases.size(); ++b) {
        const std::string name = b == 0                            ? "embedding"
                                 : b + 1 == cal.blockPhases.size() ? "output"
                                                                   : "block " + std::to_string(b - 1);
        printPhases(("  " + name).c_str(), cal.blockPhases[b], cal.blockPhases[b].total());
    }
    const double ratio = cal.seconds / (plain.seconds + cal.phases.teacher);
    std::printf("\ncalibrated / (plain + teacher pass) = %.1f / (%.1f + %.1f) = %.2fx\n", cal.seconds, plain.seconds,
                cal.phases.teacher, ratio);
    return 0;
}

int main(int argc, char** argv)
{
    std::vector<double> bitsList{1.5, 2.0};
    int64_t rows = 4096, cols = 4096;
    int threads = 0, repeat = 1;
    bool demo = true, matvec = false, bitsGiven = false, repeatGiven = false, dense = true, promptOnly = false,
         int8Gemm = false;
    std::string demoPath = NOVAQ_BENCH_DEMO_MODEL;
    std::string tokensFile, tokensTables, calibrateModel, calibrationText;
    int64_t calibrationTokens = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "novaq_bench: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--bits") {
            bitsGiven = true;
            bitsList.clear();
            std::stringstream ss(next());
            std::string item;
            while (std::getline(ss, item, ','))
                bitsList.push_back(std::stod(item));
        } else if (a == "--rows") {
            rows = std::stoll(next());
        } else if (a == "--cols") {
            cols = std::stoll(next());
        } else if (a == "--threads") {
            threads = std::stoi(next());
        } else if (a == "--repeat") {
            repeatGiven = true;
            repeat = std::stoi(next());
        } else if (a == "--matvec") {
            matvec = true;
        } else if (a == "--tokens") {
            tokensFile = next();
        } else if (a == "--tables") {
            tokensTables = next(); // --tokens: only the int8 or the f32 row
            if (tokensTables != "int8" && tokensTables != "f32") {
                std::fprintf(stderr, "novaq_bench: --tables must be int8 or f32\n");
                return 2;
            }
        } else if (a == "--calibrate") {
            calibrateModel = next();
        } else if (a == "--calibration") {
            calibrationText = next();
        } else if (a == "--calibration-tokens") {
            calibrationTokens = std::stoll(next());
        } else if (a == "--int8-gemm") {
            int8Gemm = true;
        } else if (a == "--prompt-only") {
            promptOnly = true;
        } else if (a == "--no-dense") {
            dense = false; // --tokens: only the code-domain rows (the dense ones of a 1B model take minutes)
        } else if (a == "--no-demo") {
            demo = false;
        } else if (a == "--demo") {
            demoPath = next();
        } else if (a == "--make-novaq") {
            // --make-novaq MODEL OUT.novaq [--bits B]: a quick encode for speed benchmarks
            // (CompressOptions::quickEncode: the same layout and size as novaq local, worse codes).
            novaq::CompressOptions options;
            options.input = next();
            options.output = next();
            options.quickEncode = true;
            try {
                options.codec =
                    novaq::CodecSpec::preset(bitsList.size() == 1 ? bitsList.front() : 2.0, options.codec.subspaces());
                const auto t0 = Clock::now();
                const novaq::ModelReport report = novaq::compressModel(options, nullptr, nullptr);
                std::printf("%s: %llu bytes, %.2f bits per weight, quick encode in %.0f s\n", argv[i],
                            static_cast<unsigned long long>(report.fileBytes), report.effectiveBits(),
                            std::chrono::duration<double>(Clock::now() - t0).count());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "novaq_bench: %s\n", e.what());
                return 1;
            }
            return 0;
        } else if (a == "--make-safetensors") {
            std::string path = next();
            double gib = 1.0;
            if (i + 2 < argc && std::string(argv[i + 1]) == "--gib") {
                gib = std::stod(argv[i + 2]);
                i += 2;
            }
            makeSafetensors(path, gib);
            return 0;
        } else {
            std::fprintf(stderr, "novaq_bench: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    const int useThreads = threads > 0 ? threads : tbb::info::default_concurrency();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(useThreads));

    std::printf("novaq_bench: machine %s, %d threads (of %d cores); compiler %s; build %s\n", cpuModel().c_str(),
                useThreads, tbb::info::default_concurrency(), __VERSION__, NOVAQ_BUILD_FLAGS);
    if (!tokensFile.empty()) {
        try {
            return runTokens(demoPath, tokensFile, dense, tokensTables, promptOnly);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "novaq_bench: %s\n", e.what());
            return 1;
        }
    }
    if (!calibrateModel.empty()) {
        if (calibrationText.empty()) {
            std::fprintf(stderr, "novaq_bench: --calibrate needs --calibration TEXT\n");
            return 2;
        }
        try {
            return runCalibrate(calibrateModel, calibrationText, bitsGiven ? bitsList.front() : 2.0, calibrationTokens);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "novaq_bench: %s\n", e.what());
            return 1;
        }
    }
    if (int8Gemm)
        return runInt8Gemm(bitsList, rows, cols, useThreads, repeatGiven ? repeat : 9);
    if (matvec) {
        if (!bitsGiven)
            bitsList = {1.5, 2.0, 4.0};
        return runMatVec(bitsList, rows, cols, useThreads, repeatGiven ? repeat : 31);
    }
    std::printf("weights/s counts training and encoding of the tensor (normalization, k-means, refits, final "
                "encode), best of %d\n\n",
                repeat);
    std::printf("%-44s %5s %9s %8s %9s %12s %9s %9s\n", "tensor", "bits", "rel.err", "/2^-2R", "eff.bits", "Mweights/s",
                "seconds", "peakMiB");

    const std::vector<float> gauss = gaussian(static_cast<size_t>(rows * cols), 1);
    std::vector<float> outl = gauss;
    for (int64_t j = 0; j < cols; j += std::max<int64_t>(cols / 16, 1))
        for (int64_t i = 0; i < rows; ++i)
            outl[static_cast<size_t>(i * cols + j)] *= 10.0f;
    for (double bits : bitsList) {
        const std::optional<novaq::CodecConfig> config = presetConfig(bits);
        if (!config)
            return 2;
        novaq::CodecParams params;
        params.config = *config;
        const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
        printRow(runOne("gaussian " + shape, gauss, rows, cols, params, bits, repeat));
        printRow(runOne("gaussian " + shape + " + 16 outlier cols x10", outl, rows, cols, params, bits, repeat));
    }
    if (!demo)
        return 0;
    try {
        auto reader = novaq::openModel(demoPath);
        for (double bits : bitsList) {
            novaq::PlanOptions plan;
            // Every tensor at the preset itself (the role table's higher presets would mix rows of
            // the table under one --bits); every --bits was checked above.
            plan.codec = novaq::CodecSpec::preset(bits, 4);
            plan.allocation = novaq::BitAllocation::Uniform;
            for (const novaq::TensorPlan& p : novaq::planModel(*reader, plan)) {
                if (!p.quantize)
                    continue;
                const novaq::TensorInfo& info = reader->tensors()[p.index];
                std::vector<float> W(static_cast<size_t>(info.numel()));
                reader->readFloat(p.index, W);
                novaq::CodecParams params;
                params.config = p.config;
                printRow(runOne(info.name, W, info.rows(), info.cols(), params, bits, repeat));
            }
        }
    } catch (const novaq::Error& e) {
        std::fprintf(stderr, "novaq_bench: demo model: %s\n", e.what());
        return 1;
    }
    return 0;
}
