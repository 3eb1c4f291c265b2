// The engine on the real default model against llama.cpp as the reference
// (tests/data/llama_cpp_reference, produced as its README says): tokenizer ids, chat
// formatting, logits and greedy continuations.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>

#include "engine/engine.h"
#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/ggml_width.h"
#include "engine/kernels/thread_pool.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/model_test_util.h"

namespace lorad {
namespace {

// On x86 SIMD CPUs the forward reproduces llama.cpp's CPU arithmetic operation for operation
// (Q8_1/Q8_0 activations with fp16 scales, RMSNorm summed in double, ggml's expf in SwiGLU,
// fused RoPE rotations, fp16 attention summed in ggml's order), so its logits equal the
// reference's bit for bit. The scalar kernels compute in fp32 without activation rounding and
// only track the reference approximately.
bool BitExactExpected() { return kernels::ActiveIsa() != kernels::Isa::kScalar; }

// ggml's summation order depends on the SIMD width llama.cpp was built for (ggml_width.h), so
// there is one greedy reference per width: greedy.json from a native AVX-512 build,
// greedy_avx2.json from a -march=haswell build. The engine follows its active kernel level's
// width; LORAD_CPU_ISA=avx2 runs this suite against the AVX2 reference on an AVX-512 machine.
std::string GreedyReferenceName() {
  return vec::ActiveGgmlWidth() == vec::GgmlWidth::k512 ? "greedy.json" : "greedy_avx2.json";
}

nlohmann::json LoadReference(const std::string& name) {
  const char* root = std::getenv("LORAD_SOURCE_DIR");
  std::ifstream in(std::string(root ? root : ".") + "/tests/data/llama_cpp_reference/" + name);
  return nlohmann::json::parse(in);
}

class LlamaCppReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::DefaultModelPath();
    if (path.empty()) return;
    EngineOptions o;
    o.model_path = path;
    o.num_threads = 2;
    o.kv_cache_bytes = int64_t{64} << 20;
    auto e = Engine::Create(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
    auto w = LoadModel(path);
    ASSERT_TRUE(w.ok());
    pool_ = new kernels::ThreadPool(2);
    model_ = LlamaModel::Create(std::move(*w), pool_)->release();
  }
  void SetUp() override {
    if (engine_ == nullptr) GTEST_SKIP() << "default model not present";
  }

  // Greedy generation through the engine (scheduler, sampler, stop on end of generation).
  std::vector<int32_t> Greedy(const std::string& prompt, int32_t max_new_tokens) {
    struct Sink : GenerateSink {
      std::vector<int32_t> ids;
      std::promise<absl::Status> done;
      void OnOutput(GenerateOutput out) override {
        ids.insert(ids.end(), out.token_ids.begin(), out.token_ids.end());
        if (out.finished) done.set_value(out.status);
      }
    };
    auto sink = std::make_shared<Sink>();
    auto done = sink->done.get_future();
    GenerateRequest req;
    req.prompt = prompt;
    req.sampling.temperature = 0.0f;
    req.sampling.max_new_tokens = max_new_tokens;
    EXPECT_TRUE(engine_->Submit(req, sink).ok());
    EXPECT_TRUE(done.get().ok());
    return sink->ids;
  }

