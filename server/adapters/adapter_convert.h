// adapters::AdapterInfo -> lorad.v1.AdapterInfo.
#pragma once

#include "adapters/adapter_store.h"
#include "lorad/v1/adapters.pb.h"

namespace lorad::server {

// Thread-safe (pure).
void ToProtoAdapterInfo(const adapters::AdapterInfo& info, v1::AdapterInfo* out);
v1::ResidencyTier ToProtoTier(adapters::ResidencyTier tier);

}  // namespace lorad::server
