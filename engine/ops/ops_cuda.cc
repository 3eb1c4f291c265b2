// The CUDA side of the op layer (LORAD_WITH_CUDA=ON): checks that a device exists, turns the
// op's segment list into the SGMV kernels' device-side table (staged at the front of the
// caller's workspace) and launches on the context's stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/kernels/cuda/cuda_available.h"
#include "engine/kernels/cuda/pointwise.cuh"
#include "engine/kernels/cuda/quant_matmul.cuh"
#include "engine/kernels/cuda/rope.cuh"
#include "engine/kernels/cuda/sgmv.cuh"
#include "engine/ops/ops_backends.h"

namespace lorad::ops::internal {
namespace {

constexpr size_t kAlign = 256;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The segment table with a no-op entry (rank 0) for every gap of base-only tokens, so that
// the entries partition [first token, last token) as SGMV's seg_start requires.
struct Table {
  std::vector<int64_t> seg_start;
  std::vector<const void*> a, b;
  std::vector<int32_t> ranks;
  std::vector<float> scales;
  int32_t max_rank = 1;

  size_t Bytes() const {
    const size_t n = ranks.size();
    return AlignUp(seg_start.size() * sizeof(int64_t)) + 2 * AlignUp(n * sizeof(void*)) +
           AlignUp(n * sizeof(int32_t)) + AlignUp(n * sizeof(float));
  }
};

Table MakeTable(absl::Span<const kernels::LoraSegment> segs) {
  Table t;
  int64_t at = segs.empty() ? 0 : segs.front().token_begin;
  t.seg_start.push_back(at);
  auto add = [&](int64_t end, const void* a, const void* b, int32_t rank, float scale) {
    t.seg_start.push_back(end);
    t.a.push_back(a);
    t.b.push_back(b);
    t.ranks.push_back(rank);
    t.scales.push_back(scale);
    t.max_rank = std::max(t.max_rank, rank);
  };
  for (const kernels::LoraSegment& s : segs) {
    if (s.token_begin > at) add(s.token_begin, nullptr, nullptr, 0, 0.0f);
    add(s.token_end, s.a, s.b, s.rank, s.scale);
    at = s.token_end;
  }
  return t;
}

absl::Status FromCuda(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  if (err == cudaErrorInvalidValue) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
  }
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
}

}  // namespace

absl::Status CudaUsable() {
  const std::string reason = cuda::CudaUnavailableReason();
  if (reason.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("device cuda: ", reason));
}

size_t ApplyLoraCudaWorkspaceBytes(int64_t num_tokens,
                                   absl::Span<const kernels::LoraSegment> segs) {
  const Table t = MakeTable(segs);
  return t.Bytes() + cuda::SgmvWorkspaceBytes(num_tokens, t.max_rank);
}

absl::Status ApplyLoraCuda(const OpContext& ctx, DType act_dtype, const void* x, int64_t d_in,
                           void* y, int64_t d_out, int64_t num_tokens,
                           absl::Span<const kernels::LoraSegment> segs) {
  if (segs.empty() || num_tokens == 0) return absl::OkStatus();
  const Table t = MakeTable(segs);
  if (t.max_rank > cuda::kLoraMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("ApplyLora on cuda: rank ", t.max_rank, " > ", cuda::kLoraMaxRank));
  }
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  auto* base = static_cast<uint8_t*>(ctx.workspace);
  size_t off = 0;
  auto stage = [&](const void* host, size_t bytes) -> absl::StatusOr<void*> {
    void* dst = base + off;
    off += AlignUp(bytes);
    absl::Status s = FromCuda(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream),
                              "ApplyLora: uploading the segment table");
    if (!s.ok()) return s;
    return dst;
  };
  const size_t n = t.ranks.size();
  auto seg = stage(t.seg_start.data(), t.seg_start.size() * sizeof(int64_t));
  auto a = stage(t.a.data(), n * sizeof(void*));
  auto b = stage(t.b.data(), n * sizeof(void*));
  auto ranks = stage(t.ranks.data(), n * sizeof(int32_t));
  auto scales = stage(t.scales.data(), n * sizeof(float));
  for (const auto* r : {&seg, &a, &b, &ranks, &scales}) {
    if (!r->ok()) return r->status();
  }
  // The host vectors above must outlive the copies: wait for them before returning.
  cuda::LoraBatch batch;
  batch.seg_start = static_cast<const int64_t*>(*seg);
  batch.num_entries = static_cast<int32_t>(n);
  batch.a = static_cast<const void* const*>(*a);
  batch.b = static_cast<const void* const*>(*b);
  batch.ranks = static_cast<const int32_t*>(*ranks);
  batch.scales = static_cast<const float*>(*scales);
  batch.max_rank = t.max_rank;
  absl::Status s = FromCuda(cuda::Sgmv(act_dtype, batch, x, d_in, d_in, y, d_out, d_out, num_tokens,
                                       base + off, ctx.workspace_bytes - off, stream),
                            "ApplyLora: SGMV launch");
  absl::Status sync = FromCuda(cudaStreamSynchronize(stream), "ApplyLora: stream");
  return s.ok() ? sync : s;
}

