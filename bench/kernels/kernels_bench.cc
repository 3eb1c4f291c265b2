// Micro-benchmark of the CPU kernels at SmolLM2-135M shapes: QuantMatMul (decode m=1 and
// prefill m=512) per weight format and thread count, SegmentedLora at rank 16, and the
// ThreadPool per-call latency. Plain std::chrono timing.
//
//   lorad_kernels_bench [--quick | --model | --lora]
//   lorad_kernels_bench --lora-step ADAPTERS THREADS   (one hot decode-step case, 32 tokens)
//   (--model: only the whole-model matmul sets; --lora: only the SegmentedLora cases)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <vector>

#include "engine/base/half.h"
#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/quant_matmul.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/kernels/thread_pool.h"
#include "engine/quant/blocks.h"
#include "engine/quant/quantize.h"

namespace lorad::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

std::vector<uint8_t> MakeWeights(DType type, int64_t rows, int64_t cols) {
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> out(row_bytes * rows);
  if (type == DType::kQ6_K || type == DType::kQ4_K) {  // no quantizer: random blocks
    std::mt19937 rng(7);
    for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < out.size() / BlockBytes(type); ++i) {
      auto* blk = reinterpret_cast<quant::BlockQ6_K*>(out.data() + i * BlockBytes(type));
      if (type == DType::kQ6_K) blk->d = Fp32ToFp16(0.001f);
    }
    return out;
  }
  const std::vector<float> row = Random(cols, 3);
  for (int64_t r = 0; r < rows; ++r) {
    (void)quant::QuantizeRow(type, row.data(), out.data() + r * row_bytes, cols);
  }
  return out;
}

