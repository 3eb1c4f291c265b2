#include "adapters/adapter_store.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/adapter_store_entry.h"
#include "adapters/sha256.h"
#include "adapters/source_path.h"
#include "engine/base/status_macros.h"

namespace lorad::adapters {

absl::Status ValidateAdapterId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("adapter_id is empty");
  if (id.size() > 256) return absl::InvalidArgumentError("adapter_id is longer than 256 bytes");
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@' ||
                    c == '+';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter_id '", id, "' has a character outside [A-Za-z0-9._:/@+-]"));
    }
  }
  // Ids name directories in tools and deployments: every '/'-separated segment must be a name.
  for (absl::string_view segment : absl::StrSplit(id, '/')) {
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter_id '", id,
          "' has an empty, '.' or '..' segment (ids may be 'org/name', but not absolute or "
          "relative paths)"));
    }
  }
  return absl::OkStatus();
}

const char* ResidencyTierName(ResidencyTier tier) {
  switch (tier) {
    case ResidencyTier::kDevice:
      return "device";
    case ResidencyTier::kHost:
      return "host";
    case ResidencyTier::kDisk:
      return "disk";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<AdapterStore>> AdapterStore::Create(
    const AdapterStoreOptions& options) {
  if (options.host_budget_bytes <= 0 || options.max_loaded <= 0) {
    return absl::InvalidArgumentError("host_budget_bytes and max_loaded must be positive");
  }
  if (options.storage != DType::kF16 && options.storage != DType::kF32) {
    return absl::InvalidArgumentError("AdapterStoreOptions.storage must be F16 or F32");
  }
  if (options.base.num_layers <= 0 || options.base.hidden_size <= 0 || options.base.head_dim <= 0) {
    return absl::InvalidArgumentError("AdapterStoreOptions.base is not a valid model spec");
  }
  LORAD_ASSIGN_OR_RETURN(std::string root, CanonicalRoot(options.adapter_root));
  return std::unique_ptr<AdapterStore>(new AdapterStore(options, std::move(root)));
}

AdapterStore::AdapterStore(AdapterStoreOptions options, std::string root)
    : options_(std::move(options)), root_(std::move(root)) {}

AdapterStore::~AdapterStore() = default;

namespace {

// The identity of the file at `path` as stat() sees it; zeros when it cannot be stat'ed (the
// read that follows reports why).
struct stat StatOrZero(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) st = {};
  return st;
}

}  // namespace

absl::StatusOr<std::shared_ptr<AdapterStore::Loaded>> AdapterStore::ReadFromDisk(
    const std::string& source, const FileKey* known, const std::string& known_digest) {
  const absl::Time start = absl::Now();
  bool reused = false;
  auto read = [&]() -> absl::StatusOr<std::shared_ptr<Loaded>> {
    LORAD_ASSIGN_OR_RETURN(std::string dir, ResolveAdapterSource(root_, source));
    auto loaded = std::make_shared<Loaded>();
    auto key_of = [](const std::string& path) {
      const struct stat st = StatOrZero(path);
      return FileKey::File{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                           static_cast<int64_t>(st.st_size),
                           int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
    };
    // Stat'ed before reading: a file changed during the read gets a new key next time. File
    // times are coarse (a few ms), so a file modified in the last seconds could change again
    // with the same key: such a key is not kept (git's "racily clean" rule).
    loaded->files.config = key_of(dir + "/" + kPeftConfigFile);
    loaded->files.weights = key_of(dir + "/" + kPeftWeightsFile);
    const int64_t racy_after_ns = absl::ToUnixNanos(absl::Now() - absl::Seconds(2));
    if (loaded->files.config.mtime_ns >= racy_after_ns ||
        loaded->files.weights.mtime_ns >= racy_after_ns) {
      loaded->files = {};
    }
    // Opened beneath the root: confinement holds even if `dir` was swapped since the check.
    LORAD_ASSIGN_OR_RETURN(PeftFiles files, ReadPeftFilesBeneath(root_, source));
    if (known != nullptr && !known_digest.empty() && *known == loaded->files &&
        loaded->files.weights.inode != 0 && loaded->files.config.inode != 0) {
      loaded->digest = known_digest;
      reused = true;
    } else {
      const std::string_view weights = files.weights->bytes();
      loaded->digest =
          Sha256Hex({files.config_text, absl::string_view(weights.data(), weights.size())});
    }
    LORAD_ASSIGN_OR_RETURN(loaded->adapter,
                           BuildPeftAdapter(files, options_.base, {options_.storage}));
    return loaded;
  };
  absl::StatusOr<std::shared_ptr<Loaded>> r = read();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::lock_guard<std::mutex> lock(mu_);
  if (r.ok()) {
    ++counters_.loads;
    if (reused) ++counters_.digest_reuses;
    counters_.load_seconds += seconds;
    (*r)->loaded_at = absl::Now();
  } else {
    ++counters_.load_failures;
  }
  return r;
}

absl::Status AdapterStore::MakeRoom(int64_t bytes, const Entry* keep, bool pin) {
  const int64_t budget = options_.host_budget_bytes;
  if (bytes > budget) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "adapter needs ", bytes, " bytes but the host adapter budget is ", budget, " bytes"));
  }
  int64_t pinned_bytes = 0, pinned_count = 0;
  for (const auto& [id, e] : entries_) {
    if (e.get() != keep && e->pinned && e->resident != nullptr) {
      pinned_bytes += e->bytes;
      ++pinned_count;
    }
  }
  if (pin) {
    const auto pin_budget = static_cast<int64_t>(options_.max_pinned_fraction * budget);
    if (pinned_bytes + bytes > pin_budget) {
      return absl::ResourceExhaustedError(
          absl::StrCat("pinning it would put ", pinned_bytes + bytes,
                       " bytes in pinned adapters; at most ", pin_budget, " (",
                       options_.max_pinned_fraction, " of the host adapter budget) may be pinned"));
    }
  } else if (bytes > budget - pinned_bytes || pinned_count >= options_.max_loaded) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "adapter needs ", bytes, " bytes but pinned adapters (", pinned_count, ", ", pinned_bytes,
        " bytes) leave ", budget - pinned_bytes, " of the ", budget, "-byte host adapter budget"));
  }
  const bool keep_resident = keep != nullptr && keep->resident != nullptr;
  int64_t over_bytes =
      host_bytes_ + reserved_bytes_ - (keep_resident ? keep->bytes : 0) + bytes - budget;
  int64_t over_count =
      resident_ + reserved_count_ - (keep_resident ? 1 : 0) + 1 - options_.max_loaded;
  std::vector<Entry*> lru;
  for (auto& [id, e] : entries_) {
    if (e.get() != keep && e->resident != nullptr && !e->pinned && e->resident.use_count() == 1) {
      lru.push_back(e.get());
    }
  }
  std::sort(lru.begin(), lru.end(),
            [](const Entry* a, const Entry* b) { return a->last_used < b->last_used; });
  size_t n = 0;
  for (; (over_bytes > 0 || over_count > 0) && n < lru.size(); ++n) {
    over_bytes -= lru[n]->bytes;
    --over_count;
  }
  if (over_bytes > 0 || over_count > 0) {
    return absl::UnavailableError(absl::StrCat(
        "host adapter cache is full of pinned or in-use adapters (", resident_, " resident, ",
        host_bytes_ + reserved_bytes_, " of ", budget, " bytes, at most ", options_.max_loaded,
        " adapters); ", bytes, " more bytes fit once some are released"));
  }
  for (size_t i = 0; i < n; ++i) Evict(*lru[i]);
  return absl::OkStatus();
}

