#include "server/common/engine_options.h"

#include <algorithm>

namespace lorad::server {

EngineOptions ToEngineOptions(const ServerConfig& config, StatsSink* stats) {
  EngineOptions options;
  options.model_path = ResolvedModelPath(config);
  options.num_threads = config.threads;
  options.kv_cache_bytes = int64_t{config.kv_cache_mb} << 20;
  options.max_batch_tokens = config.max_batch_tokens;
  options.max_running = config.max_running;
  options.max_queue = config.max_queue;
  options.max_prompt_tokens = config.max_prompt_tokens;
  options.sampling_limits.max_new_tokens = config.max_new_tokens;
  options.adapter_slice = absl::Milliseconds(config.adapter_cycle_ms);
  options.stats = stats;
  return options;
}

RequestDefaults ToRequestDefaults(const ServerConfig& config) {
  RequestDefaults defaults;
  defaults.max_request_bytes = config.max_request_bytes;
  defaults.max_new_tokens = config.max_new_tokens;
  defaults.default_max_new_tokens = std::min(config.default_max_new_tokens, config.max_new_tokens);
  return defaults;
}

}  // namespace lorad::server
