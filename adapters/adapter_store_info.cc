#include <algorithm>

#include "adapters/adapter_store.h"
#include "adapters/adapter_store_entry.h"

namespace lorad::adapters {

AdapterInfo AdapterStore::InfoLocked(const Entry& e) const {
  AdapterInfo info;
  info.adapter_id = e.id;
  info.source = e.source;
  info.rank = e.rank;
  info.alpha = e.alpha;
  info.target_modules = e.target_modules;
  info.use_rslora = e.use_rslora;
  info.bytes = e.bytes;
  info.tier = e.resident != nullptr ? ResidencyTier::kHost : ResidencyTier::kDisk;
  info.pinned = e.pinned;
  info.digest = e.digest;
  info.version = e.version;
  info.loaded_at = e.loaded_at;
  int64_t active = e.resident != nullptr ? e.resident.use_count() - 1 : 0;
  for (const std::weak_ptr<Loaded>& w : retired_) {
    if (std::shared_ptr<Loaded> l = w.lock(); l != nullptr && l->id == e.id) {
      active += l.use_count() - 1;  // minus `l` itself
    }
  }
  info.active_requests = static_cast<int32_t>(std::max<int64_t>(0, active));
  return info;
}

absl::StatusOr<AdapterInfo> AdapterStore::Get(const std::string& adapter_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(adapter_id);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' is not loaded"));
  }
  return InfoLocked(*it->second);
}

std::vector<AdapterInfo> AdapterStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AdapterInfo> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(InfoLocked(*e));
  std::sort(out.begin(), out.end(),
            [](const AdapterInfo& a, const AdapterInfo& b) { return a.adapter_id < b.adapter_id; });
  return out;
}

AdapterStore::Stats AdapterStore::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = counters_;
  s.registered = static_cast<int64_t>(entries_.size());
  s.resident = resident_;
  s.host_bytes = host_bytes_;
  for (const auto& [id, e] : entries_) {
    if (e->resident == nullptr) s.disk_bytes += e->bytes;
    if (e->resident != nullptr && e->pinned) s.pinned_bytes += e->bytes;
  }
  for (const std::weak_ptr<Loaded>& w : retired_) {
    if (std::shared_ptr<Loaded> l = w.lock(); l != nullptr) s.retired_bytes += l->adapter->bytes;
  }
  return s;
}

}  // namespace lorad::adapters
