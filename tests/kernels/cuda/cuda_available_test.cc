#include "engine/kernels/cuda/cuda_available.h"

#include <gtest/gtest.h>

namespace lorad::cuda {
namespace {

TEST(CudaAvailableTest, AnswersWhetherBuiltWithCuda) {
  EXPECT_EQ(CudaKernelsBuilt(), LORAD_EXPECT_CUDA != 0);
  if (!CudaKernelsBuilt()) {
    EXPECT_EQ(CudaDeviceCount(), 0);
    EXPECT_EQ(CudaUnavailableReason(), "built without CUDA");
  } else {
    // With a device the reason is empty; without one it names the cause.
    EXPECT_EQ(CudaUnavailableReason().empty(), CudaDeviceCount() > 0);
  }
}

}  // namespace
}  // namespace lorad::cuda
