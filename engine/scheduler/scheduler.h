// Iteration-level continuous batching across adapters, scheduled around adapter residency.
// Each Step() builds one forward batch: one decode token for every running sequence first,
// then prefill chunks of running and newly admitted sequences under a token budget.
// Waiting requests queue per adapter. Only active adapters (their weights held by the
// scheduler) admit, round-robin over adapters (least recently admitted first), so a hot
// adapter cannot starve a cold one. Cold adapters join a load line in the order they became
// wanted and are loaded on the loader threads (never on this thread); a load that finds no
// room waits until the scheduler releases adapters: those with no queued or running
// sequence at once, and, while a load waits for room, active adapters past their time slice
// (they stop admitting, drain, and rejoin the back of the line). When KV blocks run out, the
// newest running sequence is preempted (its blocks freed, recomputed later) instead of
// failing. Tokens are grouped by adapter so that each projection's LoRA work is one
// segmented call.
// Thread-safety: owned by the engine's scheduler thread; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/adapter_provider.h"
#include "engine/model/llama_model.h"
#include "engine/ops/kv_cache.h"
#include "engine/scheduler/adapter_slot.h"
#include "engine/scheduler/sequence.h"
#include "engine/stats_sink.h"
#include "engine/tokenizer/tokenizer.h"

namespace lorad {

struct SchedulerOptions {
  int32_t max_batch_tokens = 512;  // token budget of one forward step
  int32_t max_running = 64;        // sequences holding KV memory at once
  int32_t max_context = 8192;      // prompt + generated tokens of one sequence
  int32_t max_loads = 2;           // adapter loads in flight at once
  // While a load waits for room, an adapter active this long stops admitting and drains
  // (LoRAX's adapter_cycle_time_s).
  absl::Duration adapter_slice = absl::Seconds(2);
  // How often a load that found no room is retried when nothing was released meanwhile (room
  // can also free outside the scheduler: an unload, a re-registration without pin).
  absl::Duration no_room_retry = absl::Milliseconds(100);
};

class Scheduler {
 public:
  // All pointers must outlive the scheduler; `stats` may be null; `adapters` and `loader` may
  // be null when only the base model is served.
  Scheduler(const SchedulerOptions& options, LlamaModel* model, KvCache* cache,
            const Tokenizer* tokenizer, StatsSink* stats, AdapterProvider* adapters,
            AdapterLoader* loader);
  ~Scheduler();

  // Queues a validated, tokenized sequence (its adapter registered, not yet acquired).
  void Add(std::unique_ptr<Sequence> seq);
  // Ends the request `id` with finish reason CANCELLED (status OK) at once, freeing its KV
  // blocks. Unknown ids are ignored.
  void Cancel(const std::string& id);
  // Ends every request with `status` (e.g. UNAVAILABLE at shutdown).
  void AbortAll(const absl::Status& status);
  // The answer to a StartLoad of `adapter_id`.
  void OnAdapterLoaded(const std::string& adapter_id,
                       absl::StatusOr<std::shared_ptr<const LoraWeights>> weights);

  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const;

  // Runs one iteration: expires deadlines, moves adapters toward residency, plans and runs a
  // forward batch, samples, streams. Returns when it must run next if nothing else happens
  // (no Add, Cancel or OnAdapterLoaded): InfinitePast() for at once, InfiniteFuture() for
  // never (idle, or waiting only for loads).
  absl::Time Step();

 private:
  struct Planned {
    Sequence* seq;
    int32_t count;  // tokens of seq fed this step, starting at seq->computed
  };

  AdapterSlot& SlotFor(const std::string& adapter_id);
  // Sends the final event (`out` carries the last token, if any) and drops the sequence,
  // freeing its KV blocks.
  void Finish(Sequence* seq, FinishReason reason, absl::Status status, GenerateOutput out = {});
  void Remove(Sequence* seq);
  // Ends every sequence queued in `slot` with `status`.
  void FailQueue(AdapterSlot& slot, const absl::Status& status);
  void ExpireDeadlines(absl::Time now);
  // Releases idle and (when loads wait for room) expired adapters, retries loads that found
  // no room, and starts loads in line order. Returns the earliest time it must run again.
  absl::Time ManageAdapters(absl::Time now);
  void Release(AdapterSlot& slot);
  std::vector<Planned> Plan();
  // Frees the KV blocks of the newest running sequence not in `protect`; false if none.
  bool PreemptNewest(const std::vector<Planned>& planned, const Sequence* also_protect);
  // The next sequence to admit: a preempted one, else the head of the active adapter admitted
  // least recently. Null when none.
  Sequence* PickWaiting();
  // Moves `seq` (picked by PickWaiting) from its queue to running_, handing it its adapter's
  // current weights. False if its adapter was unloaded meanwhile (its queue is then failed).
  bool Admit(Sequence* seq);
  void BuildLora(const std::vector<Planned>& planned);
  void Sample(Sequence* seq, float* logits, absl::Time now);
  // The occupancy fields of StepStats (running, waiting, KV, adapters), batch fields zero.
  StepStats Occupancy() const;
  static bool SameOccupancy(const StepStats& a, const StepStats& b);

  SchedulerOptions options_;
  LlamaModel* model_;
  KvCache* cache_;
  const Tokenizer* tokenizer_;
  StatsSink* stats_;
  StatsSink null_stats_;
  AdapterProvider* adapters_;
  AdapterLoader* loader_;

  std::vector<std::unique_ptr<Sequence>> running_;   // in admission order
  std::deque<std::unique_ptr<Sequence>> preempted_;  // newest first; resume before any admit
  // Adapters with queued or admitted sequences (the base model's slot always exists).
  absl::flat_hash_map<std::string, std::unique_ptr<AdapterSlot>> slots_;
  uint64_t admit_clock_ = 0;
  int32_t loads_in_flight_ = 0;
  bool released_ = false;  // an adapter was released since the last no-room retry
  absl::Time last_no_room_retry_ = absl::InfinitePast();
  StepStats last_reported_;  // what stats_ last got (idle reports only when it changes)

  // Per-step scratch.
  std::vector<int32_t> tokens_, positions_, seq_index_, logit_rows_;
  std::vector<const BlockTable*> tables_;
  std::vector<float> logits_;
  LoraBatch lora_;
};

}  // namespace lorad
