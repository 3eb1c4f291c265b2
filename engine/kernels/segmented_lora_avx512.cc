// AVX-512 kernels of SegmentedLora. Shrink: tiles of 4 A rows x up to 4 tokens; each 16-column
// slice of an A row is widened once (vcvtph2ps) and used by every token of the tile. Expand, one
// token: 16 B rows are multiplied by h and reduced with a shuffle tree into 16 outputs. Expand,
// several tokens: 16 B rows are transposed once into an L1 panel that every token then reads.
// Kernels report the weight bytes they read to a PrefetchStream that keeps prefetching ahead.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "engine/kernels/segmented_lora_kernels.h"

#if defined(__clang__)  // clang ignores GCC's target pragma
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif
// GCC 12's AVX-512 headers trip these on their own _mm512_undefined_* placeholders.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace lorad::kernels::internal {
namespace {

// Ranks are transposed into the expand panel in chunks of this many B columns (multiple of 16).
constexpr int kPanelRank = 64;

inline __mmask16 Mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

// 16 consecutive adapter weights (fp16 or fp32) widened to fp32.
template <bool kF16>
struct W {
  static inline __m512 Load(const void* p, int64_t i) {
    return _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i)));
  }
  static inline __m512 LoadMask(const void* p, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
  }
  static constexpr int64_t kBytes = 2;
};

template <>
struct W<false> {
  static inline __m512 Load(const void* p, int64_t i) {
    return _mm512_loadu_ps(static_cast<const float*>(p) + i);
  }
  static inline __m512 LoadMask(const void* p, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + i);
  }
  static constexpr int64_t kBytes = 4;
};

// ---------------------------------------------------------------------------------------------
// Shrink.

// out[tb * ld + j + r] = x[tb, :] · A[j + r, :] for r < R, tb < TB (x rows d_in apart).
// `pf` (may be null) is advanced by the A bytes read.
template <bool kF16, int R, int TB>
inline void ShrinkTile(const void* a, int64_t d_in, int32_t j, const float* x, float* out,
                       int64_t ld, PrefetchStream* pf) {
  __m512 acc[R][TB];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int tb = 0; tb < TB; ++tb) acc[r][tb] = _mm512_setzero_ps();
  }
  const int64_t main = d_in & ~int64_t{15};
  for (int64_t k = 0; k < main; k += 16) {
    if (pf != nullptr) pf->Advance(R * 16 * W<kF16>::kBytes);
    __m512 w[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) w[r] = W<kF16>::Load(a, (j + r) * d_in + k);
#pragma GCC unroll 4
    for (int tb = 0; tb < TB; ++tb) {
      const __m512 xv = _mm512_loadu_ps(x + tb * d_in + k);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][tb] = _mm512_fmadd_ps(w[r], xv, acc[r][tb]);
    }
  }
  if (main < d_in) {
    const __mmask16 m = Mask(d_in - main);
    if (pf != nullptr) pf->Advance(R * (d_in - main) * W<kF16>::kBytes);
    __m512 w[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) w[r] = W<kF16>::LoadMask(a, (j + r) * d_in + main, m);
#pragma GCC unroll 4
    for (int tb = 0; tb < TB; ++tb) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + tb * d_in + main);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][tb] = _mm512_fmadd_ps(w[r], xv, acc[r][tb]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int tb = 0; tb < TB; ++tb) out[tb * ld + j + r] = _mm512_reduce_add_ps(acc[r][tb]);
  }
}

// Rows [j, j + R) of A against every token of the segment, 4 tokens per tile (A streamed by
// the first tile).
template <bool kF16, int R>
void ShrinkRows(const float* x, int64_t d_in, const LoraSegment& s, int32_t j, float* tmp,
                int64_t ld, PrefetchStream* pf) {
  int64_t t = s.token_begin;
  for (; t + 4 <= s.token_end; t += 4, pf = nullptr) {
    ShrinkTile<kF16, R, 4>(s.a, d_in, j, x + t * d_in, tmp + t * ld, ld, pf);
  }
  switch (s.token_end - t) {
    case 3:
      return ShrinkTile<kF16, R, 3>(s.a, d_in, j, x + t * d_in, tmp + t * ld, ld, pf);
    case 2:
      return ShrinkTile<kF16, R, 2>(s.a, d_in, j, x + t * d_in, tmp + t * ld, ld, pf);
    case 1:
      return ShrinkTile<kF16, R, 1>(s.a, d_in, j, x + t * d_in, tmp + t * ld, ld, pf);
    default:
      return;
  }
}

