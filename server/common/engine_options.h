// The engine's options and the request defaults derived from lorad's configuration.
#pragma once

#include "engine/engine.h"
#include "server/common/config.h"
#include "server/inference/proto_convert.h"

namespace lorad::server {

// EngineOptions for `config` (model path resolved, limits applied); `stats` may be null.
EngineOptions ToEngineOptions(const ServerConfig& config, StatsSink* stats);

// What the Inference service fills in for fields a request leaves at zero.
RequestDefaults ToRequestDefaults(const ServerConfig& config);

}  // namespace lorad::server
