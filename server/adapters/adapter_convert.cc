#include "server/adapters/adapter_convert.h"

#include "server/common/proto_time.h"

namespace lorad::server {

v1::ResidencyTier ToProtoTier(adapters::ResidencyTier tier) {
  switch (tier) {
    case adapters::ResidencyTier::kDevice:
      return v1::RESIDENCY_TIER_DEVICE;
    case adapters::ResidencyTier::kHost:
      return v1::RESIDENCY_TIER_HOST;
    case adapters::ResidencyTier::kDisk:
      return v1::RESIDENCY_TIER_DISK;
  }
  return v1::RESIDENCY_TIER_UNSPECIFIED;
}

void ToProtoAdapterInfo(const adapters::AdapterInfo& info, v1::AdapterInfo* out) {
  out->set_adapter_id(info.adapter_id);
  out->set_rank(static_cast<uint32_t>(info.rank));
  out->set_alpha(info.alpha);
  for (const std::string& module : info.target_modules) out->add_target_modules(module);
  out->set_bytes(static_cast<uint64_t>(info.bytes));
  out->set_tier(ToProtoTier(info.tier));
  out->set_pinned(info.pinned);
  out->set_digest(info.digest);
  out->set_version(static_cast<uint64_t>(info.version));
  out->set_source(info.source);
  out->set_use_rslora(info.use_rslora);
  out->set_active_requests(static_cast<uint32_t>(info.active_requests));
  if (info.loaded_at != absl::Time()) {
    ToProtoTimestamp(info.loaded_at, out->mutable_create_time());
  }
}

}  // namespace lorad::server
