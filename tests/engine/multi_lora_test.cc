// Mixed multi-LoRA batches through the real Engine give, under greedy sampling, the tokens each
// request gets alone: on the tiny model against the fp32 ReferenceModel with the adapter merged
// into dense weights (W + scale * B * A); on the default model (when present) against the
// engine running each request as a batch of one.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>

#include "adapters/adapter_store.h"
#include "engine/base/half.h"
#include "engine/engine.h"
#include "engine/model/model_weights.h"
#include "engine/model/reference_forward.h"
#include "gtest/gtest.h"
#include "tests/engine/generate_test_util.h"
#include "tests/engine/model_test_util.h"
#include "tests/fixtures/merged_reference.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_adapter.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad {
namespace {

using adapters::AdapterStore;
using adapters::AdapterStoreOptions;
using testing::CollectSink;
using testing::Greedy;
using testing::ScopedTempDir;
using testing::TinyAdapterOptions;
using testing::TinyModelOptions;

struct Request {
  std::string adapter_id;  // "" = base
  std::string prompt;
};

// Records the widest step (distinct adapters in one forward batch).
class StepRecorder : public StatsSink {
 public:
  void OnStep(const StepStats& s) override {
    int32_t seen = max_adapters.load();
    while (s.distinct_adapters > seen &&
           !max_adapters.compare_exchange_weak(seen, s.distinct_adapters)) {
    }
    int32_t seqs = max_sequences.load();
    while (s.sequences > seqs && !max_sequences.compare_exchange_weak(seqs, s.sequences)) {
    }
  }
  std::atomic<int32_t> max_adapters{0}, max_sequences{0};
};

// Submits every request at once and returns each one's generated tokens.
std::vector<std::vector<int32_t>> RunBatch(Engine& engine, const std::vector<Request>& reqs,
                                           int32_t max_new_tokens) {
  std::vector<std::shared_ptr<CollectSink>> sinks;
  std::vector<std::future<absl::Status>> done;
  for (const Request& r : reqs) {
    auto sink = std::make_shared<CollectSink>();
    done.push_back(sink->done.get_future());
    GenerateRequest g;
    g.adapter_id = r.adapter_id;
    g.prompt = r.prompt;
    g.sampling = Greedy(max_new_tokens);
    absl::Status st = engine.Submit(g, sink);
    EXPECT_TRUE(st.ok()) << st;
    sinks.push_back(std::move(sink));
  }
  std::vector<std::vector<int32_t>> out;
  for (size_t i = 0; i < reqs.size(); ++i) {
    absl::Status st = done[i].get();
    EXPECT_TRUE(st.ok()) << st;
    out.push_back(sinks[i]->ids);
  }
  return out;
}

std::vector<int32_t> ReferenceGreedy(const ReferenceModel& m, std::vector<int32_t> tokens,
                                     int32_t max_new_tokens) {
  const int32_t vocab = m.spec().vocab_size;
  std::vector<int32_t> out;
  for (int32_t i = 0; i < max_new_tokens; ++i) {
    const std::vector<float> logits = m.Forward(tokens);
    const float* last = logits.data() + (tokens.size() - 1) * static_cast<size_t>(vocab);
    const int32_t next = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
    out.push_back(next);
    tokens.push_back(next);
  }
  return out;
}

TEST(MultiLoraTest, TinyModelMixedBatchEqualsMergedReference) {
  ScopedTempDir tmp;
  TinyModelOptions base;
  base.weight_type = DType::kF32;
  const std::string gguf = tmp.File("tiny.gguf");
  ASSERT_TRUE(WriteTinyGguf(base, gguf).ok());
  const std::string root = tmp.File("adapters");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);

