#include "engine/quant/dequantize.h"

#include "engine/base/half.h"
#include "engine/quant/blocks.h"

namespace lorad::quant {
namespace {

void DequantQ8_0(const BlockQ8_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = b[i].qs[j] * d;
  }
}

void DequantQ4_0(const BlockQ4_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = Fp16ToFp32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = ((b[i].qs[j] & 0x0f) - 8) * d;
      y[j + kQK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ4_1(const BlockQ4_1* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = Fp16ToFp32(b[i].d);
    const float m = Fp16ToFp32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = (b[i].qs[j] & 0x0f) * d + m;
      y[j + kQK / 2] = (b[i].qs[j] >> 4) * d + m;
    }
  }
}

void DequantQ5_0(const BlockQ5_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kQK) {
    const float d = Fp16ToFp32(b[i].d);
    const uint32_t qh = b[i].qh[0] | (b[i].qh[1] << 8) | (b[i].qh[2] << 16) |
                        (static_cast<uint32_t>(b[i].qh[3]) << 24);
    for (int j = 0; j < kQK / 2; ++j) {
      const int hi0 = ((qh >> j) << 4) & 0x10;
      const int hi1 = (qh >> (j + 12)) & 0x10;
      y[j] = (((b[i].qs[j] & 0x0f) | hi0) - 16) * d;
      y[j + kQK / 2] = (((b[i].qs[j] >> 4) | hi1) - 16) * d;
    }
  }
}

// Unpacks the 6-bit scale and min of sub-block `j` (0..7) of a Q4_K block.
void Q4KScaleMin(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void DequantQ4_K(const BlockQ4_K* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    const float dmin = Fp16ToFp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
      int sc, m;
      Q4KScaleMin(is, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      Q4KScaleMin(is + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void DequantQ6_K(const BlockQ6_K* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void DequantNF4(const BlockNF4* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += kNF4Block) {
    for (int j = 0; j < kNF4Block / 2; ++j) {
      y[2 * j] = kNF4Codebook[b[i].qs[j] >> 4] * b[i].absmax;
      y[2 * j + 1] = kNF4Codebook[b[i].qs[j] & 0x0f] * b[i].absmax;
    }
  }
}

}  // namespace

void DequantizeRow(DType type, const void* src, float* dst, size_t n) {
  const size_t nb = n / BlockElements(type);
  switch (type) {
    case DType::kF32: {
      const float* s = static_cast<const float*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = s[i];
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(s[i]);
      return;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToFp32(s[i]);
      return;
    }
    case DType::kQ8_0:
      return DequantQ8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case DType::kQ4_0:
      return DequantQ4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case DType::kQ4_1:
      return DequantQ4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case DType::kQ5_0:
      return DequantQ5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case DType::kQ4_K:
      return DequantQ4_K(static_cast<const BlockQ4_K*>(src), dst, nb);
    case DType::kQ6_K:
      return DequantQ6_K(static_cast<const BlockQ6_K*>(src), dst, nb);
    case DType::kNF4:
      return DequantNF4(static_cast<const BlockNF4*>(src), dst, nb);
  }
}

}  // namespace lorad::quant
