// CausalAttention (declared in fused_ops.h): per (sequence, head) GEMMs straight on the
// projections' row-major layout (BLAS leading dimensions instead of transposes and GQA
// copies), skipping key blocks wholly above the diagonal, and a fused causal softmax.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ATen/Parallel.h"
#include "engine/finetune/fused_kernels.h"
#include "engine/finetune/fused_ops.h"

namespace lorad::finetune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Query rows per GEMM block: block [r0, r1) only multiplies keys [0, r1).
constexpr int64_t kBlockRows = 64;

// The shapes of one call; pointers to (sequence b, head h) slices.
struct Geometry {
  int64_t batch, heads, kv_heads, head_dim, len;
  int64_t q_ld() const { return heads * head_dim; }
  int64_t kv_ld() const { return kv_heads * head_dim; }
  // Offset of (b, h)'s [len, head_dim] slice in a q-layout tensor.
  int64_t QOffset(int64_t b, int64_t h) const { return b * len * q_ld() + h * head_dim; }
  // Offset of the kv slice that head h reads.
  int64_t KvOffset(int64_t b, int64_t h) const {
    return b * len * kv_ld() + (h / (heads / kv_heads)) * head_dim;
  }
  // Offset of (b, h)'s [len, len] probabilities.
  int64_t POffset(int64_t b, int64_t h) const { return (b * heads + h) * len * len; }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }
};

// Row-major C[m, n] = alpha·op(A)·op(B) + beta·C.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// Calls fn(b, h, r0, r1) for every sequence, head and query block.
template <typename Fn>
void ForEachBlock(const Geometry& g, Fn fn) {
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t h = 0; h < g.heads; ++h) {
      for (int64_t r0 = 0; r0 < g.len; r0 += kBlockRows)
        fn(b, h, r0, std::min(g.len, r0 + kBlockRows));
    }
  }
}

// Calls fn(row pointer offset, valid, width) for every probability row, over LibTorch threads.
template <typename Fn>
void ForEachRow(const Geometry& g, Fn fn) {
  at::parallel_for(0, g.batch * g.heads * g.len, std::max<int64_t>(1, 8192 / g.len),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t row = begin; row < end; ++row) {
                       const int64_t i = row % g.len;
                       const int64_t width = std::min(g.len, (i / kBlockRows + 1) * kBlockRows);
                       fn(row * g.len, i + 1, width);
                     }
                   });
}

// Reused per thread across calls: the backward's dL/dprobs, so that the per-layer 10 MB
// buffer is not a fresh allocation (and fresh page faults) every layer.
thread_local std::vector<float> attention_scratch;

float* ScratchFloats(size_t n) {
  if (attention_scratch.size() < n) attention_scratch.resize(n);
  return attention_scratch.data();
}

struct CausalAttentionFn : public torch::autograd::Function<CausalAttentionFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor q, torch::Tensor k,
                               torch::Tensor v, int64_t batch, int64_t heads, int64_t kv_heads,
                               int64_t head_dim) {
    const Geometry g{batch, heads, kv_heads, head_dim, q.size(0) / batch};
    torch::Tensor probs = torch::empty({batch, heads, g.len, g.len}, q.options());
    torch::Tensor out = torch::empty_like(q);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float* pp = probs.data_ptr<float>();
    float* op = out.data_ptr<float>();
    ForEachBlock(g, [&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      Gemm(false, true, r1 - r0, r1, head_dim, qp + g.QOffset(b, h) + r0 * g.q_ld(), g.q_ld(),
           kp + g.KvOffset(b, h), g.kv_ld(), 0.0f, pp + g.POffset(b, h) + r0 * g.len, g.len);
    });
    const float scale = g.scale();
    ForEachRow(g, [&](int64_t offset, int64_t valid, int64_t width) {
      fused_kernels::CausalSoftmaxRow(pp + offset, valid, width, scale);
    });
    ForEachBlock(g, [&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      Gemm(false, false, r1 - r0, head_dim, r1, pp + g.POffset(b, h) + r0 * g.len, g.len,
           vp + g.KvOffset(b, h), g.kv_ld(), 0.0f, op + g.QOffset(b, h) + r0 * g.q_ld(), g.q_ld());
    });
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["batch"] = batch;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    ctx->saved_data["head_dim"] = head_dim;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const int64_t batch = ctx->saved_data["batch"].toInt();
    const Geometry g{batch, ctx->saved_data["heads"].toInt(), ctx->saved_data["kv_heads"].toInt(),
                     ctx->saved_data["head_dim"].toInt(), q.size(0) / batch};
    const int64_t hd = g.head_dim;
    const torch::Tensor d_out = grads[0].contiguous();
    torch::Tensor dq = torch::empty_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float* pp = probs.data_ptr<float>();
    const float* dop = d_out.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    float* dsp = ScratchFloats(static_cast<size_t>(probs.numel()));
    // dP = dO·Vᵀ, then dS = softmax backward of dP (in place).
    ForEachBlock(g, [&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      Gemm(false, true, r1 - r0, r1, hd, dop + g.QOffset(b, h) + r0 * g.q_ld(), g.q_ld(),
           vp + g.KvOffset(b, h), g.kv_ld(), 0.0f, dsp + g.POffset(b, h) + r0 * g.len, g.len);
    });
    const float scale = g.scale();
    ForEachRow(g, [&](int64_t offset, int64_t valid, int64_t width) {
      fused_kernels::CausalSoftmaxBackwardRow(pp + offset, dsp + offset, valid, width, scale);
    });
    ForEachBlock(g, [&](int64_t b, int64_t h, int64_t r0, int64_t r1) {
      const float* ds = dsp + g.POffset(b, h) + r0 * g.len;
      const float* p = pp + g.POffset(b, h) + r0 * g.len;
      const int64_t qo = g.QOffset(b, h) + r0 * g.q_ld(), kvo = g.KvOffset(b, h);
      // dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO (heads sharing a kv head accumulate).
      Gemm(false, false, r1 - r0, hd, r1, ds, g.len, kp + kvo, g.kv_ld(), 0.0f, dqp + qo, g.q_ld());
      Gemm(true, false, r1, hd, r1 - r0, ds, g.len, qp + qo, g.q_ld(), 1.0f, dkp + kvo, g.kv_ld());
      Gemm(true, false, r1, hd, r1 - r0, p, g.len, dop + qo, g.q_ld(), 1.0f, dvp + kvo, g.kv_ld());
    });
    return {dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t batch, int64_t heads,
                              int64_t kv_heads, int64_t head_dim) {
  return CausalAttentionFn::apply(q.contiguous(), k.contiguous(), v.contiguous(), batch, heads,
                                  kv_heads, head_dim);
}

void ReleaseCausalAttentionScratch() { std::vector<float>().swap(attention_scratch); }

}  // namespace lorad::finetune