// Tiles of 4 rows x 4 tokens (2 rows x 8 tokens, which widens each A slice half as often,
// measured slower).
template <bool kF16>
void Shrink(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin, int32_t j_end,
            float* tmp, int64_t ld, PrefetchStream* pf) {
  int32_t j = j_begin;
  for (; j + 4 <= j_end; j += 4) ShrinkRows<kF16, 4>(x, d_in, s, j, tmp, ld, pf);
  for (; j < j_end; ++j) ShrinkRows<kF16, 1>(x, d_in, s, j, tmp, ld, pf);
}

// ---------------------------------------------------------------------------------------------
// Expand.

// Blocks: a01 + a23, b01 + b23 (per lane of each 128-bit block).
inline __m512 AddPairs(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
}

// Of two AddPairs results: block q holds a 4-lane partial sum of input q (a0, a1, b0, b1).
inline __m512 AddQuads(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xdd));
}

// Lane i of the result = the sum of the 16 lanes of v[i].
inline __m512 Reduce16(const __m512* v) {
  // Inputs enter in the order that makes lane i of the result the sum of v[i].
  const __m512 u0 = AddQuads(AddPairs(v[0], v[4]), AddPairs(v[8], v[12]));
  const __m512 u1 = AddQuads(AddPairs(v[1], v[5]), AddPairs(v[9], v[13]));
  const __m512 u2 = AddQuads(AddPairs(v[2], v[6]), AddPairs(v[10], v[14]));
  const __m512 u3 = AddQuads(AddPairs(v[3], v[7]), AddPairs(v[11], v[15]));
  const __m512 w01 = _mm512_add_ps(_mm512_unpacklo_ps(u0, u1), _mm512_unpackhi_ps(u0, u1));
  const __m512 w23 = _mm512_add_ps(_mm512_unpacklo_ps(u2, u3), _mm512_unpackhi_ps(u2, u3));
  return _mm512_add_ps(_mm512_shuffle_ps(w01, w23, 0x44), _mm512_shuffle_ps(w01, w23, 0xee));
}

// In-register 16x16 transpose: v[i] lane j -> v[j] lane i.
inline void Transpose16(__m512* v) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    v[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    v[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    v[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0xdd);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    v[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

// yt[o] += scale · Σ_j h[j] · B[o, j] for o in [o, o + n), the rows starting at row[i].
inline void StoreTile(float* yt, __m512 scale, __m512 sum, int64_t n) {
  if (n == 16) {
    _mm512_storeu_ps(yt, _mm512_fmadd_ps(scale, sum, _mm512_loadu_ps(yt)));
  } else {
    const __mmask16 m = Mask(n);
    _mm512_mask_storeu_ps(yt, m, _mm512_fmadd_ps(scale, sum, _mm512_maskz_loadu_ps(m, yt)));
  }
}

// Σ_j h[j] · B[o + i, j] in lane i, for the n <= 16 rows from o (rows past n repeat the last
// one). kRank > 0 fixes the rank at compile time (r must equal it).
template <bool kF16, int kRank>
inline __m512 DotTile(const void* b, int64_t o, int64_t n, int64_t r, const float* h) {
  if (kRank > 0) r = kRank;
  __m512 p[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) p[i] = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= r; j += 16) {
    const __m512 hv = _mm512_loadu_ps(h + j);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      p[i] = _mm512_fmadd_ps(W<kF16>::Load(b, (o + std::min<int64_t>(i, n - 1)) * r + j), hv, p[i]);
    }
  }
  if (j < r) {
    const __mmask16 m = Mask(r - j);
    const __m512 hv = _mm512_maskz_loadu_ps(m, h + j);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      p[i] = _mm512_fmadd_ps(W<kF16>::LoadMask(b, (o + std::min<int64_t>(i, n - 1)) * r + j, m), hv,
                             p[i]);
    }
  }
  return Reduce16(p);
}

// One token: y[o] += scale · h · B[o, :] for o in [o_begin, o_end).
template <bool kF16, int kRank>
void ExpandOne(const float* h, const LoraSegment& s, int64_t o_begin, int64_t o_end, float* yt,
               PrefetchStream* pf) {
  const int64_t r = kRank > 0 ? kRank : s.rank;
  const __m512 scale = _mm512_set1_ps(s.scale);
  int64_t o = o_begin;
  for (; o + 16 <= o_end; o += 16) {
    if (pf != nullptr) pf->Advance(16 * r * W<kF16>::kBytes);
    StoreTile(yt + o, scale, DotTile<kF16, kRank>(s.b, o, 16, r, h), 16);
  }
  if (o < o_end) {
    if (pf != nullptr) pf->Advance((o_end - o) * r * W<kF16>::kBytes);
    StoreTile(yt + o, scale, DotTile<kF16, kRank>(s.b, o, o_end - o, r, h), o_end - o);
  }
}

