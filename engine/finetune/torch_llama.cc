#include "engine/finetune/torch_llama.h"

#include <cmath>

#include "ATen/CPUGeneratorImpl.h"
#include "engine/finetune/fused_ops.h"
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

TorchLlama::TorchLlama(const ModelWeights& weights, GateState* gate, bool bf16)
    : w_(weights), gate_(gate), bf16_(bf16) {
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
  return FusedRmsNorm(x, gain, w_.spec.rms_norm_eps);
}

std::vector<torch::Tensor> TorchLlama::Project(const torch::Tensor& x,
                                               const std::vector<const WeightMatrix*>& ws,
                                               const std::vector<const LoraParam*>& loras,
                                               const Pass& pass, at::Generator* generator) {
  const torch::Tensor base = FrozenLinear(x, ws, gate_, bf16_);
  std::vector<torch::Tensor> ys = {base};
  if (ws.size() > 1) {
    std::vector<int64_t> sizes;
    for (const WeightMatrix* w : ws) sizes.push_back(w->rows);
    ys = base.split_with_sizes(sizes, 1);  // backward: one cat
  }
  const LoraParamSet& set = *pass.lora;
  const bool dropout = pass.train && set.dropout > 0.0f;
  std::vector<torch::Tensor> a_list;
  for (const LoraParam* lora : loras) {
    if (lora->a.defined()) a_list.push_back(lora->a);
  }
  if (!dropout && a_list.size() == loras.size() && a_list.size() > 1) {
    // All adapted, all on the same input: one x·Aᵀ for the stacked A's, then each delta from
    // its own columns.
    std::vector<int64_t> ranks;
    for (const torch::Tensor& a : a_list) ranks.push_back(a.size(0));
    const std::vector<torch::Tensor> xa =
        torch::mm(x, torch::cat(a_list, 0).t()).split_with_sizes(ranks, 1);
    for (size_t i = 0; i < ys.size(); ++i) {
      ys[i] = torch::addmm(ys[i], xa[i], loras[i]->b.t(), /*beta=*/1, set.scale);
    }
    return ys;
  }
  for (size_t i = 0; i < ys.size(); ++i) {
    const LoraParam& lora = *loras[i];
    if (!lora.a.defined()) continue;
    torch::Tensor in = x;
    if (dropout) {
      torch::Tensor keep = torch::empty_like(x).bernoulli_(1.0 - set.dropout, *generator);
      in = x * keep / (1.0 - set.dropout);
    }
    ys[i] = torch::addmm(ys[i], torch::mm(in, lora.a.t()), lora.b.t(), /*beta=*/1, set.scale);
  }
  return ys;
}

torch::Tensor TorchLlama::Project(const torch::Tensor& x, const WeightMatrix& w,
                                  const LoraParam& lora, const Pass& pass,
                                  at::Generator* generator) {
  return Project(x, {&w}, {&lora}, pass, generator)[0];
}

torch::Tensor TorchLlama::Layer(size_t l, const torch::Tensor& x, const Pass& pass) {
  const ModelSpec& s = w_.spec;
  const int64_t batch = pass.batch, len = pass.len, n = batch * len;
  const int64_t hd = s.head_dim, nh = s.num_heads, nkv = s.num_kv_heads;
  const LayerWeights& lw = w_.layers[l];
  const std::array<LoraParam, kNumLoraTargets> none{};
  const auto& lp = pass.lora->layers.empty() ? none : pass.lora->layers[l];
  at::Generator gen =
      at::make_generator<at::CPUGeneratorImpl>(pass.dropout_seed + 0x9e3779b97f4a7c15ull * (l + 1));
  torch::Tensor h = RmsNorm(x, norms_[l][0]);
  const std::vector<torch::Tensor> qkv =
      Project(h, {&lw.wq, &lw.wk, &lw.wv}, {&lp[0], &lp[1], &lp[2]}, pass, &gen);
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];  // views of one product where not adapted
  if (biases_[l][0].defined()) q = q + biases_[l][0];
  if (biases_[l][1].defined()) k = k + biases_[l][1];
  if (biases_[l][2].defined()) v = v + biases_[l][2];
  q = FusedRope(q.reshape({batch, len, nh, hd}), pass.cos, pass.sin, s.rope_neox)
          .view({n, nh * hd});
  k = FusedRope(k.reshape({batch, len, nkv, hd}), pass.cos, pass.sin, s.rope_neox)
          .view({n, nkv * hd});
  const torch::Tensor att = CausalAttention(q, k, v, batch, nh, nkv, hd);  // [n, nh * hd]
  torch::Tensor y = x + Project(att, lw.wo, lp[3], pass, &gen);
  h = RmsNorm(y, norms_[l][1]);
  const std::vector<torch::Tensor> gate_up =
      Project(h, {&lw.w_gate, &lw.w_up}, {&lp[4], &lp[5]}, pass, &gen);
  return y + Project(FusedSwiGlu(gate_up[0], gate_up[1]), lw.w_down, lp[6], pass, &gen);
}