// Seconds per call of fn, repeated until `min_seconds` have passed.
double TimeIt(const std::function<void()>& fn, double min_seconds) {
  fn();
  int64_t iters = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  do {
    fn();
    ++iters;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed / static_cast<double>(iters);
}

void BenchMatMul(bool quick) {
  struct Shape {
    int64_t rows, cols;
  };
  const Shape shapes[] = {{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
  const DType types[] = {DType::kQ4_1, DType::kQ4_0, DType::kQ8_0,
                         DType::kQ6_K, DType::kNF4,  DType::kF16};
  std::printf("%-5s %-12s %4s %3s %12s %9s %10s\n", "type", "shape", "m", "thr", "us/call", "GB/s",
              "GFLOP/s");
  for (DType type : types) {
    for (const Shape& s : shapes) {
      const std::vector<uint8_t> w = MakeWeights(type, s.rows, s.cols);
      const QuantMatrix qm{type, s.rows, s.cols, w.data(), RowBytes(type, s.cols)};
      for (int64_t m : {int64_t{1}, int64_t{512}}) {
        if (quick && m == 512 && s.rows > 2000) continue;
        const std::vector<float> x = Random(m * s.cols, 5);
        std::vector<float> y(m * s.rows);
        for (int threads : {1, 2}) {
          ThreadPool pool(threads);
          const double sec =
              TimeIt([&] { QuantMatMul(qm, x.data(), m, y.data(), &pool); }, m == 1 ? 0.2 : 0.5);
          const double bytes = static_cast<double>(w.size());
          const double flops = 2.0 * m * s.rows * s.cols;
          char shape[32];
          std::snprintf(shape, sizeof(shape), "%lldx%lld", static_cast<long long>(s.rows),
                        static_cast<long long>(s.cols));
          std::printf("%-5s %-12s %4lld %3d %12.1f %9.2f %10.2f\n", DTypeName(type), shape,
                      static_cast<long long>(m), threads, sec * 1e6, bytes / sec * 1e-9,
                      flops / sec * 1e-9);
        }
      }
    }
  }
}

// All matmuls of one SmolLM2-135M forward (Q4_1 layers, Q8_0 tied output) for m tokens.
void BenchModel(int64_t m, int threads) {
  struct Proj {
    int64_t rows, cols;
    DType type;
    int count;
  };
  const Proj projs[] = {{576, 576, DType::kQ4_1, 60},
                        {192, 576, DType::kQ4_1, 60},
                        {1536, 576, DType::kQ4_1, 60},
                        {576, 1536, DType::kQ4_1, 30},
                        {49152, 576, DType::kQ8_0, 1}};
  std::vector<std::vector<uint8_t>> storage;
  std::vector<std::pair<QuantMatrix, int>> mats;
  for (const Proj& p : projs) {
    storage.push_back(MakeWeights(p.type, p.rows * p.count, p.cols));
    const size_t rb = RowBytes(p.type, p.cols);
    for (int i = 0; i < p.count; ++i) {
      mats.push_back(
          {QuantMatrix{p.type, p.rows, p.cols, storage.back().data() + i * p.rows * rb, rb}, 0});
    }
  }
  const std::vector<float> x = Random(m * 1536, 9);
  std::vector<float> y(m * 49152);
  ThreadPool pool(threads);
  const std::clock_t cpu_start = std::clock();
  int64_t calls = 0;
  const double sec = TimeIt(
      [&] {
        ++calls;
        for (auto& [w, unused] : mats) QuantMatMul(w, x.data(), m, y.data(), &pool);
      },
      1.0);
  const double cpu_ms = 1e3 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC /
                        static_cast<double>(calls);
  std::printf(
      "SmolLM2-135M all matmuls (Q4_1 + Q8_0 output), m=%lld threads=%d: %.3f ms wall "
      "= %.1f tokens/s; CPU %.3f ms (all threads); %zu calls\n",
      static_cast<long long>(m), threads, sec * 1e3, m / sec, cpu_ms, mats.size());
}

void BenchLora() {
  const int64_t n = 32, d = 576;
  const int32_t rank = 16;
  std::printf("\nSegmentedLora rank %d, %lld tokens, d_in = d_out = %lld, fp16 weights\n", rank,
              static_cast<long long>(n), static_cast<long long>(d));
  for (int adapters : {1, 4, 32}) {
    std::vector<std::vector<uint16_t>> a(adapters), b(adapters);
    std::vector<LoraSegment> segs;
    for (int i = 0; i < adapters; ++i) {
      for (float f : Random(rank * d, i)) a[i].push_back(Fp32ToFp16(f * 0.1f));
      for (float f : Random(rank * d, 100 + i)) b[i].push_back(Fp32ToFp16(f * 0.1f));
      const int64_t begin = n * i / adapters, end = n * (i + 1) / adapters;
      segs.push_back({begin, end, rank, 2.0f, DType::kF16, a[i].data(), b[i].data()});
    }
    const std::vector<float> x = Random(n * d, 1);
    std::vector<float> y(n * d);
    std::vector<uint8_t> ws(SegmentedLoraWorkspaceBytes(n, segs));
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      const double sec =
          TimeIt([&] { SegmentedLora(x.data(), d, y.data(), d, segs, ws.data(), &pool); }, 0.2);
      const double bytes = adapters * 2.0 * rank * d * 2;
      const double flops = 2.0 * n * 2 * rank * d;
      std::printf("  adapters %2d threads %d: %8.1f us  %6.2f GB/s adapter bytes  %6.2f GFLOP/s\n",
                  adapters, threads, sec * 1e6, bytes / sec * 1e-9, flops / sec * 1e-9);
    }
  }
}

// One decode step's LoRA work on SmolLM2-135M: 30 layers x 7 projections, rank 16 fp16 on all
// of them, `tokens` tokens spread evenly over `adapters` segments (each adapter's weights are
// distinct memory, 9.77 MB per adapter). `cold`: stream a large buffer between steps (untimed),
// as the base weights do in a real step, so the adapters come from DRAM.
void BenchLoraStep(int adapters, int64_t tokens, int threads, bool cold) {
  constexpr int kLayers = 30;
  constexpr int32_t kRank = 16;
  struct Proj {
    int64_t d_in, d_out;
  };
  const Proj projs[] = {{576, 576},  {576, 192},  {576, 192}, {576, 576},
                        {576, 1536}, {576, 1536}, {1536, 576}};
  size_t per_adapter = 0;  // halves
  for (const Proj& p : projs) per_adapter += kLayers * kRank * (p.d_in + p.d_out);
  std::vector<std::vector<uint16_t>> w(adapters);
  uint32_t lcg = 12345;
  for (auto& v : w) {
    v.resize(per_adapter);
    for (uint16_t& h : v) {
      lcg = lcg * 1664525u + 1013904223u;
      h = Fp32ToFp16((static_cast<float>(lcg >> 8) / 16777216.0f - 0.5f) * 0.1f);
    }
  }
  std::vector<std::vector<LoraSegment>> segs(kLayers * 7);
  for (int i = 0; i < adapters; ++i) {
    size_t off = 0;
    for (int l = 0; l < kLayers; ++l) {
      for (int p = 0; p < 7; ++p) {
        const uint16_t* a = w[i].data() + off;
        off += kRank * projs[p].d_in;
        const uint16_t* b = w[i].data() + off;
        off += kRank * projs[p].d_out;
        segs[l * 7 + p].push_back(
            {tokens * i / adapters, tokens * (i + 1) / adapters, kRank, 2.0f, DType::kF16, a, b});
      }
    }
  }
  const std::vector<float> x = Random(tokens * 1536, 1);
  std::vector<float> y(tokens * 1536);
  std::vector<uint8_t> ws(SegmentedLoraWorkspaceBytes(tokens, segs[0]));
  std::vector<float> evict(cold ? (size_t{768} << 20) / sizeof(float) : 0, 1.0f);
  float sink = 0.0f;
  ThreadPool pool(threads);
  std::vector<double> times;
  for (int iter = 0; iter < (cold ? 8 : 30); ++iter) {
    for (size_t i = 0; i < evict.size(); i += 16) sink += evict[i];
    const auto start = std::chrono::steady_clock::now();
    for (int l = 0; l < kLayers; ++l) {
      for (int p = 0; p < 7; ++p) {
        SegmentedLora(x.data(), projs[p].d_in, y.data(), projs[p].d_out, segs[l * 7 + p], ws.data(),
                      &pool);
      }
    }
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  const double best = times[0], median = times[times.size() / 2];
  const double bytes = static_cast<double>(adapters) * per_adapter * 2;
  std::printf(
      "  step %2d adapters x %2lld tokens, threads %d, %-4s: best %7.2f ms (%6.2f GB/s)  "
      "median %7.2f ms (%6.2f GB/s)  [%.1f MB]%s\n",
      adapters, static_cast<long long>(tokens / adapters), threads, cold ? "cold" : "hot",
      best * 1e3, bytes / best * 1e-9, median * 1e3, bytes / median * 1e-9, bytes * 1e-6,
      sink == 12345.0f ? " " : "");
}

void BenchLoraSteps() {
  std::printf(
      "\nSegmentedLora decode step: SmolLM2-135M, 30 layers x 7 projections, rank 16 fp16\n");
  for (int threads : {1, 2}) {
    for (int adapters : {32, 4, 1}) BenchLoraStep(adapters, 32, threads, /*cold=*/true);
    for (int adapters : {4, 1}) BenchLoraStep(adapters, 32, threads, /*cold=*/false);
  }
}

void BenchPool() {
  for (int threads : {2}) {
    ThreadPool pool(threads);
    int64_t sink = 0;
    const double sec = TimeIt(
        [&] { pool.ParallelFor(threads, [&](int64_t b, int64_t e) { (void)b, (void)e; }); }, 0.2);
    std::printf("\nThreadPool(%d) empty ParallelFor: %.2f us/call\n", threads, sec * 1e6);
    (void)sink;
  }
}

}  // namespace
}  // namespace lorad::kernels

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const bool model_only = argc > 1 && std::strcmp(argv[1], "--model") == 0;
  const bool lora_only = argc > 1 && std::strcmp(argv[1], "--lora") == 0;
  // --isa NAME as the last two arguments runs the kernels of that ISA (A/B comparisons).
  if (argc > 2 && std::strcmp(argv[argc - 2], "--isa") == 0) {
    for (lorad::kernels::Isa isa : {lorad::kernels::Isa::kScalar, lorad::kernels::Isa::kAvx2,
                                    lorad::kernels::Isa::kAvxVnni, lorad::kernels::Isa::kAvx512}) {
      if (std::strcmp(argv[argc - 1], lorad::kernels::IsaName(isa)) == 0) {
        lorad::kernels::SetKernelIsaForTesting(isa);
      }
    }
    argc -= 2;
  }
  std::printf("kernel ISA: %s\n\n", lorad::kernels::IsaName(lorad::kernels::ActiveIsa()));
  if (argc > 3 && std::strcmp(argv[1], "--lora-step") == 0) {  // one case, e.g. for perf
    lorad::kernels::BenchLoraStep(std::atoi(argv[2]), 32, std::atoi(argv[3]), /*cold=*/false);
    return 0;
  }
  if (lora_only) {
    lorad::kernels::BenchLora();
    lorad::kernels::BenchLoraSteps();
    return 0;
  }
  lorad::kernels::BenchPool();
  for (int threads : {1, 2}) {
    for (int64_t m : {1, 32, 128}) lorad::kernels::BenchModel(m, threads);
  }
  if (model_only) return 0;
  lorad::kernels::BenchMatMul(quick);
  lorad::kernels::BenchLora();
  lorad::kernels::BenchLoraSteps();
  return 0;
}
