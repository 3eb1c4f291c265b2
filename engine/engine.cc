#include "engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/llama_model.h"
#include "engine/scheduler/scheduler.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_from_gguf.h"
#include "engine/tokenizer/vocab_from_tokenizer_json.h"

namespace lorad {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

absl::StatusOr<VocabData> LoadVocab(const ModelWeights& w) {
  if (w.gguf != nullptr) return VocabFromGguf(*w.gguf);
  LORAD_ASSIGN_OR_RETURN(std::string json, ReadFile(w.source_path + "/tokenizer.json"));
  std::string config;
  if (auto c = ReadFile(w.source_path + "/tokenizer_config.json"); c.ok()) config = *c;
  return VocabFromTokenizerJson(json, config);
}

}  // namespace

class Engine::Impl : public AdapterLoader {
 public:
  EngineOptions options;
  std::unique_ptr<kernels::ThreadPool> pool;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat_template;
  int32_t max_context = 0;
  std::unique_ptr<Scheduler> scheduler;  // used by the scheduler thread only

  mutable std::mutex mu;
  std::condition_variable cv;       // new work or stop
  std::condition_variable idle_cv;  // live requests reached zero
  std::vector<std::unique_ptr<Sequence>> inbox ABSL_GUARDED_BY(mu);
  // Adapters the scheduler asked to load; the loader threads take them.
  std::deque<std::string> loads ABSL_GUARDED_BY(mu);
  std::condition_variable load_cv;
  struct LoadResult {
    std::string adapter_id;
    absl::StatusOr<std::shared_ptr<const LoraWeights>> weights;
  };
  std::vector<LoadResult> loaded ABSL_GUARDED_BY(mu);  // answers for the scheduler thread
  std::vector<std::thread> loaders;
  std::vector<std::string> cancels ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<std::string> live ABSL_GUARDED_BY(mu);
  bool accepting ABSL_GUARDED_BY(mu) = true;
  bool stop ABSL_GUARDED_BY(mu) = false;
  Load load ABSL_GUARDED_BY(mu);
  uint64_t next_id ABSL_GUARDED_BY(mu) = 0;
  std::mt19937_64 seed_rng ABSL_GUARDED_BY(mu){std::random_device{}()};
  std::thread thread;

  void Run();
  void LoaderLoop();
  void StartLoad(const std::string& adapter_id) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      loads.push_back(adapter_id);
    }
    load_cv.notify_one();
  }
  void RequestDone(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    live.erase(id);
    if (live.empty()) idle_cv.notify_all();
  }
};

namespace {

// Forwards outputs to the caller's sink and forgets the request id just before the last one,
// so that a client that sees its request end can submit the next at once (max_queue counts
// live ids).
class TrackingSink : public GenerateSink {
 public:
  TrackingSink(std::shared_ptr<GenerateSink> inner, std::function<void()> on_done)
      : inner_(std::move(inner)), on_done_(std::move(on_done)) {}
  void OnOutput(GenerateOutput output) override {
    if (output.finished) on_done_();
    inner_->OnOutput(std::move(output));
  }

 private:
  std::shared_ptr<GenerateSink> inner_;
  std::function<void()> on_done_;
};

}  // namespace

void Engine::Impl::Run() {
  absl::Time wake = absl::InfinitePast();  // when the scheduler must step again on its own
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> incoming;
    std::vector<std::string> cancelled;
    std::vector<LoadResult> results;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto ready = [&] {
        return stop || !inbox.empty() || !cancels.empty() || !loaded.empty() || wake <= absl::Now();
      };
      if (wake == absl::InfiniteFuture()) {
        cv.wait(lock, ready);
      } else {
        cv.wait_until(lock, absl::ToChronoTime(wake), ready);
      }
      if (stop) break;
      incoming.swap(inbox);
      cancelled.swap(cancels);
      results.swap(loaded);
    }
    for (auto& s : incoming) scheduler->Add(std::move(s));
    for (const std::string& id : cancelled) scheduler->Cancel(id);
    for (LoadResult& r : results) scheduler->OnAdapterLoaded(r.adapter_id, std::move(r.weights));
    wake = scheduler->Step();
    std::lock_guard<std::mutex> lock(mu);
    load.running = scheduler->num_running();
    load.waiting = scheduler->num_waiting();
    load.kv_blocks_total = cache->num_blocks();
    load.kv_blocks_used = cache->num_blocks() - cache->free_blocks();
  }
  scheduler->AbortAll(absl::UnavailableError("engine shut down"));
}

