// LORAD_CPU_ISA: the environment variable that lowers the kernel level for the whole process.
// ctest runs this suite three times: unset, "avx2" and "bogus" (tests/kernels/CMakeLists.txt).
#include "engine/kernels/cpu_isa.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

namespace lorad::kernels {
namespace {

Isa Best() { return testing::SupportedIsas().back(); }

TEST(CpuIsaTest, ParsesEveryLevelByItsName) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    Isa parsed;
    ASSERT_TRUE(ParseIsa(IsaName(isa), &parsed)) << IsaName(isa);
    EXPECT_EQ(parsed, isa);
  }
  Isa parsed;
  EXPECT_FALSE(ParseIsa("AVX2", &parsed));
  EXPECT_FALSE(ParseIsa("", &parsed));
  EXPECT_FALSE(ParseIsa("sse4", &parsed));
}

TEST(CpuIsaTest, TheEnvironmentSetsTheActiveLevel) {
  const char* env = std::getenv("LORAD_CPU_ISA");
  const std::string description = IsaSelectionDescription();
  Isa wanted;
  if (env == nullptr || *env == '\0') {
    EXPECT_EQ(ActiveIsa(), Best());
    EXPECT_NE(description.find("(detected)"), std::string::npos) << description;
  } else if (!ParseIsa(env, &wanted)) {
    EXPECT_EQ(ActiveIsa(), Best());
    EXPECT_NE(description.find("was ignored"), std::string::npos) << description;
  } else {
    Isa expected = wanted;
    while (!IsaSupported(expected)) expected = static_cast<Isa>(static_cast<int>(expected) - 1);
    EXPECT_EQ(ActiveIsa(), expected) << description;
    EXPECT_NE(description.find(std::string("LORAD_CPU_ISA=") + env), std::string::npos)
        << description;
  }
}

TEST(CpuIsaTest, ForcingClampsToWhatTheCpuRuns) {
  const Isa before = ActiveIsa();
  EXPECT_EQ(SetKernelIsaForTesting(Isa::kScalar), Isa::kScalar);
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  EXPECT_EQ(SetKernelIsaForTesting(Isa::kAvx512),
            IsaSupported(Isa::kAvx512) ? Isa::kAvx512 : ActiveIsa());
  SetKernelIsaForTesting(before);
}

}  // namespace
}  // namespace lorad::kernels
