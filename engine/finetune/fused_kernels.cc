#include "engine/finetune/fused_kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "engine/base/half.h"
#include "engine/base/target_clones.h"

// Plain loops the compiler vectorizes, cloned per instruction set (GCC function multiversioning;
// the loader picks the clone once).
#define LORAD_SIMD_CLONES LORAD_TARGET_CLONES("arch=x86-64-v4", "arch=x86-64-v3", "default")

namespace lorad::finetune::fused_kernels {
namespace {

// Partial sums in 16 lanes, so that the loops vectorize without reassociation flags (the order
// is fixed, hence deterministic).
constexpr int kLanes = 16;

// exp(x) for x in [-87, 88] (clamped outside), within 2 ulp: x = n·ln2 + r, exp(r) by the
// Cephes polynomial, 2^n through the exponent bits. Branch-free, so loops over it vectorize.
inline __attribute__((always_inline)) float Exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

inline __attribute__((always_inline)) float Sigmoid(float x) { return 1.0f / (1.0f + Exp(-x)); }

}  // namespace

LORAD_SIMD_CLONES
void RmsNormForward(const float* x, const float* gain, float eps, int64_t rows, int64_t d, float* y,
                    float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= d; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) acc[k] += xr[i + k] * xr[i + k];
    }
    float ss = 0.0f;
    for (; i < d; ++i) ss += xr[i] * xr[i];
    for (int k = 0; k < kLanes; ++k) ss += acc[k];
    const float s = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    rstd[r] = s;
    float* yr = y + r * d;
    for (i = 0; i < d; ++i) yr[i] = xr[i] * s * gain[i];
  }
}

// y_i = x_i·s·g_i, s = (mean(x²) + eps)^-1/2, so dx_i = s·g_i·dy_i - x_i·s³/d·Σ_j dy_j·g_j·x_j.
LORAD_SIMD_CLONES
void RmsNormBackward(const float* x, const float* gain, const float* rstd, const float* dy,
                     int64_t rows, int64_t d, float* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* dyr = dy + r * d;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= d; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) acc[k] += dyr[i + k] * gain[i + k] * xr[i + k];
    }
    float dot = 0.0f;
    for (; i < d; ++i) dot += dyr[i] * gain[i] * xr[i];
    for (int k = 0; k < kLanes; ++k) dot += acc[k];
    const float s = rstd[r];
    const float c = s * s * dot / static_cast<float>(d);
    float* dxr = dx + r * d;
    for (i = 0; i < d; ++i) dxr[i] = s * (gain[i] * dyr[i] - xr[i] * c);
  }
}

LORAD_SIMD_CLONES
void RopeToken(const float* x, const float* cos, const float* sin, float sin_sign, int64_t heads,
               int64_t head_dim, bool neox, float* y) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const float* xh = x + h * head_dim;
    float* yh = y + h * head_dim;
    if (neox) {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = xh[i], x1 = xh[i + half], c = cos[i], s = sin_sign * sin[i];
        yh[i] = x0 * c - x1 * s;
        yh[i + half] = x0 * s + x1 * c;
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = xh[2 * i], x1 = xh[2 * i + 1], c = cos[i], s = sin_sign * sin[i];
        yh[2 * i] = x0 * c - x1 * s;
        yh[2 * i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

LORAD_SIMD_CLONES
void SwiGluForward(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * Sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = σ(g)·(1 + g·(1 - σ(g))).
LORAD_SIMD_CLONES
void SwiGluBackward(const float* g, const float* u, const float* dy, int64_t n, float* dg,
                    float* du) {
  for (int64_t i = 0; i < n; ++i) {
    const float sg = Sigmoid(g[i]);
    const float silu = g[i] * sg;
    du[i] = dy[i] * silu;
    dg[i] = dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
  }
}

LORAD_SIMD_CLONES
void CausalSoftmaxRow(float* row, int64_t valid, int64_t width, float scale) {
  float mx[kLanes];
  std::fill(mx, mx + kLanes, -INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= valid; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) mx[k] = std::max(mx[k], row[i + k]);
  }
  float m = -INFINITY;
  for (; i < valid; ++i) m = std::max(m, row[i]);
  for (int k = 0; k < kLanes; ++k) m = std::max(m, mx[k]);
  m *= scale;
  float acc[kLanes] = {};
  for (i = 0; i + kLanes <= valid; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      row[i + k] = Exp(row[i + k] * scale - m);
      acc[k] += row[i + k];
    }
  }
  float sum = 0.0f;
  for (; i < valid; ++i) {
    row[i] = Exp(row[i] * scale - m);
    sum += row[i];
  }
  for (int k = 0; k < kLanes; ++k) sum += acc[k];
  const float inv = 1.0f / sum;
  for (i = 0; i < valid; ++i) row[i] *= inv;
  for (i = valid; i < width; ++i) row[i] = 0.0f;
}

// ds_j = p_j·(dp_j - Σ_k p_k·dp_k)·scale.
LORAD_SIMD_CLONES
void CausalSoftmaxBackwardRow(const float* p, float* dp, int64_t valid, int64_t width,
                              float scale) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= valid; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) acc[k] += p[i + k] * dp[i + k];
  }
  float dot = 0.0f;
  for (; i < valid; ++i) dot += p[i] * dp[i];
  for (int k = 0; k < kLanes; ++k) dot += acc[k];
  for (i = 0; i < valid; ++i) dp[i] = p[i] * (dp[i] - dot) * scale;
  for (i = valid; i < width; ++i) dp[i] = 0.0f;
}

LORAD_SIMD_CLONES
void FloatToBf16(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToBf16(x[i]);
}

}  // namespace lorad::finetune::fused_kernels
