#include "engine/ops/quant_matmul_op.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/quant_matmul.h"
#include "engine/ops/op_checks.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops {

absl::Status QuantMatMul(const OpContext& ctx, DType weight_dtype, const void* w, int64_t row_bytes,
                         int64_t rows, int64_t cols, DType act_dtype, const void* x, int64_t m,
                         void* y) {
  if (rows < 1 || cols < 1 || m < 0 || w == nullptr || x == nullptr || y == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("QuantMatMul: bad sizes rows ", rows, " cols ",
                                                   cols, " m ", m, " or null pointer"));
  }
  const int64_t block = BlockElements(weight_dtype);
  if (block <= 0 || cols % block != 0 ||
      row_bytes != static_cast<int64_t>(RowBytes(weight_dtype, cols))) {
    return absl::InvalidArgumentError(
        absl::StrCat("QuantMatMul: ", cols, " columns of ", DTypeName(weight_dtype),
                     " need a multiple of its block size and rows of ",
                     RowBytes(weight_dtype, cols), " bytes (got ", row_bytes, ")"));
  }
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "QuantMatMul", act_dtype));
  if (ctx.device == Device::kCuda) {
    return internal::QuantMatMulCuda(ctx, weight_dtype, w, row_bytes, rows, cols, act_dtype, x, m,
                                     y);
  }
  kernels::QuantMatMul({weight_dtype, rows, cols, w, static_cast<size_t>(row_bytes)},
                       static_cast<const float*>(x), m, static_cast<float*>(y), ctx.pool);
  return absl::OkStatus();
}

}  // namespace lorad::ops
