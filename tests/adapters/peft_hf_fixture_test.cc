// An adapter written by HF PEFT for a Llama-architecture model loads and its effect matches
// PEFT's. The fixture (tests/data/peft_llama_tiny, made by its make_fixture.py with transformers
// and PEFT from PyPI) is a tiny LlamaForCausalLM saved by transformers, whose matrices are exactly
// representable in NF4 (so lorad's NF4 quantization at load is lossless), a LoRA adapter on all
// seven projections saved by PEFT, and the fp32 logits transformers/PEFT compute for a few token
// sequences with and without the adapter. lorad loads the base with LoadHfModel (which permutes
// q/k rows into GGML's adjacent-pair RoPE order) and the adapter with its PEFT reader (which
// permutes q/k lora_B rows the same way); its logits must match PEFT's on the fp32 reference
// forward with the adapter merged, and on the optimized LlamaModel with the adapter as LoRA
// segments (scalar kernels, fp32 KV cache: fp32 arithmetic throughout).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "adapters/peft_adapter.h"
#include "engine/base/half.h"
#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_weights.h"
#include "engine/model/reference_forward.h"
#include "engine/ops/kv_cache.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures/merged_reference.h"

namespace lorad {
namespace {

// Max |lorad - PEFT| allowed on a logit (logits reach ~17 in magnitude; both sides compute in
// fp32 from the same exact weights, so only summation order differs, plus the 6 significant
// digits the reference is stored with).
constexpr float kTolerance = 1e-3f;
// With the adapter held in fp16 (the store's default), B·A carries relative errors ~2^-11.
constexpr float kFp16Tolerance = 1e-2f;

std::string FixtureDir() {
  const char* root = std::getenv("LORAD_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/peft_llama_tiny";
}

struct Case {
  std::vector<int32_t> tokens;
  std::vector<float> base_logits, adapted_logits;  // [tokens.size(), vocab]
};

// Max |got - want| with the position of the worst logit, for failure messages.
struct Diff {
  float max_abs = 0.0f;
  size_t at = 0;
};
Diff MaxDiff(const std::vector<float>& got, const std::vector<float>& want) {
  Diff d;
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const float e = std::fabs(got[i] - want[i]);
    if (!(e <= d.max_abs)) {  // also catches NaN
      d.max_abs = std::isnan(e) ? INFINITY : e;
      d.at = i;
    }
  }
  return d;
}

class PeftHfFixtureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = FixtureDir();
    std::ifstream in(dir + "/reference.json");
    ASSERT_TRUE(in.good()) << "cannot open " << dir << "/reference.json";
    const nlohmann::json j = nlohmann::json::parse(in);
    vocab_ = j.at("vocab_size").get<int32_t>();
    rope_theta_ = j.at("rope_theta").get<float>();
    for (const auto& c : j.at("cases")) {
      Case k;
      k.tokens = c.at("tokens").get<std::vector<int32_t>>();
      k.base_logits = c.at("base_logits").get<std::vector<float>>();
      k.adapted_logits = c.at("adapted_logits").get<std::vector<float>>();
      ASSERT_EQ(k.base_logits.size(), k.tokens.size() * vocab_);
      ASSERT_EQ(k.adapted_logits.size(), k.tokens.size() * vocab_);
      cases_->push_back(std::move(k));
    }
  }
  static void TearDownTestSuite() { cases_->clear(); }

  void SetUp() override {
    auto w = LoadHfModel(FixtureDir() + "/base");
    ASSERT_TRUE(w.ok()) << w.status();
    weights_ = std::move(*w);
    auto ref = ReferenceModel::Create(*weights_);
    ASSERT_TRUE(ref.ok()) << ref.status();
    base_ = std::make_unique<ReferenceModel>(std::move(*ref));
  }

  std::unique_ptr<adapters::PeftAdapter> ReadAdapter(DType storage) {
    auto a = adapters::ReadPeftAdapter(FixtureDir() + "/adapter", weights_->spec, {storage});
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  static inline int32_t vocab_ = 0;
  static inline float rope_theta_ = 0.0f;
  static inline std::vector<Case>* cases_ = new std::vector<Case>();
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<ReferenceModel> base_;
};

TEST_F(PeftHfFixtureTest, ConfigReadsAsTransformersWroteIt) {
  const ModelSpec& s = weights_->spec;
  EXPECT_EQ(s.architecture, "llama");
  EXPECT_EQ(s.vocab_size, vocab_);
  EXPECT_EQ(s.num_layers, 2);
  EXPECT_EQ(s.num_heads, 4);
  EXPECT_EQ(s.num_kv_heads, 2);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.rope_neox);
  // transformers >= 5 writes rope_theta only inside "rope_parameters".
  EXPECT_EQ(s.rope_theta, rope_theta_);
  EXPECT_FLOAT_EQ(s.rms_norm_eps, 1e-5f);
}

TEST_F(PeftHfFixtureTest, AdapterReadsAllSevenModules) {
  auto a = ReadAdapter(DType::kF32);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->max_rank, 4);
  EXPECT_EQ(a->target_modules, (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj",
                                                         "gate_proj", "up_proj", "down_proj"}));
  ASSERT_EQ(a->weights.layers.size(), 2u);
  for (const auto& layer : a->weights.layers) {
    for (const LoraPair& p : layer) {
      EXPECT_EQ(p.rank, 4);
      EXPECT_FLOAT_EQ(p.scale, 2.0f);  // lora_alpha 8 / r 4
    }
  }
}