absl::Status QuantMatMulCuda(const OpContext& ctx, DType weight_dtype, const void* w,
                             int64_t row_bytes, int64_t rows, int64_t cols, DType act_dtype,
                             const void* x, int64_t m, void* y) {
  if (weight_dtype != DType::kNF4 && weight_dtype != DType::kQ4_0 && weight_dtype != DType::kQ4_1 &&
      weight_dtype != DType::kQ8_0) {
    return absl::InvalidArgumentError(
        absl::StrCat("QuantMatMul on cuda takes NF4, Q4_0, Q4_1 or Q8_0 weights, not ",
                     DTypeName(weight_dtype)));
  }
  return FromCuda(cuda::QuantMatmul(act_dtype, weight_dtype, w, row_bytes, rows, cols, x, cols, m,
                                    y, rows, static_cast<cudaStream_t>(ctx.cuda_stream)),
                  "QuantMatMul: launch");
}

absl::Status RmsNormCuda(const OpContext& ctx, DType act_dtype, const void* x, const float* weight,
                         float eps, int64_t rows, int64_t dim, void* y) {
  return FromCuda(cuda::RmsNorm(act_dtype, x, weight, eps, rows, dim, y,
                                static_cast<cudaStream_t>(ctx.cuda_stream)),
                  "RmsNorm: launch");
}

absl::Status SiluMulCuda(const OpContext& ctx, DType act_dtype, void* gate, const void* up,
                         int64_t n) {
  return FromCuda(cuda::SiluMul(act_dtype, gate, up, n, static_cast<cudaStream_t>(ctx.cuda_stream)),
                  "SiluMul: launch");
}

absl::Status AddCuda(const OpContext& ctx, DType act_dtype, const void* x, void* y, int64_t n) {
  return FromCuda(cuda::Add(act_dtype, x, y, n, static_cast<cudaStream_t>(ctx.cuda_stream)),
                  "Add: launch");
}

absl::Status AddBiasCuda(const OpContext& ctx, DType act_dtype, const float* bias, void* y,
                         int64_t rows, int64_t dim) {
  return FromCuda(
      cuda::AddBias(act_dtype, bias, y, rows, dim, static_cast<cudaStream_t>(ctx.cuda_stream)),
      "AddBias: launch");
}

absl::Status ApplyRopeCuda(const OpContext& ctx, const RopeTable& table, DType act_dtype, void* x,
                           int64_t rows, int32_t num_heads, const int32_t* positions) {
  if (table.head_dim > cuda::kRopeMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("ApplyRope on cuda: head_dim ", table.head_dim, " > ", cuda::kRopeMaxHeadDim));
  }
  cuda::RopeParams p;
  p.head_dim = table.head_dim;
  p.neox = table.neox;
  p.theta_scale = table.theta_scale;
  std::copy(table.freq_factor.begin(), table.freq_factor.end(), p.freq_factor);
  return FromCuda(cuda::Rope(act_dtype, p, x, rows, num_heads, positions,
                             static_cast<cudaStream_t>(ctx.cuda_stream)),
                  "ApplyRope: launch");
}

}  // namespace lorad::ops::internal
