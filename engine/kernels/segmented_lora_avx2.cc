// AVX2 + FMA + F16C expand kernel of SegmentedLora. For 8 outputs at a time, B's 8 rows are
// transposed (and widened from fp16) into an L1 panel bt[j][8] once, then every token of the
// segment accumulates Σ_j h[t, j] · bt[j] with broadcast FMAs.
#include <immintrin.h>

#include <cstdint>

#include "engine/kernels/segmented_lora_kernels.h"

#if defined(__clang__)  // clang ignores GCC's target pragma
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace lorad::kernels::internal {
namespace {

// Ranks are processed in chunks of this many columns of B (the panel is 8 · kRankChunk floats).
constexpr int kRankChunk = 64;

static inline __m256 LoadB8(DType dtype, const void* b, int64_t index) {
  if (dtype == DType::kF16) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(b) + index)));
  }
  return _mm256_loadu_ps(static_cast<const float*>(b) + index);
}

static inline float LoadB1(DType dtype, const void* b, int64_t index) {
  if (dtype == DType::kF16) return _cvtsh_ss(static_cast<const uint16_t*>(b)[index]);
  return static_cast<const float*>(b)[index];
}

// In-register 8x8 transpose: r[i][j] -> out[j * 8 + i].
static inline void Transpose8x8Store(__m256 r0, __m256 r1, __m256 r2, __m256 r3, __m256 r4,
                                     __m256 r5, __m256 r6, __m256 r7, float* out) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  _mm256_storeu_ps(out + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(out + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(out + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(out + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(out + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// bt[j * 8 + i] = B[o + i, j0 + j] for i < 8, j < jn.
static inline void PackPanel(const LoraSegment& s, int64_t o, int j0, int jn, float* bt) {
  const int64_t r = s.rank;
  int j = 0;
  for (; j + 8 <= jn; j += 8) {
    const int64_t base = o * r + j0 + j;
    Transpose8x8Store(LoadB8(s.dtype, s.b, base), LoadB8(s.dtype, s.b, base + r),
                      LoadB8(s.dtype, s.b, base + 2 * r), LoadB8(s.dtype, s.b, base + 3 * r),
                      LoadB8(s.dtype, s.b, base + 4 * r), LoadB8(s.dtype, s.b, base + 5 * r),
                      LoadB8(s.dtype, s.b, base + 6 * r), LoadB8(s.dtype, s.b, base + 7 * r),
                      bt + j * 8);
  }
  for (; j < jn; ++j) {
    for (int i = 0; i < 8; ++i) bt[j * 8 + i] = LoadB1(s.dtype, s.b, (o + i) * r + j0 + j);
  }
}

}  // namespace

void LoraExpandAvx2(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                    int64_t o_end, float* y, int64_t d_out, PrefetchStream* /*pf*/) {
  alignas(32) float bt[8 * kRankChunk];
  const __m256 scale = _mm256_set1_ps(s.scale);
  int64_t o = o_begin;
  for (; o + 8 <= o_end; o += 8) {
    for (int j0 = 0; j0 < s.rank; j0 += kRankChunk) {
      const int jn = s.rank - j0 < kRankChunk ? s.rank - j0 : kRankChunk;
      PackPanel(s, o, j0, jn, bt);
      for (int64_t t = s.token_begin; t < s.token_end; ++t) {
        const float* h = tmp + t * ld + j0;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 2 <= jn; j += 2) {
          acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h[j]), _mm256_load_ps(bt + j * 8), acc0);
          acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h[j + 1]), _mm256_load_ps(bt + j * 8 + 8), acc1);
        }
        if (j < jn) acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h[j]), _mm256_load_ps(bt + j * 8), acc0);
        float* yt = y + t * d_out + o;
        _mm256_storeu_ps(yt,
                         _mm256_fmadd_ps(scale, _mm256_add_ps(acc0, acc1), _mm256_loadu_ps(yt)));
      }
    }
  }
  for (; o < o_end; ++o) {
    for (int64_t t = s.token_begin; t < s.token_end; ++t) {
      const float* h = tmp + t * ld;
      float acc = 0.0f;
      for (int32_t j = 0; j < s.rank; ++j) acc += h[j] * LoadB1(s.dtype, s.b, o * s.rank + j);
      y[t * d_out + o] += s.scale * acc;
    }
  }
}

}  // namespace lorad::kernels::internal

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
