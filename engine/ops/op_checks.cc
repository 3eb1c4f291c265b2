#include "engine/ops/op_checks.h"

#include "absl/strings/str_cat.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops::internal {

absl::Status CheckActivations(const OpContext& ctx, const char* op, DType act_dtype) {
  if (ctx.device == Device::kCuda) {
    if (absl::Status s = CudaUsable(); !s.ok()) return s;
    if (act_dtype != DType::kF16 && act_dtype != DType::kBF16) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, " on cuda takes F16 or BF16 activations, not ", DTypeName(act_dtype)));
    }
    return absl::OkStatus();
  }
  if (act_dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " on cpu takes F32 activations, not ", DTypeName(act_dtype)));
  }
  return absl::OkStatus();
}

}  // namespace lorad::ops::internal
