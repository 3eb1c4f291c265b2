// Adapter cache hit rate of a fleet under Zipf traffic: adapter-affinity routing (a consistent
// hash ring on the adapter id, as HAProxy's `balance hdr(x-lorad-adapter)` with `hash-type
// consistent` builds it) against random routing. Each replica is a real AdapterStore (LRU over a
// host budget of --cache_adapters adapters) over one shared adapter root of tiny adapters; a
// replica registers an adapter on its first request (a disk load, counted as a miss) and later
// requests Acquire it (hit when resident, else a reload). The first --warmup_fraction of the
// requests is not counted. Prints one markdown row per (replicas, routing).
//
//   lorad_cache_affinity_sim --replicas=10,100 --adapters=2000 --cache_adapters=32 \
//     --requests=200000 --zipf_s=1.0
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/adapter_store.h"
#include "bench/multi_lora/random_adapter.h"

ABSL_FLAG(std::string, replicas, "10,100", "fleet sizes to simulate");
ABSL_FLAG(int, adapters, 2000, "distinct adapters (Zipf ranks)");
ABSL_FLAG(int, cache_adapters, 32, "adapters each replica's host cache holds");
ABSL_FLAG(int, requests, 200000, "requests per simulation");
ABSL_FLAG(double, zipf_s, 1.0, "Zipf exponent of adapter popularity");
ABSL_FLAG(double, warmup_fraction, 0.1, "leading share of requests not counted");
ABSL_FLAG(int, virtual_nodes, 100, "points per replica on the hash ring");
ABSL_FLAG(uint64_t, seed, 1, "seed of the traffic");

namespace lorad {
namespace {

// A small llama-shaped spec: the cache's behaviour does not depend on the adapter size, only
// on how many fit, so tiny adapters keep the simulation fast.
ModelSpec TinySpec() {
  ModelSpec s;
  s.vocab_size = 256;
  s.hidden_size = 64;
  s.intermediate_size = 128;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 4;
  s.head_dim = 16;
  s.max_position = 512;
  return s;
}

// Consistent hash ring: `virtual_nodes` points per replica; a key goes to the first point at or
// after its hash. Removing a replica moves only the keys of its points.
class HashRing {
 public:
  HashRing(int replicas, int virtual_nodes) {
    for (int r = 0; r < replicas; ++r) {
      for (int v = 0; v < virtual_nodes; ++v) {
        ring_[absl::HashOf(absl::StrCat("replica", r, "#", v))] = r;
      }
    }
  }
  int Pick(const std::string& key) const {
    auto it = ring_.lower_bound(absl::HashOf(key));
    return it == ring_.end() ? ring_.begin()->second : it->second;
  }

