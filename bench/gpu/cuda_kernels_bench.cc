// Times lorad's CUDA kernels with CUDA events (graph of one launch per simulated layer, so the
// working set exceeds L2 and host launch overhead is excluded; warm-up, then the median of many
// runs) and compares achieved bandwidth to the measured device-to-device copy bandwidth.
// Prints one "RESULT key=value ..." line per measurement, read by bench/gpu/summarize.py.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/base/dtype.h"
#include "engine/base/half.h"
#include "engine/kernels/cuda/quant_matmul.cuh"
#include "engine/kernels/cuda/sgmv.cuh"

namespace lorad::cuda {
namespace {

#define CHECK_CUDA(expr)                                                 \
  do {                                                                   \
    const cudaError_t err_ = (expr);                                     \
    if (err_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(err_));                            \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

constexpr int kWarmup = 5;
constexpr int kRuns = 41;

// Median time in microseconds of `body` (which enqueues `ops` operations on `stream`) per op.
double MedianUsPerOp(cudaStream_t stream, int ops, const std::function<void()>& body) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  body();
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < kWarmup; ++i) CHECK_CUDA(cudaGraphLaunch(exec, stream));
  std::vector<float> ms(kRuns);
  for (int i = 0; i < kRuns; ++i) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&ms[i], start, stop));
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  CHECK_CUDA(cudaGraphDestroy(graph));
  std::nth_element(ms.begin(), ms.begin() + kRuns / 2, ms.end());
  return 1000.0 * ms[kRuns / 2] / ops;
}

// Device memory released at exit of scope.
struct Dev {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t n) : bytes(n) { CHECK_CUDA(cudaMalloc(&p, n)); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  uint8_t* b() const { return static_cast<uint8_t*>(p); }
};

// Fills device memory with random fp16 values in [-1, 1] (or raw random bytes).
void Fill(void* dst, size_t bytes, bool fp16, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<uint16_t> chunk(1 << 20);
  for (auto& v : chunk) v = fp16 ? Fp32ToFp16(uni(rng)) : static_cast<uint16_t>(rng());
  for (size_t off = 0; off < bytes; off += chunk.size() * 2) {
    const size_t n = std::min(bytes - off, chunk.size() * 2);
    CHECK_CUDA(
        cudaMemcpy(static_cast<uint8_t*>(dst) + off, chunk.data(), n, cudaMemcpyHostToDevice));
  }
}

double g_copy_gbps = 0;

