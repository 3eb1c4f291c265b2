// Run-time selection of the x86 instruction set the CPU kernels use. Detected once from
// CPUID; tests and benchmarks may force a lower level to exercise every code path.
// Thread-safety: IsaSupported/ActiveIsa are thread-safe; SetKernelIsaForTesting is not meant
// to race with running kernels.
#pragma once

namespace lorad::kernels {

// Ordered from least to most capable.
enum class Isa : int {
  kScalar = 0,   // portable C++, any CPU
  kAvx2 = 1,     // AVX2 + FMA + F16C, integer dots with vpmaddubsw
  kAvxVnni = 2,  // kAvx2 plus VEX AVX-VNNI (vpdpbusd on ymm)
  kAvx512 = 3,   // AVX-512 F/BW/VL + AVX512-VNNI (EVEX vpdpbusd)
};

const char* IsaName(Isa isa);
// Whether this CPU can run kernels compiled for `isa`.
bool IsaSupported(Isa isa);
// The best supported level, unless overridden by SetKernelIsaForTesting.
Isa ActiveIsa();
// Forces the kernels to use `isa` (clamped to the best supported level); returns the level
// actually in effect.
Isa SetKernelIsaForTesting(Isa isa);

}  // namespace lorad::kernels
