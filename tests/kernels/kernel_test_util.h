// Test helpers for the kernel tests: seeded random data, random quantized matrices in every
// format (K-quants get random bytes with sane scales), and the ISA levels to sweep.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "engine/base/dtype.h"
#include "engine/base/half.h"
#include "engine/kernels/cpu_isa.h"
#include "engine/quant/blocks.h"
#include "engine/quant/quantize.h"

namespace lorad::kernels::testing {

inline std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// A [rows, cols] matrix of `type` in row-major RowBytes(type, cols) rows.
inline std::vector<uint8_t> RandomMatrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  const size_t row_bytes = RowBytes(type, static_cast<size_t>(cols));
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  std::mt19937 rng(seed);
  if (type == DType::kQ4_K || type == DType::kQ6_K) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    const size_t nb = out.size() / BlockBytes(type);
    for (size_t i = 0; i < nb; ++i) {
      uint8_t* blk = out.data() + i * BlockBytes(type);
      if (type == DType::kQ4_K) {
        auto* q = reinterpret_cast<quant::BlockQ4_K*>(blk);
        q->d = Fp32ToFp16(scale(rng));
        q->dmin = Fp32ToFp16(scale(rng));
      } else {
        auto* q = reinterpret_cast<quant::BlockQ6_K*>(blk);
        q->d = Fp32ToFp16(scale(rng) * 0.1f);
      }
    }
    return out;
  }
  const std::vector<float> values = RandomFloats(static_cast<size_t>(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r) {
    const absl::Status st =
        quant::QuantizeRow(type, values.data() + r * cols, out.data() + r * row_bytes, cols);
    if (!st.ok()) std::abort();
  }
  return out;
}

// The SIMD levels this CPU runs, plus scalar.
inline std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    if (IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

// Forces `isa` for a scope and restores the level in effect before (the detected one, or
// LORAD_CPU_ISA's).
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) : previous_(ActiveIsa()) { SetKernelIsaForTesting(isa); }
  ~ScopedIsa() { SetKernelIsaForTesting(previous_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  Isa previous_;
};

}  // namespace lorad::kernels::testing