namespace {

// Fails a request that never reached the scheduler: one final event carrying `status`.
void FailUnscheduled(Sequence& s, absl::Status status, FinishReason reason) {
  GenerateOutput out;
  out.finished = true;
  out.finish_reason = reason;
  out.status = std::move(status);
  out.prompt_tokens = s.prompt_tokens;
  s.sink->OnOutput(std::move(out));
}

}  // namespace

void Engine::Impl::LoaderLoop() {
  for (;;) {
    std::string id;
    {
      std::unique_lock<std::mutex> lock(mu);
      load_cv.wait(lock, [&] { return stop || !loads.empty(); });
      if (stop) return;
      id = std::move(loads.front());
      loads.pop_front();
    }
    LoadResult r{id, options.adapters->Acquire(id)};
    {
      std::lock_guard<std::mutex> lock(mu);
      loaded.push_back(std::move(r));
    }
    cv.notify_one();
  }
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  int threads = options.num_threads > 0 ? options.num_threads
                                        : static_cast<int>(std::thread::hardware_concurrency());
  impl->pool = std::make_unique<kernels::ThreadPool>(std::max(1, threads));
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<ModelWeights> weights, LoadModel(options.model_path));
  LORAD_ASSIGN_OR_RETURN(VocabData vocab, LoadVocab(*weights));
  impl->chat_template = DetectChatTemplate(vocab.chat_template);
  LORAD_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::Create(std::move(vocab)));
  if (impl->tokenizer->vocab_size() > weights->spec.vocab_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("tokenizer has ", impl->tokenizer->vocab_size(), " tokens but the model only ",
                     weights->spec.vocab_size));
  }
  LORAD_ASSIGN_OR_RETURN(impl->model, LlamaModel::Create(std::move(weights), impl->pool.get()));
  const ModelSpec& spec = impl->model->spec();
  impl->max_context = spec.max_position > 0 ? spec.max_position : 4096;
  if (options.max_context > 0) impl->max_context = std::min(impl->max_context, options.max_context);
  KvCacheOptions kv = impl->model->CacheOptions(1, options.kv_block_tokens);
  kv.num_blocks = KvBlocksForBudget(kv, options.kv_cache_bytes);
  LORAD_ASSIGN_OR_RETURN(impl->cache, KvCache::Create(kv));
  SchedulerOptions so;
  so.max_batch_tokens = options.max_batch_tokens;
  so.max_running = options.max_running;
  so.max_context = impl->max_context;
  so.max_loads = std::max(1, options.adapter_loaders);
  so.adapter_slice = options.adapter_slice;
  Impl* raw = impl.get();
  impl->scheduler =
      std::make_unique<Scheduler>(so, impl->model.get(), impl->cache.get(), impl->tokenizer.get(),
                                  options.stats, options.adapters, raw);
  impl->thread = std::thread([raw] { raw->Run(); });
  if (options.adapters != nullptr) {
    for (int i = 0; i < so.max_loads; ++i) impl->loaders.emplace_back([raw] { raw->LoaderLoop(); });
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
    impl_->accepting = false;
  }
  impl_->cv.notify_all();
  impl_->load_cv.notify_all();
  for (std::thread& t : impl_->loaders) t.join();
  if (impl_->thread.joinable()) impl_->thread.join();
  // Requests submitted but never picked up by the scheduler thread or a loader.
  std::vector<std::unique_ptr<Sequence>> orphans;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    orphans.swap(impl_->inbox);
  }
  for (auto& s : orphans) {
    FailUnscheduled(*s, absl::UnavailableError("engine shut down"), FinishReason::kCancelled);
  }
}

