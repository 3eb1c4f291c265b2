// LoraTrainer behavior on the tiny model: it learns, it is repeatable from its seed, a resumed
// run equals an uninterrupted one, a non-finite loss fails cleanly, the gate can stop a step,
// and the exported PEFT adapter reads back through lorad's PEFT reader unchanged.
#include <atomic>
#include <filesystem>

#include "adapters/peft_adapter.h"
#include "engine/base/half.h"
#include "engine/finetune/lora_trainer.h"
#include "engine/model/reference_forward.h"
#include "gmock/gmock.h"
#include "tests/finetune/finetune_test_util.h"

namespace lorad::finetune {
namespace {

using testing::AllTargetsConfig;
using testing::LoadTinyModel;
using testing::RandomExamples;
using testing::RandomLora;

// Example i maps a fixed 3-token prompt to a fixed 3-token completion.
std::vector<TrainExample> MappingExamples() {
  std::vector<TrainExample> out;
  for (int i = 0; i < 4; ++i) {
    TrainExample e;
    e.tokens = {1, 10 + i, 20 + i, 30 + i, 40 + i, 50 + i, 2};
    e.target = {0, 0, 0, 1, 1, 1, 1};
    e.line = i + 1;
    out.push_back(e);
  }
  return out;
}

float MaxAbsDiff(const TrainedLora& x, const TrainedLora& y) {
  float d = 0.0f;
  for (size_t l = 0; l < x.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      for (size_t i = 0; i < x.layers[l][t].a.size(); ++i) {
        d = std::max(d, std::abs(x.layers[l][t].a[i] - y.layers[l][t].a[i]));
      }
      for (size_t i = 0; i < x.layers[l][t].b.size(); ++i) {
        d = std::max(d, std::abs(x.layers[l][t].b[i] - y.layers[l][t].b[i]));
      }
    }
  }
  return d;
}

TEST(TrainerTest, LearnsAFixedMapping) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(8, 40);
  c.learning_rate = 1e-2f;
  c.warmup_steps = 2;
  auto trainer = LoraTrainer::Create(*w, c, MappingExamples(), nullptr);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  auto before = (*trainer)->Evaluate(MappingExamples());
  ASSERT_TRUE(before.ok());
  StepResult last;
  for (int i = 0; i < 40; ++i) {
    auto r = (*trainer)->Step();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->step, i + 1);
    EXPECT_EQ(r->target_tokens, 2 * 4);
    last = *r;
  }
  auto after = (*trainer)->Evaluate(MappingExamples());
  ASSERT_TRUE(after.ok());
  // The tiny model's logits are small (tied 0.1-scale embeddings after RMSNorm), so the loss
  // floor is well above 0; the mapping itself must be learned exactly.
  EXPECT_LT(after->loss, 0.15f * before->loss)
      << "before " << before->loss << " after " << after->loss;
  auto ref = ReferenceModel::Create(*w);
  ASSERT_TRUE(ref.ok());
  const TrainedLora lora = (*trainer)->Lora();
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const TrainedLoraPair& p = lora.layers[l][t];
      ref->MergeLora(l, static_cast<LoraTarget>(t), p.a.data(), p.b.data(), p.rank, LoraScale(c));
    }
  }
  for (const TrainExample& e : MappingExamples()) {
    const std::vector<float> logits = ref->Forward(e.tokens);
    const int64_t vocab = w->spec.vocab_size;
    for (size_t t = 3; t < e.tokens.size(); ++t) {
      const float* row = logits.data() + (t - 1) * vocab;
      EXPECT_EQ(std::max_element(row, row + vocab) - row, e.tokens[t]) << "position " << t;
    }
  }
  EXPECT_FLOAT_EQ(last.learning_rate, LearningRateAt(c, 39));
  EXPECT_EQ((*trainer)->Step().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TrainerTest, SameSeedSameRunAndResumeEqualsUninterrupted) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir);
  LoraTrainConfig c = AllTargetsConfig(4, 6);
  c.dropout = 0.1f;  // dropout masks must replay too
  c.grad_accum = 2;
  c.learning_rate = 5e-3f;
  const auto data = RandomExamples(7, 12, w->spec.vocab_size, 21);

  auto a = LoraTrainer::Create(*w, c, data, nullptr);
  auto b = LoraTrainer::Create(*w, c, data, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 6; ++i) {
    auto ra = (*a)->Step();
    ASSERT_TRUE(ra.ok()) << ra.status();
    if (i < 3) {
      auto rb = (*b)->Step();
      ASSERT_TRUE(rb.ok());
      EXPECT_EQ(ra->loss, rb->loss);
    }
  }
  const std::string ckpt = dir.File("step-3");
  ASSERT_TRUE((*b)->SaveCheckpoint(ckpt).ok());
  EXPECT_FALSE(std::filesystem::exists(ckpt + ".tmp"));
  EXPECT_EQ((*b)->SaveCheckpoint(ckpt).code(), absl::StatusCode::kAlreadyExists);

  auto resumed = LoraTrainer::Create(*w, c, data, nullptr);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->RestoreCheckpoint(ckpt).ok());
  EXPECT_EQ((*resumed)->step(), 3);
  EXPECT_EQ(MaxAbsDiff((*resumed)->Lora(), (*b)->Lora()), 0.0f);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*resumed)->Step().ok());
  EXPECT_LT(MaxAbsDiff((*resumed)->Lora(), (*a)->Lora()), 1e-6f);
  EXPECT_GT(MaxAbsDiff((*resumed)->Lora(), (*b)->Lora()), 1e-4f);

  // A different run refuses the checkpoint.
  LoraTrainConfig other = c;
  other.seed = 8;
  auto wrong = LoraTrainer::Create(*w, other, data, nullptr);
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ((*wrong)->RestoreCheckpoint(ckpt).code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainerTest, NonFiniteLossFailsAndLeavesParameters) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir);
  auto trainer = LoraTrainer::Create(*w, AllTargetsConfig(4, 5), MappingExamples(), nullptr);
  ASSERT_TRUE(trainer.ok());
  TrainedLora bad = RandomLora((*trainer)->Lora(), 3);
  bad.layers[1][2].b[0] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE((*trainer)->SetLora(bad).ok());
  auto r = (*trainer)->Step();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("NaN at step 1"));
  EXPECT_EQ((*trainer)->step(), 0);
  EXPECT_TRUE(std::isnan((*trainer)->Lora().layers[1][2].b[0]));
  EXPECT_EQ((*trainer)->Lora().layers[0][0].a, bad.layers[0][0].a);
}

