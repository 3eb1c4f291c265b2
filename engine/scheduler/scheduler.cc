#include "engine/scheduler/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lorad {
namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

const char* OutcomeName(FinishReason reason, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) return "deadline";
  if (!status.ok()) return "error";
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, LlamaModel* model, KvCache* cache,
                     const Tokenizer* tokenizer, StatsSink* stats, AdapterProvider* adapters,
                     AdapterLoader* loader)
    : options_(options),
      model_(model),
      cache_(cache),
      tokenizer_(tokenizer),
      stats_(stats != nullptr ? stats : &null_stats_),
      adapters_(adapters),
      loader_(loader) {
  SlotFor("");
}

Scheduler::~Scheduler() { AbortAll(absl::UnavailableError("engine shut down")); }

void Scheduler::Add(std::unique_ptr<Sequence> seq) {
  seq->queued_at = absl::Now();
  AdapterSlot& slot = SlotFor(seq->adapter_id);
  slot.queue.push_back(std::move(seq));
}

void Scheduler::Cancel(const std::string& id) {
  auto match = [&id](const std::unique_ptr<Sequence>& s) { return s->id == id; };
  Sequence* found = nullptr;
  if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
    found = it->get();
  } else if (auto p = std::find_if(preempted_.begin(), preempted_.end(), match);
             p != preempted_.end()) {
    found = p->get();
  } else {
    for (auto& [adapter, slot] : slots_) {
      auto q = std::find_if(slot->queue.begin(), slot->queue.end(), match);
      if (q != slot->queue.end()) {
        found = q->get();
        break;
      }
    }
  }
  if (found != nullptr) Finish(found, FinishReason::kCancelled, absl::OkStatus());
}

void Scheduler::AbortAll(const absl::Status& status) {
  while (!running_.empty()) Finish(running_.front().get(), FinishReason::kCancelled, status);
  while (!preempted_.empty()) Finish(preempted_.front().get(), FinishReason::kCancelled, status);
  for (auto& [id, slot] : slots_) FailQueue(*slot, status);
}

int32_t Scheduler::num_waiting() const {
  size_t n = preempted_.size();
  for (const auto& [id, slot] : slots_) n += slot->queue.size();
  return static_cast<int32_t>(n);
}

void Scheduler::Remove(Sequence* seq) {
  cache_->Release(seq->blocks);
  AdapterSlot& slot = SlotFor(seq->adapter_id);
  auto same = [seq](const std::unique_ptr<Sequence>& p) { return p.get() == seq; };
  if (auto it = std::find_if(running_.begin(), running_.end(), same); it != running_.end()) {
    running_.erase(it);
    --slot.holders;
    return;
  }
  if (auto it = std::find_if(preempted_.begin(), preempted_.end(), same); it != preempted_.end()) {
    preempted_.erase(it);
    --slot.holders;
    return;
  }
  if (auto it = std::find_if(slot.queue.begin(), slot.queue.end(), same); it != slot.queue.end()) {
    slot.queue.erase(it);
  }
}

void Scheduler::Finish(Sequence* seq, FinishReason reason, absl::Status status,
                       GenerateOutput out) {
  const absl::Time now = absl::Now();
  out.finished = true;
  out.finish_reason = reason;
  out.status = status;
  if (status.ok() && reason != FinishReason::kCancelled) out.text += seq->text->Flush();
  out.prompt_tokens = seq->prompt_tokens;
  out.completion_tokens = seq->generated();
  RequestStats rs;
  rs.adapter_id = seq->adapter_id;
  rs.prompt_tokens = seq->prompt_tokens;
  rs.completion_tokens = seq->generated();
  if (seq->first_scheduled != absl::InfinitePast()) {
    rs.queue_seconds = Seconds(seq->first_scheduled - seq->submitted);
  }
  if (seq->first_token != absl::InfinitePast()) {
    rs.ttft_seconds = Seconds(seq->first_token - seq->submitted);
  }
  rs.e2e_seconds = Seconds(now - seq->submitted);
  if (!seq->adapter_id.empty()) {
    // Waiting for the adapter ends when it is admitted (or now, if it never was).
    const absl::Time ready =
        seq->first_scheduled != absl::InfinitePast() ? seq->first_scheduled : now;
    rs.adapter_wait_seconds = Seconds(ready - seq->queued_at);
  }
  rs.outcome = OutcomeName(reason, status);
  std::shared_ptr<GenerateSink> sink = seq->sink;
  Remove(seq);  // seq is gone after this
  stats_->OnRequestFinished(rs);
  sink->OnOutput(std::move(out));
}