  static inline Engine* engine_ = nullptr;
  static inline kernels::ThreadPool* pool_ = nullptr;
  static inline LlamaModel* model_ = nullptr;
};

TEST_F(LlamaCppReferenceTest, TokenIdsEqualLlamaCpp) {
  const nlohmann::json ref = LoadReference("tokenize.json");
  int checked = 0;
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"];
    auto ids = engine_->tokenizer().Encode(text, c["add_special"], c["parse_special"]);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << "text: " << text;
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

TEST_F(LlamaCppReferenceTest, ChatFormattingEqualsModelTemplate) {
  const nlohmann::json ref = LoadReference("chat.json");
  for (const auto& conv : ref["conversations"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : conv["messages"]) messages.push_back({m["role"], m["content"]});
    // The model's own template (rendered with jinja2) is the reference; llama.cpp's built-in
    // ChatML omits the template's default system turn.
    auto rendered = ApplyChatTemplate(engine_->tokenizer().vocab().chat_template, messages, true);
    ASSERT_TRUE(rendered.ok());
    EXPECT_EQ(*rendered, conv["jinja2_rendered"].get<std::string>());
    auto ids = engine_->Tokenize(*rendered);
    ASSERT_TRUE(ids.ok());
    if (conv["jinja2_matches_llama_cpp"].get<bool>()) {
      EXPECT_EQ(*ids, conv["ids"].get<std::vector<int32_t>>());
    }
  }
}

// Teacher-forced: feed llama.cpp's prompt + continuation through our forward and compare the
// next-token logits at every step. Our argmax must equal llama.cpp's token wherever llama.cpp's
// own top-1/top-2 margin leaves room for the small numeric differences between the engines.
TEST_F(LlamaCppReferenceTest, LogitsTrackLlamaCppAlongItsContinuation) {
  const nlohmann::json ref = LoadReference(GreedyReferenceName());
  const int32_t vocab = model_->spec().vocab_size;
  int compared = 0, agreed = 0;
  double worst_top5 = 0.0;
  for (const auto& p : ref["prompts"]) {
    std::vector<int32_t> seq = p["prompt_ids"].get<std::vector<int32_t>>();
    const size_t prompt_len = seq.size();
    const auto gen = p["generated_ids"].get<std::vector<int32_t>>();
    seq.insert(seq.end(), gen.begin(), gen.end());
    auto cache = KvCache::Create(model_->CacheOptions(64));
    ASSERT_TRUE(cache.ok());
    const std::vector<float> logits = testing::ForwardAll(*model_, **cache, {seq});
    ASSERT_FALSE(logits.empty());
    const float* first = logits.data() + (prompt_len - 1) * vocab;
    for (const auto& t : p["first_pos_top5"]) {
      worst_top5 =
          std::max(worst_top5, double{std::fabs(first[t[0].get<int>()] - t[1].get<float>())});
    }
    const auto& steps = p["steps_top1_logit_top2"];
    for (size_t i = 0; i < gen.size(); ++i) {
      const float* l = logits.data() + (prompt_len - 1 + i) * vocab;
      const int32_t ours = static_cast<int32_t>(std::max_element(l, l + vocab) - l);
      const double margin = steps[i][0].get<double>() - steps[i][2].get<double>();
      if (margin < 0.5) continue;
      ++compared;
      agreed += ours == gen[i];
      EXPECT_EQ(ours, gen[i]) << p["prompt"] << " step " << i << " margin " << margin;
    }
  }
  std::printf("teacher-forced: %d/%d steps agree; worst first-position top-5 logit diff %.4f\n",
              agreed, compared, worst_top5);
  EXPECT_GE(compared, 300);
  // 0 on x86 SIMD (the reference's logits are stored with 6 decimals); 0.53 with the
  // scalar kernels (logits around 17).
  EXPECT_LT(worst_top5, BitExactExpected() ? 1e-4 : 1.0);
}

// Free-running greedy generation through the engine equals llama.cpp's, token for token: for
// every prompt up to llama.cpp's first near-tie (top-1/top-2 margin under 0.5 logits), and on
// x86 SIMD for every prompt for at least 32 tokens (or to llama.cpp's end of generation).
TEST_F(LlamaCppReferenceTest, GreedyContinuationsEqualLlamaCpp) {
  const nlohmann::json ref = LoadReference(GreedyReferenceName());
  int prompts_with_32 = 0;
  for (const auto& p : ref["prompts"]) {
    const auto want = p["generated_ids"].get<std::vector<int32_t>>();
    const auto& steps = p["steps_top1_logit_top2"];
    size_t decisive = 0;
    while (decisive < want.size() &&
           steps[decisive][0].get<double>() - steps[decisive][2].get<double>() >= 0.5) {
      ++decisive;
    }
    const std::vector<int32_t> got = Greedy(p["prompt"], static_cast<int32_t>(want.size()));
    size_t same = 0;
    while (same < got.size() && same < want.size() && got[same] == want[same]) ++same;
    EXPECT_GE(same, decisive) << p["prompt"];
    const bool equal_32 = same >= 32 || same == want.size();
    if (BitExactExpected()) EXPECT_TRUE(equal_32) << p["prompt"] << " parts at token " << same;
    if (equal_32) ++prompts_with_32;
    std::printf("%-40.40s equal for %zu/%zu tokens (first near-tie at %zu)\n",
                p["prompt"].get<std::string>().c_str(), same, want.size(), decisive);
  }
  std::printf("%d prompts equal for >= 32 tokens (or to llama.cpp's end of generation)\n",
              prompts_with_32);
  // All 12 (each for all of its tokens) on x86 SIMD. Issue 3's acceptance bar is 8 of 12; the
  // scalar kernels part from the reference at near-ties of under 0.01 logits.
  EXPECT_GE(prompts_with_32, BitExactExpected() ? static_cast<int>(ref["prompts"].size()) : 4);
}

}  // namespace
}  // namespace lorad
