#pragma once
// What this CPU can run, read once: the one place every fast kernel (codec and runtime) asks
// before taking an instruction-set path. Tests can make every kernel take its portable twin,
// which is how a fast path is held to the plain C++ that defines it on a machine that has it.

namespace novaq {

enum class CpuFeature {
    Avx2,       // with FMA (every AVX2 path here uses both)
    Avx512,     // AVX-512 F
    Avx512Vbmi, // with BW: byte permutes (vpermb, vpermi2b)
    Avx512Vnni, // with BW: int8 dot products (vpdpbusd)
    Avx512Bf16, // VDPBF16PS
    F16c,       // f16 <-> f32 conversions (vcvtph2ps)
};

// Whether this CPU has `feature` and kernels may use it (false while portable kernels are forced).
bool cpuHas(CpuFeature feature) noexcept;

// What the CPU has, whatever is forced ("avx512f avx512vbmi ..." for messages and benchmarks).
const char* cpuFeatureName(CpuFeature feature) noexcept;
bool cpuHardwareHas(CpuFeature feature) noexcept;

// While one of these lives (process-wide; for tests and benchmarks, not for concurrent use
// with kernels running), cpuHas() answers false for everything.
class ForcePortableKernels {
public:
    ForcePortableKernels();
    ~ForcePortableKernels();
    ForcePortableKernels(const ForcePortableKernels&) = delete;
    ForcePortableKernels& operator=(const ForcePortableKernels&) = delete;
};

} // namespace novaq
