// Private to AdapterStore: one registered adapter and one loaded version of it.
// Thread-safety: every field is guarded by AdapterStore::mu_ (Loaded is immutable once
// published).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/adapter_store.h"
#include "adapters/peft_adapter.h"

namespace lorad::adapters {

struct AdapterStore::FileKey {
  struct File {
    uint64_t dev = 0, inode = 0;
    int64_t size = 0, mtime_ns = 0;
    bool operator==(const File&) const = default;
  };
  File config, weights;
  bool operator==(const FileKey&) const = default;
};

struct AdapterStore::Loaded {
  std::string id;
  FileKey files;  // the files this version was read from
  std::unique_ptr<PeftAdapter> adapter;
  std::string digest;
  int64_t version = 0;
  absl::Time loaded_at;
};

struct AdapterStore::Flight {
  bool done = false;
  absl::Status status;
  std::shared_ptr<const LoraWeights> result;
};

struct AdapterStore::Entry {
  std::string id, source;
  uint64_t serial = 0;  // distinguishes re-registrations of the same id
  bool pinned = false;
  std::shared_ptr<Loaded> resident;  // null: disk tier
  // The last loaded version's description, kept while on the disk tier.
  int64_t version = 0;
  std::string digest;
  FileKey files;  // of the last read, for the digest cache
  int32_t rank = 0;
  float alpha = 0.0f;
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  int64_t bytes = 0;
  absl::Time loaded_at;
  uint64_t last_used = 0;
  std::shared_ptr<Flight> flight;  // reload in progress
};

}  // namespace lorad::adapters