 private:
  std::map<size_t, int> ring_;
};

struct Result {
  int64_t requests = 0, hits = 0, loads = 0;
  int max_replica_share_permille = 0;  // the busiest replica's share of requests
};

Result Simulate(const std::string& root, const ModelSpec& spec, int64_t adapter_bytes, int replicas,
                bool affinity, const std::vector<double>& cdf) {
  std::vector<std::unique_ptr<adapters::AdapterStore>> stores;
  for (int r = 0; r < replicas; ++r) {
    adapters::AdapterStoreOptions o;
    o.adapter_root = root;
    o.base = spec;
    o.host_budget_bytes = absl::GetFlag(FLAGS_cache_adapters) * adapter_bytes;
    auto store = adapters::AdapterStore::Create(o);
    if (!store.ok()) {
      std::fprintf(stderr, "AdapterStore: %s\n", std::string(store.status().message()).c_str());
      std::exit(1);
    }
    stores.push_back(*std::move(store));
  }
  std::vector<std::vector<bool>> registered(replicas, std::vector<bool>(cdf.size(), false));
  std::vector<int64_t> per_replica(replicas, 0), first_loads(replicas, 0);
  std::vector<adapters::AdapterStore::Stats> at_warmup(replicas);
  const HashRing ring(replicas, absl::GetFlag(FLAGS_virtual_nodes));
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> any(0, replicas - 1);
  const int total = absl::GetFlag(FLAGS_requests);
  const int warmup = static_cast<int>(total * absl::GetFlag(FLAGS_warmup_fraction));
  Result result;
  for (int i = 0; i < total; ++i) {
    if (i == warmup) {
      for (int r = 0; r < replicas; ++r) at_warmup[r] = stores[r]->GetStats();
    }
    const int rank =
        static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    const std::string id = absl::StrCat("a", std::min<int>(rank, cdf.size() - 1));
    const int r = affinity ? ring.Pick(id) : any(rng);
    const bool counted = i >= warmup;
    if (!registered[r][rank]) {
      registered[r][rank] = true;
      if (!stores[r]->Load(id, id, false).ok()) std::exit(1);
      if (counted) ++first_loads[r];
    } else if (!stores[r]->Acquire(id).ok()) {
      std::exit(1);
    }
    if (counted) ++per_replica[r];
  }
  for (int r = 0; r < replicas; ++r) {
    const adapters::AdapterStore::Stats s = stores[r]->GetStats();
    result.hits += s.hits - at_warmup[r].hits;
    result.loads += (s.misses - at_warmup[r].misses) + first_loads[r];
    result.requests += per_replica[r];
  }
  const int64_t busiest = *std::max_element(per_replica.begin(), per_replica.end());
  result.max_replica_share_permille =
      static_cast<int>(1000 * busiest / std::max<int64_t>(result.requests, 1));
  return result;
}

int Run() {
  const ModelSpec spec = TinySpec();
  char tmpl[] = "/tmp/lorad_cache_sim.XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  const int n = absl::GetFlag(FLAGS_adapters);
  bench::RandomAdapterOptions ro;
  ro.rank = 4;
  ro.modules = {"q_proj"};
  for (int i = 0; i < n; ++i) {
    ro.seed = 1 + i;
    if (absl::Status s = bench::WriteRandomAdapter(spec, ro, root + "/a" + std::to_string(i));
        !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  int64_t adapter_bytes = 0;
  {
    adapters::AdapterStoreOptions o;
    o.adapter_root = root;
    o.base = spec;
    auto probe = adapters::AdapterStore::Create(o);
    auto info = (*probe)->Load("a0", "a0", false);
    if (!info.ok()) return 1;
    adapter_bytes = info->bytes;
  }
  // Zipf popularity over ranks 1..n.
  std::vector<double> cdf(n);
  double sum = 0;
  for (int k = 0; k < n; ++k) sum += 1.0 / std::pow(k + 1, absl::GetFlag(FLAGS_zipf_s));
  double acc = 0;
  for (int k = 0; k < n; ++k) {
    acc += 1.0 / std::pow(k + 1, absl::GetFlag(FLAGS_zipf_s)) / sum;
    cdf[k] = acc;
  }
  std::printf(
      "%d adapters, Zipf s=%.2f, %d adapters cached per replica, %d requests (%.0f%% warm-up)\n\n",
      n, absl::GetFlag(FLAGS_zipf_s), absl::GetFlag(FLAGS_cache_adapters),
      absl::GetFlag(FLAGS_requests), 100 * absl::GetFlag(FLAGS_warmup_fraction));
  std::printf(
      "| replicas | routing | hit rate | adapter loads per 1000 requests | busiest replica's share "
      "|\n");
  std::printf("|---|---|---|---|---|\n");
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_replicas), ',')) {
    int replicas = 0;
    if (!absl::SimpleAtoi(part, &replicas) || replicas < 1) return 2;
    for (bool affinity : {true, false}) {
      const Result r = Simulate(root, spec, adapter_bytes, replicas, affinity, cdf);
      std::printf("| %d | %s | %.3f | %.1f | %.1f%% |\n", replicas,
                  affinity ? "affinity (consistent hash)" : "random",
                  static_cast<double>(r.hits) / std::max<int64_t>(r.requests, 1),
                  1000.0 * r.loads / std::max<int64_t>(r.requests, 1),
                  r.max_replica_share_permille / 10.0);
      std::fflush(stdout);
    }
  }
  std::string cleanup = "rm -rf " + root;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lorad

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return lorad::Run();
}
