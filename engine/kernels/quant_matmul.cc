#include "engine/kernels/quant_matmul.h"

#include <algorithm>
#include <vector>

#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/q8_activation.h"

namespace lorad::kernels {
namespace {

using internal::BlockQ8A;
using internal::MatMulKernels;

// Weight rows per ParallelFor index: the SIMD kernels process 4 rows at a time.
constexpr int64_t kRowGroup = 4;
// Quantizing x is parallelized only when there are enough rows to amortize a pool call.
constexpr int64_t kParallelQuantizeMinRows = 16;

}  // namespace

const MatMulKernels& internal::ActiveMatMulKernels() {
  switch (ActiveIsa()) {
    case Isa::kAvx512:
      return internal::Avx512MatMulKernels();
    case Isa::kAvxVnni:
      return internal::AvxVnniMatMulKernels();
    case Isa::kAvx2:
      return internal::Avx2MatMulKernels();
    case Isa::kScalar:
      break;
  }
  return internal::ScalarMatMulKernels();
}

namespace {

void Run(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool == nullptr) {
    if (n > 0) fn(0, n);
  } else {
    pool->ParallelFor(n, fn);
  }
}

}  // namespace

namespace internal {

float* TileScratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

}  // namespace internal

void QuantMatMul(const QuantMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool) {
  if (m <= 0 || w.rows <= 0) return;
  const MatMulKernels& k = internal::ActiveMatMulKernels();
  const BlockQ8A* xq = nullptr;
  // Owned by the calling thread; workers only read it during this call.
  thread_local std::vector<BlockQ8A> xq_buffer;
  if (internal::UsesQ8Activations(w.type) && &k != &internal::ScalarMatMulKernels()) {
    const int64_t blocks_per_row = w.cols / internal::kQ8ABlock;
    xq_buffer.resize(static_cast<size_t>(m * blocks_per_row));
    BlockQ8A* out = xq_buffer.data();
    auto quantize = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        k.quantize_row_q8(x + i * w.cols, w.cols, out + i * blocks_per_row);
      }
    };
    if (m >= kParallelQuantizeMinRows) {
      Run(pool, m, quantize);
    } else {
      quantize(0, m);
    }
    xq = out;
  }
  const int64_t groups = (w.rows + kRowGroup - 1) / kRowGroup;
  Run(pool, groups, [&](int64_t begin, int64_t end) {
    k.matmul_rows(w, begin * kRowGroup, std::min(end * kRowGroup, w.rows), x, xq, m, y, w.rows);
  });
}

void DequantizeRows(const QuantMatrix& w, int64_t row_begin, int64_t row_end, float* out) {
  const MatMulKernels& k = internal::ActiveMatMulKernels();
  const char* base = static_cast<const char*>(w.data);
  for (int64_t r = row_begin; r < row_end; ++r, out += w.cols) {
    k.dequantize_row(w.type, base + r * w.row_bytes, w.cols, out);
  }
}

}  // namespace lorad::kernels