void AdapterStore::Evict(Entry& e) {
  host_bytes_ -= e.bytes;
  --resident_;
  ++counters_.evictions;
  Retire(e.resident);
  e.resident.reset();
}

void AdapterStore::Retire(const std::shared_ptr<Loaded>& loaded) {
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                [](const std::weak_ptr<Loaded>& w) { return w.expired(); }),
                 retired_.end());
  if (loaded != nullptr && loaded.use_count() > 1) retired_.push_back(loaded);
}

void AdapterStore::Describe(Entry& e, const Loaded& loaded) {
  const PeftAdapter& a = *loaded.adapter;
  e.version = loaded.version;
  e.digest = loaded.digest;
  e.files = loaded.files;
  e.rank = a.max_rank;
  e.alpha = a.config.lora_alpha;
  e.target_modules = a.target_modules;
  e.use_rslora = a.config.use_rslora;
  e.bytes = a.bytes;
  e.loaded_at = loaded.loaded_at;
}

void AdapterStore::Publish(Entry& e, std::shared_ptr<Loaded> loaded) {
  Describe(e, *loaded);
  e.resident = std::move(loaded);
  host_bytes_ += e.bytes;
  ++resident_;
}

void AdapterStore::DropResident(Entry& e) {
  if (e.resident == nullptr) return;
  host_bytes_ -= e.bytes;
  --resident_;
  Retire(e.resident);
  e.resident.reset();
}

std::shared_ptr<const LoraWeights> AdapterStore::Hand(Entry& e) {
  e.last_used = ++clock_;
  return std::shared_ptr<const LoraWeights>(e.resident, &e.resident->adapter->weights);
}

