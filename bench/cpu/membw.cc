// Read bandwidth of this machine: threads stream-summing a 1 GiB buffer (best of 5; -ffast-math
// lets the sum vectorize so it is not add-latency bound), the
// roofline denominator for decode (bytes of weights read per token / bandwidth).
//   g++ -O3 -ffast-math -march=native -fopenmp bench/cpu/membw.cc -o /tmp/membw && /tmp/membw
//   [threads]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  const size_t n = (size_t{1} << 30) / sizeof(double);
  std::vector<double> a(n, 1.0);
  double best = 0.0, sink = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    double sum = 0.0;
#pragma omp parallel for num_threads(threads) reduction(+ : sum)
    for (size_t i = 0; i < n; ++i) sum += a[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink += sum;
    best = std::max(best, n * sizeof(double) / s / 1e9);
  }
  std::printf("threads=%d read bandwidth %.1f GB/s (checksum %.0f)\n", threads, best, sink);
  return 0;
}
