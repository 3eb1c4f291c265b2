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
                     const Tokenizer* tokenizer, StatsSink* stats)
    : options_(options),
      model_(model),
      cache_(cache),
      tokenizer_(tokenizer),
      stats_(stats != nullptr ? stats : &null_stats_) {}

Scheduler::~Scheduler() { AbortAll(absl::UnavailableError("engine shut down")); }

void Scheduler::Add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

void Scheduler::Cancel(const std::string& id) {
  for (auto& s : running_) {
    if (s->id == id) return Finish(s.get(), FinishReason::kCancelled, absl::OkStatus());
  }
  for (auto& s : waiting_) {
    if (s->id == id) return Finish(s.get(), FinishReason::kCancelled, absl::OkStatus());
  }
}

void Scheduler::AbortAll(const absl::Status& status) {
  while (!running_.empty()) Finish(running_.front().get(), FinishReason::kCancelled, status);
  while (!waiting_.empty()) Finish(waiting_.front().get(), FinishReason::kCancelled, status);
}

void Scheduler::Remove(Sequence* seq) {
  cache_->Release(seq->blocks);
  auto same = [seq](const std::unique_ptr<Sequence>& p) { return p.get() == seq; };
  if (auto it = std::find_if(running_.begin(), running_.end(), same); it != running_.end()) {
    running_.erase(it);
    return;
  }
  if (auto it = std::find_if(waiting_.begin(), waiting_.end(), same); it != waiting_.end()) {
    waiting_.erase(it);
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
  rs.outcome = OutcomeName(reason, status);
  std::shared_ptr<GenerateSink> sink = seq->sink;
  Remove(seq);  // seq is gone after this
  stats_->OnRequestFinished(rs);
  sink->OnOutput(std::move(out));
}

void Scheduler::ExpireDeadlines(absl::Time now) {
  std::vector<Sequence*> expired;
  for (auto& s : running_) {
    if (now >= s->deadline) expired.push_back(s.get());
  }
  for (auto& s : waiting_) {
    if (now >= s->deadline) expired.push_back(s.get());
  }
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
    // Recompute later: drop the KV blocks, keep the tokens and sampler state.
    cache_->Release(s->blocks);
    s->computed = 0;
    std::unique_ptr<Sequence> owned = std::move(*it);
    running_.erase(std::next(it).base());
    waiting_.push_front(std::move(owned));
    return true;
  }
  return false;
}

Sequence* Scheduler::PickWaiting() {
  // Preempted sequences (computed == 0 but generated > 0) resume first; otherwise the adapter
  // admitted least recently wins, oldest request first within it.
  Sequence* best = nullptr;
  uint64_t best_clock = 0;
  for (auto& s : waiting_) {
    if (s->generated() > 0) return s.get();
    auto it = adapter_last_admitted_.find(s->adapter_id);
    const uint64_t clock = it == adapter_last_admitted_.end() ? 0 : it->second;
    if (best == nullptr || clock < best_clock) {
      best = s.get();
      best_clock = clock;
    }
  }
  return best;
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
  while (budget > 0 && static_cast<int32_t>(running_.size()) < options_.max_running &&
         !waiting_.empty()) {
    Sequence* s = PickWaiting();
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
    adapter_last_admitted_[s->adapter_id] = ++admit_clock_;
    auto it = std::find_if(waiting_.begin(), waiting_.end(),
                           [s](const std::unique_ptr<Sequence>& p) { return p.get() == s; });
    running_.push_back(std::move(*it));
    waiting_.erase(it);
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
  seq->sampler->Observe(token);
  if (seq->first_token == absl::InfinitePast()) {
    seq->first_token = now;
  } else {
    stats_->OnToken(Seconds(now - seq->last_token));
  }
  seq->last_token = now;

  GenerateOutput out;
  out.token_ids.push_back(token);
  if (seq->params.logprobs > 0) out.logprobs.push_back(st);
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

void Scheduler::Step() {
  const absl::Time start = absl::Now();
  ExpireDeadlines(start);
  std::vector<Planned> planned = Plan();
  if (planned.empty()) return;
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
    return;
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
  StepStats ss;
  ss.batch_tokens = static_cast<int32_t>(tokens_.size());
  ss.prefill_tokens = prefill;
  ss.decode_tokens = decode;
  ss.sequences = static_cast<int32_t>(planned.size());
  ss.distinct_adapters = static_cast<int32_t>(adapters.size());
  ss.running = num_running();
  ss.waiting = num_waiting();
  ss.kv_blocks_total = cache_->num_blocks();
  ss.kv_blocks_used = cache_->num_blocks() - cache_->free_blocks();
  ss.step_seconds = Seconds(absl::Now() - start);
  stats_->OnStep(ss);
}

}  // namespace lorad
