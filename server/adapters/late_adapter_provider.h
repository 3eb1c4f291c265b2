// The engine needs its AdapterProvider at creation, but the adapter store needs the engine's
// model spec to validate adapters. This provider is handed to the engine first and forwards to
// the store once it exists; before that every adapter is NOT_FOUND.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "engine/adapter_provider.h"

namespace lorad::server {

// Thread-safe. Set() once; the provider set must outlive this object's use.
class LateAdapterProvider final : public AdapterProvider {
 public:
  void Set(AdapterProvider* provider) { provider_.store(provider, std::memory_order_release); }

  absl::Status CheckRegistered(const std::string& adapter_id) const override;
  absl::StatusOr<std::shared_ptr<const LoraWeights>> Acquire(
      const std::string& adapter_id) override;
  absl::StatusOr<std::shared_ptr<const LoraWeights>> AcquireIfResident(
      const std::string& adapter_id) override;

 private:
  std::atomic<AdapterProvider*> provider_{nullptr};
};

}  // namespace lorad::server