// TB tokens against a transposed panel bt[j * 16 + i] = B[o + i, j0 + j], j < jn.
template <int TB>
inline void PanelTokens(const float* bt, int jn, const float* h, int64_t ld, float* yt,
                        int64_t d_out, __m512 scale, int64_t n) {
  __m512 acc[TB];
#pragma GCC unroll 4
  for (int tb = 0; tb < TB; ++tb) acc[tb] = _mm512_setzero_ps();
  for (int j = 0; j < jn; ++j) {
    const __m512 b = _mm512_load_ps(bt + j * 16);
#pragma GCC unroll 4
    for (int tb = 0; tb < TB; ++tb) {
      acc[tb] = _mm512_fmadd_ps(_mm512_set1_ps(h[tb * ld + j]), b, acc[tb]);
    }
  }
#pragma GCC unroll 4
  for (int tb = 0; tb < TB; ++tb) StoreTile(yt + tb * d_out, scale, acc[tb], n);
}

// Several tokens: each 16 x kPanelRank block of B is transposed once and read by every token.
template <bool kF16>
void ExpandPanel(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin, int64_t o_end,
                 float* y, int64_t d_out, PrefetchStream* pf) {
  alignas(64) float bt[kPanelRank * 16];
  const int64_t r = s.rank;
  const __m512 scale = _mm512_set1_ps(s.scale);
  for (int64_t o = o_begin; o < o_end; o += 16) {
    const int64_t n = std::min<int64_t>(16, o_end - o);
    if (pf != nullptr) pf->Advance(n * r * W<kF16>::kBytes);
    int64_t row[16];  // rows past o_end repeat the last one; their lanes are not stored
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) row[i] = (o + std::min<int64_t>(i, n - 1)) * r;
    for (int64_t j0 = 0; j0 < r; j0 += kPanelRank) {
      const int jn = static_cast<int>(std::min<int64_t>(kPanelRank, r - j0));
      for (int jc = 0; jc < jn; jc += 16) {
        const __mmask16 m = Mask(jn - jc);
        __m512 v[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) v[i] = W<kF16>::LoadMask(s.b, row[i] + j0 + jc, m);
        Transpose16(v);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) _mm512_store_ps(bt + (jc + i) * 16, v[i]);
      }
      int64_t t = s.token_begin;
      const float* h = tmp + j0;
      float* yo = y + o;
      for (; t + 4 <= s.token_end; t += 4) {
        PanelTokens<4>(bt, jn, h + t * ld, ld, yo + t * d_out, d_out, scale, n);
      }
      switch (s.token_end - t) {
        case 3:
          PanelTokens<3>(bt, jn, h + t * ld, ld, yo + t * d_out, d_out, scale, n);
          break;
        case 2:
          PanelTokens<2>(bt, jn, h + t * ld, ld, yo + t * d_out, d_out, scale, n);
          break;
        case 1:
          PanelTokens<1>(bt, jn, h + t * ld, ld, yo + t * d_out, d_out, scale, n);
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace

void LoraShrinkAvx512(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin,
                      int32_t j_end, float* tmp, int64_t ld, PrefetchStream* pf) {
  if (s.dtype == DType::kF16) return Shrink<true>(x, d_in, s, j_begin, j_end, tmp, ld, pf);
  Shrink<false>(x, d_in, s, j_begin, j_end, tmp, ld, pf);
}

void LoraExpandAvx512(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                      int64_t o_end, float* y, int64_t d_out, PrefetchStream* pf) {
  const bool f16 = s.dtype == DType::kF16;
  if (s.token_end - s.token_begin == 1) {
    const float* h = tmp + s.token_begin * ld;
    float* yt = y + s.token_begin * d_out;
    if (s.rank == 16) {  // the common rank: B row addresses are constant offsets
      return f16 ? ExpandOne<true, 16>(h, s, o_begin, o_end, yt, pf)
                 : ExpandOne<false, 16>(h, s, o_begin, o_end, yt, pf);
    }
    return f16 ? ExpandOne<true, 0>(h, s, o_begin, o_end, yt, pf)
               : ExpandOne<false, 0>(h, s, o_begin, o_end, yt, pf);
  }
  return f16 ? ExpandPanel<true>(tmp, ld, s, o_begin, o_end, y, d_out, pf)
             : ExpandPanel<false>(tmp, ld, s, o_begin, o_end, y, d_out, pf);
}

}  // namespace lorad::kernels::internal

#pragma GCC diagnostic pop
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
