#include "engine/sampling/sampler.h"

#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace lorad {
namespace {

std::vector<float> RandomLogits(int32_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(SamplerTest, GreedyPicksArgmax) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p, 100, 1);
  std::vector<float> logits = RandomLogits(100, 7);
  const int32_t expect = std::max_element(logits.begin(), logits.end()) - logits.begin();
  EXPECT_EQ(s.Sample(logits.data()).token, expect);
}

TEST(SamplerTest, SameSeedSameTokens) {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_p = 0.95f;
  p.seed = 1234;
  Sampler a(p, 500, 1), b(p, 500, 2);  // fallback seeds differ; params.seed wins
  for (int step = 0; step < 50; ++step) {
    std::vector<float> la = RandomLogits(500, step), lb = la;
    EXPECT_EQ(a.Sample(la.data()).token, b.Sample(lb.data()).token) << step;
  }
}

TEST(SamplerTest, DifferentSeedsDiverge) {
  SamplingParams p;
  p.temperature = 1.5f;
  SamplingParams q = p;
  p.seed = 1;
  q.seed = 2;
  Sampler a(p, 500, 0), b(q, 500, 0);
  int differ = 0;
  for (int step = 0; step < 50; ++step) {
    std::vector<float> la = RandomLogits(500, step), lb = la;
    differ += a.Sample(la.data()).token != b.Sample(lb.data()).token;
  }
  EXPECT_GT(differ, 10);
}

TEST(SamplerTest, TopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 1;
  Sampler s(p, 300, 5);
  for (int step = 0; step < 20; ++step) {
    std::vector<float> logits = RandomLogits(300, step);
    const int32_t expect = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(s.Sample(logits.data()).token, expect);
  }
}

TEST(SamplerTest, TopKRestrictsToKBest) {
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 3;
  Sampler s(p, 50, 9);
  std::vector<float> base = RandomLogits(50, 3);
  std::vector<int32_t> idx(50);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return base[a] > base[b]; });
  std::set<int32_t> allowed(idx.begin(), idx.begin() + 3);
  std::set<int32_t> seen;
  for (int i = 0; i < 300; ++i) {
    std::vector<float> l = base;
    const int32_t t = s.Sample(l.data()).token;
    EXPECT_TRUE(allowed.count(t)) << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(SamplerTest, TopPKeepsNucleus) {
  // Probabilities 0.5, 0.3, 0.2 (temperature 1): top_p 0.7 keeps the first two only.
  std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams p;
  p.top_p = 0.7f;
  Sampler s(p, 3, 11);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> l = base;
    ++counts[s.Sample(l.data()).token];
  }
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[0] / 2000.0, 0.625, 0.05);
}

TEST(SamplerTest, MinPDropsUnlikely) {
  std::vector<float> base = {std::log(0.6f), std::log(0.35f), std::log(0.05f)};
  SamplingParams p;
  p.min_p = 0.1f;  // floor 0.06: token 2 (0.05) goes
  Sampler s(p, 3, 13);
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> l = base;
    EXPECT_NE(s.Sample(l.data()).token, 2);
  }
}

TEST(SamplerTest, RepetitionPenaltyChangesGreedyChoice) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  Sampler s(p, 4, 1);
  s.ObservePrompt(0);
  std::vector<float> logits = {3.0f, 2.0f, -1.0f, 0.5f};  // 3.0 / 2 = 1.5 < 2.0
  EXPECT_EQ(s.Sample(logits.data()).token, 1);
}

// The plain reference of the additive penalties: OpenAI's formula over generated tokens only.
int32_t ReferencePenalizedArgmax(std::vector<float> logits, const std::vector<int32_t>& generated,
                                 float presence, float frequency) {
  std::vector<int32_t> count(logits.size(), 0);
  for (int32_t t : generated) ++count[t];
  for (size_t t = 0; t < logits.size(); ++t) {
    if (count[t] > 0) logits[t] -= presence + frequency * static_cast<float>(count[t]);
  }
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesMatchTheReferenceOnGeneratedTokensOnly) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int32_t vocab : {2, 7, 64, 1000}) {
    for (int trial = 0; trial < 50; ++trial) {
      SamplingParams p;
      p.temperature = 0.0f;
      p.presence_penalty = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
      p.frequency_penalty = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
      Sampler s(p, vocab, 1);
      std::vector<int32_t> generated;
      for (int i = 0; i < 10; ++i) {
        const int32_t t = std::uniform_int_distribution<int32_t>(0, vocab - 1)(rng);
        if (i % 3 == 0) {
          s.ObservePrompt(t);  // the prompt does not count
        } else {
          s.ObserveOutput(t);
          generated.push_back(t);
        }
      }
      std::vector<float> logits(vocab);
      for (float& l : logits) l = normal(rng);
      const int32_t want =
          ReferencePenalizedArgmax(logits, generated, p.presence_penalty, p.frequency_penalty);
      EXPECT_EQ(s.Sample(logits.data()).token, want) << "vocab " << vocab << " trial " << trial;
    }
  }
}

TEST(SamplerTest, FrequencyPenaltyGrowsWithEachRepeat) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.frequency_penalty = 0.6f;
  Sampler s(p, 3, 1);
  std::vector<float> logits = {3.0f, 2.0f, 0.0f};
  s.ObserveOutput(0);  // 3.0 - 0.6 = 2.4 still wins
  std::vector<float> l = logits;
  EXPECT_EQ(s.Sample(l.data()).token, 0);
  s.ObserveOutput(0);  // 3.0 - 1.2 = 1.8 loses to 2.0
  l = logits;
  EXPECT_EQ(s.Sample(l.data()).token, 1);
}

TEST(SamplerTest, LogprobsAreModelLogSoftmax) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 2;
  Sampler s(p, 3, 1);
  std::vector<float> logits = {1.0f, 2.0f, 0.0f};
  const SampledToken t = s.Sample(logits.data());
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(0.0);
  EXPECT_EQ(t.token, 1);
  EXPECT_NEAR(t.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].token, 1);
  EXPECT_EQ(t.top[1].token, 0);
  EXPECT_NEAR(t.top[1].logprob, 1.0 - std::log(z), 1e-5);
}

TEST(SamplingParamsTest, RejectsOutOfRange) {
  SamplingLimits limits;
  SamplingParams ok;
  EXPECT_TRUE(ValidateSamplingParams(ok, limits).ok());
  auto bad = [&](auto mutate) {
    SamplingParams p;
    mutate(p);
    return ValidateSamplingParams(p, limits);
  };
  EXPECT_EQ(bad([](SamplingParams& p) { p.temperature = -0.1f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.top_p = 1.5f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.top_p = 0.0f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.max_new_tokens = 100000; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.min_p = 2.0f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.presence_penalty = 2.5f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.frequency_penalty = -2.01f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.presence_penalty = NAN; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.repetition_penalty = 0.0f; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.stop.assign(100, "x"); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.stop = {""}; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad([](SamplingParams& p) { p.logprobs = 21; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad([](SamplingParams& p) { p.top_p = 7.0f; }).message().find("top_p"),
            std::string::npos);
}

}  // namespace
}  // namespace lorad
