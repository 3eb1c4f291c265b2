// The adapter registry and cache: adapter ids map to PEFT directories under one adapter root;
// loaded adapters live in host RAM under a byte budget with LRU eviction, and evicted ones
// stay registered (disk tier) and are reloaded, single-flight, on the next Acquire. An adapter
// that is pinned, or held by a caller (its shared_ptr is alive outside the store), is never
// evicted: the engine's scheduler decides which adapters are active by holding them, and the
// store only holds, loads and evicts what that leaves it. Pinned adapters may take at most a
// fraction of the budget, so they cannot starve the rest. Reloading an id publishes a new
// version; callers holding the old version keep reading the old bytes until they release it.
// A reload of unchanged files (same size, mtime and inode) reuses the digest instead of
// re-hashing. There is no device tier in a CPU build.
// Thread-safety: thread-safe. File reads and validation run outside the store's lock on the
// calling thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/peft_adapter.h"
#include "engine/adapter_provider.h"
#include "engine/base/model_spec.h"

namespace lorad::adapters {

struct AdapterStoreOptions {
  std::string adapter_root;                      // directory that confines every source
  ModelSpec base;                                // adapters are validated against it
  int64_t host_budget_bytes = int64_t{1} << 30;  // A/B bytes resident in host RAM
  int32_t max_loaded = 1000;                     // adapters resident in host RAM at once
  double max_pinned_fraction = 0.5;  // pinned adapters hold at most this share of the budget
  DType storage = DType::kF16;       // in-memory A/B dtype (see peft_adapter.h)
};

// The adapter-id rule: 1..256 bytes of [A-Za-z0-9._:/@+-] whose "/"-separated segments are not
// empty, "." or "..". INVALID_ARGUMENT naming adapter_id.
absl::Status ValidateAdapterId(const std::string& adapter_id);

enum class ResidencyTier { kDevice, kHost, kDisk };
const char* ResidencyTierName(ResidencyTier tier);

struct AdapterInfo {
  std::string adapter_id;
  std::string source;  // as registered, relative to the adapter root
  int32_t rank = 0;    // max over adapted modules
  float alpha = 0.0f;  // lora_alpha of the config
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  int64_t bytes = 0;  // A/B bytes in memory when resident
  ResidencyTier tier = ResidencyTier::kDisk;
  bool pinned = false;
  std::string digest;  // sha256 hex of adapter_config.json bytes then the safetensors bytes
  // 1 on the id's first Load; +1 on every Load, and when a reload from the disk tier finds
  // changed files. Never reused for an id, even across Unload.
  int64_t version = 0;
  int32_t active_requests = 0;  // holders of any version outside the store
  absl::Time loaded_at;
};

class AdapterStore : public AdapterProvider {
 public:
  // INVALID_ARGUMENT / NOT_FOUND for a bad adapter root or options.
  static absl::StatusOr<std::unique_ptr<AdapterStore>> Create(const AdapterStoreOptions& options);
  ~AdapterStore() override;

  // Registers `adapter_id` -> `source` (a directory relative to the adapter root), reads and
  // validates it and makes it resident (pinned: never evicted). An unpinned adapter for which
  // there is no room until held adapters are released is registered on the disk tier instead
  // (the next Acquire loads it). Loading an id again replaces its source and weights and bumps
  // its version; requests already holding the old version finish with it. INVALID_ARGUMENT
  // (bad id or source, malformed files), NOT_FOUND (no such directory/file),
  // FAILED_PRECONDITION (incompatible with the base or unsupported feature), RESOURCE_EXHAUSTED
  // (larger than the budget or than the pinned adapters leave; a pin beyond
  // max_pinned_fraction, or with the budget full of held adapters). On error the previous
  // registration of the id, if any, is unchanged.
  absl::StatusOr<AdapterInfo> Load(const std::string& adapter_id, const std::string& source,
                                   bool pin);
  // Forgets `adapter_id`; requests holding it finish with their version. NOT_FOUND if unknown.
  absl::Status Unload(const std::string& adapter_id);
  absl::StatusOr<AdapterInfo> Get(const std::string& adapter_id) const;
  absl::Status CheckRegistered(const std::string& adapter_id) const override;
  // Every registered adapter, sorted by id.
  std::vector<AdapterInfo> List() const;

