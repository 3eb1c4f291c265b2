#include "engine/kernels/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lorad::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// F16C and AVX-VNNI straight from CPUID: clang's __builtin_cpu_supports does not know them.
bool HasF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}

bool HasAvxVnni() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax & (1u << 4)) != 0;
}
#endif

Isa DetectIsa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && HasF16c();
  if (!avx2) return Isa::kScalar;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
    return Isa::kAvx512;
  }
  if (HasAvxVnni()) return Isa::kAvxVnni;
  return Isa::kAvx2;
#else
  return Isa::kScalar;
#endif
}

Isa BestIsa() {
  static const Isa best = DetectIsa();
  return best;
}

Isa ClampToSupported(Isa isa) {
  while (!IsaSupported(isa)) isa = static_cast<Isa>(static_cast<int>(isa) - 1);
  return isa;
}

// The level LORAD_CPU_ISA selects (clamped to what the CPU runs), or -1 when it is unset, and
// the log line describing the choice.
struct EnvSelection {
  int forced = -1;
  std::string description;
};

const EnvSelection& FromEnvironment() {
  static const EnvSelection selection = [] {
    EnvSelection s;
    const std::string detected = IsaName(BestIsa());
    const char* value = std::getenv("LORAD_CPU_ISA");
    if (value == nullptr || *value == '\0') {
      s.description = "CPU kernels: " + detected + " (detected)";
      return s;
    }
    Isa wanted;
    if (!ParseIsa(value, &wanted)) {
      s.description = "CPU kernels: " + detected + " (detected; LORAD_CPU_ISA=\"" +
                      std::string(value) +
                      "\" is not one of scalar, avx2, avxvnni, avx512 and was ignored)";
      return s;
    }
    const Isa used = ClampToSupported(wanted);
    s.forced = static_cast<int>(used);
    s.description = "CPU kernels: " + std::string(IsaName(used)) + " (LORAD_CPU_ISA=" + value +
                    (used == wanted ? "" : ", which this CPU lacks") + "; detected " + detected +
                    ")";
    return s;
  }();
  return selection;
}

std::atomic<int>& Override() {
  static std::atomic<int> value{FromEnvironment().forced};
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
    return HasAvxVnni();
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
  isa = ClampToSupported(isa);
  Override().store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

bool ParseIsa(const char* name, Isa* isa) {
  for (Isa candidate : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    if (std::strcmp(name, IsaName(candidate)) == 0) {
      *isa = candidate;
      return true;
    }
  }
  return false;
}

const char* IsaSelectionDescription() { return FromEnvironment().description.c_str(); }

}  // namespace lorad::kernels