TEST_F(PeftHfFixtureTest, BaseLogitsMatchTransformers) {
  for (const Case& c : *cases_) {
    const Diff d = MaxDiff(base_->Forward(c.tokens), c.base_logits);
    EXPECT_LT(d.max_abs, kTolerance) << "sequence of " << c.tokens.size() << " tokens, position "
                                     << d.at / vocab_ << " token " << d.at % vocab_;
  }
}

TEST_F(PeftHfFixtureTest, MergedAdapterLogitsMatchPeft) {
  auto a = ReadAdapter(DType::kF32);
  ASSERT_NE(a, nullptr);
  const ReferenceModel merged = lorad::testing::MergedReference(*base_, a->weights);
  for (const Case& c : *cases_) {
    const std::vector<float> got = merged.Forward(c.tokens);
    const Diff d = MaxDiff(got, c.adapted_logits);
    EXPECT_LT(d.max_abs, kTolerance) << "sequence of " << c.tokens.size() << " tokens, position "
                                     << d.at / vocab_ << " token " << d.at % vocab_;
    // The adapter's effect is real: far above the tolerance, both in PEFT's logits and ours.
    EXPECT_GT(MaxDiff(c.adapted_logits, c.base_logits).max_abs, 0.5f);
    EXPECT_GT(MaxDiff(got, c.base_logits).max_abs, 0.5f);
  }
}

TEST_F(PeftHfFixtureTest, Fp16StoredAdapterStaysClose) {
  auto a = ReadAdapter(DType::kF16);
  ASSERT_NE(a, nullptr);
  const ReferenceModel merged = lorad::testing::MergedReference(*base_, a->weights);
  for (const Case& c : *cases_) {
    const Diff d = MaxDiff(merged.Forward(c.tokens), c.adapted_logits);
    EXPECT_LT(d.max_abs, kFp16Tolerance) << "sequence of " << c.tokens.size() << " tokens";
  }
}

// The optimized forward: all sequences in one batch, the adapter bound as one LoRA segment over
// the adapted sequences' rows and the base for the others (sequence 1 runs on the base).
TEST_F(PeftHfFixtureTest, OptimizedModelWithLoraSegmentsMatchesPeft) {
  auto a = ReadAdapter(DType::kF32);
  ASSERT_NE(a, nullptr);
  const kernels::Isa previous = kernels::ActiveIsa();
  kernels::SetKernelIsaForTesting(kernels::Isa::kScalar);
  kernels::ThreadPool pool(2);
  auto model = LlamaModel::Create(std::move(weights_), &pool);
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = KvCache::Create((*model)->CacheOptions(16, 16, DType::kF32));
  ASSERT_TRUE(cache.ok()) << cache.status();

  // Batch order: case 0 (adapted), case 1 (base), case 2 (adapted).
  const std::vector<bool> adapted = {true, false, true};
  ASSERT_EQ(cases_->size(), adapted.size());
  std::vector<BlockTable> tables(cases_->size());
  std::vector<const BlockTable*> ptrs;
  std::vector<int32_t> tokens, positions, index, rows;
  std::vector<std::pair<int64_t, int64_t>> spans;  // token rows of each sequence
  for (size_t s = 0; s < cases_->size(); ++s) {
    const Case& c = (*cases_)[s];
    (*cache)->Reserve(tables[s], static_cast<int64_t>(c.tokens.size()));
    ptrs.push_back(&tables[s]);
    spans.emplace_back(static_cast<int64_t>(tokens.size()),
                       static_cast<int64_t>(tokens.size() + c.tokens.size()));
    for (size_t p = 0; p < c.tokens.size(); ++p) {
      rows.push_back(static_cast<int32_t>(tokens.size()));
      tokens.push_back(c.tokens[p]);
      positions.push_back(static_cast<int32_t>(p));
      index.push_back(static_cast<int32_t>(s));
    }
  }
  LoraBatch lora;
  lora.layers.resize(a->weights.layers.size());
  for (size_t l = 0; l < a->weights.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraPair& p = a->weights.layers[l][t];
      for (size_t s = 0; s < spans.size(); ++s) {
        if (!adapted[s] || p.rank == 0) continue;
        lora.layers[l][t].push_back(
            {spans[s].first, spans[s].second, p.rank, p.scale, p.dtype, p.a, p.b});
      }
    }
  }
  std::vector<float> logits(rows.size() * static_cast<size_t>(vocab_));
  const absl::Status st =
      (*model)->Forward({tokens, positions, index, ptrs, rows, &lora}, **cache, logits.data());
  kernels::SetKernelIsaForTesting(previous);
  ASSERT_TRUE(st.ok()) << st;
  for (size_t s = 0; s < cases_->size(); ++s) {
    const Case& c = (*cases_)[s];
    const std::vector<float> got(logits.begin() + spans[s].first * vocab_,
                                 logits.begin() + spans[s].second * vocab_);
    const Diff d = MaxDiff(got, adapted[s] ? c.adapted_logits : c.base_logits);
    EXPECT_LT(d.max_abs, kTolerance)
        << "sequence " << s << (adapted[s] ? " (adapted)" : " (base)") << ", position "
        << d.at / vocab_ << " token " << d.at % vocab_;
  }
  for (auto& t : tables) (*cache)->Release(t);
}

}  // namespace
}  // namespace lorad