  // Eight adapters: different ranks, targets, rsLoRA, layer subsets.
  struct Spec {
    int rank;
    std::vector<std::string> modules;
    bool rslora;
    std::vector<int> layers;
  };
  const std::vector<Spec> specs = {
      {1, {"q_proj"}, false, {}},
      {2, {"q_proj", "v_proj"}, false, {}},
      {4, {"k_proj", "o_proj"}, true, {}},
      {8, {"gate_proj", "up_proj", "down_proj"}, false, {}},
      {16,
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
       false,
       {}},
      {3, {"down_proj"}, false, {1}},
      {32, {"v_proj", "up_proj"}, true, {0}},
      {5, {"o_proj", "gate_proj"}, false, {}},
  };
  ModelSpec spec;
  {
    auto w = LoadModel(gguf);
    ASSERT_TRUE(w.ok()) << w.status();
    spec = (*w)->spec;
  }
  AdapterStoreOptions so;
  so.adapter_root = root;
  so.base = spec;
  auto store = AdapterStore::Create(so);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::string> ids;
  for (size_t i = 0; i < specs.size(); ++i) {
    TinyAdapterOptions o;
    o.seed = 100 + i;
    o.rank = specs[i].rank;
    o.alpha = 2.0f * specs[i].rank;
    o.target_modules = specs[i].modules;
    o.use_rslora = specs[i].rslora;
    o.layers_to_transform = specs[i].layers;
    o.b_stddev = 0.3f;
    const std::string name = "a" + std::to_string(i);
    ASSERT_TRUE(WriteTinyPeftAdapter(base, o, root + "/" + name).ok());
    ASSERT_TRUE((*store)->Load(name, name, false).ok());
    ids.push_back(name);
  }

  StepRecorder steps;
  EngineOptions eo;
  eo.model_path = gguf;
  eo.num_threads = 2;
  eo.kv_cache_bytes = int64_t{16} << 20;
  eo.adapters = store->get();
  eo.stats = &steps;
  auto engine = Engine::Create(eo);
  ASSERT_TRUE(engine.ok()) << engine.status();

  // 20 adapter requests (every adapter 2-3 times) and 4 base-only requests, interleaved.
  const std::vector<std::string> prompts = {
      "hello world", "the cat sat", "abc def ghi", "a", "lorad serves many adapters", "xyz 123"};
  std::vector<Request> reqs;
  for (int i = 0; i < 24; ++i) {
    const std::string adapter = i % 6 == 5 ? "" : ids[i % ids.size()];
    reqs.push_back({adapter, prompts[i % prompts.size()] + (i % 3 == 0 ? " again" : "")});
  }
  constexpr int32_t kNew = 8;
  const auto got = RunBatch(**engine, reqs, kNew);
  EXPECT_GE(steps.max_adapters.load(), 8);
  EXPECT_GE(steps.max_sequences.load(), 16);

  auto weights = LoadModel(gguf);
  ASSERT_TRUE(weights.ok());
  auto reference = ReferenceModel::Create(**weights);
  ASSERT_TRUE(reference.ok()) << reference.status();
  std::map<std::string, ReferenceModel> merged;
  merged.emplace("", *reference);
  for (const std::string& id : ids) {
    auto w = (*store)->Acquire(id);
    ASSERT_TRUE(w.ok());
    merged.emplace(id, lorad::testing::MergedReference(*reference, **w));
  }
  int differs_from_base = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto prompt = (*engine)->Tokenize(reqs[i].prompt);
    ASSERT_TRUE(prompt.ok());
    const auto want = ReferenceGreedy(merged.at(reqs[i].adapter_id), *prompt, kNew);
    EXPECT_EQ(got[i], want) << "request " << i << " adapter '" << reqs[i].adapter_id << "'";
    if (!reqs[i].adapter_id.empty() && want != ReferenceGreedy(merged.at(""), *prompt, kNew)) {
      ++differs_from_base;
    }
  }
  // The adapters must actually change the output, or the comparison proves little.
  EXPECT_GE(differs_from_base, 14);
}