void Scheduler::ExpireDeadlines(absl::Time now) {
  std::vector<Sequence*> expired;
  auto collect = [&](const auto& seqs) {
    for (const auto& s : seqs) {
      if (now >= s->deadline) expired.push_back(s.get());
    }
  };
  collect(running_);
  collect(preempted_);
  for (const auto& [id, slot] : slots_) collect(slot->queue);
  for (Sequence* s : expired) {
    Finish(s, FinishReason::kCancelled,
           absl::DeadlineExceededError(
               absl::StrCat("deadline exceeded after ", s->generated(), " generated tokens")));
  }
}

bool Scheduler::PreemptNewest(const std::vector<Planned>& planned, const Sequence* also_protect) {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    Sequence* s = it->get();
    if (s == also_protect) continue;
    if (std::any_of(planned.begin(), planned.end(), [s](const Planned& p) { return p.seq == s; })) {
      continue;
    }
    // Recompute later: drop the KV blocks, keep the tokens, sampler state and adapter.
    cache_->Release(s->blocks);
    s->computed = 0;
    std::unique_ptr<Sequence> owned = std::move(*it);
    running_.erase(std::next(it).base());
    preempted_.push_front(std::move(owned));
    return true;
  }
  return false;
}

Sequence* Scheduler::PickWaiting() {
  if (!preempted_.empty()) return preempted_.front().get();
  const AdapterSlot* best = nullptr;
  for (const auto& [id, slot] : slots_) {
    if (slot->state != AdapterSlot::State::kReady || slot->queue.empty()) continue;
    if (best == nullptr || slot->last_admitted < best->last_admitted ||
        (slot->last_admitted == best->last_admitted &&
         slot->queue.front()->arrival < best->queue.front()->arrival)) {
      best = slot.get();
    }
  }
  return best == nullptr ? nullptr : best->queue.front().get();
}

std::vector<Scheduler::Planned> Scheduler::Plan() {
  std::vector<Planned> planned;
  int32_t budget = options_.max_batch_tokens;
  // Running sequences: decodes (one token) first, then prefill chunks, oldest first.
  std::vector<Sequence*> order;
  for (auto& s : running_) order.push_back(s.get());
  std::stable_sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) {
    const bool da = a->tokens.size() - a->computed == 1, db = b->tokens.size() - b->computed == 1;
    return da > db;
  });
  for (Sequence* s : order) {
    if (budget == 0) break;
    // A sequence preempted in this loop is no longer running.
    if (std::none_of(running_.begin(), running_.end(),
                     [s](const std::unique_ptr<Sequence>& p) { return p.get() == s; })) {
      continue;
    }
    const int32_t take =
        std::min<int32_t>(static_cast<int32_t>(s->tokens.size()) - s->computed, budget);
    bool reserved = cache_->Reserve(s->blocks, s->computed + take);
    while (!reserved && PreemptNewest(planned, s)) {
      reserved = cache_->Reserve(s->blocks, s->computed + take);
    }
    if (!reserved) continue;  // retried next step, once others finish
    planned.push_back({s, take});
    budget -= take;
  }
  // Admit waiting sequences while budget, slots and KV blocks allow.
  while (budget > 0 && static_cast<int32_t>(running_.size()) < options_.max_running) {
    Sequence* s = PickWaiting();
    if (s == nullptr) break;
    const int32_t take =
        std::min<int32_t>(static_cast<int32_t>(s->tokens.size()) - s->computed, budget);
    if (!cache_->Reserve(s->blocks, s->computed + take)) {
      if (running_.empty() && planned.empty()) {
        // Nothing will ever free memory for it: the cache is too small for this prompt.
        Finish(s, FinishReason::kCancelled,
               absl::ResourceExhaustedError(absl::StrCat(
                   "prompt of ", s->tokens.size(), " tokens does not fit the KV cache (",
                   cache_->num_blocks() * cache_->block_tokens(), " token positions)")));
        continue;
      }
      break;
    }
    if (!preempted_.empty() && preempted_.front().get() == s) {
      running_.push_back(std::move(preempted_.front()));
      preempted_.pop_front();
    } else if (!Admit(s)) {
      continue;  // its adapter was unloaded: Admit failed (and freed) its whole queue
    }
    if (s->first_scheduled == absl::InfinitePast()) s->first_scheduled = absl::Now();
    planned.push_back({s, take});
    budget -= take;
  }
  return planned;
}

