// Small vector primitives of the forward pass (norms, activations, attention dots). Compiled
// for several ISAs and picked at load time (GCC target_clones), so the binary stays portable.
#pragma once

#include <cstdint>

namespace lorad::vec {

// y[i] = x[i] / rms(x) * w[i], rms(x) = sqrt(mean(x^2) + eps). x and y may alias.
void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y);
// g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)) with exp as ggml's vectorized expf
// (max error about 2 ulp; the same bits on every CPU), as llama.cpp's SwiGLU computes it.
void SiluMul(float* g, const float* u, int64_t n);
float Dot(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void Axpy(float a, const float* x, float* y, int64_t n);
// y[i] += x[i]
void Add(const float* x, float* y, int64_t n);
// In-place softmax of x[0..n); returns nothing. n >= 1.
void Softmax(float* x, int64_t n);

}  // namespace lorad::vec
