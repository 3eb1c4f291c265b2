// Row kernels behind engine/finetune/fused_ops.h: raw fp32 pointers, no LibTorch, each built
// for AVX-512, AVX2 and baseline x86-64 and picked at load time. Every function handles the
// rows it is given and nothing else, so callers split rows over threads freely.
// Thread-safety: thread-compatible (no state).
#pragma once

#include <cstdint>

namespace lorad::finetune::fused_kernels {

// y = x * rstd * gain per row, rstd = 1 / sqrt(mean(x²) + eps); rows of length d.
void RmsNormForward(const float* x, const float* gain, float eps, int64_t rows, int64_t d, float* y,
                    float* rstd);
// dx from dy, x, gain and the forward's rstd.
void RmsNormBackward(const float* x, const float* gain, const float* rstd, const float* dy,
                     int64_t rows, int64_t d, float* dx);

// One token's heads [heads, head_dim] rotated by the angles with cosines `cos` and sines
// `sin` [head_dim / 2]; sin_sign -1 rotates back (the backward). `neox`: pairs (i, i + hd / 2),
// else (2i, 2i + 1). y may alias x.
void RopeToken(const float* x, const float* cos, const float* sin, float sin_sign, int64_t heads,
               int64_t head_dim, bool neox, float* y);

// y = silu(g) * u over n elements.
void SwiGluForward(const float* g, const float* u, int64_t n, float* y);
// dg, du from dy.
void SwiGluBackward(const float* g, const float* u, const float* dy, int64_t n, float* dg,
                    float* du);

// In place: row[0, valid) holds scores, becomes softmax(scale * scores); row[valid, width)
// becomes 0.
void CausalSoftmaxRow(float* row, int64_t valid, int64_t width, float scale);
// In place: dp[0, valid) holds dL/dprobs, becomes dL/dscores for the row's probabilities p
// (scale included); dp[valid, width) becomes 0.
void CausalSoftmaxBackwardRow(const float* p, float* dp, int64_t valid, int64_t width, float scale);

// bf16 bits of x[0, n): lorad::Fp32ToBf16 (round to nearest even), vectorized.
void FloatToBf16(const float* x, int64_t n, uint16_t* y);

}  // namespace lorad::finetune::fused_kernels