torch::Tensor TorchLlama::HeadWeight() { return FrozenWeights({&w_.output}, bf16_); }

torch::Tensor TorchLlama::HeadLossSum(const torch::Tensor& hidden, const torch::Tensor& labels,
                                      const torch::Tensor& head) {
  const torch::Tensor logits = FrozenLinear(RmsNorm(hidden, output_norm_), head, gate_);
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The LoRA leaves layer `l` reads, in a fixed order.
std::vector<torch::Tensor> LayerParams(const LoraParamSet& set, size_t l) {
  std::vector<torch::Tensor> out;
  if (set.layers.empty()) return out;
  for (const LoraParam& p : set.layers[l]) {
    if (!p.a.defined()) continue;
    out.push_back(p.a);
    out.push_back(p.b);
  }
  return out;
}

// A layer whose activations are not kept: backward reruns it from its saved input.
struct RecomputedLayerFn : public torch::autograd::Function<RecomputedLayerFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, at::TensorList params,
                               int64_t model_addr, int64_t pass_addr, int64_t layer) {
    ctx->saved_data["model"] = model_addr;
    ctx->saved_data["pass"] = pass_addr;
    ctx->saved_data["layer"] = layer;
    ctx->save_for_backward({x});
    return reinterpret_cast<TorchLlama*>(model_addr)
        ->Layer(layer, x, *reinterpret_cast<const TorchLlama::Pass*>(pass_addr));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto* model = reinterpret_cast<TorchLlama*>(ctx->saved_data["model"].toInt());
    const auto* pass = reinterpret_cast<const TorchLlama::Pass*>(ctx->saved_data["pass"].toInt());
    const size_t layer = static_cast<size_t>(ctx->saved_data["layer"].toInt());
    torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    std::vector<torch::Tensor> inputs = {x};
    for (const torch::Tensor& p : LayerParams(*pass->lora, layer)) inputs.push_back(p);
    torch::AutoGradMode enable(true);
    torch::Tensor y = model->Layer(layer, x, *pass);
    variable_list g = torch::autograd::grad({y}, inputs, {grads[0]}, /*retain_graph=*/false,
                                            /*create_graph=*/false, /*allow_unused=*/true);
    g.resize(g.size() + 3);  // the three non-tensor inputs
    return g;
  }
};

// Rows per chunk of the output head: 128 x 49152 fp32 logits stay under glibc's 32 MiB mmap
// threshold, so chunks reuse heap memory instead of faulting in fresh pages.
constexpr int64_t kHeadChunkRows = 128;