void Scheduler::BuildLora(const std::vector<Planned>& planned) {
  const int32_t layers = model_->spec().num_layers;
  lora_.layers.resize(layers);
  for (auto& layer : lora_.layers) {
    for (auto& segs : layer) segs.clear();
  }
  int64_t row = 0;
  size_t i = 0;
  while (i < planned.size()) {
    // Planned entries are sorted by adapter; one segment per run of the same adapter.
    const LoraWeights* a = planned[i].seq->adapter.get();
    int64_t end = row;
    size_t j = i;
    while (j < planned.size() && planned[j].seq->adapter.get() == a) end += planned[j++].count;
    if (a != nullptr) {
      for (int32_t l = 0; l < layers && l < static_cast<int32_t>(a->layers.size()); ++l) {
        for (int t = 0; t < kNumLoraTargets; ++t) {
          const LoraPair& p = a->layers[l][t];
          if (p.rank == 0) continue;
          lora_.layers[l][t].push_back({row, end, p.rank, p.scale, p.dtype, p.a, p.b});
        }
      }
    }
    row = end;
    i = j;
  }
}

void Scheduler::Sample(Sequence* seq, float* logits, absl::Time now) {
  const SampledToken st = seq->sampler->Sample(logits);
  const int32_t token = st.token;
  seq->tokens.push_back(token);
  seq->sampler->ObserveOutput(token);
  if (seq->first_token == absl::InfinitePast()) {
    seq->first_token = now;
  } else {
    stats_->OnToken(Seconds(now - seq->last_token));
  }
  seq->last_token = now;

  GenerateOutput out;
  out.token_ids.push_back(token);
  if (seq->params.logprobs > 0) {
    // Token texts come with the log-probabilities, so that callers need no tokenizer.
    SampledToken entry = st;
    entry.text = tokenizer_->TokenPiece(entry.token);
    for (TokenLogprob& top : entry.top) top.text = tokenizer_->TokenPiece(top.token);
    out.logprobs.push_back(std::move(entry));
  }
  out.prompt_tokens = seq->prompt_tokens;
  out.completion_tokens = seq->generated();
  const bool eog = tokenizer_->IsEndOfGeneration(token) && !seq->params.ignore_eos;
  if (!eog) out.text = seq->text->Append(tokenizer_->TokenPiece(token, /*skip_special=*/true));
  if (eog || seq->text->stopped()) {
    return Finish(seq, FinishReason::kStop, absl::OkStatus(), std::move(out));
  }
  if (seq->generated() >= seq->params.max_new_tokens ||
      static_cast<int32_t>(seq->tokens.size()) >= options_.max_context) {
    return Finish(seq, FinishReason::kLength, absl::OkStatus(), std::move(out));
  }
  seq->sink->OnOutput(std::move(out));
}

