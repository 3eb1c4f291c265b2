// How the engine obtains an adapter's weights for a request, without knowing where adapters
// live: the server implements it over the adapter registry and cache.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/base/lora_weights.h"

namespace lorad {

class AdapterProvider {
 public:
  virtual ~AdapterProvider() = default;
  // OK when `adapter_id` is registered (resident or not), NOT_FOUND otherwise. No I/O.
  virtual absl::Status CheckRegistered(const std::string& adapter_id) const = 0;
  // The weights of `adapter_id`, loaded if needed. Holding the returned pointer pins that
  // version of the weights (a reload or unload does not free them under a running request).
  // Called from the engine's adapter loader threads, never from the scheduler thread.
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION when it does not fit the base model;
  // RESOURCE_EXHAUSTED when it can never fit (larger than the budget, or the pinned adapters
  // leave too little room); UNAVAILABLE when it fits only once adapters now held by callers
  // are released (the engine retries after it releases some).
  virtual absl::StatusOr<std::shared_ptr<const LoraWeights>> Acquire(
      const std::string& adapter_id) = 0;
  // Acquire without I/O or waiting: the weights when `adapter_id` is resident; UNAVAILABLE when
  // it must be read first (the engine then calls Acquire on its loader thread); NOT_FOUND for
  // an unknown id.
  virtual absl::StatusOr<std::shared_ptr<const LoraWeights>> AcquireIfResident(
      const std::string& adapter_id) = 0;
};

}  // namespace lorad