class CountingGate : public TrainGate {
 public:
  explicit CountingGate(int allow) : allow_(allow) {}
  absl::Status Pause() override {
    if (++calls_ > allow_) return absl::CancelledError("job cancelled");
    return absl::OkStatus();
  }
  std::atomic<int> calls_{0};
  int allow_;
};

TEST(TrainerTest, GateStopsAStepInForwardOrBackwardAndTheNextStepRuns) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir);
  // One step of the tiny model pauses, forward, 2 layers * 4 frozen multiplies (q/k/v and
  // gate/up stacked) + 2 in the output head, then at least 2 * 4 more in backward.
  for (int allow : {3, 12}) {
    CountingGate gate(allow);
    auto trainer = LoraTrainer::Create(*w, AllTargetsConfig(4, 5), MappingExamples(), &gate);
    ASSERT_TRUE(trainer.ok());
    const TrainedLora before = (*trainer)->Lora();
    auto r = (*trainer)->Step();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << "allow " << allow;
    EXPECT_EQ((*trainer)->step(), 0);
    EXPECT_EQ(MaxAbsDiff(before, (*trainer)->Lora()), 0.0f);
    gate.allow_ = 1 << 30;
    auto ok = (*trainer)->Step();
    EXPECT_TRUE(ok.ok()) << ok.status();
  }
}