absl::Time Scheduler::Step() {
  const absl::Time start = absl::Now();
  ExpireDeadlines(start);
  absl::Time wake = ManageAdapters(start);
  std::vector<Planned> planned = Plan();
  // Deadlines of sequences that wait end them even while no step runs.
  auto earliest_deadline = [&](const auto& seqs) {
    for (const auto& q : seqs) wake = std::min(wake, q->deadline);
  };
  earliest_deadline(preempted_);
  for (const auto& [id, slot] : slots_) earliest_deadline(slot->queue);
  if (planned.empty()) {
    // Cancels, deadlines and adapter events change the occupancy without a forward step:
    // report it so that the gauges do not keep the last step's values.
    StepStats idle = Occupancy();
    if (!SameOccupancy(idle, last_reported_)) {
      stats_->OnStep(idle);
      last_reported_ = idle;
    }
    // Running sequences that could not reserve KV blocks retry when others finish; with
    // nothing planned, nothing finishes, so only an event or a deadline can change that.
    return wake;
  }
  // Group tokens by adapter (stable: keeps arrival order within an adapter).
  std::stable_sort(planned.begin(), planned.end(), [](const Planned& a, const Planned& b) {
    return a.seq->adapter.get() < b.seq->adapter.get();
  });

  tokens_.clear();
  positions_.clear();
  seq_index_.clear();
  logit_rows_.clear();
  tables_.clear();
  std::vector<Sequence*> sampled;
  int32_t prefill = 0, decode = 0;
  for (size_t k = 0; k < planned.size(); ++k) {
    Sequence* s = planned[k].seq;
    tables_.push_back(&s->blocks);
    for (int32_t j = 0; j < planned[k].count; ++j) {
      tokens_.push_back(s->tokens[s->computed + j]);
      positions_.push_back(s->computed + j);
      seq_index_.push_back(static_cast<int32_t>(k));
    }
    if (s->computed + planned[k].count == static_cast<int32_t>(s->tokens.size())) {
      logit_rows_.push_back(static_cast<int32_t>(tokens_.size()) - 1);
      sampled.push_back(s);
    }
    (planned[k].count == 1 && s->computed > 0 ? decode : prefill) += planned[k].count;
  }
  BuildLora(planned);
  const int32_t vocab = model_->spec().vocab_size;
  logits_.resize(static_cast<size_t>(logit_rows_.size()) * vocab);
  ForwardBatch batch{tokens_, positions_, seq_index_, tables_, logit_rows_, &lora_};
  absl::Status st = model_->Forward(batch, *cache_, logits_.data());
  if (!st.ok()) {
    for (const Planned& p : planned) Finish(p.seq, FinishReason::kCancelled, st);
    return absl::InfinitePast();
  }
  for (const Planned& p : planned) p.seq->computed += p.count;
  const absl::Time now = absl::Now();
  absl::flat_hash_map<const LoraWeights*, int> adapters;
  for (const Planned& p : planned) {
    if (p.seq->adapter != nullptr) adapters[p.seq->adapter.get()] = 1;
  }
  for (size_t r = 0; r < sampled.size(); ++r) {
    Sample(sampled[r], logits_.data() + r * static_cast<size_t>(vocab), now);
  }
  StepStats ss = Occupancy();
  ss.batch_tokens = static_cast<int32_t>(tokens_.size());
  ss.prefill_tokens = prefill;
  ss.decode_tokens = decode;
  ss.sequences = static_cast<int32_t>(planned.size());
  ss.distinct_adapters = static_cast<int32_t>(adapters.size());
  ss.step_seconds = Seconds(absl::Now() - start);
  stats_->OnStep(ss);
  last_reported_ = ss;
  return absl::InfinitePast();
}

StepStats Scheduler::Occupancy() const {
  StepStats ss;
  ss.running = num_running();
  ss.waiting = num_waiting();
  ss.kv_blocks_total = cache_->num_blocks();
  ss.kv_blocks_used = cache_->num_blocks() - cache_->free_blocks();
  for (const auto& [id, slot] : slots_) {
    if (slot->is_base()) continue;
    if (slot->state == AdapterSlot::State::kReady) {
      ++ss.active_adapters;
    } else {
      ss.adapter_waiting += static_cast<int32_t>(slot->queue.size());
    }
  }
  ss.adapter_loads_in_flight = loads_in_flight_;
  return ss;
}

bool Scheduler::SameOccupancy(const StepStats& a, const StepStats& b) {
  return a.running == b.running && a.waiting == b.waiting && a.kv_blocks_used == b.kv_blocks_used &&
         a.kv_blocks_total == b.kv_blocks_total && a.active_adapters == b.active_adapters &&
         a.adapter_waiting == b.adapter_waiting &&
         a.adapter_loads_in_flight == b.adapter_loads_in_flight;
}

}  // namespace lorad
