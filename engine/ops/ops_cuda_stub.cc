// The CUDA side of the op layer in a build without CUDA (LORAD_WITH_CUDA=OFF): every CUDA
// dispatch answers FAILED_PRECONDITION "built without CUDA".
#include "engine/ops/ops_backends.h"

namespace lorad::ops::internal {

absl::Status CudaUsable() {
  return absl::FailedPreconditionError(
      "device cuda: built without CUDA (configure with -DLORAD_WITH_CUDA=ON)");
}

absl::Status ApplyLoraCuda(const OpContext&, DType, const void*, int64_t, void*, int64_t, int64_t,
                           absl::Span<const kernels::LoraSegment>) {
  return CudaUsable();
}

size_t ApplyLoraCudaWorkspaceBytes(int64_t, absl::Span<const kernels::LoraSegment>) { return 0; }

absl::Status QuantMatMulCuda(const OpContext&, DType, const void*, int64_t, int64_t, int64_t, DType,
                             const void*, int64_t, void*) {
  return CudaUsable();
}

absl::Status RmsNormCuda(const OpContext&, DType, const void*, const float*, float, int64_t,
                         int64_t, void*) {
  return CudaUsable();
}

absl::Status SiluMulCuda(const OpContext&, DType, void*, const void*, int64_t) {
  return CudaUsable();
}

absl::Status AddCuda(const OpContext&, DType, const void*, void*, int64_t) { return CudaUsable(); }

absl::Status AddBiasCuda(const OpContext&, DType, const float*, void*, int64_t, int64_t) {
  return CudaUsable();
}

absl::Status ApplyRopeCuda(const OpContext&, const RopeTable&, DType, void*, int64_t, int32_t,
                           const int32_t*) {
  return CudaUsable();
}

}  // namespace lorad::ops::internal