  // AdapterProvider. An adapter on the disk tier is reloaded (once however many callers wait
  // for it; if its files changed, the new content becomes a new version). Its bytes are
  // reserved before the read, so concurrent loads never overcommit the budget. NOT_FOUND for
  // an unknown id; RESOURCE_EXHAUSTED when it can never fit; UNAVAILABLE when it fits only
  // once held adapters are released; the reload's own error otherwise.
  absl::StatusOr<std::shared_ptr<const LoraWeights>> Acquire(
      const std::string& adapter_id) override;
  absl::StatusOr<std::shared_ptr<const LoraWeights>> AcquireIfResident(
      const std::string& adapter_id) override;

  struct Stats {
    int64_t hits = 0;           // Acquire found the adapter resident
    int64_t misses = 0;         // Acquire had to wait for a load
    int64_t no_room = 0;        // Acquire found no room until held adapters are released
    int64_t evictions = 0;      // resident adapters dropped to the disk tier
    int64_t loads = 0;          // successful reads from disk (Load and reloads)
    int64_t digest_reuses = 0;  // reloads of unchanged files that skipped hashing
    int64_t load_failures = 0;
    double load_seconds = 0;  // total time of successful reads
    int64_t registered = 0;
    int64_t resident = 0;       // adapters on the host tier
    int64_t host_bytes = 0;     // resident A/B bytes (counted against the budget)
    int64_t pinned_bytes = 0;   // the pinned part of host_bytes
    int64_t disk_bytes = 0;     // in-memory size of registered adapters not resident
    int64_t device_bytes = 0;   // always 0 without a device tier
    int64_t retired_bytes = 0;  // replaced or unloaded versions still held by requests
  };
  Stats GetStats() const;

 private:
  struct Loaded;  // one version's weights and metadata
  struct Flight;  // an in-progress reload
  struct Entry;
  struct FileKey;  // identity of an adapter's files on disk (for the digest cache)

  explicit AdapterStore(AdapterStoreOptions options, std::string root);
  // Reads `source` from disk (no lock held). When the files' key equals `known` (if given),
  // `known_digest` is reused instead of hashing the files again.
  absl::StatusOr<std::shared_ptr<Loaded>> ReadFromDisk(const std::string& source,
                                                       const FileKey* known,
                                                       const std::string& known_digest);
  // Evicts LRU unheld adapters until `bytes` more (pinned or not, per `pin`) fit; `keep` is
  // neither evicted nor counted (it is being replaced or reloaded). RESOURCE_EXHAUSTED when it
  // can never fit while the pinned adapters stay; UNAVAILABLE (nothing evicted) when it fits
  // only once held adapters are released.
  absl::Status MakeRoom(int64_t bytes, const Entry* keep, bool pin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies `loaded`'s description into `e` (it stays on the disk tier).
  void Describe(Entry& e, const Loaded& loaded) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `e`'s resident version (if any) from the host tier.
  void DropResident(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Retire(const std::shared_ptr<Loaded>& loaded) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(Entry& e, std::shared_ptr<Loaded> loaded) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  AdapterInfo InfoLocked(const Entry& e) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const LoraWeights> Hand(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AdapterStoreOptions options_;
  const std::string root_;  // canonical adapter root

  mutable std::mutex mu_;
  std::condition_variable flight_done_;  // some Flight finished
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  // Last version handed out per id, kept across Unload so versions never repeat.
  absl::flat_hash_map<std::string, int64_t> last_version_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<Loaded>> retired_ ABSL_GUARDED_BY(mu_);
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;  // LRU clock
  int64_t host_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resident_ ABSL_GUARDED_BY(mu_) = 0;
  // Room held for loads in flight (counted against the budget until they publish or fail).
  int64_t reserved_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reserved_count_ ABSL_GUARDED_BY(mu_) = 0;
  Stats counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::adapters
