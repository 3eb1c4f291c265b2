#include "engine/quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/base/half.h"
#include "engine/quant/blocks.h"

namespace lorad::quant {
namespace {

void QuantQ8_0(const float* x, BlockQ8_0* b, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
  }
}

// Q4_0 and Q5_0 follow llama.cpp: the scale maps the value of largest magnitude to -8 (-16).
void QuantQ4_0(const float* x, BlockQ4_0* b, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ4_1(const float* x, BlockQ4_1* b, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < kQK; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    b[i].m = Fp32ToFp16(mn);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - mn) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kQK / 2] - mn) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ5_0(const float* x, BlockQ5_0* b, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = Fp32ToFp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(x[j] * id + 16.5f));
      const int q1 = std::min(31, static_cast<int>(x[j + kQK / 2] * id + 16.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
    }
    for (int k = 0; k < 4; ++k) b[i].qh[k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

void QuantNF4(const float* x, BlockNF4* b, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += kNF4Block) {
    float amax = 0.0f;
    for (int j = 0; j < kNF4Block; ++j) amax = std::max(amax, std::fabs(x[j]));
    b[i].absmax = amax;
    const float inv = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int j = 0; j < kNF4Block / 2; ++j) {
      const int hi = NearestNF4(x[2 * j] * inv);
      const int lo = NearestNF4(x[2 * j + 1] * inv);
      b[i].qs[j] = static_cast<uint8_t>((hi << 4) | lo);
    }
  }
}

}  // namespace

int NearestNF4(float x) {
  int code = 0;
  for (int k = 0; k < 15; ++k) {
    const float mid = 0.5f * (kNF4Codebook[k] + kNF4Codebook[k + 1]);
    if (x > mid) code = k + 1;
  }
  return code;
}

absl::Status QuantizeRow(DType type, const float* src, void* dst, size_t n) {
  if (n % BlockElements(type) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("row of ", n, " values is not a multiple of the ", DTypeName(type),
                     " block size ", BlockElements(type)));
  }
  const size_t nb = n / BlockElements(type);
  switch (type) {
    case DType::kF32:
      std::copy(src, src + n, static_cast<float*>(dst));
      return absl::OkStatus();
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = Fp32ToFp16(src[i]);
      return absl::OkStatus();
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = Fp32ToBf16(src[i]);
      return absl::OkStatus();
    case DType::kQ8_0:
      QuantQ8_0(src, static_cast<BlockQ8_0*>(dst), nb);
      return absl::OkStatus();
    case DType::kQ4_0:
      QuantQ4_0(src, static_cast<BlockQ4_0*>(dst), nb);
      return absl::OkStatus();
    case DType::kQ4_1:
      QuantQ4_1(src, static_cast<BlockQ4_1*>(dst), nb);
      return absl::OkStatus();
    case DType::kQ5_0:
      QuantQ5_0(src, static_cast<BlockQ5_0*>(dst), nb);
      return absl::OkStatus();
    case DType::kNF4:
      QuantNF4(src, static_cast<BlockNF4*>(dst), nb);
      return absl::OkStatus();
    case DType::kQ4_K:
    case DType::kQ6_K:
      break;
  }
  return absl::UnimplementedError(
      absl::StrCat("quantizing to ", DTypeName(type), " is not supported"));
}

}  // namespace lorad::quant
