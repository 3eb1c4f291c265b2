// llama.cpp's CPU backend (ggml) fixes the order of some float reductions, and the expf its
// SwiGLU uses, by the SIMD width it was compiled for: an AVX-512 build and an AVX2 build of the
// same commit give different bits. lorad follows the build its active kernel level corresponds
// to, so that its logits equal those of llama.cpp built natively on the same CPU: AVX-512 for
// Isa::kAvx512, AVX2 (with FMA and F16C) for every lower level.
#pragma once

#include "engine/kernels/cpu_isa.h"

namespace lorad::vec {

enum class GgmlWidth {
  k256,  // ggml built for AVX2 + FMA + F16C (e.g. -march=haswell, or native on AVX2-only CPUs)
  k512,  // ggml built for AVX-512 F/DQ (native on AVX-512 CPUs)
};

inline GgmlWidth GgmlWidthFor(kernels::Isa isa) {
  return isa == kernels::Isa::kAvx512 ? GgmlWidth::k512 : GgmlWidth::k256;
}

inline GgmlWidth ActiveGgmlWidth() { return GgmlWidthFor(kernels::ActiveIsa()); }

}  // namespace lorad::vec
