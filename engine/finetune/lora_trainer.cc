#include "engine/finetune/lora_trainer.h"

#include <chrono>
#include <cmath>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/base/torch_status.h"
#include "engine/finetune/data_order.h"
#include "engine/finetune/fused_ops.h"
#include "engine/finetune/lora_trainer_impl.h"

namespace lorad::finetune {
namespace {

// Distinct generator streams for initialization and for each step's dropout.
uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  return seed * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull + 1;
}

// tokens int64 [b, len] and target bool [b, len] of `examples`, right-padded with token 0.
std::pair<torch::Tensor, torch::Tensor> Pack(const std::vector<const TrainExample*>& examples) {
  int64_t len = 0;
  for (const TrainExample* e : examples) len = std::max<int64_t>(len, e->tokens.size());
  const int64_t b = static_cast<int64_t>(examples.size());
  torch::Tensor tokens = torch::zeros({b, len}, torch::kInt64);
  torch::Tensor target = torch::zeros({b, len}, torch::kBool);
  auto t = tokens.accessor<int64_t, 2>();
  auto m = target.accessor<bool, 2>();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < examples[i]->tokens.size(); ++j) {
      t[i][j] = examples[i]->tokens[j];
      m[i][j] = j > 0 && examples[i]->target[j] != 0;
    }
  }
  return {tokens, target};
}

int64_t Targets(const std::vector<const TrainExample*>& examples) {
  int64_t n = 0;
  for (const TrainExample* e : examples) {
    for (size_t j = 1; j < e->target.size(); ++j) n += e->target[j] != 0;
  }
  return n;
}

}  // namespace

LoraTrainer::Impl::Impl(const ModelWeights& base_weights, LoraTrainConfig cfg,
                        std::vector<TrainExample> data, TrainGate* train_gate)
    : base(base_weights),
      config(std::move(cfg)),
      dataset(std::move(data)),
      gate{train_gate, absl::OkStatus()},
      model(base_weights, &gate, ResolveBaseCompute(config.base_compute) == BaseCompute::kBF16) {}

std::vector<torch::Tensor> LoraTrainer::Impl::Parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& layer : lora.layers) {
    for (const LoraParam& p : layer) {
      if (!p.a.defined()) continue;
      out.push_back(p.a);
      out.push_back(p.b);
    }
  }
  return out;
}

absl::Status LoraTrainer::Impl::Guarded(const char* what, const std::function<void()>& fn) {
  gate.stopped = absl::OkStatus();
  absl::Status s;
  try {
    s = TorchCall(what, fn);
  } catch (const GateStop& stop) {
    s = stop.status;
  }
  // LibTorch's autograd engine may rewrap the exception thrown from a backward op.
  if (!gate.stopped.ok()) return gate.stopped;
  return s;
}

double LoraTrainer::Impl::LossSum(const std::vector<const TrainExample*>& examples, bool train,
                                  bool backward, double normalizer) {
  double total = 0.0;
  for (size_t i = 0; i < examples.size(); i += config.batch_size) {
    std::vector<const TrainExample*> micro(
        examples.begin() + i, examples.begin() + std::min(examples.size(), i + config.batch_size));
    auto [tokens, target] = Pack(micro);
    const uint64_t dropout_seed =
        StreamSeed(config.seed, 1000 + step * 1024 + i / config.batch_size);
    torch::Tensor loss =
        model.LossSum(tokens, target, lora, train, dropout_seed, config.recompute_activations);
    if (backward) (loss / normalizer).backward();
    total += loss.item<double>();
  }
  return total;
}

LoraTrainer::LoraTrainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
// Runs on the thread that trained (the scratch is per thread).
LoraTrainer::~LoraTrainer() { ReleaseCausalAttentionScratch(); }