TEST(TrainerTest, PeftExportReadsBackThroughLoradsReader) {
  lorad::testing::ScopedTempDir dir;
  for (bool qwen : {false, true}) {  // q/k rows permuted (llama) or not (qwen2)
    auto w = LoadTinyModel(dir, DType::kQ8_0, qwen);
    auto trainer = LoraTrainer::Create(*w, AllTargetsConfig(4, 5), MappingExamples(), nullptr);
    ASSERT_TRUE(trainer.ok());
    const TrainedLora lora = RandomLora((*trainer)->Lora(), 5);
    const std::string out = dir.File(qwen ? "peft-qwen" : "peft-llama");
    std::filesystem::create_directories(out);
    ASSERT_TRUE(WritePeftAdapter(out, lora, w->spec, "tiny").ok());
    adapters::PeftLoadOptions options;
    options.storage = DType::kF32;
    auto read = adapters::ReadPeftAdapter(out, w->spec, options);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ((*read)->config.r, 4);
    for (size_t l = 0; l < lora.layers.size(); ++l) {
      for (int t = 0; t < kNumLoraTargets; ++t) {
        const LoraPair& p = (*read)->weights.layers[l][t];
        const TrainedLoraPair& want = lora.layers[l][t];
        ASSERT_EQ(p.rank, 4);
        EXPECT_FLOAT_EQ(p.scale, 2.0f);
        const float* a = static_cast<const float*>(p.a);
        const float* b = static_cast<const float*>(p.b);
        EXPECT_EQ(std::vector<float>(a, a + want.a.size()), want.a) << l << " " << t;
        EXPECT_EQ(std::vector<float>(b, b + want.b.size()), want.b) << l << " " << t;
      }
    }
  }
}

}  // namespace
}  // namespace lorad::finetune

namespace lorad::finetune {
namespace {

// SmolLM2-135M's shape, the default model's.
ModelSpec SmolLm2Shape() {
  ModelSpec s;
  s.hidden_size = 576;
  s.intermediate_size = 1536;
  s.num_layers = 30;
  s.num_heads = 9;
  s.num_kv_heads = 3;
  s.head_dim = 64;
  return s;
}

TEST(RecomputePolicyTest, AutoKeepsActivationsOnlyWhenTheyFitTheBudget) {
  const ModelSpec s = SmolLm2Shape();
  // Batch 4 x 256 measured ~1.4 GB more peak memory kept than recomputed: the estimate is
  // an upper bound of that order.
  const int64_t bytes = KeptActivationBytes(s, 4, 256);
  EXPECT_GT(bytes, int64_t{1400} << 20);
  EXPECT_LT(bytes, int64_t{2500} << 20);
  EXPECT_GT(KeptActivationBytes(s, 4, 512), 2 * bytes);  // attention rows grow with length
  const int64_t budget = int64_t{4096} << 20;
  EXPECT_FALSE(ShouldRecompute(RecomputePolicy::kAuto, s, 4, 256, budget));
  EXPECT_TRUE(ShouldRecompute(RecomputePolicy::kAuto, s, 16, 1024, budget));
  EXPECT_TRUE(ShouldRecompute(RecomputePolicy::kAuto, s, 1, 8, 0));
  EXPECT_TRUE(ShouldRecompute(RecomputePolicy::kAlways, s, 1, 8, budget));
  EXPECT_FALSE(ShouldRecompute(RecomputePolicy::kNever, s, 16, 1024, budget));

  RecomputePolicy p = RecomputePolicy::kAlways;
  ASSERT_TRUE(ParseRecomputePolicy("auto", &p).ok());
  EXPECT_EQ(p, RecomputePolicy::kAuto);
  ASSERT_TRUE(ParseRecomputePolicy("false", &p).ok());
  EXPECT_EQ(p, RecomputePolicy::kNever);
  EXPECT_FALSE(ParseRecomputePolicy("maybe", &p).ok());
}

TEST(LoraStateBudgetTest, StateBytesCountEveryTargetsParametersFourTimesInFp32) {
  const ModelSpec s = SmolLm2Shape();
  LoraTrainConfig config;
  config.rank = 16;
  config.targets = {LoraTarget::kQ, LoraTarget::kV};
  // q: A [16, 576] + B [576, 16]; v: A [16, 576] + B [192, 16]; 30 layers; 16 bytes each.
  EXPECT_EQ(LoraTrainingStateBytes(s, config), (16 * (576 + 576) + 16 * (576 + 192)) * 30 * 16);
  config.targets.clear();
  for (int t = 0; t < kNumLoraTargets; ++t) config.targets.push_back(static_cast<LoraTarget>(t));
  const int64_t all_seven = LoraTrainingStateBytes(s, config);
  EXPECT_EQ(all_seven, int64_t{16} * 10176 * 30 * 16);  // ~78 MB
  config.rank = 1024;
  EXPECT_EQ(LoraTrainingStateBytes(s, config), 64 * all_seven);  // ~5 GB: over the default
  EXPECT_GT(LoraTrainingStateBytes(s, config), int64_t{kDefaultLoraStateBudgetMb} << 20);
}

}  // namespace
}  // namespace lorad::finetune
