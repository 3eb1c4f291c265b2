// The residency half of the scheduler: per-adapter slots, the load line, releases and the
// time slice. See scheduler.h for the policy.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/scheduler/scheduler.h"

namespace lorad {

AdapterSlot& Scheduler::SlotFor(const std::string& adapter_id) {
  std::unique_ptr<AdapterSlot>& slot = slots_[adapter_id];
  if (slot == nullptr) {
    slot = std::make_unique<AdapterSlot>();
    slot->id = adapter_id;
    if (slot->is_base()) slot->state = AdapterSlot::State::kReady;
  }
  return *slot;
}

void Scheduler::FailQueue(AdapterSlot& slot, const absl::Status& status) {
  while (!slot.queue.empty()) Finish(slot.queue.front().get(), FinishReason::kCancelled, status);
}

void Scheduler::Release(AdapterSlot& slot) {
  slot.weights.reset();
  slot.state = AdapterSlot::State::kCold;
  slot.want_since = absl::InfiniteFuture();
  released_ = true;
}

void Scheduler::OnAdapterLoaded(const std::string& adapter_id,
                                absl::StatusOr<std::shared_ptr<const LoraWeights>> weights) {
  --loads_in_flight_;
  auto it = slots_.find(adapter_id);
  if (it == slots_.end()) return;  // nobody waits any more; the weights are dropped
  AdapterSlot& slot = *it->second;
  if (weights.ok()) {
    slot.weights = *std::move(weights);
    slot.state = AdapterSlot::State::kReady;
    slot.active_since = absl::Now();
    slot.needs_room = false;
  } else if (absl::IsUnavailable(weights.status())) {
    slot.state = AdapterSlot::State::kNoRoom;  // keeps its place in the line
    slot.needs_room = true;
  } else {
    slot.state = AdapterSlot::State::kCold;
    slot.want_since = absl::InfiniteFuture();
    slot.needs_room = false;
    FailQueue(slot, weights.status());  // every waiter gets the load's error
  }
}

bool Scheduler::Admit(Sequence* seq) {
  AdapterSlot& slot = SlotFor(seq->adapter_id);
  if (!slot.is_base()) {
    // The newest version if the id was reloaded since the slot acquired it.
    absl::StatusOr<std::shared_ptr<const LoraWeights>> now = adapters_->AcquireIfResident(slot.id);
    if (now.ok()) {
      slot.weights = *std::move(now);
    } else if (absl::IsNotFound(now.status())) {
      Release(slot);
      FailQueue(slot, absl::NotFoundError(absl::StrCat("adapter '", slot.id,
                                                       "' was unloaded while the request waited")));
      return false;
    }
    seq->adapter = slot.weights;
  }
  slot.last_admitted = ++admit_clock_;
  ++slot.holders;
  auto it = std::find_if(slot.queue.begin(), slot.queue.end(),
                         [seq](const std::unique_ptr<Sequence>& p) { return p.get() == seq; });
  running_.push_back(std::move(*it));
  slot.queue.erase(it);
  return true;
}

absl::Time Scheduler::ManageAdapters(absl::Time now) {
  absl::Time wake = absl::InfiniteFuture();
  bool room_wanted = false;
  std::vector<std::string> gone;
  for (auto& [id, slot] : slots_) {
    if (slot->is_base()) continue;
    if (slot->needs_room) room_wanted = true;
    if (slot->state == AdapterSlot::State::kReady && slot->queue.empty() && slot->holders == 0) {
      Release(*slot);
    }
    if (slot->queue.empty() && slot->holders == 0 && slot->state != AdapterSlot::State::kLoading &&
        slot->state != AdapterSlot::State::kReady) {
      gone.push_back(id);
    }
  }
  for (const std::string& id : gone) slots_.erase(id);

  std::vector<AdapterSlot*> line;  // slots that want a load, earliest first
  for (auto& [id, slot] : slots_) {
    AdapterSlot& s = *slot;
    if (s.is_base()) continue;
    if (room_wanted && s.state == AdapterSlot::State::kReady && !s.queue.empty()) {
      // Its time slice: past it, rotate out so the held memory frees for the load that waits.
      const absl::Time end = s.active_since + options_.adapter_slice;
      if (now >= end) {
        Release(s);
      } else {
        wake = std::min(wake, end);
      }
    }
    if (s.queue.empty()) continue;
    if (s.state == AdapterSlot::State::kCold && s.want_since == absl::InfiniteFuture()) {
      s.want_since = now;
    }
    if (s.state != AdapterSlot::State::kReady) line.push_back(&s);
  }
  if (line.empty()) return wake;
  std::sort(line.begin(), line.end(), [](const AdapterSlot* a, const AdapterSlot* b) {
    return a->want_since != b->want_since ? a->want_since < b->want_since : a->id < b->id;
  });
  const bool retry = released_ || now - last_no_room_retry_ >= options_.no_room_retry;
  if (retry) {
    released_ = false;
    last_no_room_retry_ = now;
  }
  for (AdapterSlot* s : line) {
    if (s->state == AdapterSlot::State::kLoading) {
      if (s->needs_room) break;  // nobody behind it takes the room it waits for
      continue;
    }
    if (s->state == AdapterSlot::State::kNoRoom) {
      if (!retry) {
        wake = std::min(wake, last_no_room_retry_ + options_.no_room_retry);
        break;
      }
      s->state = AdapterSlot::State::kCold;
    }
    // Resident already (or not at all): no I/O needed.
    absl::StatusOr<std::shared_ptr<const LoraWeights>> w = adapters_->AcquireIfResident(s->id);
    if (w.ok()) {
      s->weights = *std::move(w);
      s->state = AdapterSlot::State::kReady;
      s->active_since = now;
      s->needs_room = false;
      continue;
    }
    if (!absl::IsUnavailable(w.status())) {  // unloaded meanwhile
      s->want_since = absl::InfiniteFuture();
      s->needs_room = false;
      FailQueue(*s, w.status());
      continue;
    }
    if (loads_in_flight_ >= options_.max_loads) break;
    ++loads_in_flight_;
    s->state = AdapterSlot::State::kLoading;
    loader_->StartLoad(s->id);
    if (s->needs_room) break;
  }
  return wake;
}

}  // namespace lorad
