// novaq_bench: relative error, its ratio to the Gaussian rate-distortion bound 2^(-2R),
// effective bits, weights per second and peak memory, for
//   - a rows x cols i.i.d. Gaussian matrix,
//   - the same with a few outlier columns (x10),
//   - every tensor the planner quantizes in the demo model,
// at each requested --bits. Also writes large synthetic safetensors files for memory runs.
//
//   novaq_bench [--bits 1.5,2] [--rows 4096] [--cols 4096] [--threads N] [--repeat R]
//               [--no-demo] [--demo PATH] [--make-safetensors FILE --gib G]

#include "novaq/codec/encoder.h"
#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"
#include "novaq/pipeline/planner.h"
#include "novaq/tensor/dtype.h"

#include <tbb/global_control.h>
#include <tbb/info.h>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double peakRssMiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::string cpuModel()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0)
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

} // namespace

int main(int argc, char** argv)
{
    std::vector<double> bitsList{1.5, 2.0};
    int64_t rows = 4096, cols = 4096;
    int threads = 0, repeat = 1;
    bool demo = true;
    std::string demoPath = NOVAQ_BENCH_DEMO_MODEL;
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
            repeat = std::stoi(next());
        } else if (a == "--no-demo") {
            demo = false;
        } else if (a == "--demo") {
            demoPath = next();
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
        const auto preset = novaq::presetForBits(bits);
        if (!preset) {
            std::fprintf(stderr, "novaq_bench: no preset for --bits %g\n", bits);
            return 2;
        }
        novaq::CodecParams params;
        params.config = {preset->d, preset->b1, preset->b2, 4};
        const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
        printRow(runOne("gaussian " + shape, gauss, rows, cols, params, bits, repeat));
        printRow(runOne("gaussian " + shape + " + 16 outlier cols x10", outl, rows, cols, params, bits, repeat));
    }
    if (!demo)
        return 0;
    try {
        auto reader = novaq::openModel(demoPath);
        for (double bits : bitsList) {
            const auto preset = novaq::presetForBits(bits);
            novaq::PlanOptions plan;
            plan.config = {preset->d, preset->b1, preset->b2, 4};
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
