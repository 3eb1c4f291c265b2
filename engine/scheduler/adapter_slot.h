// The scheduler's view of one adapter with work: its queue of waiting sequences and where it
// stands on the way to residency. An adapter is active while its slot holds its weights
// (kReady); only active adapters admit sequences. The adapter store cannot evict what a slot
// or an admitted sequence holds, so the active set is bounded by the store's budget: a load
// that finds no room (kNoRoom) waits until the scheduler releases adapters.
// Owned by the scheduler thread; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "engine/base/lora_weights.h"
#include "engine/scheduler/sequence.h"

namespace lorad {

// Reads adapters off the scheduler thread. The engine implements it over its loader threads;
// each StartLoad is answered by exactly one Scheduler::OnAdapterLoaded on the scheduler
// thread, with AdapterProvider::Acquire's result.
class AdapterLoader {
 public:
  virtual ~AdapterLoader() = default;
  virtual void StartLoad(const std::string& adapter_id) = 0;
};

struct AdapterSlot {
  enum class State {
    kCold,     // not held; joins the load line when its queue is non-empty
    kLoading,  // a StartLoad is in flight
    kNoRoom,   // the last load found no room until held adapters are released
    kReady,    // `weights` held: active, admits sequences
  };

  std::string id;  // "" = the base model, always kReady with null weights
  State state = State::kCold;
  std::shared_ptr<const LoraWeights> weights;   // held while kReady
  std::deque<std::unique_ptr<Sequence>> queue;  // waiting to be admitted, arrival order
  int32_t holders = 0;                          // admitted sequences not yet finished
  // A load found no room and it has not become ready since: nobody behind it in the load
  // line is loaded or activated, and active adapters past their slice rotate out.
  bool needs_room = false;
  absl::Time want_since = absl::InfiniteFuture();  // place in the load line (earliest first)
  absl::Time active_since = absl::InfinitePast();  // when it last became kReady
  uint64_t last_admitted = 0;                      // fairness clock of its last admission

  bool is_base() const { return id.empty(); }
};

}  // namespace lorad
