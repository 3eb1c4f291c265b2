// The trainer's loss and LoRA gradients against references that share none of its code: the
// fp32 ReferenceModel with the adapter merged into dense weights (loss, and central finite
// differences on single parameters), and a dense merged-weight LibTorch forward (gradients).
#include <cmath>

#include "engine/finetune/lora_trainer.h"
#include "engine/model/reference_forward.h"
#include "engine/quant/dequantize.h"
#include "tests/finetune/finetune_test_util.h"
#include "torch/torch.h"

namespace lorad::finetune {
namespace {

using testing::AllTargetsConfig;
using testing::LoadTinyModel;
using testing::RandomExamples;
using testing::RandomLora;

// Mean cross-entropy over target tokens, computed by the reference forward with `lora` merged.
double ReferenceLoss(const ModelWeights& w, const TrainedLora& lora, float scale,
                     const std::vector<TrainExample>& examples) {
  auto ref = ReferenceModel::Create(w);
  EXPECT_TRUE(ref.ok());
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const TrainedLoraPair& p = lora.layers[l][t];
      if (p.rank == 0) continue;
      ref->MergeLora(l, static_cast<LoraTarget>(t), p.a.data(), p.b.data(), p.rank, scale);
    }
  }
  double sum = 0.0;
  int64_t count = 0;
  const int64_t vocab = w.spec.vocab_size;
  for (const TrainExample& e : examples) {
    const std::vector<float> logits = ref->Forward(e.tokens);
    for (size_t t = 1; t < e.tokens.size(); ++t) {
      if (!e.target[t]) continue;
      const float* row = logits.data() + (t - 1) * vocab;
      double mx = row[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, double{row[v]});
      double z = 0.0;
      for (int64_t v = 0; v < vocab; ++v) z += std::exp(row[v] - mx);
      sum += std::log(z) + mx - row[e.tokens[t]];
      ++count;
    }
  }
  return sum / count;
}

torch::Tensor Dense(const WeightMatrix& w) {
  torch::Tensor out = torch::empty({w.rows, w.cols});
  for (int64_t r = 0; r < w.rows; ++r) {
    quant::DequantizeRow(w.type, w.Row(r), out.data_ptr<float>() + r * w.cols, w.cols);
  }
  return out;
}

torch::Tensor VecT(const std::vector<float>& v) {
  return torch::tensor(std::vector<float>(v.begin(), v.end()));
}

