// Scheduling around adapter residency on the tiny model: a working set larger than the adapter
// cache completes with the tokens each request gets alone; requests wait for their adapter
// instead of being refused; deadlines and failed loads end only their own waiters; a flooding
// adapter neither starves a trickling one nor keeps a cold one out of a full cache.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "adapters/adapter_store.h"
#include "engine/engine.h"
#include "engine/model/model_weights.h"
#include "engine/ops/kv_cache.h"
#include "gtest/gtest.h"
#include "tests/engine/generate_test_util.h"
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

// The largest active set and adapter wait seen over all reports, and the last report.
class ResidencyRecorder : public StatsSink {
 public:
  void OnStep(const StepStats& s) override {
    int32_t seen = max_active.load();
    while (s.active_adapters > seen && !max_active.compare_exchange_weak(seen, s.active_adapters)) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    max_adapter_waiting_ = std::max(max_adapter_waiting_, s.adapter_waiting);
    last_ = s;
  }
  StepStats last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  int32_t max_adapter_waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_adapter_waiting_;
  }
  std::atomic<int32_t> max_active{0};

 private:
  std::mutex mu_;
  StepStats last_;
  int32_t max_adapter_waiting_ = 0;
};

class AdapterResidencyTest : public ::testing::Test {
 protected:
  // Writes the tiny model and `n` adapters a0..a{n-1}, registers them with a cache of
  // `budget_adapters` adapters' bytes, and starts an engine with `eo`'s limits.
  void Start(int n, int budget_adapters, EngineOptions eo = {}) {
    gguf_ = tmp_.File("tiny.gguf");
    ASSERT_TRUE(WriteTinyGguf(base_, gguf_).ok());
    const std::string root = tmp_.File("adapters");
    ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
    auto weights = LoadModel(gguf_);
    ASSERT_TRUE(weights.ok()) << weights.status();
    for (int i = 0; i < n; ++i) {
      TinyAdapterOptions o;
      o.seed = 1000 + i;
      o.b_stddev = 0.3f;
      o.target_modules = {"q_proj", "v_proj", "down_proj"};
      ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, root + "/a" + std::to_string(i)).ok());
    }
    AdapterStoreOptions so;
    so.adapter_root = root;
    so.base = (*weights)->spec;
    auto probe = AdapterStore::Create(so);
    ASSERT_TRUE(probe.ok());
    auto info = (*probe)->Load("a0", "a0", false);
    ASSERT_TRUE(info.ok()) << info.status();
    adapter_bytes_ = info->bytes;
    so.host_budget_bytes = budget_adapters * adapter_bytes_;
    auto store = AdapterStore::Create(so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    for (int i = 0; i < n; ++i) {
      const std::string id = "a" + std::to_string(i);
      ASSERT_TRUE(store_->Load(id, id, false).ok());
    }
    eo.model_path = gguf_;
    eo.num_threads = 2;
    eo.adapters = store_.get();
    eo.stats = &recorder_;
    auto engine = Engine::Create(eo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  std::shared_ptr<CollectSink> Submit(const std::string& adapter, const std::string& prompt,
                                      int32_t tokens,
                                      absl::Time deadline = absl::InfiniteFuture()) {
    GenerateRequest g;
    g.adapter_id = adapter;
    g.prompt = prompt;
    g.sampling = Greedy(tokens);
    g.deadline = deadline;
    auto sink = std::make_shared<CollectSink>();
    const absl::Status st = engine_->Submit(g, sink);
    EXPECT_TRUE(st.ok()) << st;
    return sink;
  }

  TinyModelOptions base_;
  ScopedTempDir tmp_;
  std::string gguf_;
  int64_t adapter_bytes_ = 0;
  ResidencyRecorder recorder_;
  std::unique_ptr<AdapterStore> store_;
  std::unique_ptr<Engine> engine_;  // declared last: stops before the store goes
};

TEST_F(AdapterResidencyTest, WorkingSetFourTimesTheCacheCompletesWithTheTokensOfEachAlone) {
  EngineOptions eo;
  eo.max_queue = 256;
  Start(/*n=*/32, /*budget_adapters=*/8, eo);
  const std::vector<std::string> prompts = {"hello world", "the cat sat on", "abc def",
                                            "many adapters, one base"};
  struct Req {
    std::string adapter, prompt;
    std::shared_ptr<CollectSink> sink;
  };
  std::vector<Req> reqs;
  for (int i = 0; i < 64; ++i) {
    Req r{"a" + std::to_string((i * 7) % 32), prompts[i % prompts.size()], nullptr};
    r.sink = Submit(r.adapter, r.prompt, 8);
    reqs.push_back(std::move(r));
  }
  for (Req& r : reqs) {
    const absl::Status st = r.sink->done.get_future().get();
    EXPECT_TRUE(st.ok()) << r.adapter << ": " << st;  // nothing refused for a full cache
    EXPECT_EQ(r.sink->ids.size(), 8u);
  }
  const AdapterStore::Stats stats = store_->GetStats();
  EXPECT_GT(stats.evictions, 24);  // the working set really cycled through the cache
  EXPECT_LE(stats.host_bytes, 8 * adapter_bytes_);
  EXPECT_LE(recorder_.max_active.load(), 8);
  EXPECT_GE(recorder_.max_active.load(), 2);
  // The same requests one at a time give the same greedy tokens.
  std::map<std::pair<std::string, std::string>, std::vector<int32_t>> alone;
  int differ = 0;
  for (const Req& r : reqs) {
    auto key = std::make_pair(r.adapter, r.prompt);
    if (!alone.contains(key)) {
      auto sink = Submit(r.adapter, r.prompt, 8);
      ASSERT_TRUE(sink->done.get_future().get().ok());
      alone[key] = sink->ids;
    }
    EXPECT_EQ(r.sink->ids, alone[key]) << r.adapter << " '" << r.prompt << "'";
    if (r.sink->ids != reqs[0].sink->ids) ++differ;
  }
  EXPECT_GT(differ, 32);  // adapters change the output: the comparison is not vacuous
}

TEST_F(AdapterResidencyTest, DeadlineWhileWaitingForTheAdapterEndsTheRequestAndFreesItsPlace) {
  EngineOptions eo;
  eo.max_queue = 1;
  Start(/*n=*/2, /*budget_adapters=*/1, eo);
  // Hold a0 from outside: the cache has no room for a1 until it is released.
  auto held = store_->Acquire("a0");
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(store_->Get("a1")->tier, adapters::ResidencyTier::kDisk);
  auto waiting = Submit("a1", "hello", 4, absl::Now() + absl::Milliseconds(200));
  const absl::Status st = waiting->done.get_future().get();
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_TRUE(waiting->ids.empty());
  // Its place in the queue (max_queue 1) is free again, and once a0 is released the next
  // request for a1 loads it and completes.
  auto next = Submit("a1", "hello", 4);
  held->reset();
  const absl::Status next_st = next->done.get_future().get();
  EXPECT_TRUE(next_st.ok()) << next_st;
  EXPECT_EQ(next->ids.size(), 4u);
  EXPECT_EQ(store_->Get("a1")->tier, adapters::ResidencyTier::kHost);
}

TEST_F(AdapterResidencyTest, CancelWhileWaitingForTheAdapter) {
  Start(/*n=*/2, /*budget_adapters=*/1);
  auto held = store_->Acquire("a0");
  ASSERT_TRUE(held.ok());
  GenerateRequest g;
  g.adapter_id = "a1";
  g.prompt = "hello";
  g.sampling = Greedy(4);
  g.request_id = "wait-me";
  auto sink = std::make_shared<CollectSink>();
  ASSERT_TRUE(engine_->Submit(g, sink).ok());
  // The wait is reported although no step runs (the gauges see it) ...
  for (int i = 0; i < 500 && recorder_.max_adapter_waiting() == 0; ++i)
    absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(recorder_.max_adapter_waiting(), 1);
  engine_->Cancel("wait-me");
  EXPECT_TRUE(sink->done.get_future().get().ok());  // CANCELLED with status OK
  EXPECT_TRUE(sink->ids.empty());
  EXPECT_TRUE(engine_->WaitIdle(absl::Seconds(5)));
  // ... and so is its end: the last report is an idle engine, not the stale wait. (It follows
  // the cancel's step, which may run after WaitIdle returns: the request ends first.)
  for (int i = 0; i < 2500 && recorder_.last().adapter_waiting != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const StepStats last = recorder_.last();
  EXPECT_EQ(last.batch_tokens, 0);
  EXPECT_EQ(last.waiting, 0);
  EXPECT_EQ(last.adapter_waiting, 0);
  EXPECT_EQ(last.running, 0);
}

TEST_F(AdapterResidencyTest, AFloodingAdapterDoesNotStarveATricklingOne) {
  EngineOptions eo;
  eo.max_running = 2;
  eo.max_queue = 512;
  Start(/*n=*/2, /*budget_adapters=*/2, eo);
  std::vector<std::shared_ptr<CollectSink>> flood;
  for (int i = 0; i < 120; ++i) flood.push_back(Submit("a0", "flood " + std::to_string(i), 64));
  const absl::Time submitted = absl::Now();
  auto trickle = Submit("a1", "trickle", 16);
  ASSERT_TRUE(trickle->done.get_future().get().ok());
  for (const auto& f : flood) EXPECT_TRUE(f->done.get_future().get().ok());
  int pending = 0, overtook = 0;  // flood requests unfinished at the trickle's submission
  for (const auto& f : flood) {
    if (f->finished <= submitted) continue;
    ++pending;
    overtook += f->finished <= trickle->finished;
  }
  ASSERT_GE(pending, 60) << "the flood drained before the trickle came: the test proves nothing";
  // Round-robin over adapters admits the trickle at the next free slot, not after the flood.
  EXPECT_LE(overtook, 6) << "the trickle waited behind the flood";
}

TEST_F(AdapterResidencyTest, AHotAdapterRotatesOutForAColdOneThatWaitsForRoom) {
  EngineOptions eo;
  eo.max_running = 2;
  eo.max_queue = 1024;
  eo.adapter_slice = absl::Milliseconds(20);
  Start(/*n=*/2, /*budget_adapters=*/1, eo);
  // a0 always has queued work, and the cache holds one adapter: without the time slice a1
  // would wait until the whole flood drained.
  std::vector<std::shared_ptr<CollectSink>> hot;
  for (int i = 0; i < 400; ++i) hot.push_back(Submit("a0", "hot " + std::to_string(i), 48));
  const absl::Time submitted = absl::Now();
  auto cold = Submit("a1", "cold", 8);
  ASSERT_TRUE(cold->done.get_future().get().ok());
  EXPECT_EQ(cold->ids.size(), 8u);
  for (const auto& h : hot) EXPECT_TRUE(h->done.get_future().get().ok());
  int pending = 0, overtook = 0;  // hot requests unfinished at the cold one's submission
  for (const auto& h : hot) {
    if (h->finished <= submitted) continue;
    ++pending;
    overtook += h->finished <= cold->finished;
  }
  ASSERT_GE(pending, 200) << "the hot queue drained before the cold request came";
  EXPECT_LT(overtook, pending / 2) << "the cold adapter waited for the hot one's whole queue";
}

TEST_F(AdapterResidencyTest, KvCacheGetsTheBlocksItsBudgetBuys) {
  EngineOptions eo;
  eo.kv_cache_bytes = int64_t{3} << 20;
  Start(/*n=*/1, /*budget_adapters=*/1, eo);
  auto sink = Submit("", "hello", 2);
  ASSERT_TRUE(sink->done.get_future().get().ok());
  const ModelSpec& s = engine_->spec();
  // fp16 keys and values: 2 bytes each, 16 positions per block.
  const int64_t per_block = int64_t{2} * 2 * s.num_layers * s.num_kv_heads * s.head_dim * 16;
  EXPECT_EQ(engine_->CurrentLoad().kv_blocks_total, (int64_t{3} << 20) / per_block);
}

}  // namespace
}  // namespace lorad
