#include "engine/ops/pointwise_op.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/vec_math.h"
#include "engine/ops/op_checks.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops {
namespace {

absl::Status CheckSizes(const char* op, int64_t n, const void* p, const void* q) {
  if (n < 0 || p == nullptr || q == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": bad size ", n, " or null pointer"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SiluMul(const OpContext& ctx, DType act_dtype, void* gate, const void* up, int64_t n) {
  LORAD_RETURN_IF_ERROR(CheckSizes("SiluMul", n, gate, up));
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "SiluMul", act_dtype));
  if (ctx.device == Device::kCuda) return internal::SiluMulCuda(ctx, act_dtype, gate, up, n);
  vec::SiluMul(static_cast<float*>(gate), static_cast<const float*>(up), n);
  return absl::OkStatus();
}

absl::Status Add(const OpContext& ctx, DType act_dtype, const void* x, void* y, int64_t n) {
  LORAD_RETURN_IF_ERROR(CheckSizes("Add", n, x, y));
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "Add", act_dtype));
  if (ctx.device == Device::kCuda) return internal::AddCuda(ctx, act_dtype, x, y, n);
  vec::Add(static_cast<const float*>(x), static_cast<float*>(y), n);
  return absl::OkStatus();
}

absl::Status AddBias(const OpContext& ctx, DType act_dtype, const float* bias, void* y,
                     int64_t rows, int64_t dim) {
  LORAD_RETURN_IF_ERROR(CheckSizes("AddBias", rows, bias, y));
  if (dim < 1) return absl::InvalidArgumentError(absl::StrCat("AddBias: bad dim ", dim));
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "AddBias", act_dtype));
  if (ctx.device == Device::kCuda) {
    return internal::AddBiasCuda(ctx, act_dtype, bias, y, rows, dim);
  }
  auto* yf = static_cast<float*>(y);
  for (int64_t r = 0; r < rows; ++r) vec::Add(bias, yf + r * dim, dim);
  return absl::OkStatus();
}

}  // namespace lorad::ops
