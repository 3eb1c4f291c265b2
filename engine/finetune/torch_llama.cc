#include "engine/finetune/torch_llama.h"

#include <cmath>

#include "engine/kernels/quant_matmul.h"

namespace lorad::finetune {
namespace {

torch::Tensor Vec(const std::vector<float>& v) {
  if (v.empty()) return torch::Tensor();
  return torch::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())},
                          torch::kFloat32)
      .clone();
}

}  // namespace

TorchLlama::TorchLlama(const ModelWeights& weights, GateState* gate) : w_(weights), gate_(gate) {
  for (const LayerWeights& l : w_.layers) {
    norms_.push_back({Vec(l.attn_norm), Vec(l.ffn_norm)});
    biases_.push_back({Vec(l.bq), Vec(l.bk), Vec(l.bv)});
  }
  output_norm_ = Vec(w_.output_norm);
}

torch::Tensor TorchLlama::Embed(const torch::Tensor& tokens) {
  const int64_t n = tokens.numel();
  const WeightMatrix& e = w_.token_embedding;
  torch::Tensor out = torch::empty({n, e.cols}, torch::kFloat32);
  const kernels::QuantMatrix q{e.type, e.rows, e.cols, e.data, e.row_bytes};
  const int64_t* ids = tokens.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) kernels::DequantizeRows(q, ids[i], ids[i] + 1, dst + i * e.cols);
  return out;
}

torch::Tensor TorchLlama::RmsNorm(const torch::Tensor& x, const torch::Tensor& gain) {
  const float eps = w_.spec.rms_norm_eps;
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * gain;
}

torch::Tensor TorchLlama::Project(const torch::Tensor& x, const WeightMatrix& w,
                                  const LoraParam& lora, const LoraParamSet& set, bool train,
                                  at::Generator* generator) {
  torch::Tensor y = FrozenLinear(x, w, gate_);
  if (!lora.a.defined()) return y;
  torch::Tensor in = x;
  if (train && set.dropout > 0.0f) {
    torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - set.dropout, *generator);
    in = x * keep / (1.0 - set.dropout);
  }
  return y + torch::matmul(torch::matmul(in, lora.a.t()), lora.b.t()) * set.scale;
}

// x [batch, len, heads, head_dim]; cos/sin [len, head_dim / 2].
torch::Tensor TorchLlama::Rope(const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
  const int64_t hd = x.size(3);
  const torch::Tensor c = cos.view({1, cos.size(0), 1, hd / 2});
  const torch::Tensor s = sin.view({1, sin.size(0), 1, hd / 2});
  if (w_.spec.rope_neox) {
    const torch::Tensor x0 = x.narrow(3, 0, hd / 2), x1 = x.narrow(3, hd / 2, hd / 2);
    return torch::cat({x0 * c - x1 * s, x0 * s + x1 * c}, 3);
  }
  const torch::Tensor pairs = x.view({x.size(0), x.size(1), x.size(2), hd / 2, 2});
  const torch::Tensor x0 = pairs.select(4, 0), x1 = pairs.select(4, 1);
  return torch::stack({x0 * c - x1 * s, x0 * s + x1 * c}, 4).view(x.sizes());
}

torch::Tensor TorchLlama::LossSum(const torch::Tensor& tokens, const torch::Tensor& target,
                                  const LoraParamSet& lora, bool train, at::Generator* generator) {
  const ModelSpec& s = w_.spec;
  const int64_t batch = tokens.size(0), len = tokens.size(1), n = batch * len;
  const int64_t hd = s.head_dim, nh = s.num_heads, nkv = s.num_kv_heads;

  // RoPE angles in double, as the reference forward computes them.
  std::vector<float> cos_v(len * hd / 2), sin_v(len * hd / 2);
  for (int64_t p = 0; p < len; ++p) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      double freq = std::pow(double{s.rope_theta}, -2.0 * i / hd);
      if (!w_.rope_freq_factors.empty()) freq /= w_.rope_freq_factors[i];
      cos_v[p * hd / 2 + i] = static_cast<float>(std::cos(p * freq));
      sin_v[p * hd / 2 + i] = static_cast<float>(std::sin(p * freq));
    }
  }
  const torch::Tensor cos = torch::from_blob(cos_v.data(), {len, hd / 2}).clone();
  const torch::Tensor sin = torch::from_blob(sin_v.data(), {len, hd / 2}).clone();
  const torch::Tensor causal =
      torch::ones({len, len}, torch::kBool).triu(1);  // true above the diagonal: masked

  torch::Tensor x = Embed(tokens.contiguous());  // [n, hidden]
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const LayerWeights& lw = w_.layers[l];
    const auto& lp =
        lora.layers.empty() ? std::array<LoraParam, kNumLoraTargets>{} : lora.layers[l];
    torch::Tensor h = RmsNorm(x, norms_[l][0]);
    torch::Tensor q = Project(h, lw.wq, lp[0], lora, train, generator);
    torch::Tensor k = Project(h, lw.wk, lp[1], lora, train, generator);
    torch::Tensor v = Project(h, lw.wv, lp[2], lora, train, generator);
    if (biases_[l][0].defined()) q = q + biases_[l][0];
    if (biases_[l][1].defined()) k = k + biases_[l][1];
    if (biases_[l][2].defined()) v = v + biases_[l][2];
    q = Rope(q.view({batch, len, nh, hd}), cos, sin).permute({0, 2, 1, 3});
    k = Rope(k.view({batch, len, nkv, hd}), cos, sin).permute({0, 2, 1, 3});
    v = v.view({batch, len, nkv, hd}).permute({0, 2, 1, 3});
    if (nh != nkv) {
      k = k.repeat_interleave(nh / nkv, 1);
      v = v.repeat_interleave(nh / nkv, 1);
    }
    torch::Tensor scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(double(hd));
    scores = scores.masked_fill(causal, -std::numeric_limits<float>::infinity());
    torch::Tensor att = torch::matmul(torch::softmax(scores, -1), v);  // [b, nh, len, hd]
    att = att.permute({0, 2, 1, 3}).reshape({n, nh * hd});
    x = x + Project(att, lw.wo, lp[3], lora, train, generator);
    h = RmsNorm(x, norms_[l][1]);
    torch::Tensor g = Project(h, lw.w_gate, lp[4], lora, train, generator);
    torch::Tensor u = Project(h, lw.w_up, lp[5], lora, train, generator);
    x = x + Project(torch::silu(g) * u, lw.w_down, lp[6], lora, train, generator);
  }
  // Logits only where a next token is a target: position t - 1 predicts token t.
  const torch::Tensor flat_target = target.reshape({n});
  const torch::Tensor target_idx = flat_target.nonzero().squeeze(1);  // indices t
  const torch::Tensor labels = tokens.reshape({n}).index_select(0, target_idx);
  const torch::Tensor hidden = x.index_select(0, target_idx - 1);
  const torch::Tensor logits = FrozenLinear(RmsNorm(hidden, output_norm_), w_.output, gate_);
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

}  // namespace lorad::finetune
