// Multi-LoRA serving benchmark on the default model: aggregate decode tokens/s at N concurrent
// streams (base only; sharing 4 adapters; N distinct adapters; the N adapters served one at a
// time, as a server with one global adapter must), cold-load latency of one adapter (p50/p99)
// and time-to-first-token of a cold adapter's request while N-1 others stream.
// Usage: lorad_multi_lora_bench [--model PATH] [--streams 32] [--new_tokens 64] [--threads 0]
//                               [--rank 16] [--cold_loads 20] [--alone 4]
//        profiling one scenario: --only base|shared|distinct [--repeat N]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "adapters/adapter_store.h"
#include "bench/multi_lora/bench_util.h"
#include "bench/multi_lora/random_adapter.h"
#include "engine/engine.h"
#include "engine/model/model_weights.h"

namespace lorad::bench {
namespace {

struct Flags {
  std::string model;
  int streams = 32, new_tokens = 64, threads = 0, rank = 16, cold_loads = 20, alone = 4;
  // Profiling: run only this scenario ("base", "shared" or "distinct"), `repeat` times.
  std::string only;
  int repeat = 1;
};

Flags Parse(int argc, char** argv) {
  Flags f;
  if (const char* p = std::getenv("LORAD_DEFAULT_MODEL")) f.model = p;
  if (f.model.empty()) f.model = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model")
      f.model = v;
    else if (k == "--streams")
      f.streams = std::stoi(v);
    else if (k == "--new_tokens")
      f.new_tokens = std::stoi(v);
    else if (k == "--threads")
      f.threads = std::stoi(v);
    else if (k == "--rank")
      f.rank = std::stoi(v);
    else if (k == "--cold_loads")
      f.cold_loads = std::stoi(v);
    else if (k == "--alone")
      f.alone = std::stoi(v);
    else if (k == "--only")
      f.only = v;
    else if (k == "--repeat")
      f.repeat = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  return f;
}

struct RunResult {
  double decode_tokens_per_s = 0;  // all streams decoding at once (steady state)
  double wall_s = 0;
};

// Runs `adapters.size()` streams at once; decode throughput counts the tokens produced while
// every stream was decoding (after the last first token, before the first finish).
RunResult RunStreams(Engine& engine, const std::vector<std::string>& adapters, int new_tokens) {
  std::vector<std::shared_ptr<TimingSink>> sinks;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < adapters.size(); ++i) {
    auto sink = std::make_shared<TimingSink>();
    GenerateRequest r;
    r.adapter_id = adapters[i];
    r.prompt = "Write a short story about a robot number " + std::to_string(i) + ".";
    r.sampling.temperature = 0.0f;
    r.sampling.max_new_tokens = new_tokens;
    r.sampling.ignore_eos = true;
    if (absl::Status st = engine.Submit(r, sink); !st.ok()) {
      std::fprintf(stderr, "submit: %s\n", st.ToString().c_str());
      std::exit(1);
    }
    sinks.push_back(std::move(sink));
  }
  for (auto& s : sinks) {
    if (absl::Status st = s->done.get_future().get(); !st.ok()) {
      std::fprintf(stderr, "request: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  }
  RunResult out;
  out.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  absl::Time t0 = absl::InfinitePast(), t1 = absl::InfiniteFuture();
  for (auto& s : sinks) {
    t0 = std::max(t0, s->times.front());
    t1 = std::min(t1, s->times.back());
  }
  int64_t tokens = 0;
  for (auto& s : sinks) {
    for (absl::Time t : s->times) tokens += t > t0 && t <= t1;
  }
  const double window = absl::ToDoubleSeconds(t1 - t0);
  out.decode_tokens_per_s = window > 0 ? tokens / window : 0;
  return out;
}

int Main(int argc, char** argv) {
  const Flags f = Parse(argc, argv);
  auto weights = LoadModel(f.model);
  if (!weights.ok()) {
    std::fprintf(stderr, "%s\n", weights.status().ToString().c_str());
    return 1;
  }
  const ModelSpec spec = (*weights)->spec;
  weights->reset();
  char tmpl[] = "/tmp/lorad_multi_lora_bench.XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  const int n_adapters = f.streams + f.cold_loads + 1;
  for (int i = 0; i < n_adapters; ++i) {
    RandomAdapterOptions o;
    o.rank = f.rank;
    o.seed = 1000 + i;
    if (absl::Status st = WriteRandomAdapter(spec, o, root + "/a" + std::to_string(i)); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  adapters::AdapterStoreOptions so;
  so.adapter_root = root;
  so.base = spec;
  auto store = adapters::AdapterStore::Create(so);
  if (!store.ok()) return 1;
  std::vector<std::string> ids;
  int64_t adapter_bytes = 0;
  for (int i = 0; i < f.streams; ++i) {
    auto info = (*store)->Load("a" + std::to_string(i), "a" + std::to_string(i), false);
    if (!info.ok()) {
      std::fprintf(stderr, "%s\n", info.status().ToString().c_str());
      return 1;
    }
    adapter_bytes = info->bytes;
    ids.push_back(info->adapter_id);
  }
  EngineOptions eo;
  eo.model_path = f.model;
  eo.num_threads = f.threads;
  eo.max_running = std::max(64, f.streams);
  eo.kv_cache_bytes = int64_t{512} << 20;
  eo.adapters = store->get();
  auto engine = Engine::Create(eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  Engine& e = **engine;
  RunStreams(e, std::vector<std::string>(4, ""), 4);  // warm-up

  std::vector<std::string> shared4;
  for (int i = 0; i < f.streams; ++i) shared4.push_back(ids[i % 4]);
  if (!f.only.empty()) {
    const std::map<std::string, std::vector<std::string>> scenarios = {
        {"base", std::vector<std::string>(f.streams, "")}, {"shared", shared4}, {"distinct", ids}};
    const auto it = scenarios.find(f.only);
    if (it == scenarios.end()) {
      std::fprintf(stderr, "--only takes base, shared or distinct\n");
      return 2;
    }
    for (int i = 0; i < f.repeat; ++i) {
      std::printf("%s: %.1f decode tok/s\n", f.only.c_str(),
                  RunStreams(e, it->second, f.new_tokens).decode_tokens_per_s);
    }
    std::filesystem::remove_all(root);
    return 0;
  }

  std::map<std::string, RunResult> r;
  r["base only"] = RunStreams(e, std::vector<std::string>(f.streams, ""), f.new_tokens);
  r["4 shared adapters"] = RunStreams(e, shared4, f.new_tokens);
  r["distinct adapters"] = RunStreams(e, ids, f.new_tokens);
  // One adapter at a time: each adapter's single stream runs alone (measured on --alone of
  // them; a server with one global adapter cannot batch across them).
  double alone_tokens = 0, alone_s = 0;
  for (int i = 0; i < std::min(f.alone, f.streams); ++i) {
    const absl::Time t = absl::Now();
    RunStreams(e, {ids[i]}, f.new_tokens);
    alone_s += absl::ToDoubleSeconds(absl::Now() - t);
    alone_tokens += f.new_tokens;
  }
  const double alone_tps = alone_tokens / alone_s;

  // Cold loads: register and read adapters never loaded before.
  std::vector<double> load_ms;
  for (int i = 0; i < f.cold_loads; ++i) {
    const std::string id = "a" + std::to_string(f.streams + i);
    const absl::Time t = absl::Now();
    if (!(*store)->Load(id, id, false).ok()) return 1;
    load_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
  }
  // TTFT of a cold adapter's request (LoadAdapter + Generate) while streams-1 others decode.
  std::vector<std::string> others(ids.begin(), ids.end() - 1);
  auto background =
      std::async(std::launch::async, [&] { return RunStreams(e, others, f.new_tokens * 2); });
  ::usleep(500 * 1000);
  const std::string cold = "a" + std::to_string(n_adapters - 1);
  const absl::Time t = absl::Now();
  if (!(*store)->Load(cold, cold, false).ok()) return 1;
  auto sink = std::make_shared<TimingSink>();
  GenerateRequest req;
  req.adapter_id = cold;
  req.prompt = "Hello";
  req.sampling.temperature = 0.0f;
  req.sampling.max_new_tokens = 4;
  if (!e.Submit(req, sink).ok()) return 1;
  sink->done.get_future().get();
  const double ttft_ms = absl::ToDoubleMilliseconds(sink->times.front() - t);
  background.get();

  const double base = r["base only"].decode_tokens_per_s;
  std::printf(
      "model %s, %d streams, rank-%d adapters on all 7 projections (%.2f MB fp16 each, "
      "%.1f MFLOP/token each)\n",
      f.model.c_str(), f.streams, f.rank, adapter_bytes / 1e6, adapter_bytes / 2 * 2 / 1e6);
  std::printf("%-28s %14s %10s\n", "scenario", "decode tok/s", "vs base");
  for (const char* k : {"base only", "4 shared adapters", "distinct adapters"}) {
    std::printf("%-28s %14.1f %10.2f\n", k, r[k].decode_tokens_per_s,
                r[k].decode_tokens_per_s / base);
  }
  std::printf("%-28s %14.1f %10.2f\n", "one adapter at a time", alone_tps, alone_tps / base);
  std::printf("distinct / one-at-a-time: %.1fx\n",
              r["distinct adapters"].decode_tokens_per_s / alone_tps);
  std::printf("cold load (Load from disk, %d adapters): p50 %.1f ms, p99 %.1f ms\n", f.cold_loads,
              Percentile(load_ms, 0.5), Percentile(load_ms, 0.99));
  std::printf("TTFT of a cold adapter (Load + Generate) while %d stream: %.1f ms\n", f.streams - 1,
              ttft_ms);
  std::filesystem::remove_all(root);
  return 0;
}

}  // namespace
}  // namespace lorad::bench

int main(int argc, char** argv) { return lorad::bench::Main(argc, argv); }
