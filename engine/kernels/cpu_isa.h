// Run-time selection of the x86 instruction set the CPU kernels use. Detected once from
// CPUID. The environment variable LORAD_CPU_ISA (scalar | avx2 | avxvnni | avx512) lowers it
// for the whole process, read on first use: every dispatching kernel (quantized matmul,
// segmented LoRA, the fp16 attention dot, SwiGLU) then runs the forced level's code and, where
// ggml's summation order depends on the ISA, that level's order. Tests and benchmarks may also
// force a level with SetKernelIsaForTesting.
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
// The best supported level, lowered by LORAD_CPU_ISA or SetKernelIsaForTesting.
Isa ActiveIsa();
// Parses an LORAD_CPU_ISA value ("scalar", "avx2", "avxvnni", "avx512"); false if unknown.
bool ParseIsa(const char* name, Isa* isa);
// A line for logs: the detected level, and the forced one when LORAD_CPU_ISA lowered it (or
// asked for a level this CPU lacks, or named none).
const char* IsaSelectionDescription();
// Forces the kernels to use `isa` (clamped to the best supported level); returns the level
// actually in effect.
Isa SetKernelIsaForTesting(Isa isa);

}  // namespace lorad::kernels