void Report(const std::string& name, double us, double bytes, const std::string& extra = "") {
  const double gbps = bytes / (us * 1e3);
  std::printf("RESULT name=%s us=%.3f bytes=%.0f gbps=%.1f pct_copy=%.1f%s%s\n", name.c_str(), us,
              bytes, gbps, 100.0 * gbps / g_copy_gbps, extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
}

void CopyBandwidth(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 29;  // 512 MiB each way
  Dev a(bytes), b(bytes);
  CHECK_CUDA(cudaMemset(a.p, 1, bytes));
  const double us = MedianUsPerOp(stream, 4, [&] {
    for (int i = 0; i < 4; ++i) {
      CHECK_CUDA(cudaMemcpyAsync(i % 2 ? a.p : b.p, i % 2 ? b.p : a.p, bytes,
                                 cudaMemcpyDeviceToDevice, stream));
    }
  });
  g_copy_gbps = 2.0 * bytes / (us * 1e3);  // read + write
  std::printf("COPY gbps=%.1f\n", g_copy_gbps);
}

// 64 tokens over 16 adapters of rank 16, hidden 4096 (q_proj-like), one instance per layer.
void LoraBench(cudaStream_t stream) {
  constexpr int kTokens = 64, kAdapters = 16, kRank = 16, kHidden = 4096, kLayers = 40;
  const size_t act_bytes = size_t{kTokens} * kHidden * 2;
  const size_t w_bytes = size_t{kRank} * kHidden * 2;  // one A or one B
  Dev x(act_bytes * kLayers), y(act_bytes * kLayers), w(2 * w_bytes * kAdapters * kLayers);
  Dev ws(SgmvWorkspaceBytes(kTokens, kRank)), ptrs(2 * sizeof(void*) * kAdapters * kLayers);
  Dev ranks(4 * kAdapters), scales(4 * kAdapters), seg(8 * (kAdapters + 1)), tok(4 * kTokens);
  Fill(x.p, act_bytes * kLayers, true, 1);
  Fill(y.p, act_bytes * kLayers, true, 2);
  Fill(w.p, 2 * w_bytes * kAdapters * kLayers, true, 3);
  std::vector<const void*> hp(2 * kAdapters * kLayers);
  for (int l = 0; l < kLayers; ++l) {
    for (int i = 0; i < kAdapters; ++i) {
      hp[(2 * l) * kAdapters + i] = w.b() + ((2 * l) * kAdapters + i) * w_bytes;          // A
      hp[(2 * l + 1) * kAdapters + i] = w.b() + ((2 * l + 1) * kAdapters + i) * w_bytes;  // B
    }
  }
  std::vector<int32_t> hr(kAdapters, kRank), ht(kTokens);
  std::vector<float> hs(kAdapters, 2.0f);
  std::vector<int64_t> hseg(kAdapters + 1);
  for (int i = 0; i <= kAdapters; ++i) hseg[i] = int64_t{i} * kTokens / kAdapters;
  for (int t = 0; t < kTokens; ++t) ht[t] = (t * 5) % kAdapters;  // unsorted for BGMV
  CHECK_CUDA(cudaMemcpy(ptrs.p, hp.data(), hp.size() * sizeof(void*), cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(ranks.p, hr.data(), hr.size() * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(scales.p, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(seg.p, hseg.data(), hseg.size() * 8, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(tok.p, ht.data(), ht.size() * 4, cudaMemcpyHostToDevice));

  const auto batch = [&](int layer, bool bgmv) {
    LoraBatch b;
    if (bgmv) {
      b.token_entry = static_cast<const int32_t*>(tok.p);
    } else {
      b.seg_start = static_cast<const int64_t*>(seg.p);
    }
    b.num_entries = kAdapters;
    b.a = static_cast<const void* const*>(ptrs.p) + (2 * layer) * kAdapters;
    b.b = static_cast<const void* const*>(ptrs.p) + (2 * layer + 1) * kAdapters;
    b.ranks = static_cast<const int32_t*>(ranks.p);
    b.scales = static_cast<const float*>(scales.p);
    b.max_rank = kRank;
    return b;
  };
  const double v_bytes = double(kTokens) * kRank * 4;
  const double shrink_bytes = act_bytes + kAdapters * w_bytes + v_bytes;
  const double expand_bytes = v_bytes + kAdapters * w_bytes + 2.0 * act_bytes;
  float* v = static_cast<float*>(ws.p);
  for (bool bgmv : {false, true}) {
    const std::string kind = bgmv ? "bgmv" : "sgmv";
    const double shrink_us = MedianUsPerOp(stream, kLayers, [&] {
      for (int l = 0; l < kLayers; ++l) {
        CHECK_CUDA(SgmvShrink(DType::kF16, batch(l, bgmv), x.b() + l * act_bytes, kHidden, kTokens,
                              kHidden, v, kRank, stream));
      }
    });
    Report(kind + "_shrink", shrink_us, shrink_bytes);
    const double expand_us = MedianUsPerOp(stream, kLayers, [&] {
      for (int l = 0; l < kLayers; ++l) {
        CHECK_CUDA(SgmvExpand(DType::kF16, batch(l, bgmv), v, kRank, kTokens, kHidden,
                              y.b() + l * act_bytes, kHidden, stream));
      }
    });
    Report(kind + "_expand", expand_us, expand_bytes);
    const double both_us = MedianUsPerOp(stream, kLayers, [&] {
      for (int l = 0; l < kLayers; ++l) {
        CHECK_CUDA(Sgmv(DType::kF16, batch(l, bgmv), x.b() + l * act_bytes, kHidden, kHidden,
                        y.b() + l * act_bytes, kHidden, kHidden, kTokens, ws.p, ws.bytes, stream));
      }
    });
    // The adapter bytes the op must read, plus activations in and out.
    Report(kind, both_us, shrink_bytes + expand_bytes, "launches=2");
  }
}

void QuantBench(cudaStream_t stream, DType wt, int64_t rows, int64_t cols, int64_t m) {
  const int64_t row_bytes = RowBytes(wt, cols);
  const double w_bytes = double(rows) * row_bytes;
  const double io_bytes = double(m) * cols * 2 + double(m) * rows * 2;
  // Enough instances that the weights streamed per graph (>= 256 MiB) dwarf L2.
  const int layers = static_cast<int>(std::clamp(std::ceil(268435456.0 / w_bytes), 4.0, 64.0));
  Dev w(static_cast<size_t>(w_bytes) * layers), x(m * cols * 2), y(m * rows * 2);
  Fill(w.p, static_cast<size_t>(w_bytes) * layers, false, 4);
  Fill(x.p, m * cols * 2, true, 5);
  const auto algo = m <= kQuantMatvecMaxM ? QuantMatmulAlgo::kMatvec : QuantMatmulAlgo::kTiled;
  const double us = MedianUsPerOp(stream, layers, [&] {
    for (int l = 0; l < layers; ++l) {
      CHECK_CUDA(QuantMatmul(DType::kF16, wt, w.b() + static_cast<size_t>(w_bytes) * l, row_bytes,
                             rows, cols, x.p, cols, m, y.p, rows, stream, algo));
    }
  });
  const std::string name = std::string(m <= kQuantMatvecMaxM ? "matvec_" : "matmul_") +
                           DTypeName(wt) + "_" + std::to_string(rows) + "x" + std::to_string(cols) +
                           "_m" + std::to_string(m);
  const double tflops = 2.0 * m * rows * cols / (us * 1e6);
  Report(name, us, w_bytes + io_bytes, "tflops=" + std::to_string(tflops));
}

int Main() {
  int dev = 0;
  CHECK_CUDA(cudaGetDevice(&dev));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, dev));
  std::printf("DEVICE name=\"%s\" sm=%d.%d sms=%d l2_mib=%.0f mem_gib=%.0f\n", prop.name,
              prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize / 1048576.0,
              prop.totalGlobalMem / 1073741824.0);
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CopyBandwidth(stream);
  LoraBench(stream);
  for (DType wt : {DType::kNF4, DType::kQ4_0, DType::kQ4_1, DType::kQ8_0}) {
    QuantBench(stream, wt, 4096, 4096, 1);
    QuantBench(stream, wt, 14336, 4096, 1);
  }
  QuantBench(stream, DType::kNF4, 4096, 4096, 8);
  QuantBench(stream, DType::kNF4, 4096, 4096, 512);
  QuantBench(stream, DType::kQ4_0, 4096, 4096, 512);
  CHECK_CUDA(cudaStreamDestroy(stream));
  return 0;
}

}  // namespace
}  // namespace lorad::cuda

int main() { return lorad::cuda::Main(); }
