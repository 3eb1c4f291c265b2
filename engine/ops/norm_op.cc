#include "engine/ops/norm_op.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/vec_math.h"
#include "engine/ops/op_checks.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops {

absl::Status RmsNorm(const OpContext& ctx, DType act_dtype, const void* x, const float* weight,
                     float eps, int64_t rows, int64_t dim, void* y) {
  if (rows < 0 || dim < 1 || x == nullptr || weight == nullptr || y == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("RmsNorm: bad sizes rows ", rows, " dim ", dim, " or null pointer"));
  }
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "RmsNorm", act_dtype));
  if (ctx.device == Device::kCuda) {
    return internal::RmsNormCuda(ctx, act_dtype, x, weight, eps, rows, dim, y);
  }
  const auto* xf = static_cast<const float*>(x);
  auto* yf = static_cast<float*>(y);
  for (int64_t r = 0; r < rows; ++r) vec::RmsNorm(xf + r * dim, weight, eps, dim, yf + r * dim);
  return absl::OkStatus();
}

}  // namespace lorad::ops
