// Portable kernels (no SIMD intrinsics): each weight row is decoded once with the reference
// dequantizer and reused for every x row.
#include <algorithm>
#include <vector>

#include "engine/kernels/q8_activation.h"
#include "engine/quant/dequantize.h"

namespace lorad::kernels::internal {
namespace {

void QuantizeRowQ8Scalar(const float* x, int64_t cols, BlockQ8A* xq) {
  for (int64_t b = 0; b < cols / kQ8ABlock; ++b, x += kQ8ABlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQ8ABlock; ++j) amax = std::max(amax, x[j] < 0 ? -x[j] : x[j]);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQ8ABlock; ++j) {
      const float v = x[j] * id;
      const int q = static_cast<int>(v < 0 ? v - 0.5f : v + 0.5f);
      xq[b].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    xq[b].d = d;
    xq[b].s = d * static_cast<float>(sum);
  }
}

void MatMulRowsScalar(const QuantMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                      const BlockQ8A* /*xq*/, int64_t m, float* y, int64_t ldy) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(w.cols));
  const char* base = static_cast<const char*>(w.data);
  for (int64_t r = row_begin; r < row_end; ++r) {
    quant::DequantizeRow(w.type, base + r * w.row_bytes, row.data(), w.cols);
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.cols;
      float acc[4] = {0, 0, 0, 0};
      int64_t c = 0;
      for (; c + 4 <= w.cols; c += 4) {
        for (int l = 0; l < 4; ++l) acc[l] += row[c + l] * xi[c + l];
      }
      for (; c < w.cols; ++c) acc[0] += row[c] * xi[c];
      y[i * ldy + r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
  }
}

void DequantizeRowScalar(DType type, const void* row, int64_t cols, float* out) {
  quant::DequantizeRow(type, row, out, static_cast<size_t>(cols));
}

}  // namespace

const MatMulKernels& ScalarMatMulKernels() {
  static const MatMulKernels kernels = {QuantizeRowQ8Scalar, MatMulRowsScalar, DequantizeRowScalar};
  return kernels;
}

}  // namespace lorad::kernels::internal