// The output head and its loss over row chunks, with dL/dhidden computed in the same pass
// (when `hidden` requires grad): logits are never kept, the head runs once forward and once
// backward, and the op's backward only scales the stored gradient.
struct FusedHeadFn : public torch::autograd::Function<FusedHeadFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor labels,
                               int64_t model_addr) {
    auto* model = reinterpret_cast<TorchLlama*>(model_addr);
    const bool need_grad = hidden.requires_grad();
    torch::Tensor grad = need_grad ? torch::empty_like(hidden) : torch::Tensor();
    double total = 0.0;
    const torch::Tensor head = model->HeadWeight();  // converted once for all chunks
    for (int64_t r = 0; r < hidden.size(0); r += kHeadChunkRows) {
      const int64_t rows = std::min(kHeadChunkRows, hidden.size(0) - r);
      torch::Tensor h = hidden.narrow(0, r, rows).detach();
      const torch::Tensor y = labels.narrow(0, r, rows);
      if (need_grad) {
        torch::AutoGradMode enable(true);
        h.requires_grad_(true);
        torch::Tensor loss = model->HeadLossSum(h, y, head);
        grad.narrow(0, r, rows).copy_(torch::autograd::grad({loss}, {h})[0]);
        total += loss.item<double>();
      } else {
        total += model->HeadLossSum(h, y, head).item<double>();
      }
    }
    ctx->save_for_backward({grad});
    return torch::full({}, total, torch::kFloat32);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {ctx->get_saved_variables()[0] * grads[0], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> TorchLlama::TargetHidden(const torch::Tensor& tokens,
                                                                 const torch::Tensor& target,
                                                                 const LoraParamSet& lora,
                                                                 bool train, uint64_t dropout_seed,
                                                                 bool recompute) {
  const ModelSpec& s = w_.spec;
  auto pass = std::make_unique<Pass>();
  pass->batch = tokens.size(0);
  pass->len = tokens.size(1);
  pass->lora = &lora;
  pass->train = train;
  pass->dropout_seed = dropout_seed;
  const int64_t len = pass->len, n = pass->batch * len, hd = s.head_dim;
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
  pass->cos = torch::from_blob(cos_v.data(), {len, hd / 2}).clone();
  pass->sin = torch::from_blob(sin_v.data(), {len, hd / 2}).clone();
  pass_ = std::move(pass);  // the previous call's backward has run
  const Pass& p = *pass_;

  torch::Tensor x = Embed(tokens.contiguous());  // [n, hidden]
  const bool checkpoint = recompute && torch::GradMode::is_enabled();
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    if (checkpoint) {
      const std::vector<torch::Tensor> params = LayerParams(lora, l);
      x = RecomputedLayerFn::apply(x, at::TensorList(params), reinterpret_cast<int64_t>(this),
                                   reinterpret_cast<int64_t>(&p), static_cast<int64_t>(l));
    } else {
      x = Layer(l, x, p);
    }
  }
  // Logits only where a next token is a target: position t - 1 predicts token t.
  const torch::Tensor target_idx = target.reshape({n}).nonzero().squeeze(1);  // indices t
  const torch::Tensor labels = tokens.reshape({n}).index_select(0, target_idx);
  return {x.index_select(0, target_idx - 1), labels};
}

torch::Tensor TorchLlama::LossSum(const torch::Tensor& tokens, const torch::Tensor& target,
                                  const LoraParamSet& lora, bool train, uint64_t dropout_seed,
                                  bool recompute) {
  auto [hidden, labels] = TargetHidden(tokens, target, lora, train, dropout_seed, recompute);
  return FusedHeadFn::apply(hidden, labels, reinterpret_cast<int64_t>(this));
}

TorchLlama::EvalSums TorchLlama::Evaluate(const torch::Tensor& tokens, const torch::Tensor& target,
                                          const LoraParamSet& lora) {
  torch::NoGradGuard no_grad;
  auto [hidden, labels] = TargetHidden(tokens, target, lora, /*train=*/false, 0, false);
  EvalSums sums;
  const torch::Tensor head = HeadWeight();
  for (int64_t r = 0; r < hidden.size(0); r += kHeadChunkRows) {
    const int64_t rows = std::min(kHeadChunkRows, hidden.size(0) - r);
    const torch::Tensor y = labels.narrow(0, r, rows);
    const torch::Tensor logits =
        FrozenLinear(RmsNorm(hidden.narrow(0, r, rows), output_norm_), head, gate_);
    sums.loss +=
        torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    sums.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  return sums;
}

}  // namespace lorad::finetune
