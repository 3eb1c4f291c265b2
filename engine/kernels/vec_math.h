// Small vector primitives of the forward pass (norms, activations, attention dots). RmsNorm,
// Dot, Axpy and Add are compiled for several ISAs and picked at load time (GCC target_clones);
// their results do not depend on the clone (no reassociation), so LORAD_CPU_ISA need not steer
// them. SiluMul dispatches on the active kernel level.
#pragma once

#include <cstdint>

#include "engine/kernels/ggml_width.h"

namespace lorad::vec {

// y[i] = x[i] / rms(x) * w[i], rms(x) = sqrt(mean(x^2) + eps). x and y may alias.
void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y);
// g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)), as llama.cpp's SwiGLU computes it for
// the active width (ggml_width.h): exp is ggml's vectorized expf of that width (max error about
// 2 ulp) on whole vectors and libm's expf on the n % 16 (or n % 8) tail. The same bits at every
// kernel level for a given width.
void SiluMul(float* g, const float* u, int64_t n);
// SiluMul in the form of `width`, whatever the active level.
void SiluMulInOrder(GgmlWidth width, float* g, const float* u, int64_t n);
float Dot(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void Axpy(float a, const float* x, float* y, int64_t n);
// y[i] += x[i]
void Add(const float* x, float* y, int64_t n);
// In-place softmax of x[0..n); returns nothing. n >= 1.
void Softmax(float* x, int64_t n);

}  // namespace lorad::vec