absl::Status Engine::Submit(GenerateRequest request, std::shared_ptr<GenerateSink> sink) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (!im.accepting) return absl::UnavailableError("server is draining; not accepting requests");
  }
  LORAD_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling, im.options.sampling_limits));
  std::string text;
  if (!request.messages.empty()) {
    if (!request.prompt.empty()) {
      return absl::InvalidArgumentError("give either a prompt or chat messages, not both");
    }
    LORAD_ASSIGN_OR_RETURN(text, ApplyChatTemplate(im.chat_template, request.messages,
                                                   /*add_generation_prompt=*/true));
  } else {
    text = std::move(request.prompt);
  }
  if (text.empty()) return absl::InvalidArgumentError("prompt is empty");
  absl::StatusOr<std::vector<int32_t>> ids =
      im.tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (!ids.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", ids.status().message()));
  }
  const int32_t max_prompt = im.options.max_prompt_tokens > 0
                                 ? std::min(im.options.max_prompt_tokens, im.max_context - 1)
                                 : im.max_context - 1;
  if (ids->empty()) return absl::InvalidArgumentError("prompt has no tokens");
  if (static_cast<int32_t>(ids->size()) > max_prompt) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt has ", ids->size(), " tokens; the limit is ", max_prompt));
  }
  auto seq = std::make_unique<Sequence>();
  if (!request.adapter_id.empty()) {
    if (im.options.adapters == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("adapter '", request.adapter_id, "' not found (no adapters configured)"));
    }
    // Registered is enough: the scheduler makes it resident while the request waits.
    LORAD_RETURN_IF_ERROR(im.options.adapters->CheckRegistered(request.adapter_id));
    seq->adapter_id = request.adapter_id;
  }
  seq->params = request.sampling;
  seq->tokens = std::move(*ids);
  seq->prompt_tokens = static_cast<int32_t>(seq->tokens.size());
  seq->text = std::make_unique<TextStream>(request.sampling.stop);
  seq->deadline = request.deadline;
  seq->submitted = absl::Now();
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (!im.accepting) return absl::UnavailableError("server is draining; not accepting requests");
    if (static_cast<int32_t>(im.live.size()) >= im.options.max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "request queue is full (", im.options.max_queue, " requests queued or running)"));
    }
    seq->id = request.request_id.empty() ? absl::StrCat("req-", ++im.next_id) : request.request_id;
    if (im.live.contains(seq->id)) {
      return absl::AlreadyExistsError(absl::StrCat("request_id '", seq->id, "' is in use"));
    }
    im.live.insert(seq->id);
    seq->arrival = ++im.next_id;
    const uint64_t fallback_seed = im.seed_rng();
    seq->sampler =
        std::make_unique<Sampler>(request.sampling, im.model->spec().vocab_size, fallback_seed);
    for (int32_t t : seq->tokens) seq->sampler->ObservePrompt(t);
    Impl* raw = impl_.get();
    const std::string id = seq->id;
    seq->sink =
        std::make_shared<TrackingSink>(std::move(sink), [raw, id] { raw->RequestDone(id); });
    im.inbox.push_back(std::move(seq));
  }
  im.cv.notify_one();
  return absl::OkStatus();
}

void Engine::Cancel(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->live.contains(request_id)) return;
    impl_->cancels.push_back(request_id);
  }
  impl_->cv.notify_one();
}

void Engine::StopAccepting() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->accepting = false;
}

bool Engine::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->idle_cv.wait_for(
      lock, absl::ToChronoSeconds(timeout) + absl::ToChronoMilliseconds(timeout % absl::Seconds(1)),
      [&] { return impl_->live.empty(); });
}

absl::StatusOr<std::vector<int32_t>> Engine::Tokenize(const std::string& text) const {
  return impl_->tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/true);
}

const ModelSpec& Engine::spec() const { return impl_->model->spec(); }
const Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer; }
int32_t Engine::max_context() const { return impl_->max_context; }
const ModelWeights& Engine::weights() const { return impl_->model->weights(); }
const ChatTemplate& Engine::chat_template() const { return impl_->chat_template; }

Engine::Load Engine::CurrentLoad() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->load;
}

}  // namespace lorad
