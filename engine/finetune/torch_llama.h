// The Llama-family forward pass in LibTorch ops, differentiable in the LoRA parameters only:
// the same math as the engine's inference forward (RMSNorm, RoPE in the loaded weights'
// convention, grouped-query causal attention, SwiGLU, tied or untied output), over a padded
// micro-batch of sequences that all start at position 0. Internal to engine/finetune.
// Thread-safety: not thread-safe (one training thread).
#pragma once

#include <array>
#include <memory>
#include <utility>
#include <vector>

#include "engine/base/lora_weights.h"
#include "engine/finetune/frozen_linear.h"
#include "engine/model/model_weights.h"
#include "torch/torch.h"

namespace lorad::finetune {

// A and B of one adapted projection (undefined tensors when not adapted).
struct LoraParam {
  torch::Tensor a;  // [rank, in]
  torch::Tensor b;  // [out, rank]
};

struct LoraParamSet {
  std::vector<std::array<LoraParam, kNumLoraTargets>> layers;
  float scale = 1.0f;
  float dropout = 0.0f;
};

class TorchLlama {
 public:
  // `weights` and `gate` must outlive this object. `bf16`: the frozen projections multiply in
  // bf16 (see FrozenLinear).
  TorchLlama(const ModelWeights& weights, GateState* gate, bool bf16);

  // Sum over the batch of the cross-entropy (nats) of every target token. tokens: int64
  // [batch, len]; target: bool [batch, len], target[b][t] meaning tokens[b][t] is predicted from
  // tokens[b][0..t). Padding must not be a target. Dropout (only when `train` and
  // lora.dropout > 0) draws from generators seeded by (dropout_seed, layer). The output head
  // runs in row chunks with its input gradient computed in the same pass, so logits are never
  // kept. With `recompute`, autograd keeps only each layer's input; the layers are recomputed
  // during backward: the same gradients, a fraction of the activation memory, about a third
  // more compute.
  torch::Tensor LossSum(const torch::Tensor& tokens, const torch::Tensor& target,
                        const LoraParamSet& lora, bool train, uint64_t dropout_seed,
                        bool recompute);

  // The same sums without gradients or dropout, plus how many target tokens are the head's
  // argmax (token accuracy). Runs the head in row chunks like LossSum.
  struct EvalSums {
    double loss = 0.0;
    int64_t correct = 0;
  };
  EvalSums Evaluate(const torch::Tensor& tokens, const torch::Tensor& target,
                    const LoraParamSet& lora);

  // What one layer call needs besides its input (kept alive until backward has run).
  struct Pass {
    int64_t batch = 0, len = 0;
    torch::Tensor cos, sin;  // [len, head_dim / 2]
    const LoraParamSet* lora = nullptr;
    bool train = false;
    uint64_t dropout_seed = 0;
  };
  // Layer `l` on x [batch * len, hidden].
  torch::Tensor Layer(size_t l, const torch::Tensor& x, const Pass& pass);
  // The output matrix as the head multiplies it (FrozenWeights: this thread's scratch buffer).
  torch::Tensor HeadWeight();
  // Sum of the cross-entropy of `labels` given final hidden states [rows, hidden]; `head` from
  // HeadWeight(), still valid.
  torch::Tensor HeadLossSum(const torch::Tensor& hidden, const torch::Tensor& labels,
                            const torch::Tensor& head);

 private:
  // The final hidden state before every target token [targets, hidden] and the target ids.
  std::pair<torch::Tensor, torch::Tensor> TargetHidden(const torch::Tensor& tokens,
                                                       const torch::Tensor& target,
                                                       const LoraParamSet& lora, bool train,
                                                       uint64_t dropout_seed, bool recompute);
  torch::Tensor Embed(const torch::Tensor& tokens);
  // x [n, in] -> [n, out]: the frozen projection plus its LoRA delta.
  torch::Tensor Project(const torch::Tensor& x, const WeightMatrix& w, const LoraParam& lora,
                        const Pass& pass, at::Generator* generator);
  // The same for several matrices on the same input (one stacked frozen multiply): one
  // [n, out_i] per matrix, in order; the LoRA deltas (and their dropout draws) in that order.
  std::vector<torch::Tensor> Project(const torch::Tensor& x,
                                     const std::vector<const WeightMatrix*>& ws,
                                     const std::vector<const LoraParam*>& loras, const Pass& pass,
                                     at::Generator* generator);
  torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& gain);

  const ModelWeights& w_;
  GateState* gate_;
  bool bf16_;
  std::vector<std::array<torch::Tensor, 2>> norms_;   // per layer: attn, ffn gains
  std::vector<std::array<torch::Tensor, 3>> biases_;  // per layer: q, k, v (undefined: none)
  torch::Tensor output_norm_;
  std::unique_ptr<Pass> pass_;  // the current LossSum's (for recompute)
};

}  // namespace lorad::finetune