absl::StatusOr<std::unique_ptr<LoraTrainer>> LoraTrainer::Create(const ModelWeights& base,
                                                                 const LoraTrainConfig& config,
                                                                 std::vector<TrainExample> dataset,
                                                                 TrainGate* gate) {
  LORAD_RETURN_IF_ERROR(ValidateTrainConfig(
      config, base.spec.max_position > 0 ? base.spec.max_position : config.max_seq_len));
  if (dataset.empty()) return absl::InvalidArgumentError("dataset is empty");
  for (const TrainExample& e : dataset) {
    if (e.tokens.size() != e.target.size() || e.tokens.size() < 2 ||
        static_cast<int32_t>(e.tokens.size()) > config.max_seq_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset line ", e.line, ": malformed example or longer than max_seq_len"));
    }
    for (int32_t id : e.tokens) {
      if (id < 0 || id >= base.spec.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("dataset line ", e.line, ": token id ", id, " outside the vocabulary"));
      }
    }
  }
  auto impl = std::make_unique<Impl>(base, config, std::move(dataset), gate);
  LORAD_RETURN_IF_ERROR(TorchCall("initializing LoRA parameters", [&] {
    if (config.num_threads > 0) at::set_num_threads(config.num_threads);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(StreamSeed(config.seed, 0));
    impl->lora.scale = LoraScale(config);
    impl->lora.dropout = config.dropout;
    impl->lora.layers.resize(base.spec.num_layers);
    for (int32_t l = 0; l < base.spec.num_layers; ++l) {
      for (LoraTarget target : config.targets) {
        const LoraModuleShape shape = LoraModuleShapeOf(base.spec, target);
        LoraParam& p = impl->lora.layers[l][static_cast<int>(target)];
        // PEFT: kaiming_uniform_(A, a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0.
        const double bound = 1.0 / std::sqrt(static_cast<double>(shape.in));
        p.a = torch::empty({config.rank, shape.in}).uniform_(-bound, bound, gen);
        p.b = torch::zeros({shape.out, config.rank});
        p.a.set_requires_grad(true);
        p.b.set_requires_grad(true);
      }
    }
    impl->optimizer = std::make_unique<torch::optim::AdamW>(
        impl->Parameters(), torch::optim::AdamWOptions(config.learning_rate)
                                .betas({config.adam_beta1, config.adam_beta2})
                                .eps(config.adam_eps)
                                .weight_decay(config.weight_decay));
  }));
  return std::unique_ptr<LoraTrainer>(new LoraTrainer(std::move(impl)));
}

