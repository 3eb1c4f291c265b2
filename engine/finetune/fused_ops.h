// Hand-fused fp32 autograd ops for the fine-tuning forward (torch_llama.cc): each one is a
// single pass forward and a single pass backward over its rows, where the LibTorch composite
// would run several elementwise kernels and keep their intermediates. Same math as the
// composites (tests/finetune/fused_ops_test.cc checks them against it). Inputs must be
// contiguous fp32 CPU tensors. Internal to engine/finetune (includes LibTorch).
// Thread-safety: the ops may run on any thread; each splits its rows over LibTorch's threads.
#pragma once

#include <cstdint>

#include "torch/torch.h"

namespace lorad::finetune {

// x [rows, d] -> x * rsqrt(mean(x², -1) + eps) * gain. gain [d] gets no gradient.
torch::Tensor FusedRmsNorm(const torch::Tensor& x, const torch::Tensor& gain, float eps);

// x [batch, len, heads, head_dim] rotated by position: cos/sin [len, head_dim / 2].
// `neox`: x's halves are the pairs (i, i + head_dim / 2), else the pairs are (2i, 2i + 1).
// cos and sin get no gradient.
torch::Tensor FusedRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        bool neox);

// silu(gate) * up, both [rows, d].
torch::Tensor FusedSwiGlu(const torch::Tensor& gate, const torch::Tensor& up);

// Causal grouped-query attention in the projections' own layout, no head transposes:
// q [batch * len, heads * head_dim], k and v [batch * len, kv_heads * head_dim] (heads h uses
// kv head h / (heads / kv_heads)) -> [batch * len, heads * head_dim]:
// softmax(q·kᵀ / sqrt(head_dim), masked to key positions <= query position)·v per head.
// Keeps the probabilities [batch, heads, len, len] for backward.
torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t batch, int64_t heads,
                              int64_t kv_heads, int64_t head_dim);
// Frees the calling thread's backward scratch of CausalAttention (kept across calls to avoid
// a fresh allocation per layer; batch x heads x len^2 floats). The trainer calls it when it is
// destroyed, so a finished job keeps none of it.
void ReleaseCausalAttentionScratch();

}  // namespace lorad::finetune
