#include "engine/kernels/cpu_isa.h"

#include <atomic>

namespace lorad::kernels {
namespace {

Isa DetectIsa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (!avx2) return Isa::kScalar;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avxvnni")) return Isa::kAvxVnni;
  return Isa::kAvx2;
#else
  return Isa::kScalar;
#endif
}

Isa BestIsa() {
  static const Isa best = DetectIsa();
  return best;
}

std::atomic<int>& Override() {
  static std::atomic<int> value{-1};
  return value;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvxVnni:
      return "avxvnni";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool IsaSupported(Isa isa) {
  const Isa best = BestIsa();
  if (isa == Isa::kAvxVnni && best == Isa::kAvx512) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avxvnni");
#else
    return false;
#endif
  }
  return static_cast<int>(isa) <= static_cast<int>(best);
}

Isa ActiveIsa() {
  const int forced = Override().load(std::memory_order_relaxed);
  return forced >= 0 ? static_cast<Isa>(forced) : BestIsa();
}

Isa SetKernelIsaForTesting(Isa isa) {
  while (!IsaSupported(isa)) isa = static_cast<Isa>(static_cast<int>(isa) - 1);
  Override().store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

}  // namespace lorad::kernels