absl::StatusOr<StepResult> LoraTrainer::Step() {
  Impl& im = *impl_;
  const LoraTrainConfig& c = im.config;
  if (im.step >= c.total_steps) {
    return absl::FailedPreconditionError(
        absl::StrCat("training is complete: ", c.total_steps, " steps done"));
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t k = int64_t{c.batch_size} * c.grad_accum;
  const StepExamples chosen =
      ExamplesForStep(static_cast<int64_t>(im.dataset.size()), k, c.seed, im.step);
  std::vector<const TrainExample*> examples;
  StepResult r;
  for (int64_t i : chosen.indices) {
    examples.push_back(&im.dataset[i]);
    r.tokens += static_cast<int64_t>(im.dataset[i].tokens.size());
  }
  r.target_tokens = Targets(examples);
  r.epoch = chosen.epoch;
  r.learning_rate = LearningRateAt(c, im.step);
  double loss_sum = 0.0, norm = 0.0;
  const std::vector<torch::Tensor> params = im.Parameters();
  absl::Status s = im.Guarded("training step", [&] {
    im.optimizer->zero_grad();
    loss_sum = im.LossSum(examples, /*train=*/true, /*backward=*/true,
                          static_cast<double>(std::max<int64_t>(1, r.target_tokens)));
    double sq = 0.0;
    for (const torch::Tensor& p : params) {
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    }
    norm = std::sqrt(sq);
  });
  if (!s.ok()) {
    TorchCall("discarding gradients", [&] { im.optimizer->zero_grad(); }).IgnoreError();
    return s;
  }
  r.loss = static_cast<float>(loss_sum / std::max<int64_t>(1, r.target_tokens));
  r.grad_norm = static_cast<float>(norm);
  if (!std::isfinite(loss_sum) || !std::isfinite(norm)) {
    TorchCall("discarding gradients", [&] { im.optimizer->zero_grad(); }).IgnoreError();
    return absl::InternalError(
        absl::StrCat(!std::isfinite(loss_sum) ? "loss" : "gradient norm", " is ",
                     std::isnan(!std::isfinite(loss_sum) ? loss_sum : norm) ? "NaN" : "infinite",
                     " at step ", im.step + 1, "; the adapter is left as it was after step ",
                     im.step, " (try a lower learning_rate)"));
  }
  LORAD_RETURN_IF_ERROR(TorchCall("optimizer step", [&] {
    torch::NoGradGuard no_grad;
    if (c.max_grad_norm > 0.0f && norm > c.max_grad_norm) {
      const double factor = c.max_grad_norm / (norm + 1e-6);
      for (const torch::Tensor& p : params) {
        if (p.grad().defined()) p.grad().mul_(factor);
      }
    }
    for (auto& group : im.optimizer->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(r.learning_rate);
    }
    im.optimizer->step();
  }));
  ++im.step;
  r.step = im.step;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

int64_t LoraTrainer::step() const { return impl_->step; }
const LoraTrainConfig& LoraTrainer::config() const { return impl_->config; }
int64_t LoraTrainer::num_examples() const { return static_cast<int64_t>(impl_->dataset.size()); }

absl::StatusOr<EvalResult> LoraTrainer::Evaluate(const std::vector<TrainExample>& examples) {
  Impl& im = *impl_;
  std::vector<const TrainExample*> ptrs;
  for (const TrainExample& e : examples) ptrs.push_back(&e);
  double loss = 0.0;
  int64_t correct = 0;
  LORAD_RETURN_IF_ERROR(im.Guarded("evaluating", [&] {
    for (size_t i = 0; i < ptrs.size(); i += im.config.batch_size) {
      std::vector<const TrainExample*> micro(
          ptrs.begin() + i, ptrs.begin() + std::min(ptrs.size(), i + im.config.batch_size));
      auto [tokens, target] = Pack(micro);
      const TorchLlama::EvalSums sums = im.model.Evaluate(tokens, target, im.lora);
      loss += sums.loss;
      correct += sums.correct;
    }
  }));
  EvalResult r;
  r.target_tokens = Targets(ptrs);
  const double n = static_cast<double>(std::max<int64_t>(1, r.target_tokens));
  r.loss = static_cast<float>(loss / n);
  r.token_accuracy = static_cast<float>(static_cast<double>(correct) / n);
  return r;
}

TrainedLora LoraTrainer::Lora() const {
  const Impl& im = *impl_;
  TrainedLora out;
  out.rank = im.config.rank;
  out.alpha = im.config.alpha;
  out.use_rslora = im.config.use_rslora;
  out.dropout = im.config.dropout;
  out.layers.resize(im.lora.layers.size());
  for (size_t l = 0; l < im.lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraParam& p = im.lora.layers[l][t];
      if (!p.a.defined()) continue;
      TrainedLoraPair& o = out.layers[l][t];
      o.rank = static_cast<int32_t>(p.a.size(0));
      const torch::Tensor a = p.a.detach().contiguous(), b = p.b.detach().contiguous();
      o.a.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
      o.b.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
    }
  }
  return out;
}

absl::Status LoraTrainer::SetLora(const TrainedLora& lora) {
  Impl& im = *impl_;
  if (lora.layers.size() != im.lora.layers.size()) {
    return absl::InvalidArgumentError("SetLora: layer count differs");
  }
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraParam& p = im.lora.layers[l][t];
      const TrainedLoraPair& o = lora.layers[l][t];
      if (p.a.defined() != (o.rank > 0) ||
          (p.a.defined() && (o.a.size() != static_cast<size_t>(p.a.numel()) ||
                             o.b.size() != static_cast<size_t>(p.b.numel())))) {
        return absl::InvalidArgumentError(
            absl::StrCat("SetLora: layer ", l, " target ", t, " does not match the shapes"));
      }
    }
  }
  return TorchCall("setting LoRA parameters", [&] {
    torch::NoGradGuard no_grad;
    for (size_t l = 0; l < lora.layers.size(); ++l) {
      for (int t = 0; t < kNumLoraTargets; ++t) {
        const LoraParam& p = im.lora.layers[l][t];
        if (!p.a.defined()) continue;
        const TrainedLoraPair& o = lora.layers[l][t];
        p.a.copy_(torch::from_blob(const_cast<float*>(o.a.data()), p.a.sizes()));
        p.b.copy_(torch::from_blob(const_cast<float*>(o.b.data()), p.b.sizes()));
      }
    }
  });
}

absl::StatusOr<TrainedLora> LoraTrainer::Gradients(const std::vector<TrainExample>& examples) {
  Impl& im = *impl_;
  std::vector<const TrainExample*> ptrs;
  for (const TrainExample& e : examples) ptrs.push_back(&e);
  const std::vector<torch::Tensor> params = im.Parameters();
  TrainedLora grads = Lora();
  LORAD_RETURN_IF_ERROR(im.Guarded("computing gradients", [&] {
    for (const torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    im.LossSum(ptrs, /*train=*/false, /*backward=*/true,
               static_cast<double>(std::max<int64_t>(1, Targets(ptrs))));
    for (size_t l = 0; l < im.lora.layers.size(); ++l) {
      for (int t = 0; t < kNumLoraTargets; ++t) {
        const LoraParam& p = im.lora.layers[l][t];
        if (!p.a.defined()) continue;
        const torch::Tensor ga =
            p.a.grad().defined() ? p.a.grad().contiguous() : torch::zeros_like(p.a);
        const torch::Tensor gb =
            p.b.grad().defined() ? p.b.grad().contiguous() : torch::zeros_like(p.b);
        grads.layers[l][t].a.assign(ga.data_ptr<float>(), ga.data_ptr<float>() + ga.numel());
        grads.layers[l][t].b.assign(gb.data_ptr<float>(), gb.data_ptr<float>() + gb.numel());
      }
    }
    for (const torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
  }));
  return grads;
}

}  // namespace lorad::finetune
