#include "novaq/io/cpu.h"

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace novaq {

namespace {

std::atomic<int> g_forced{0};

bool detect(CpuFeature feature) noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    switch (feature) {
    case CpuFeature::Avx2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuFeature::Avx512:
        return __builtin_cpu_supports("avx512f");
    case CpuFeature::Avx512Vbmi:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vbmi");
    case CpuFeature::Avx512Vnni:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    case CpuFeature::Avx512Bf16:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    case CpuFeature::F16c: { // CPUID leaf 1, ECX bit 29: clang 14 has no "f16c" for __builtin_cpu_supports
        unsigned a = 0, b = 0, c = 0, d = 0;
        return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    }
    }
#else
    (void)feature;
#endif
    return false;
}

constexpr int kFeatures = int(CpuFeature::F16c) + 1;

struct Detected {
    bool has[kFeatures];
    Detected() noexcept
    {
        for (int i = 0; i < kFeatures; ++i)
            has[i] = detect(CpuFeature(i));
    }
};

const Detected& detected() noexcept
{
    static const Detected d;
    return d;
}

} // namespace

bool cpuHardwareHas(CpuFeature feature) noexcept { return detected().has[int(feature)]; }

bool cpuHas(CpuFeature feature) noexcept
{
    return g_forced.load(std::memory_order_relaxed) == 0 && cpuHardwareHas(feature);
}

const char* cpuFeatureName(CpuFeature feature) noexcept
{
    switch (feature) {
    case CpuFeature::Avx2:
        return "avx2+fma";
    case CpuFeature::Avx512:
        return "avx512f";
    case CpuFeature::Avx512Vbmi:
        return "avx512vbmi";
    case CpuFeature::Avx512Vnni:
        return "avx512vnni";
    case CpuFeature::Avx512Bf16:
        return "avx512bf16";
    case CpuFeature::F16c:
        return "f16c";
    }
    return "?";
}

ForcePortableKernels::ForcePortableKernels() { g_forced.fetch_add(1); }
ForcePortableKernels::~ForcePortableKernels() { g_forced.fetch_sub(1); }

} // namespace novaq