absl::StatusOr<AdapterInfo> AdapterStore::Load(const std::string& adapter_id,
                                               const std::string& source, bool pin) {
  LORAD_RETURN_IF_ERROR(ValidateAdapterId(adapter_id));
  LORAD_ASSIGN_OR_RETURN(std::shared_ptr<Loaded> loaded, ReadFromDisk(source, nullptr, ""));
  loaded->id = adapter_id;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(adapter_id);
  Entry* e = it == entries_.end() ? nullptr : it->second.get();
  absl::Status room = MakeRoom(loaded->adapter->bytes, e, pin);
  // Unpinned and blocked only by held adapters: registered on the disk tier.
  const bool disk_only = absl::IsUnavailable(room) && !pin;
  if (!room.ok() && !disk_only) return absl::ResourceExhaustedError(room.message());
  if (e == nullptr) {
    auto fresh = std::make_unique<Entry>();
    fresh->id = adapter_id;
    fresh->serial = ++clock_;
    e = fresh.get();
    entries_[adapter_id] = std::move(fresh);
  } else {
    DropResident(*e);
  }
  e->source = source;
  e->pinned = pin;
  loaded->version = ++last_version_[adapter_id];
  if (disk_only) {
    Describe(*e, *loaded);  // the weights read for validation are dropped
  } else {
    Publish(*e, std::move(loaded));
  }
  e->last_used = ++clock_;
  return InfoLocked(*e);
}

absl::Status AdapterStore::Unload(const std::string& adapter_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(adapter_id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' is not loaded"));
  }
  DropResident(*it->second);
  entries_.erase(it);
  return absl::OkStatus();
}

absl::Status AdapterStore::CheckRegistered(const std::string& adapter_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.contains(adapter_id)) {
    return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' is not loaded"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const LoraWeights>> AdapterStore::AcquireIfResident(
    const std::string& adapter_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(adapter_id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' is not loaded"));
  }
  if (it->second->resident == nullptr) {
    return absl::UnavailableError(absl::StrCat("adapter '", adapter_id, "' is not resident"));
  }
  ++counters_.hits;
  return Hand(*it->second);
}

absl::StatusOr<std::shared_ptr<const LoraWeights>> AdapterStore::Acquire(
    const std::string& adapter_id) {
  std::shared_ptr<Flight> flight;
  std::string source, digest;
  FileKey files;
  uint64_t serial = 0;
  int64_t reserved = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(adapter_id);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' is not loaded"));
    }
    Entry& e = *it->second;
    if (e.resident != nullptr) {
      ++counters_.hits;
      return Hand(e);
    }
    if (e.flight != nullptr) {  // another caller is loading it: wait for that load
      ++counters_.misses;
      flight = e.flight;
      flight_done_.wait(lock, [&] { return flight->done; });
      if (!flight->status.ok()) return flight->status;
      return flight->result;
    }
    // Room for the last known size is held while the files are read.
    if (absl::Status room = MakeRoom(e.bytes, &e, e.pinned); !room.ok()) {
      if (absl::IsUnavailable(room)) ++counters_.no_room;
      return room;
    }
    ++counters_.misses;
    reserved = e.bytes;
    reserved_bytes_ += reserved;
    ++reserved_count_;
    flight = e.flight = std::make_shared<Flight>();
    source = e.source;
    serial = e.serial;
    files = e.files;
    digest = e.digest;
  }
  absl::StatusOr<std::shared_ptr<Loaded>> loaded = ReadFromDisk(source, &files, digest);
  std::lock_guard<std::mutex> lock(mu_);
  reserved_bytes_ -= reserved;
  --reserved_count_;
  auto it = entries_.find(adapter_id);
  Entry* e = it == entries_.end() || it->second->serial != serial ? nullptr : it->second.get();
  if (e != nullptr && e->flight == flight) e->flight.reset();
  if (!loaded.ok()) {
    flight->status = loaded.status();
  } else if (e == nullptr) {
    flight->status = absl::NotFoundError(
        absl::StrCat("adapter '", adapter_id, "' was unloaded while it was being loaded"));
  } else if (e->resident != nullptr) {  // a Load published a version meanwhile
    flight->result = Hand(*e);
  } else if (absl::Status room = MakeRoom((*loaded)->adapter->bytes, e, e->pinned); !room.ok()) {
    flight->status = room;  // the files grew while on disk
  } else {
    (*loaded)->id = adapter_id;
    (*loaded)->version = (*loaded)->digest == e->digest ? e->version : ++last_version_[adapter_id];
    Publish(*e, *std::move(loaded));
    flight->result = Hand(*e);
  }
  flight->done = true;
  flight_done_.notify_all();
  if (!flight->status.ok()) return flight->status;
  return flight->result;
}

}  // namespace lorad::adapters
