#include "server/adapters/late_adapter_provider.h"

#include "absl/strings/str_cat.h"

namespace lorad::server {
namespace {

absl::Status NotFound(const std::string& adapter_id) {
  return absl::NotFoundError(absl::StrCat("adapter '", adapter_id, "' not found"));
}

}  // namespace

absl::Status LateAdapterProvider::CheckRegistered(const std::string& adapter_id) const {
  AdapterProvider* provider = provider_.load(std::memory_order_acquire);
  if (provider == nullptr) return NotFound(adapter_id);
  return provider->CheckRegistered(adapter_id);
}

absl::StatusOr<std::shared_ptr<const LoraWeights>> LateAdapterProvider::Acquire(
    const std::string& adapter_id) {
  AdapterProvider* provider = provider_.load(std::memory_order_acquire);
  if (provider == nullptr) return NotFound(adapter_id);
  return provider->Acquire(adapter_id);
}

absl::StatusOr<std::shared_ptr<const LoraWeights>> LateAdapterProvider::AcquireIfResident(
    const std::string& adapter_id) {
  AdapterProvider* provider = provider_.load(std::memory_order_acquire);
  if (provider == nullptr) return NotFound(adapter_id);
  return provider->AcquireIfResident(adapter_id);
}

}  // namespace lorad::server
