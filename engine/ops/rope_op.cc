#include "engine/ops/rope_op.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/base/target_clones.h"
#include "engine/ops/op_checks.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops {
namespace {

// One row's heads on the CPU. The FMA clone fuses the rotations' first products in hardware; the
// default clone gets the same bits from the C library's fma().
LORAD_TARGET_CLONES("arch=x86-64-v3", "default")
void RotateRow(const RopeTable& t, float* v, int32_t num_heads, int64_t position) {
  const int32_t half = t.head_dim / 2;
  float cos_sin[2 * 256];
  float* cs = half <= 256 ? cos_sin : new float[2 * half];
  float theta = static_cast<float>(position);
  for (int32_t i = 0; i < half; ++i) {
    const float a = theta / t.freq_factor[i];
    cs[2 * i] = std::cos(a);
    cs[2 * i + 1] = std::sin(a);
    theta *= t.theta_scale;
  }
  for (int32_t h = 0; h < num_heads; ++h) {
    float* x = v + static_cast<int64_t>(h) * t.head_dim;
    for (int32_t i = 0; i < half; ++i) {
      const int32_t i0 = t.neox ? i : 2 * i;
      const int32_t i1 = t.neox ? i + half : 2 * i + 1;
      const float x0 = x[i0], x1 = x[i1];
      x[i0] = std::fma(x0, cs[2 * i], -(x1 * cs[2 * i + 1]));
      x[i1] = std::fma(x0, cs[2 * i + 1], x1 * cs[2 * i]);
    }
  }
  if (cs != cos_sin) delete[] cs;
}

}  // namespace

RopeTable::RopeTable(const ModelSpec& spec, const std::vector<float>& freq_factors)
    : head_dim(spec.head_dim),
      neox(spec.rope_neox),
      freq_factor(spec.head_dim / 2, 1.0f),
      theta_scale(std::pow(spec.rope_theta, -2.0f / static_cast<float>(spec.head_dim))) {
  if (freq_factors.size() == freq_factor.size()) freq_factor = freq_factors;
}

absl::Status ApplyRope(const OpContext& ctx, const RopeTable& table, DType act_dtype, void* x,
                       int64_t rows, int32_t num_heads, const int32_t* positions) {
  if (rows < 0 || num_heads < 1 || table.head_dim < 2 || table.head_dim % 2 != 0 || x == nullptr ||
      (rows > 0 && positions == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("ApplyRope: bad sizes rows ", rows, " heads ",
                                                   num_heads, " head_dim ", table.head_dim,
                                                   " or null pointer"));
  }
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "ApplyRope", act_dtype));
  if (ctx.device == Device::kCuda) {
    return internal::ApplyRopeCuda(ctx, table, act_dtype, x, rows, num_heads, positions);
  }
  auto* xf = static_cast<float*>(x);
  const int64_t row = int64_t{num_heads} * table.head_dim;
  for (int64_t r = 0; r < rows; ++r) {
    if (positions[r] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ApplyRope: negative position ", positions[r], " at row ", r));
    }
  }
  for (int64_t r = 0; r < rows; ++r) RotateRow(table, xf + r * row, num_heads, positions[r]);
  return absl::OkStatus();
}

}  // namespace lorad::ops
