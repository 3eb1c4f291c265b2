// Shared helpers of the fine-tuning tests: a tiny random model, random examples and random
// LoRA parameters. Test-only.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/finetune/dataset.h"
#include "engine/finetune/train_config.h"
#include "engine/finetune/trained_lora.h"
#include "engine/model/model_weights.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad::finetune::testing {

inline std::unique_ptr<ModelWeights> LoadTinyModel(const lorad::testing::ScopedTempDir& dir,
                                                   DType type = DType::kQ8_0,
                                                   bool qkv_bias = false) {
  lorad::testing::TinyModelOptions o;
  o.weight_type = type;
  o.qkv_bias = qkv_bias;
  const std::string path = dir.File(qkv_bias ? "tiny-qwen.gguf" : "tiny.gguf");
  EXPECT_TRUE(lorad::testing::WriteTinyGguf(o, path).ok());
  auto loaded = LoadModel(path);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? *std::move(loaded) : nullptr;
}

// `count` examples of random tokens (lengths in [3, max_len]) with random target masks (each
// with at least one target).
inline std::vector<TrainExample> RandomExamples(int count, int max_len, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TrainExample> out;
  for (int i = 0; i < count; ++i) {
    TrainExample e;
    const int len = 3 + static_cast<int>(rng() % (max_len - 2));
    for (int j = 0; j < len; ++j) {
      e.tokens.push_back(static_cast<int32_t>(rng() % vocab));
      e.target.push_back(j > 0 && (j == len - 1 || rng() % 3 != 0) ? 1 : 0);
    }
    e.line = i + 1;
    out.push_back(std::move(e));
  }
  return out;
}

inline LoraTrainConfig AllTargetsConfig(int rank, int64_t total_steps) {
  LoraTrainConfig c;
  c.rank = rank;
  c.alpha = 2.0f * rank;
  c.targets = {LoraTarget::kQ,    LoraTarget::kK,  LoraTarget::kV,   LoraTarget::kO,
               LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};
  c.total_steps = total_steps;
  c.batch_size = 2;
  c.max_seq_len = 64;
  c.seed = 7;
  c.base_compute = BaseCompute::kF32;  // compared with fp32 references
  return c;
}

// Random A and B (both non-zero) for every adapted pair of `like`.
inline TrainedLora RandomLora(TrainedLora like, uint64_t seed, float stddev = 0.1f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (auto& layer : like.layers) {
    for (TrainedLoraPair& p : layer) {
      for (float& v : p.a) v = normal(rng);
      for (float& v : p.b) v = normal(rng);
    }
  }
  return like;
}

}  // namespace lorad::finetune::testing
