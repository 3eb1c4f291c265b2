// QuantMatMulReference: the plain definition the optimized kernels are tested against.
#include <vector>

#include "engine/kernels/quant_matmul.h"
#include "engine/quant/dequantize.h"

namespace lorad::kernels {

void QuantMatMulReference(const QuantMatrix& w, const float* x, int64_t m, float* y,
                          ThreadPool* /*pool*/) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  const char* base = static_cast<const char*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r) {
    quant::DequantizeRow(w.type, base + r * w.row_bytes, row.data(), w.cols);
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.cols;
      float acc = 0.0f;
      for (int64_t c = 0; c < w.cols; ++c) acc += row[c] * xi[c];
      y[i * w.rows + r] = acc;
    }
  }
}

}  // namespace lorad::kernels