TEST(MultiLoraTest, RequestWhoseAdapterCannotLoadFailsAlone) {
  ScopedTempDir tmp;
  TinyModelOptions base;
  const std::string gguf = tmp.File("tiny.gguf");
  ASSERT_TRUE(WriteTinyGguf(base, gguf).ok());
  const std::string root = tmp.File("adapters");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  for (const char* n : {"good", "broken", "cold"}) {
    ASSERT_TRUE(WriteTinyPeftAdapter(base, {}, root + "/" + n).ok());
  }
  auto weights = LoadModel(gguf);
  ASSERT_TRUE(weights.ok());
  AdapterStoreOptions so;
  so.adapter_root = root;
  so.base = (*weights)->spec;
  so.max_loaded = 1;  // only the last adapter loaded stays resident
  auto store = AdapterStore::Create(so);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load("cold", "cold", false).ok());
  ASSERT_TRUE((*store)->Load("broken", "broken", false).ok());
  ASSERT_TRUE((*store)->Load("good", "good", false).ok());
  ASSERT_TRUE(::lorad::testing::WriteBytes(root + "/broken/adapter_model.safetensors", "junk"));
  EngineOptions eo;
  eo.model_path = gguf;
  eo.num_threads = 2;
  eo.kv_cache_bytes = int64_t{16} << 20;
  eo.adapters = store->get();
  auto engine = Engine::Create(eo);
  ASSERT_TRUE(engine.ok()) << engine.status();

  // Everything at once: "good" is resident, "broken" and "cold" are on the disk tier, and the
  // cache holds one adapter, so the cold loads wait for room. Submit accepts all without I/O.
  GenerateRequest good;
  good.adapter_id = "good";
  good.prompt = "hello";
  good.sampling = Greedy(16);
  std::vector<std::pair<std::string, std::shared_ptr<CollectSink>>> reqs;
  for (const char* id : {"good", "broken", "cold", "broken", "good", "broken", "cold"}) {
    GenerateRequest r = good;
    r.adapter_id = id;
    auto sink = std::make_shared<CollectSink>();
    ASSERT_TRUE((*engine)->Submit(r, sink).ok());
    reqs.emplace_back(id, sink);
  }
  for (auto& [id, sink] : reqs) {
    const absl::Status st = sink->done.get_future().get();
    if (id == "broken") {
      // Every waiter of the failed load gets its error, naming the file; nobody else does.
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
      EXPECT_NE(st.message().find("adapter_model.safetensors"), std::string::npos) << st;
      EXPECT_TRUE(sink->ids.empty());
    } else {
      EXPECT_TRUE(st.ok()) << id << ": " << st;
      EXPECT_EQ(sink->ids.size(), 16u) << id;
    }
  }
  GenerateRequest bad = good;
  bad.adapter_id = "unknown";
  EXPECT_EQ((*engine)->Submit(bad, std::make_shared<CollectSink>()).code(),
            absl::StatusCode::kNotFound);
}

TEST(MultiLoraTest, DefaultModelMixedBatchEqualsRequestsAlone) {
  const std::string path = testing::DefaultModelPath();
  if (path.empty()) GTEST_SKIP() << "default model not present";
  auto weights = LoadModel(path);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const ModelSpec spec = (*weights)->spec;
  weights->reset();
  // The default model's shapes as a TinyModelOptions, to generate adapters for it.
  TinyModelOptions shape;
  shape.num_layers = spec.num_layers;
  shape.hidden = spec.hidden_size;
  shape.intermediate = spec.intermediate_size;
  shape.heads = spec.num_heads;
  shape.kv_heads = spec.num_kv_heads;
  ScopedTempDir tmp;
  AdapterStoreOptions so;
  so.adapter_root = tmp.path();
  so.base = spec;
  auto store = AdapterStore::Create(so);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    TinyAdapterOptions o;
    o.seed = 500 + i;
    o.rank = 16;
    o.alpha = 32.0f;
    o.target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                        "gate_proj", "up_proj", "down_proj"};
    o.b_stddev = 0.01f;
    const std::string name = "r16-" + std::to_string(i);
    ASSERT_TRUE(WriteTinyPeftAdapter(shape, o, tmp.File(name)).ok());
    auto info = (*store)->Load(name, name, false);
    ASSERT_TRUE(info.ok()) << info.status();
    ids.push_back(name);
  }
  EngineOptions eo;
  eo.model_path = path;
  eo.num_threads = 2;
  eo.kv_cache_bytes = int64_t{128} << 20;
  eo.adapters = store->get();
  auto engine = Engine::Create(eo);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::vector<std::string> prompts = {"The capital of France is", "Once upon a time",
                                            "def fibonacci(n):", "List three colors:"};
  std::vector<Request> reqs;
  for (int i = 0; i < 12; ++i) {
    reqs.push_back({i % 3 == 2 ? "" : ids[i % ids.size()], prompts[i % prompts.size()]});
  }
  constexpr int32_t kNew = 8;
  const auto batched = RunBatch(**engine, reqs, kNew);
  int differs = 0;
  std::map<std::string, std::vector<int32_t>> base_out;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto alone = RunBatch(**engine, {reqs[i]}, kNew);
    EXPECT_EQ(batched[i], alone[0]) << "request " << i << " adapter '" << reqs[i].adapter_id << "'";
    if (!reqs[i].adapter_id.empty()) {
      const auto base_alone = RunBatch(**engine, {{"", reqs[i].prompt}}, kNew);
      differs += base_alone[0] != alone[0];
    }
  }
  EXPECT_GE(differs, 1);  // small random adapters, but they must change something
}

}  // namespace
}  // namespace lorad
