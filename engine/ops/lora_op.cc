#include "engine/ops/lora_op.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/ops/op_checks.h"
#include "engine/ops/ops_backends.h"

namespace lorad::ops {

const char* DeviceName(Device device) { return device == Device::kCuda ? "cuda" : "cpu"; }

namespace {

absl::Status CheckSegments(int64_t num_tokens, absl::Span<const kernels::LoraSegment> segs) {
  int64_t prev_end = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    const kernels::LoraSegment& s = segs[i];
    if (s.token_begin < prev_end || s.token_end < s.token_begin || s.token_end > num_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("LoRA segment ", i, " [", s.token_begin, ", ", s.token_end,
                       ") overlaps the previous one or lies outside [0, ", num_tokens, ")"));
    }
    if (s.rank < 1 || s.a == nullptr || s.b == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("LoRA segment ", i, ": rank ", s.rank, " < 1 or null A/B"));
    }
    prev_end = s.token_end;
  }
  return absl::OkStatus();
}

}  // namespace

size_t ApplyLoraWorkspaceBytes(Device device, int64_t num_tokens,
                               absl::Span<const kernels::LoraSegment> segs) {
  if (device == Device::kCuda) return internal::ApplyLoraCudaWorkspaceBytes(num_tokens, segs);
  return kernels::SegmentedLoraWorkspaceBytes(num_tokens, segs);
}

absl::Status ApplyLora(const OpContext& ctx, DType act_dtype, const void* x, int64_t d_in, void* y,
                       int64_t d_out, int64_t num_tokens,
                       absl::Span<const kernels::LoraSegment> segs) {
  if (d_in < 1 || d_out < 1 || num_tokens < 0 || x == nullptr || y == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("ApplyLora: bad sizes d_in ", d_in, " d_out ",
                                                   d_out, " tokens ", num_tokens, " or null x/y"));
  }
  if (absl::Status s = CheckSegments(num_tokens, segs); !s.ok()) return s;
  LORAD_RETURN_IF_ERROR(internal::CheckActivations(ctx, "ApplyLora", act_dtype));
  const bool cuda = ctx.device == Device::kCuda;
  for (const kernels::LoraSegment& s : segs) {
    if (cuda && s.dtype != act_dtype) {
      return absl::InvalidArgumentError(
          "ApplyLora on cuda: adapter weights must have the activations' dtype");
    }
    if (!cuda && s.dtype != DType::kF32 && s.dtype != DType::kF16) {
      return absl::InvalidArgumentError("ApplyLora on cpu: adapter weights must be F32 or F16");
    }
  }
  const size_t need = ApplyLoraWorkspaceBytes(ctx.device, num_tokens, segs);
  if (ctx.workspace_bytes < need || (need > 0 && ctx.workspace == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ApplyLora: workspace of ", ctx.workspace_bytes, " bytes; needs ", need));
  }
  if (cuda) return internal::ApplyLoraCuda(ctx, act_dtype, x, d_in, y, d_out, num_tokens, segs);
  return internal::ApplyLoraCpu(ctx, static_cast<const float*>(x), d_in, static_cast<float*>(y),
                                d_out, num_tokens, segs);
}

namespace internal {

absl::Status ApplyLoraCpu(const OpContext& ctx, const float* x, int64_t d_in, float* y,
                          int64_t d_out, int64_t num_tokens,
                          absl::Span<const kernels::LoraSegment> segs) {
  kernels::SegmentedLora(x, d_in, y, d_out, segs, ctx.workspace, ctx.pool);
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace lorad::ops
