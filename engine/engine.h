// The engine facade: one resident base model, a paged KV cache, a tokenizer and a scheduler
// thread doing continuous batching across adapters. Callers Submit() requests with a sink for
// the streamed outputs and may Cancel() them; nothing here knows about gRPC or metrics.
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/adapter_provider.h"
#include "engine/base/model_spec.h"
#include "engine/generate_types.h"
#include "engine/sampling/sampling_params.h"
#include "engine/stats_sink.h"

namespace lorad {

class Tokenizer;
struct ModelWeights;
struct ChatTemplate;

struct EngineOptions {
  std::string model_path;                     // GGUF file or Hugging Face model directory
  int32_t num_threads = 0;                    // compute threads; 0 = all cores
  int64_t kv_cache_bytes = int64_t{1} << 30;  // memory for keys and values
  int32_t kv_block_tokens = 16;               // positions per KV block
  int32_t max_batch_tokens = 512;             // token budget of one forward step
  int32_t max_running = 64;                   // sequences decoding at once
  int32_t max_queue = 256;        // queued + running requests; beyond: RESOURCE_EXHAUSTED
  int32_t max_context = 0;        // tokens per sequence; 0 = the model's context length
  int32_t max_prompt_tokens = 0;  // 0 = max_context - 1
  SamplingLimits sampling_limits;
  AdapterProvider* adapters = nullptr;  // null: only the base model is served; must outlive
  int32_t adapter_loaders = 2;          // threads reading cold adapters concurrently
  // While an adapter load waits for room, an adapter active this long stops admitting so its
  // memory frees (LoRAX's adapter_cycle_time_s).
  absl::Duration adapter_slice = absl::Seconds(2);
  StatsSink* stats = nullptr;  // null: no reporting; must outlive the engine
};

class Engine {
 public:
  // Loads the model and starts the scheduler thread.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  // Ends every request (UNAVAILABLE) and stops the scheduler thread.
  ~Engine();

  // Validates and tokenizes `request`, resolves its adapter, and queues it; outputs then go
  // to `sink` from the scheduler thread. A request for a registered adapter that is not
  // resident waits for it; the load's own error, if it fails, ends the request on `sink`.
  // INVALID_ARGUMENT (bad input, naming the field), NOT_FOUND (unregistered adapter),
  // RESOURCE_EXHAUSTED (queue full), ALREADY_EXISTS (request_id in use), UNAVAILABLE
  // (draining). On error `sink` is not called.
  absl::Status Submit(GenerateRequest request, std::shared_ptr<GenerateSink> sink);
  // Stops request `request_id` within one step (finish reason CANCELLED). Unknown ids: no-op.
  void Cancel(const std::string& request_id);
  // New submissions get UNAVAILABLE from now on; running requests continue.
  void StopAccepting();
  // Blocks until no request is queued or running, or `timeout` passes; true when idle.
  bool WaitIdle(absl::Duration timeout);

  // Token ids of `text` as a prompt would be tokenized (special tokens parsed, BOS as the
  // model's metadata says).
  absl::StatusOr<std::vector<int32_t>> Tokenize(const std::string& text) const;
  const ModelSpec& spec() const;
  const Tokenizer& tokenizer() const;
  int32_t max_context() const;
  // The resident base weights (immutable; fine-tuning trains on them in place) and the chat
  // template detected from the model's metadata.
  const ModelWeights& weights() const;
  const ChatTemplate& chat_template() const;

  struct Load {
    int32_t running = 0;
    int32_t waiting = 0;
    int64_t kv_blocks_used = 0;
    int64_t kv_blocks_total = 0;
  };
  Load CurrentLoad() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorad
