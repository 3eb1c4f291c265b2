// Residency benchmark on the default model: many registered adapters, an adapter cache that
// holds a fraction of them, and closed-loop clients choosing adapters with Zipf or uniform
// popularity. Reports aggregate tokens/s (against the same clients on the base model),
// TTFT p50/p99, refusals, loads and evictions, and the bytes each forward step reads against
// this machine's read bandwidth. A cold-load profile times where a 10 MB adapter's load goes.
// Usage: lorad_residency_bench [--model PATH] [--adapters 32,256,1024] [--cache_fraction 0.1]
//          [--clients 48] [--requests 600] [--new_tokens 32] [--dists zipf,uniform]
//          [--rank 16] [--modules q_proj,v_proj] [--threads 0] [--cold_loads 20]
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/adapter_store.h"
#include "adapters/peft_adapter.h"
#include "adapters/sha256.h"
#include "bench/multi_lora/bench_util.h"
#include "bench/multi_lora/random_adapter.h"
#include "engine/engine.h"
#include "engine/model/model_weights.h"

namespace lorad::bench {
namespace {

struct Flags {
  std::string model;
  std::vector<int> adapters = {32, 256, 1024};
  double cache_fraction = 0.1;
  int clients = 48, requests = 600, new_tokens = 32, threads = 0, rank = 16, cold_loads = 20;
  std::vector<std::string> dists = {"zipf", "uniform"};
  std::vector<std::string> modules = {"q_proj", "v_proj"};
};

Flags Parse(int argc, char** argv) {
  Flags f;
  if (const char* p = std::getenv("LORAD_DEFAULT_MODEL")) f.model = p;
  if (f.model.empty()) f.model = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") {
      f.model = v;
    } else if (k == "--adapters") {
      f.adapters.clear();
      for (absl::string_view n : absl::StrSplit(v, ','))
        f.adapters.push_back(std::stoi(std::string(n)));
    } else if (k == "--cache_fraction") {
      f.cache_fraction = std::stod(v);
    } else if (k == "--clients") {
      f.clients = std::stoi(v);
    } else if (k == "--requests") {
      f.requests = std::stoi(v);
    } else if (k == "--new_tokens") {
      f.new_tokens = std::stoi(v);
    } else if (k == "--dists") {
      f.dists = absl::StrSplit(v, ',');
    } else if (k == "--rank") {
      f.rank = std::stoi(v);
    } else if (k == "--modules") {
      f.modules = absl::StrSplit(v, ',');
    } else if (k == "--threads") {
      f.threads = std::stoi(v);
    } else if (k == "--cold_loads") {
      f.cold_loads = std::stoi(v);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  return f;
}

void Die(const absl::Status& st) {
  std::fprintf(stderr, "%s\n", st.ToString().c_str());
  std::exit(1);
}

// Sums what the steps read: the distinct adapters of each batch.
class StepTotals : public StatsSink {
 public:
  void OnStep(const StepStats& s) override {
    if (s.batch_tokens == 0) return;  // an idle occupancy report, not a step
    std::lock_guard<std::mutex> lock(mu);
    ++steps;
    adapters += s.distinct_adapters;
    seconds += s.step_seconds;
    max_active = std::max(max_active, s.active_adapters);
  }
  std::mutex mu;
  int64_t steps = 0, adapters = 0;
  double seconds = 0;
  int32_t max_active = 0;
};

struct LoadResult {
  double tokens_per_s = 0, ttft_p50_ms = 0, ttft_p99_ms = 0;
  int ok = 0, refused = 0, failed = 0;
};

// `clients` closed-loop clients send `requests` requests in all, each for pick(rng).
LoadResult RunClients(Engine& engine, const Flags& f,
                      const std::function<std::string(std::mt19937_64&)>& pick) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<double> ttft_ms;
  LoadResult out;
  int64_t tokens = 0;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < f.clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(77 + c);
      for (int i = next++; i < f.requests; i = next++) {
        GenerateRequest r;
        r.adapter_id = pick(rng);
        r.prompt = "Summarize ticket " + std::to_string(i) + ": the customer cannot log in.";
        r.sampling.temperature = 0.0f;
        r.sampling.max_new_tokens = f.new_tokens;
        r.sampling.ignore_eos = true;
        auto sink = std::make_shared<TimingSink>();
        const absl::Time t = absl::Now();
        const absl::Status submitted = engine.Submit(r, sink);
        const absl::Status st = submitted.ok() ? sink->done.get_future().get() : submitted;
        std::lock_guard<std::mutex> lock(mu);
        if (st.ok()) {
          ++out.ok;
          tokens += static_cast<int64_t>(sink->times.size());
          if (!sink->times.empty()) {
            ttft_ms.push_back(absl::ToDoubleMilliseconds(sink->times.front() - t));
          }
        } else if (absl::IsResourceExhausted(st)) {
          ++out.refused;
        } else {
          ++out.failed;
          std::fprintf(stderr, "request: %s\n", st.ToString().c_str());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  out.tokens_per_s = tokens / absl::ToDoubleSeconds(absl::Now() - start);
  out.ttft_p50_ms = Percentile(ttft_ms, 0.5);
  out.ttft_p99_ms = Percentile(ttft_ms, 0.99);
  return out;
}

// Bytes per second one pass of summing a 1 GiB buffer reads, over `threads` threads.
double ReadBandwidth(int threads) {
  const size_t n = (size_t{1} << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n, 1);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<uint64_t> sink{0};
    const absl::Time t = absl::Now();
    std::vector<std::thread> ts;
    for (int k = 0; k < threads; ++k) {
      ts.emplace_back([&, k] {
        uint64_t s = 0;
        for (size_t i = n * k / threads; i < n * (k + 1) / threads; ++i) s += buf[i];
        sink += s;
      });
    }
    for (auto& th : ts) th.join();
    best = std::max(best, n * sizeof(uint64_t) / absl::ToDoubleSeconds(absl::Now() - t));
  }
  return best;
}

// Times a 10 MB adapter's load and its parts over `n` adapters.
void ColdLoadProfile(const ModelSpec& spec, const Flags& f, const std::string& root) {
  std::vector<std::string> ids;
  for (int i = 0; i < f.cold_loads; ++i) {
    RandomAdapterOptions o;  // rank 16 on all seven projections
    o.seed = 50000 + i;
    ids.push_back("cold" + std::to_string(i));
    if (absl::Status st = WriteRandomAdapter(spec, o, root + "/" + ids.back()); !st.ok()) Die(st);
  }
  ::sleep(3);  // files older than the store's racy window, so unchanged reloads can skip hashing
  adapters::AdapterStoreOptions so;
  so.adapter_root = root;
  so.base = spec;
  so.max_loaded = 1;  // every Load and Acquire below reads from disk
  auto store = adapters::AdapterStore::Create(so);
  if (!store.ok()) Die(store.status());
  std::vector<double> load_ms, reload_ms, read_ms, hash_ms, convert_ms;
  int64_t bytes = 0, file_bytes = 0;
  for (const std::string& id : ids) {
    const absl::Time t = absl::Now();
    auto info = (*store)->Load(id, id, false);
    if (!info.ok()) Die(info.status());
    load_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    bytes = info->bytes;
  }
  for (const std::string& id : ids) {  // each evicts the previous one
    const absl::Time t = absl::Now();
    auto w = (*store)->Acquire(id);
    if (!w.ok()) Die(w.status());
    reload_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
  }
  for (const std::string& id : ids) {
    const std::string dir = root + "/" + id, file = dir + "/" + adapters::kPeftWeightsFile;
    file_bytes = static_cast<int64_t>(std::filesystem::file_size(file));
    absl::Time t = absl::Now();
    {
      std::ifstream in(file, std::ios::binary);
      std::vector<char> copy(file_bytes);
      in.read(copy.data(), file_bytes);
    }
    read_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    t = absl::Now();
    if (!adapters::Sha256HexWithFile("", file).ok()) std::exit(1);
    hash_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    t = absl::Now();
    if (!adapters::ReadPeftAdapter(dir, spec).ok()) std::exit(1);
    convert_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
  }
  std::printf(
      "cold load of a rank-16 all-projection adapter (%.1f MB file, %.1f MB in memory), "
      "%d adapters, page cache warm:\n",
      file_bytes / 1e6, bytes / 1e6, f.cold_loads);
  auto row = [](const char* what, const std::vector<double>& v) {
    std::printf("  %-52s p50 %6.2f ms  p99 %6.2f ms\n", what, Percentile(v, 0.5),
                Percentile(v, 0.99));
  };
  row("Load (register: read, sha256, validate, convert)", load_ms);
  row("reload from the disk tier (unchanged: digest reused)", reload_ms);
  row("  part: read the safetensors file into memory (copy)", read_ms);
  row("  part: sha256 of the file", hash_ms);
  row("  part: map, validate, convert (ReadPeftAdapter)", convert_ms);
}

int Main(int argc, char** argv) {
  const Flags f = Parse(argc, argv);
  auto weights = LoadModel(f.model);
  if (!weights.ok()) Die(weights.status());
  const ModelSpec spec = (*weights)->spec;
  weights->reset();
  const auto model_bytes = static_cast<double>(std::filesystem::file_size(f.model));
  char tmpl[] = "/tmp/lorad_residency_bench.XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  const int threads =
      f.threads > 0 ? f.threads : static_cast<int>(std::thread::hardware_concurrency());

  ColdLoadProfile(spec, f, root);

  const int most = *std::max_element(f.adapters.begin(), f.adapters.end());
  for (int i = 0; i < most; ++i) {
    RandomAdapterOptions o;
    o.rank = f.rank;
    o.modules = f.modules;
    o.seed = 1000 + i;
    if (absl::Status st = WriteRandomAdapter(spec, o, root + "/a" + std::to_string(i)); !st.ok())
      Die(st);
  }
  const double bandwidth = ReadBandwidth(threads);
  std::printf("\nread bandwidth (sum over 1 GiB, %d threads): %.1f GB/s\n", threads,
              bandwidth / 1e9);
  std::printf(
      "rank-%d adapters on %zu projections, %d clients, %d requests x %d new tokens, "
      "cache %.0f%% of the registered adapters\n",
      f.rank, f.modules.size(), f.clients, f.requests, f.new_tokens, f.cache_fraction * 100);
  std::printf("%8s %8s %6s %10s %8s %9s %9s %7s %7s %7s %9s %10s %8s\n", "adapters", "dist",
              "cache", "tok/s", "vs base", "ttft p50", "ttft p99", "refused", "failed", "loads",
              "adapt/st", "MB/step", "of bw");
  for (int n : f.adapters) {
    adapters::AdapterStoreOptions so;
    so.adapter_root = root;
    so.base = spec;
    auto probe = adapters::AdapterStore::Create(so);
    if (!probe.ok()) Die(probe.status());
    auto info = (*probe)->Load("a0", "a0", false);
    if (!info.ok()) Die(info.status());
    const int cache = std::max(1, static_cast<int>(std::lround(n * f.cache_fraction)));
    so.host_budget_bytes = cache * info->bytes;
    for (const std::string& dist : f.dists) {
      auto store = adapters::AdapterStore::Create(so);
      if (!store.ok()) Die(store.status());
      for (int i = 0; i < n; ++i) {
        const std::string id = "a" + std::to_string(i);
        if (auto r = (*store)->Load(id, id, false); !r.ok()) Die(r.status());
      }
      StepTotals totals;
      EngineOptions eo;
      eo.model_path = f.model;
      eo.num_threads = f.threads;
      eo.max_running = 64;
      eo.max_queue = std::max(256, 2 * f.clients);
      eo.kv_cache_bytes = int64_t{512} << 20;
      eo.adapters = store->get();
      eo.stats = &totals;
      auto engine = Engine::Create(eo);
      if (!engine.ok()) Die(engine.status());
      const LoadResult base =
          RunClients(**engine, f, [](std::mt19937_64&) { return std::string(); });
      {
        std::lock_guard<std::mutex> lock(totals.mu);
        totals.steps = totals.adapters = 0;
        totals.seconds = 0;
      }
      // Zipf(1): adapter k (0-based) with weight 1 / (k + 1).
      std::vector<double> w(n);
      for (int k = 0; k < n; ++k) w[k] = dist == "zipf" ? 1.0 / (k + 1) : 1.0;
      std::discrete_distribution<int> choose(w.begin(), w.end());
      const int64_t loads0 = (*store)->GetStats().loads;
      const LoadResult r = RunClients(
          **engine, f, [&](std::mt19937_64& rng) { return "a" + std::to_string(choose(rng)); });
      const int64_t loads = (*store)->GetStats().loads - loads0;
      std::lock_guard<std::mutex> lock(totals.mu);
      const double per_step = totals.steps > 0 ? double(totals.adapters) / totals.steps : 0;
      const double step_bytes = model_bytes + per_step * info->bytes;
      const double step_s = totals.steps > 0 ? totals.seconds / totals.steps : 0;
      std::printf("%8d %8s %6d %10.1f %8.2f %8.0fms %8.0fms %7d %7d %7lld %9.1f %10.1f %7.0f%%\n",
                  n, dist.c_str(), cache, r.tokens_per_s, r.tokens_per_s / base.tokens_per_s,
                  r.ttft_p50_ms, r.ttft_p99_ms, r.refused, r.failed, static_cast<long long>(loads),
                  per_step, step_bytes / 1e6,
                  step_s > 0 ? 100 * step_bytes / step_s / bandwidth : 0.0);
      std::printf("%8s %8s %6s %10.1f %8s %8.0fms %8.0fms %7d %7d   (base model, same clients)\n",
                  "", "base", "", base.tokens_per_s, "1.00", base.ttft_p50_ms, base.ttft_p99_ms,
                  base.refused, base.failed);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(root);
  return 0;
}

}  // namespace
}  // namespace lorad::bench

int main(int argc, char** argv) { return lorad::bench::Main(argc, argv); }
