// Iteration-level continuous batching across adapters. Each Step() builds one forward batch:
// one decode token for every running sequence first, then prefill chunks of running and newly
// admitted sequences under a token budget. Waiting requests are admitted round-robin over
// adapters (a hot adapter cannot starve a cold one); when KV blocks run out, the newest running
// sequence is preempted (its blocks freed, recomputed later) instead of failing. Tokens are
// grouped by adapter so that each projection's LoRA work is one segmented call.
// Thread-safety: owned by the engine's scheduler thread; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/model/kv_cache.h"
#include "engine/model/llama_model.h"
#include "engine/scheduler/sequence.h"
#include "engine/stats_sink.h"
#include "engine/tokenizer/tokenizer.h"

namespace lorad {

struct SchedulerOptions {
  int32_t max_batch_tokens = 512;  // token budget of one forward step
  int32_t max_running = 64;        // sequences holding KV memory at once
  int32_t max_context = 8192;      // prompt + generated tokens of one sequence
};

class Scheduler {
 public:
  // All pointers must outlive the scheduler; `stats` may be null.
  Scheduler(const SchedulerOptions& options, LlamaModel* model, KvCache* cache,
            const Tokenizer* tokenizer, StatsSink* stats);
  ~Scheduler();

  // Queues a validated, tokenized sequence.
  void Add(std::unique_ptr<Sequence> seq);
  // Ends the request `id` with finish reason CANCELLED (status OK) at once, freeing its KV
  // blocks. Unknown ids are ignored.
  void Cancel(const std::string& id);
  // Ends every request with `status` (e.g. UNAVAILABLE at shutdown).
  void AbortAll(const absl::Status& status);

  bool Idle() const { return running_.empty() && waiting_.empty(); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }

  // Runs one iteration: expires deadlines, plans and runs a forward batch, samples, streams.
  void Step();

 private:
  struct Planned {
    Sequence* seq;
    int32_t count;  // tokens of seq fed this step, starting at seq->computed
  };

  // Sends the final event (`out` carries the last token, if any) and drops the sequence,
  // freeing its KV blocks.
  void Finish(Sequence* seq, FinishReason reason, absl::Status status, GenerateOutput out = {});
  void Remove(Sequence* seq);
  void ExpireDeadlines(absl::Time now);
  std::vector<Planned> Plan();
  // Frees the KV blocks of the newest running sequence not in `protect`; false if none.
  bool PreemptNewest(const std::vector<Planned>& planned, const Sequence* also_protect);
  Sequence* PickWaiting();
  void BuildLora(const std::vector<Planned>& planned);
  void Sample(Sequence* seq, float* logits, absl::Time now);

  SchedulerOptions options_;
  LlamaModel* model_;
  KvCache* cache_;
  const Tokenizer* tokenizer_;
  StatsSink* stats_;
  StatsSink null_stats_;

  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  std::deque<std::unique_ptr<Sequence>> waiting_;   // preempted first, then arrival order
  absl::flat_hash_map<std::string, uint64_t> adapter_last_admitted_;  // fairness clock
  uint64_t admit_clock_ = 0;

  // Per-step scratch.
  std::vector<int32_t> tokens_, positions_, seq_index_, logit_rows_;
  std::vector<const BlockTable*> tables_;
  std::vector<float> logits_;
  LoraBatch lora_;
};

}  // namespace lorad