// Textbook forward with merged weights W + scale·B·A, one sequence at a time; returns the
// mean target cross-entropy and fills dA/dB by autograd.
TrainedLora DenseGradients(const ModelWeights& w, const TrainedLora& lora, float scale,
                           const std::vector<TrainExample>& examples) {
  const ModelSpec& s = w.spec;
  std::vector<std::array<torch::Tensor, kNumLoraTargets * 2>> ab(lora.layers.size());
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const TrainedLoraPair& p = lora.layers[l][t];
      const LoraModuleShape shape = LoraModuleShapeOf(s, static_cast<LoraTarget>(t));
      ab[l][2 * t] = torch::tensor(p.a).view({p.rank, shape.in}).set_requires_grad(true);
      ab[l][2 * t + 1] = torch::tensor(p.b).view({shape.out, p.rank}).set_requires_grad(true);
    }
  }
  const torch::Tensor emb = Dense(w.token_embedding), out = Dense(w.output);
  auto norm = [&](const torch::Tensor& x, const std::vector<float>& g) {
    return x / torch::sqrt(x.pow(2).mean(-1, true) + s.rms_norm_eps) * VecT(g);
  };
  torch::Tensor total = torch::zeros({});
  int64_t count = 0;
  for (const TrainExample& e : examples) {
    const int64_t n = static_cast<int64_t>(e.tokens.size()), hd = s.head_dim;
    std::vector<int64_t> ids(e.tokens.begin(), e.tokens.end());
    torch::Tensor x = emb.index_select(0, torch::tensor(ids));
    // Rotation matrices per position: adjacent pairs (the tiny llama model's convention).
    torch::Tensor rot = torch::zeros({n, hd, hd});
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = p * std::pow(double{s.rope_theta}, -2.0 * i / hd);
        rot[p][2 * i][2 * i] = std::cos(a);
        rot[p][2 * i][2 * i + 1] = -std::sin(a);
        rot[p][2 * i + 1][2 * i] = std::sin(a);
        rot[p][2 * i + 1][2 * i + 1] = std::cos(a);
      }
    }
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const LayerWeights& lw = w.layers[l];
      const WeightMatrix* ws[kNumLoraTargets] = {&lw.wq,     &lw.wk,   &lw.wv,    &lw.wo,
                                                 &lw.w_gate, &lw.w_up, &lw.w_down};
      torch::Tensor W[kNumLoraTargets];
      for (int t = 0; t < kNumLoraTargets; ++t) {
        W[t] = Dense(*ws[t]) + scale * torch::matmul(ab[l][2 * t + 1], ab[l][2 * t]);
      }
      torch::Tensor h = norm(x, lw.attn_norm);
      torch::Tensor q = torch::matmul(h, W[0].t()).view({n, s.num_heads, hd});
      torch::Tensor k = torch::matmul(h, W[1].t()).view({n, s.num_kv_heads, hd});
      torch::Tensor v = torch::matmul(h, W[2].t()).view({n, s.num_kv_heads, hd});
      q = torch::einsum("pij,phj->phi", {rot, q});
      k = torch::einsum("pij,phj->phi", {rot, k});
      std::vector<torch::Tensor> heads;
      for (int64_t hh = 0; hh < s.num_heads; ++hh) {
        const int64_t g = hh / (s.num_heads / s.num_kv_heads);
        torch::Tensor sc = torch::matmul(q.select(1, hh), k.select(1, g).t()) / std::sqrt(hd);
        sc = sc + torch::full({n, n}, -1e30f).triu(1);
        heads.push_back(torch::matmul(torch::softmax(sc, -1), v.select(1, g)));
      }
      x = x + torch::matmul(torch::cat(heads, 1), W[3].t());
      h = norm(x, lw.ffn_norm);
      torch::Tensor gate = torch::matmul(h, W[4].t());
      torch::Tensor up = torch::matmul(h, W[5].t());
      x = x + torch::matmul(gate * torch::sigmoid(gate) * up, W[6].t());
    }
    torch::Tensor logits = torch::matmul(norm(x, w.output_norm), out.t());
    torch::Tensor logp = torch::log_softmax(logits, -1);
    for (int64_t t = 1; t < n; ++t) {
      if (!e.target[t]) continue;
      total = total - logp[t - 1][e.tokens[t]];
      ++count;
    }
  }
  (total / count).backward();
  TrainedLora grads = lora;
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const torch::Tensor ga = ab[l][2 * t].grad().contiguous();
      const torch::Tensor gb = ab[l][2 * t + 1].grad().contiguous();
      grads.layers[l][t].a.assign(ga.data_ptr<float>(), ga.data_ptr<float>() + ga.numel());
      grads.layers[l][t].b.assign(gb.data_ptr<float>(), gb.data_ptr<float>() + gb.numel());
    }
  }
  return grads;
}

// Largest |reference gradient| and largest |got - reference| over every A and B entry.
struct GradientDiff {
  double max_ref = 0.0;
  double max_err = 0.0;
};
GradientDiff CompareGradients(const TrainedLora& got, const TrainedLora& ref) {
  GradientDiff d;
  for (size_t l = 0; l < ref.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      for (bool is_b : {false, true}) {
        const auto& g = is_b ? got.layers[l][t].b : got.layers[l][t].a;
        const auto& r = is_b ? ref.layers[l][t].b : ref.layers[l][t].a;
        EXPECT_EQ(g.size(), r.size());
        for (size_t i = 0; i < std::min(g.size(), r.size()); ++i) {
          d.max_ref = std::max(d.max_ref, double{std::abs(r[i])});
          d.max_err = std::max(d.max_err, double{std::abs(g[i] - r[i])});
        }
      }
    }
  }
  return d;
}

class GradientTest : public ::testing::TestWithParam<DType> {};

TEST_P(GradientTest, LossMatchesDenseReferenceForward) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, GetParam());
  ASSERT_NE(w, nullptr);
  const LoraTrainConfig config = AllTargetsConfig(4, 10);
  auto examples = RandomExamples(5, 12, w->spec.vocab_size, 3);
  auto trainer = LoraTrainer::Create(*w, config, examples, nullptr);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const TrainedLora lora = RandomLora((*trainer)->Lora(), 11);
  ASSERT_TRUE((*trainer)->SetLora(lora).ok());
  auto loss = (*trainer)->Evaluate(examples);
  ASSERT_TRUE(loss.ok()) << loss.status();
  const double ref = ReferenceLoss(*w, lora, LoraScale(config), examples);
  EXPECT_NEAR(loss->loss, ref, 1e-4 * std::abs(ref));
  // The adapter matters: without it the loss differs.
  const double base = ReferenceLoss(*w, RandomLora(lora, 11, 0.0f), 0.0f, examples);
  EXPECT_GT(std::abs(ref - base), 1e-3);
}

TEST_P(GradientTest, GradientsMatchDenseMergedWeights) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, GetParam());
  ASSERT_NE(w, nullptr);
  auto examples = RandomExamples(3, 10, w->spec.vocab_size, 5);
  for (bool recompute : {false, true}) {
    LoraTrainConfig config = AllTargetsConfig(4, 10);
    config.recompute_activations = recompute;
    auto trainer = LoraTrainer::Create(*w, config, examples, nullptr);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    const TrainedLora lora = RandomLora((*trainer)->Lora(), 13);
    ASSERT_TRUE((*trainer)->SetLora(lora).ok());
    auto grads = (*trainer)->Gradients(examples);
    ASSERT_TRUE(grads.ok()) << grads.status();
    const TrainedLora ref = DenseGradients(*w, lora, LoraScale(config), examples);
    const auto [max_ref, max_err] = CompareGradients(*grads, ref);
    EXPECT_GT(max_ref, 1e-3);
    EXPECT_LT(max_err, 1e-4 * max_ref + 1e-6)
        << "max |grad| " << max_ref << " recompute " << recompute;
  }
}

TEST_P(GradientTest, GradientsMatchFiniteDifferences) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, GetParam());
  ASSERT_NE(w, nullptr);
  const LoraTrainConfig config = AllTargetsConfig(2, 10);
  auto examples = RandomExamples(2, 8, w->spec.vocab_size, 9);
  auto trainer = LoraTrainer::Create(*w, config, examples, nullptr);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const TrainedLora lora = RandomLora((*trainer)->Lora(), 17, 0.2f);
  ASSERT_TRUE((*trainer)->SetLora(lora).ok());
  auto grads = (*trainer)->Gradients(examples);
  ASSERT_TRUE(grads.ok()) << grads.status();
  const float scale = LoraScale(config);
  // The largest-gradient entry of A and of B in a few projections of both layers.
  for (auto [layer, target] : {std::pair{0, 0}, std::pair{1, 3}, std::pair{0, 6}, {1, 2}}) {
    for (bool is_b : {false, true}) {
      const auto& g = is_b ? grads->layers[layer][target].b : grads->layers[layer][target].a;
      size_t best = 0;
      for (size_t i = 1; i < g.size(); ++i) {
        if (std::abs(g[i]) > std::abs(g[best])) best = i;
      }
      const double eps = 1e-2;
      TrainedLora plus = lora, minus = lora;
      (is_b ? plus.layers[layer][target].b : plus.layers[layer][target].a)[best] += eps;
      (is_b ? minus.layers[layer][target].b : minus.layers[layer][target].a)[best] -= eps;
      const double fd =
          (ReferenceLoss(*w, plus, scale, examples) - ReferenceLoss(*w, minus, scale, examples)) /
          (2 * eps);
      EXPECT_NEAR(g[best], fd, 0.03 * std::abs(fd) + 1e-4)
          << "layer " << layer << " target " << target << (is_b ? " B[" : " A[") << best << "]";
    }
  }
}

// bf16 base multiplies (QLoRA's compute dtype) stay close to the fp32 gradients.
TEST(GradientBf16Test, Bf16BaseComputeIsCloseToFp32) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  ASSERT_NE(w, nullptr);
  auto examples = RandomExamples(3, 10, w->spec.vocab_size, 5);
  LoraTrainConfig config = AllTargetsConfig(4, 10);
  config.base_compute = BaseCompute::kBF16;
  auto trainer = LoraTrainer::Create(*w, config, examples, nullptr);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const TrainedLora lora = RandomLora((*trainer)->Lora(), 13);
  ASSERT_TRUE((*trainer)->SetLora(lora).ok());
  auto grads = (*trainer)->Gradients(examples);
  ASSERT_TRUE(grads.ok()) << grads.status();
  const TrainedLora ref = DenseGradients(*w, lora, LoraScale(config), examples);
  const auto [max_ref, max_err] = CompareGradients(*grads, ref);
  EXPECT_GT(max_err, 0.0);  // bf16 really is in use
  EXPECT_LT(max_err, 0.03 * max_ref) << "max |grad| " << max_ref;
  auto loss = (*trainer)->Evaluate(examples);
  ASSERT_TRUE(loss.ok());
  EXPECT_NEAR(loss->loss, ReferenceLoss(*w, lora, LoraScale(config), examples), 0.02);
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, GradientTest,
                         ::testing::Values(DType::kF32, DType::kQ8_0, DType::kQ4_1),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

}  // namespace
}  // namespace lorad::finetune
