// JobManager on the tiny model: request errors, datasets that fail validation naming the line,
// the queue bound, cancellation (within one step, no adapter), a job that learns a fixed mapping
// and is then served by the engine, watchers, and resuming after a restart to the same result.
#include "server/jobs/job_manager.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "engine/base/process_memory.h"
#include "engine/base/safetensors.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/jobs/job_runner.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr absl::Duration kJobTimeout = absl::Seconds(120);

// Forwards to the adapter store once it exists (the store needs the engine's spec).
class ForwardingProvider final : public AdapterProvider {
 public:
  absl::Status CheckRegistered(const std::string& id) const override {
    return target->CheckRegistered(id);
  }
  absl::StatusOr<std::shared_ptr<const LoraWeights>> Acquire(const std::string& id) override {
    return target->Acquire(id);
  }
  absl::StatusOr<std::shared_ptr<const LoraWeights>> AcquireIfResident(
      const std::string& id) override {
    return target->AcquireIfResident(id);
  }
  AdapterProvider* target = nullptr;
};

// Collects a watch's events; thread-safe. Unwatches on destruction unless the watch ended.
class RecordingWatcher final : public JobWatcher {
 public:
  ~RecordingWatcher() override {
    if (manager_ != nullptr && end().ok()) manager_->Unwatch(watch_id_);
  }
  absl::Status Start(JobManager* manager, const std::string& job_id) {
    absl::StatusOr<int64_t> id = manager->Watch(job_id, 0, this);
    if (!id.ok()) return id.status();
    manager_ = manager;
    watch_id_ = *id;
    return absl::OkStatus();
  }
  void OnJobEvent(const v1::JobEvent& event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  void OnWatchEnd(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    end_ = status;
  }
  std::vector<v1::JobEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  absl::Status end() const {
    absl::MutexLock lock(&mu_);
    return end_;
  }
  // Waits until an event satisfies `pred`.
  bool WaitFor(const std::function<bool(const v1::JobEvent&)>& pred, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const v1::JobEvent& e : events_) {
        if (pred(e)) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }

 private:
  JobManager* manager_ = nullptr;
  int64_t watch_id_ = 0;
  mutable absl::Mutex mu_;
  std::vector<v1::JobEvent> events_ ABSL_GUARDED_BY(mu_);
  absl::Status end_ ABSL_GUARDED_BY(mu_);
};

std::string Repeat(const std::string& line, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, line, "\n");
  return out;
}

const std::string kMappingLine = R"({"prompt": "a", "completion": "b c"})";

v1::CreateJobRequest Request(const std::string& adapter_id, const std::string& jsonl,
                             uint32_t max_steps) {
  v1::CreateJobRequest request;
  request.set_adapter_id(adapter_id);
  request.mutable_dataset()->set_inline_jsonl(jsonl);
  v1::Hyperparameters* hp = request.mutable_hyperparameters();
  if (max_steps > 0) hp->set_max_steps(max_steps);
  hp->set_max_seq_len(64);
  hp->set_seed(11);
  return request;
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lorad::testing::TinyModelOptions model;
    model.weight_type = DType::kQ4_1;
    const std::string model_path = dir_.File("tiny.gguf");
    ASSERT_TRUE(lorad::testing::WriteTinyGguf(model, model_path).ok());
    fs::create_directories(dir_.File("data/adapters"));
    EngineOptions engine_options;
    engine_options.model_path = model_path;
    engine_options.num_threads = 1;
    engine_options.kv_cache_bytes = int64_t{16} << 20;
    engine_options.adapters = &provider_;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_NO_FATAL_FAILURE(NewAdapterStore());
  }

  void TearDown() override {
    manager_.reset();
    engine_.reset();
  }

  // A fresh adapter store (as after a daemon restart).
  void NewAdapterStore() {
    adapters::AdapterStoreOptions options;
    options.adapter_root = dir_.File("data/adapters");
    options.base = engine_->spec();
    absl::StatusOr<std::unique_ptr<adapters::AdapterStore>> store =
        adapters::AdapterStore::Create(options);
    ASSERT_TRUE(store.ok()) << store.status();
    provider_.target = store->get();
    store_ = *std::move(store);
  }

  JobManagerOptions Options() {
    JobManagerOptions options;
    options.data_dir = dir_.File("data");
    options.adapter_root = dir_.File("data/adapters");
    options.engine = engine_.get();
    options.adapters = store_.get();
    options.base_model_name = "tiny";
    options.max_dataset_bytes = 4096;
    options.max_queued_jobs = 4;
    options.checkpoint_every_steps = 5;
    options.train_threads = 1;
    options.train_max_pause = absl::Milliseconds(20);
    return options;
  }

  void StartManager(const JobManagerOptions& options) {
    absl::StatusOr<std::unique_ptr<JobManager>> manager = JobManager::Create(options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
  }

  v1::Job MustCreate(const v1::CreateJobRequest& request) {
    absl::StatusOr<v1::Job> job = manager_->CreateJob(request);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }

  v1::Job WaitDone(const std::string& job_id) {
    absl::StatusOr<v1::Job> job = manager_->WaitForTerminal(job_id, kJobTimeout);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }

  // Greedy generation of `prompt` through the engine, until EOS or 8 tokens.
  std::string Generate(const std::string& adapter_id, const std::string& prompt) {
    struct Sink : GenerateSink {
      void OnOutput(GenerateOutput out) override {
        text += out.text;
        if (out.finished) done.set_value(out.status);
      }
      std::string text;
      std::promise<absl::Status> done;
    };
    auto sink = std::make_shared<Sink>();
    std::future<absl::Status> done = sink->done.get_future();
    GenerateRequest request;
    request.adapter_id = adapter_id;
    request.prompt = prompt;
    request.sampling.temperature = 0.0f;
    request.sampling.max_new_tokens = 8;
    absl::Status submitted = engine_->Submit(request, sink);
    EXPECT_TRUE(submitted.ok()) << submitted;
    if (!submitted.ok()) return "";
    absl::Status status = done.get();
    EXPECT_TRUE(status.ok()) << status;
    return sink->text;
  }

  std::string AdapterDir(const std::string& job_id) {
    return dir_.File("data/adapters/" + JobAdapterSource(job_id));
  }

  lorad::testing::ScopedTempDir dir_;
  ForwardingProvider provider_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<adapters::AdapterStore> store_;
  std::unique_ptr<JobManager> manager_;
};

TEST_F(JobManagerTest, RequestErrors) {
  JobManagerOptions options = Options();
  ASSERT_NO_FATAL_FAILURE(StartManager(options));
  auto code = [&](const v1::CreateJobRequest& r) { return manager_->CreateJob(r).status(); };

  v1::CreateJobRequest bad = Request("bad id", kMappingLine, 2);
  EXPECT_THAT(code(bad).message(), HasSubstr("adapter_id"));
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kInvalidArgument);

  bad = Request("x", kMappingLine, 2);
  bad.mutable_hyperparameters()->set_lr_scheduler(static_cast<v1::LrScheduler>(42));
  EXPECT_THAT(code(bad).message(), HasSubstr("hyperparameters.lr_scheduler"));

  bad = Request("x", kMappingLine, 2);
  bad.mutable_dataset()->Clear();
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kInvalidArgument);

  bad = Request("x", std::string(5000, ' '), 2);  // over max_dataset_bytes (4096)
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(code(bad).message(), HasSubstr("max_dataset_bytes"));

  bad = Request("x", "", 2);
  bad.mutable_dataset()->set_path("/etc/passwd");
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.mutable_dataset()->set_path("../tiny.gguf");
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.mutable_dataset()->set_path("missing.jsonl");
  EXPECT_EQ(code(bad).code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(manager_->GetJob("job-nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->CancelJob("job-nope").status().code(), absl::StatusCode::kNotFound);
  RecordingWatcher watcher;
  EXPECT_EQ(manager_->Watch("job-nope", 0, &watcher).status().code(), absl::StatusCode::kNotFound);

  // A dataset file under the data root works.
  std::ofstream(dir_.File("data/train.jsonl")) << Repeat(kMappingLine, 4);
  v1::CreateJobRequest from_file = Request("from-file", "", 2);
  from_file.mutable_dataset()->set_path("train.jsonl");
  v1::Job job = MustCreate(from_file);
  EXPECT_EQ(job.state(), v1::JOB_STATE_VALIDATING);
  EXPECT_EQ(job.hyperparameters().rank(), 8u);  // effective values are reported
  EXPECT_EQ(job.hyperparameters().seed(), 11u);
  // The adapter id is taken while the job is unfinished.
  EXPECT_EQ(code(Request("from-file", kMappingLine, 2)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(WaitDone(job.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  // ... and once it is registered.
  EXPECT_EQ(code(Request("from-file", kMappingLine, 2)).code(), absl::StatusCode::kAlreadyExists);
  // Cancelling a succeeded job is refused.
  EXPECT_EQ(manager_->CancelJob(job.job_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, BadDatasetsFailInValidatingNamingTheLine) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  const std::string long_completion =
      R"({"prompt": "a", "completion": ")" + std::string(200, 'z') + R"("})";
  struct Case {
    std::string jsonl;
    std::string expected;
  };
  const Case cases[] = {
      {"", "empty"},
      {"\n\n", "empty"},
      {Repeat(kMappingLine, 2) + "not json\n", "line 3"},
      {kMappingLine + "\n" + R"({"prompt": "a", "answer": "b"})" + "\n", "line 2"},
      {R"({"text": 5})" + std::string("\n"), "line 1"},
      {kMappingLine + "\n" + long_completion + "\n", "line 2"},  // > max_seq_len 64
  };
  int n = 0;
  for (const Case& c : cases) {
    v1::Job job = MustCreate(Request(absl::StrCat("bad-", n++), c.jsonl, 2));
    v1::Job done = WaitDone(job.job_id());
    EXPECT_EQ(done.state(), v1::JOB_STATE_FAILED) << c.expected;
    EXPECT_THAT(done.error(), HasSubstr(c.expected));
    EXPECT_THAT(done.error(), HasSubstr("dataset"));
    EXPECT_FALSE(done.has_start_time());  // never ran
    EXPECT_TRUE(done.has_end_time());
  }
}

TEST_F(JobManagerTest, CancelStopsWithinAStepAndWritesNoAdapter) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  v1::Job job = MustCreate(Request("never", Repeat(kMappingLine, 4), 1000000));
  RecordingWatcher watcher;
  ASSERT_TRUE(watcher.Start(manager_.get(), job.job_id()).ok());
  ASSERT_TRUE(watcher.WaitFor([](const v1::JobEvent& e) { return e.progress().step() >= 3; },
                              absl::Seconds(60)));
  absl::StatusOr<v1::Job> cancelled = manager_->CancelJob(job.job_id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  const absl::Time asked = absl::Now();
  v1::Job done = WaitDone(job.job_id());
  EXPECT_LT(absl::Now() - asked, absl::Seconds(5));
  EXPECT_EQ(done.state(), v1::JOB_STATE_CANCELLED);
  // The step in flight when the cancel came is abandoned: at most one more progress event.
  EXPECT_LE(done.progress().step(), cancelled->progress().step() + 1);
  EXPECT_FALSE(fs::exists(AdapterDir(job.job_id())));
  EXPECT_FALSE(store_->Get("never").ok());
  // Cancelling again is a no-op.
  absl::StatusOr<v1::Job> again = manager_->CancelJob(job.job_id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state(), v1::JOB_STATE_CANCELLED);
  // The watcher saw the snapshot first and the cancellation last.
  std::vector<v1::JobEvent> events = watcher.events();
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().state_change().previous(), v1::JOB_STATE_UNSPECIFIED);
  EXPECT_EQ(events.back().state_change().state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(JobManagerTest, QueueIsBoundedAndQueuedJobsCancelAtOnce) {
  JobManagerOptions options = Options();
  options.max_queued_jobs = 1;
  ASSERT_NO_FATAL_FAILURE(StartManager(options));
  v1::Job running = MustCreate(Request("long", Repeat(kMappingLine, 4), 1000000));
  RecordingWatcher watcher;
  ASSERT_TRUE(watcher.Start(manager_.get(), running.job_id()).ok());
  ASSERT_TRUE(
      watcher.WaitFor([](const v1::JobEvent& e) { return e.has_progress(); }, absl::Seconds(60)));
  v1::Job queued = MustCreate(Request("next", Repeat(kMappingLine, 4), 2));
  EXPECT_EQ(manager_->CreateJob(Request("third", kMappingLine, 2)).status().code(),
            absl::StatusCode::kResourceExhausted);
  absl::StatusOr<v1::Job> cancelled = manager_->CancelJob(queued.job_id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);  // at once: it never ran
  EXPECT_EQ(manager_->GetJob(queued.job_id())->state(), v1::JOB_STATE_CANCELLED);
  ASSERT_TRUE(manager_->CancelJob(running.job_id()).ok());
  EXPECT_EQ(WaitDone(running.job_id()).state(), v1::JOB_STATE_CANCELLED);

  absl::StatusOr<JobPage> page = manager_->ListJobs(v1::JOB_STATE_CANCELLED, "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 2u);
  EXPECT_EQ(page->jobs[0].job_id(), queued.job_id());  // newest first
}

TEST_F(JobManagerTest, LearnsAMappingAndServesTheAdapter) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  v1::CreateJobRequest request = Request("mapping", Repeat(kMappingLine, 8), 40);
  v1::Hyperparameters* hp = request.mutable_hyperparameters();
  for (const char* m :
       {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
    hp->add_target_modules(m);
  }
  hp->set_learning_rate(1e-2f);
  hp->set_checkpoint_every_steps(10);
  const std::string base_text = Generate("", "a");
  v1::Job job = MustCreate(request);
  RecordingWatcher watcher;
  ASSERT_TRUE(watcher.Start(manager_.get(), job.job_id()).ok());
  v1::Job done = WaitDone(job.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_EQ(done.progress().step(), 40u);
  EXPECT_EQ(done.progress().total_steps(), 40u);
  EXPECT_EQ(done.num_examples(), 8u);
  EXPECT_GT(done.progress().tokens_seen(), 0u);
  EXPECT_EQ(done.adapter_source(), JobAdapterSource(job.job_id()));
  EXPECT_EQ(done.last_checkpoint(), "jobs/" + job.job_id() + "/checkpoints/step-00000040");

  // Loss went down; the events came in order and ended with SUCCEEDED.
  std::vector<float> losses;
  int checkpoints = 0;
  for (const v1::JobEvent& e : watcher.events()) {
    if (e.has_progress()) {
      EXPECT_EQ(e.progress().step(), losses.size() + 1);
      losses.push_back(e.progress().loss());
    }
    checkpoints += e.has_checkpoint();
  }
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(losses.back(), 0.25f * losses.front());
  EXPECT_EQ(checkpoints, 4);
  EXPECT_EQ(watcher.events().back().state_change().state(), v1::JOB_STATE_SUCCEEDED);
  // Only the two newest checkpoints are kept; the adapter is a complete PEFT directory.
  const std::string job_dir = dir_.File("data/jobs/" + job.job_id());
  EXPECT_FALSE(fs::exists(job_dir + "/checkpoints/step-00000020"));
  EXPECT_TRUE(fs::exists(job_dir + "/checkpoints/step-00000030"));
  EXPECT_TRUE(fs::exists(AdapterDir(job.job_id()) + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(AdapterDir(job.job_id()) + "/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(dir_.File("data/adapters/finetuned/.tmp-" + job.job_id())));

  // The adapter is servable at once and produces the mapping.
  ASSERT_TRUE(store_->Get("mapping").ok());
  EXPECT_EQ(Generate("mapping", "a"), "b c");
  EXPECT_NE(base_text, "b c");
}

// A validation set that disagrees with the training set: eval loss rises once training takes
// hold, early stopping ends the job, the best checkpoint is published, and every checkpoint
// kept can be listed and published; the event log pages and a watch resumes without loss.
TEST_F(JobManagerTest, ValidationEarlyStoppingCheckpointsAndEvents) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  v1::CreateJobRequest request = Request("early", Repeat(kMappingLine, 8), 60);
  request.mutable_validation()->set_inline_jsonl(
      Repeat(R"({"prompt": "a", "completion": "x y"})", 2));
  v1::Hyperparameters* hp = request.mutable_hyperparameters();
  hp->add_target_modules("all-linear");
  hp->set_learning_rate(1e-2f);
  hp->set_checkpoint_every_steps(2);
  hp->set_eval_every_steps(2);
  hp->set_early_stopping_patience(2);
  hp->set_keep_checkpoints(1);
  const v1::Job created = MustCreate(request);
  EXPECT_EQ(created.hyperparameters().early_stopping_patience(), 2u);
  const v1::Job done = WaitDone(created.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_TRUE(done.stopped_early());
  EXPECT_LT(done.progress().step(), 60u);
  EXPECT_EQ(done.num_validation_examples(), 2u);
  ASSERT_TRUE(done.has_best_eval());
  ASSERT_TRUE(done.has_last_eval());
  EXPECT_GT(done.last_eval().loss(), done.best_eval().loss());
  EXPECT_EQ(done.last_eval().step(), done.progress().step());
  EXPECT_EQ(done.published_step(), done.best_eval().step());

  absl::StatusOr<v1::ListJobCheckpointsResponse> checkpoints =
      manager_->ListJobCheckpoints(done.job_id());
  ASSERT_TRUE(checkpoints.ok()) << checkpoints.status();
  ASSERT_EQ(checkpoints->checkpoints_size(), 2);  // the newest and the best
  EXPECT_EQ(checkpoints->checkpoints(0).step(), done.progress().step());
  EXPECT_EQ(checkpoints->best_step(), done.published_step());
  EXPECT_TRUE(checkpoints->checkpoints(1).has_eval());
  EXPECT_FLOAT_EQ(checkpoints->checkpoints(1).eval().loss(), done.best_eval().loss());

  // The newest checkpoint as a second adapter; unknown steps and taken ids are refused.
  const int64_t newest = static_cast<int64_t>(checkpoints->checkpoints(0).step());
  absl::StatusOr<v1::PublishCheckpointResponse> published =
      manager_->PublishCheckpoint(done.job_id(), newest, "early-last");
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->adapter_source(), CheckpointAdapterSource(done.job_id(), newest));
  ASSERT_TRUE(store_->Get("early-last").ok());
  EXPECT_EQ(manager_->PublishCheckpoint(done.job_id(), 1, "early-one").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->PublishCheckpoint(done.job_id(), newest, "early").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(manager_->PublishCheckpoint("job-nope", newest, "x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->ListJobCheckpoints("job-nope").status().code(), absl::StatusCode::kNotFound);

  // The event log: contiguous sequence numbers, paged.
  std::vector<v1::JobEvent> all;
  int64_t after = 0;
  while (true) {
    absl::StatusOr<EventPage> page = manager_->ListJobEvents(done.job_id(), after, 5);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->events.size(), 5u);
    for (const v1::JobEvent& e : page->events) {
      EXPECT_EQ(e.sequence(), all.size() + 1);
      all.push_back(e);
      after = static_cast<int64_t>(e.sequence());
    }
    if (!page->has_more) break;
  }
  ASSERT_GT(all.size(), 10u);
  EXPECT_EQ(all.back().state_change().state(), v1::JOB_STATE_SUCCEEDED);
  int evaluated = 0;
  for (const v1::JobEvent& e : all) {
    if (e.has_progress()) {
      EXPECT_GT(e.progress().grad_norm(), 0.0f);
      evaluated += e.progress().has_eval();
    }
  }
  EXPECT_EQ(evaluated, static_cast<int>(done.progress().step() / 2));
  // A watch resuming after event 3 replays the rest and ends (the job has finished).
  RecordingWatcher watcher;
  absl::StatusOr<int64_t> watch_id = manager_->Watch(done.job_id(), 3, &watcher);
  ASSERT_TRUE(watch_id.ok());
  EXPECT_EQ(*watch_id, 0);
  ASSERT_EQ(watcher.events().size(), all.size() - 3);
  EXPECT_EQ(watcher.events().front().sequence(), 4u);

  // The metrics: one succeeded job, its tokens counted, nothing training now.
  const JobStats::Snapshot stats = manager_->stats()->Get();
  EXPECT_EQ(stats.jobs_by_state[v1::JOB_STATE_SUCCEEDED], 1);
  EXPECT_EQ(stats.jobs_by_state[v1::JOB_STATE_RUNNING], 0);
  EXPECT_EQ(stats.jobs_by_state[v1::JOB_STATE_VALIDATING], 0);
  EXPECT_EQ(stats.trained_tokens, static_cast<double>(done.progress().tokens_seen()));
  EXPECT_FALSE(stats.training);
  EXPECT_EQ(stats.finished_by_state[v1::JOB_STATE_SUCCEEDED], 1);
  EXPECT_EQ(stats.finished_by_state[v1::JOB_STATE_FAILED], 0);
  EXPECT_GT(stats.last_progress_unix_s, 1e9);
  // A restarted manager counts the stored jobs (none finished in this process).
  manager_.reset();
  ASSERT_NO_FATAL_FAILURE(NewAdapterStore());
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  EXPECT_EQ(manager_->stats()->Get().jobs_by_state[v1::JOB_STATE_SUCCEEDED], 1);
  EXPECT_EQ(manager_->stats()->Get().finished_by_state[v1::JOB_STATE_SUCCEEDED], 0);
}

// A warm start continues from a registered adapter with its rank and targets; settings that
// contradict it are refused; the first loss is lower than a fresh start's.
TEST_F(JobManagerTest, WarmStartContinuesFromABaseAdapter) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  v1::CreateJobRequest first = Request("week1", Repeat(kMappingLine, 8), 20);
  first.mutable_hyperparameters()->set_rank(4);
  first.mutable_hyperparameters()->add_target_modules("q_proj");
  first.mutable_hyperparameters()->add_target_modules("v_proj");
  first.mutable_hyperparameters()->set_learning_rate(1e-2f);
  const v1::Job week1 = WaitDone(MustCreate(first).job_id());
  ASSERT_EQ(week1.state(), v1::JOB_STATE_SUCCEEDED) << week1.error();

  v1::CreateJobRequest second = Request("week2", Repeat(kMappingLine, 8), 3);
  second.set_base_adapter_id("week1");
  second.mutable_hyperparameters()->set_learning_rate(1e-2f);
  v1::CreateJobRequest conflicting = second;
  conflicting.mutable_hyperparameters()->set_rank(8);
  absl::StatusOr<v1::Job> refused = manager_->CreateJob(conflicting);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("hyperparameters.rank"));
  v1::CreateJobRequest unknown = second;
  unknown.set_base_adapter_id("nope");
  EXPECT_EQ(manager_->CreateJob(unknown).status().code(), absl::StatusCode::kNotFound);

  RecordingWatcher warm_events;
  const v1::Job week2 = MustCreate(second);
  ASSERT_TRUE(warm_events.Start(manager_.get(), week2.job_id()).ok());
  EXPECT_EQ(week2.hyperparameters().rank(), 4u);
  EXPECT_EQ(week2.hyperparameters().target_modules_size(), 2);
  EXPECT_EQ(week2.base_adapter_id(), "week1");
  const v1::Job warm = WaitDone(week2.job_id());
  ASSERT_EQ(warm.state(), v1::JOB_STATE_SUCCEEDED) << warm.error();

  RecordingWatcher cold_events;
  v1::CreateJobRequest fresh = Request("fresh", Repeat(kMappingLine, 8), 3);
  fresh.mutable_hyperparameters()->set_rank(4);
  fresh.mutable_hyperparameters()->add_target_modules("q_proj");
  fresh.mutable_hyperparameters()->add_target_modules("v_proj");
  const v1::Job cold = MustCreate(fresh);
  ASSERT_TRUE(cold_events.Start(manager_.get(), cold.job_id()).ok());
  ASSERT_EQ(WaitDone(cold.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  auto first_loss = [](const RecordingWatcher& w) {
    for (const v1::JobEvent& e : w.events()) {
      if (e.has_progress()) return e.progress().loss();
    }
    return -1.0f;
  };
  EXPECT_GT(first_loss(warm_events), 0.0f);
  EXPECT_LT(first_loss(warm_events), 0.5f * first_loss(cold_events));
  EXPECT_EQ(Generate("week2", "a"), "b c");
}

// Validation requests that cannot work are refused up front; over-long examples are truncated
// or dropped when asked, and counted.
TEST_F(JobManagerTest, ValidationAndOverlongRequests) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  auto code = [&](const v1::CreateJobRequest& r) { return manager_->CreateJob(r).status(); };
  v1::CreateJobRequest both = Request("v", Repeat(kMappingLine, 4), 2);
  both.mutable_validation()->set_inline_jsonl(kMappingLine);
  both.set_validation_split(0.25f);
  EXPECT_THAT(code(both).message(), HasSubstr("validation_split"));
  v1::CreateJobRequest split = Request("v", Repeat(kMappingLine, 4), 2);
  split.set_validation_split(0.9f);
  EXPECT_THAT(code(split).message(), HasSubstr("validation_split"));
  v1::CreateJobRequest patience = Request("v", Repeat(kMappingLine, 4), 2);
  patience.mutable_hyperparameters()->set_early_stopping_patience(2);
  EXPECT_THAT(code(patience).message(), HasSubstr("early_stopping_patience"));
  v1::CreateJobRequest bad_validation = Request("v", Repeat(kMappingLine, 4), 2);
  bad_validation.mutable_validation()->set_inline_jsonl("{nope\n");
  const v1::Job failed = WaitDone(MustCreate(bad_validation).job_id());
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.error(), HasSubstr("validation: dataset line 1"));

  const std::string long_line =
      R"({"prompt": "a", "completion": ")" + std::string(300, 'b') + R"("})";
  v1::CreateJobRequest truncate = Request("trunc", Repeat(kMappingLine, 3) + long_line + "\n", 2);
  truncate.mutable_hyperparameters()->set_overlong_examples(v1::OVERLONG_EXAMPLES_TRUNCATE);
  truncate.set_validation_split(0.25f);
  const v1::Job truncated = WaitDone(MustCreate(truncate).job_id());
  ASSERT_EQ(truncated.state(), v1::JOB_STATE_SUCCEEDED) << truncated.error();
  EXPECT_EQ(truncated.examples_truncated(), 1u);
  EXPECT_EQ(truncated.num_examples() + truncated.num_validation_examples(), 4u);
  EXPECT_EQ(truncated.num_validation_examples(), 1u);
  EXPECT_TRUE(truncated.has_last_eval());
  v1::CreateJobRequest drop = Request("drop", Repeat(kMappingLine, 3) + long_line + "\n", 2);
  drop.mutable_hyperparameters()->set_overlong_examples(v1::OVERLONG_EXAMPLES_DROP);
  const v1::Job dropped = WaitDone(MustCreate(drop).job_id());
  ASSERT_EQ(dropped.state(), v1::JOB_STATE_SUCCEEDED) << dropped.error();
  EXPECT_EQ(dropped.examples_dropped(), 1u);
  EXPECT_EQ(dropped.num_examples(), 3u);
}

// UnloadAdapter (store Unload + ForgetAdapter, as AdaptersService does) lasts across a restart;
// a later job that produces the same id registers it again.
TEST_F(JobManagerTest, UnloadedJobAdapterStaysUnloadedAfterRestart) {
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  const v1::Job first =
      WaitDone(MustCreate(Request("weekly", Repeat(kMappingLine, 2), 2)).job_id());
  ASSERT_EQ(first.state(), v1::JOB_STATE_SUCCEEDED) << first.error();
  const v1::Job other = WaitDone(MustCreate(Request("kept", Repeat(kMappingLine, 2), 2)).job_id());
  ASSERT_EQ(other.state(), v1::JOB_STATE_SUCCEEDED) << other.error();
  ASSERT_TRUE(store_->Unload("weekly").ok());
  ASSERT_TRUE(manager_->ForgetAdapter("weekly").ok());
  EXPECT_TRUE(manager_->GetJob(first.job_id())->adapter_unloaded());
  EXPECT_FALSE(manager_->GetJob(other.job_id())->adapter_unloaded());
  EXPECT_TRUE(manager_->ForgetAdapter("never-produced").ok());

  auto restart = [&] {
    manager_.reset();
    NewAdapterStore();
    StartManager(Options());
  };
  ASSERT_NO_FATAL_FAILURE(restart());
  EXPECT_EQ(store_->Get("weekly").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Get("kept").ok());

  // The id is free again: a new job may produce it, and that adapter is registered on restart.
  const v1::Job second =
      WaitDone(MustCreate(Request("weekly", Repeat(kMappingLine, 2), 2)).job_id());
  ASSERT_EQ(second.state(), v1::JOB_STATE_SUCCEEDED) << second.error();
  ASSERT_NO_FATAL_FAILURE(restart());
  absl::StatusOr<adapters::AdapterInfo> info = store_->Get("weekly");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_NE(info->source.find(second.job_id()), std::string::npos) << info->source;
}

// A micro-batch too big for the activation budget even when recomputed fails before training,
// naming the sizes and the flag, and the next job runs.
TEST_F(JobManagerTest, MicroBatchOverTheMemoryBudgetFailsBeforeTraining) {
  JobManagerOptions options = Options();
  options.train_activation_memory_bytes = int64_t{1} << 20;
  options.max_dataset_bytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(StartManager(options));
  std::string text(400, 'x');
  for (size_t i = 0; i < text.size(); i += 5) text[i] = ' ';
  v1::CreateJobRequest request =
      Request("too-big", Repeat(R"({"text": ")" + text + R"("})", 64), 2);
  request.mutable_hyperparameters()->set_max_seq_len(512);
  request.mutable_hyperparameters()->set_batch_size(64);
  const v1::Job done = WaitDone(MustCreate(request).job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(done.error(), HasSubstr("--train_activation_memory_mb"));
  EXPECT_EQ(done.progress().step(), 0u);
  const v1::Job small = WaitDone(MustCreate(Request("small", Repeat(kMappingLine, 2), 2)).job_id());
  EXPECT_EQ(small.state(), v1::JOB_STATE_SUCCEEDED) << small.error();
}

// A rank and target set whose LoRA state exceeds --train_adapter_memory_mb is refused at
// CreateJob with the sizes and the flag; no job is created, and a smaller job is accepted.
TEST_F(JobManagerTest, LoraStateOverItsBudgetIsRefusedAtCreate) {
  JobManagerOptions options = Options();
  v1::CreateJobRequest request = Request("huge-rank", Repeat(kMappingLine, 2), 2);
  request.mutable_hyperparameters()->set_rank(1024);
  request.mutable_hyperparameters()->add_target_modules("all-linear");
  finetune::LoraTrainConfig config;
  config.rank = 1024;
  config.targets.clear();
  for (int t = 0; t < kNumLoraTargets; ++t) config.targets.push_back(static_cast<LoraTarget>(t));
  const int64_t needed = finetune::LoraTrainingStateBytes(engine_->spec(), config);
  options.train_adapter_memory_bytes = needed - 1;
  ASSERT_NO_FATAL_FAILURE(StartManager(options));
  absl::StatusOr<v1::Job> refused = manager_->CreateJob(request);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("hyperparameters.rank"));
  EXPECT_THAT(refused.status().message(), HasSubstr("--train_adapter_memory_mb"));
  EXPECT_TRUE(manager_->ListJobs(v1::JOB_STATE_UNSPECIFIED, "", 10)->jobs.empty());
  request.mutable_hyperparameters()->set_rank(64);  // a 16th of the state: fits
  const v1::Job done = WaitDone(MustCreate(request).job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
}

// The data directory fills up while a job trains (a small tmpfs; mounting needs root, else the
// test is skipped). The job fails with an error naming the checkpoint and the cause, its last
// complete checkpoint stays intact, and the engine keeps serving.
TEST_F(JobManagerTest, DiskFullWhileCheckpointingFailsTheJobAndKeepsTheLastCheckpoint) {
  const std::string data = dir_.File("data");
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=8m") != 0) {
    GTEST_SKIP() << "mounting a tmpfs needs root: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{data};
  fs::create_directories(data + "/adapters");
  ASSERT_NO_FATAL_FAILURE(NewAdapterStore());
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  const std::string base_text = Generate("", "a");
  v1::CreateJobRequest request = Request("full", Repeat(kMappingLine, 8), 2000);
  request.mutable_hyperparameters()->set_checkpoint_every_steps(5);
  v1::Job job = MustCreate(request);
  RecordingWatcher watcher;
  ASSERT_TRUE(watcher.Start(manager_.get(), job.job_id()).ok());
  ASSERT_TRUE(watcher.WaitFor(
      [](const v1::JobEvent& e) { return e.has_checkpoint() && e.checkpoint().step() >= 10; },
      absl::Seconds(60)));
  {
    std::ofstream filler(data + "/filler", std::ios::binary);
    const std::string chunk(64 << 10, 'f');
    while (filler.write(chunk.data(), chunk.size())) {
    }
  }
  v1::Job done = WaitDone(job.job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(done.error(), HasSubstr("checkpoint"));
  EXPECT_THAT(done.error(), HasSubstr("space"));
  // The newest complete checkpoint is whole: its files are there and parse.
  ASSERT_FALSE(done.last_checkpoint().empty());
  const std::string checkpoint = data + "/" + done.last_checkpoint();
  EXPECT_GT(fs::file_size(checkpoint + "/adapter_model.safetensors"), 0u);
  EXPECT_TRUE(SafetensorsFile::Open(checkpoint + "/adapter_model.safetensors").ok());
  EXPECT_EQ(Generate("", "a"), base_text);  // still serving, and the same
  // Once there is room again, the next commit writes the failed job's record too: a restarted
  // manager reads FAILED from the store.
  fs::remove(data + "/filler");
  const v1::Job after = WaitDone(MustCreate(Request("after", Repeat(kMappingLine, 2), 2)).job_id());
  EXPECT_EQ(after.state(), v1::JOB_STATE_SUCCEEDED) << after.error();
  manager_.reset();
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  EXPECT_EQ(manager_->GetJob(job.job_id())->state(), v1::JOB_STATE_FAILED);
  manager_.reset();
}

// A finished job's memory goes back to the system: a job that peaks above 1 GB leaves RSS near
// what it was before it (measured after a first, small job, which brings in what any job keeps
// for the process's lifetime: code pages, thread pools). Without the trim and the scratch
// release RSS stays ~190% above; with them a fragmentation residue of 0-30% of this small
// process remains, varying from run to run, so the bound here is 35%, not the 5% goal.
TEST_F(JobManagerTest, MemoryGoesBackAfterAJob) {
  JobManagerOptions options = Options();
  options.max_dataset_bytes = 1 << 20;
  ASSERT_NO_FATAL_FAILURE(StartManager(options));
  auto run = [&](const std::string& id, int examples, int batch, int steps) {
    // Long examples: activations scale with batch x sequence length.
    std::string text(500, 'x');
    for (size_t i = 0; i < text.size(); i += 7) text[i] = ' ';
    v1::CreateJobRequest request =
        Request(id, Repeat(R"({"text": ")" + text + R"("})", examples), steps);
    request.mutable_hyperparameters()->set_max_seq_len(512);
    request.mutable_hyperparameters()->set_batch_size(batch);
    v1::Job done = WaitDone(MustCreate(request).job_id());
    ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  };
  ASSERT_NO_FATAL_FAILURE(run("warm-up", 2, 1, 1));
  const int64_t before = ResidentBytes();
  ASSERT_NO_FATAL_FAILURE(run("big", 64, 64, 2));
  const int64_t peak = PeakResidentBytes(), after = ResidentBytes();
  // The job really used memory well beyond the tolerance, or the check proves nothing.
  ASSERT_GT(peak - before, before / 5) << "before " << before << " peak " << peak;
  EXPECT_LE(after, before + before * 35 / 100) << "before " << before << " peak " << peak;
}

TEST_F(JobManagerTest, ResumesAfterRestartToTheSameResult) {
  const std::string jsonl =
      Repeat(kMappingLine, 4) + Repeat(R"({"prompt": "x", "completion": "y"})", 4);
  auto request = [&](const std::string& id) {
    v1::CreateJobRequest r = Request(id, jsonl, 300);
    r.mutable_hyperparameters()->set_checkpoint_every_steps(4);
    r.mutable_hyperparameters()->set_learning_rate(1e-3f);
    r.mutable_hyperparameters()->set_dropout(0.1f);
    r.mutable_hyperparameters()->set_batch_size(2);
    return r;
  };
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  // The reference: the same job, uninterrupted.
  v1::Job reference = MustCreate(request("straight"));
  ASSERT_EQ(WaitDone(reference.job_id()).state(), v1::JOB_STATE_SUCCEEDED);

  v1::Job job = MustCreate(request("resumed"));
  RecordingWatcher watcher;
  ASSERT_TRUE(watcher.Start(manager_.get(), job.job_id()).ok());
  ASSERT_TRUE(watcher.WaitFor(
      [](const v1::JobEvent& e) { return e.has_progress() && e.progress().step() >= 10; },
      absl::Seconds(60)));
  manager_->Shutdown();  // as on SIGTERM
  EXPECT_EQ(watcher.end().code(), absl::StatusCode::kUnavailable);
  v1::Job stopped = *manager_->GetJob(job.job_id());
  ASSERT_EQ(stopped.state(), v1::JOB_STATE_RUNNING);  // not cancelled
  ASSERT_LT(stopped.progress().step(), 300u) << "the job finished before the restart";
  ASSERT_FALSE(stopped.last_checkpoint().empty());
  const std::string checkpoint = stopped.last_checkpoint();
  const uint64_t checkpoint_step = std::stoull(checkpoint.substr(checkpoint.rfind('-') + 1));
  manager_.reset();

  NewAdapterStore();  // a restarted daemon starts with an empty registry
  // A crash mid-save leaves a temporary directory behind; it is ignored.
  fs::create_directories(dir_.File("data/jobs/" + job.job_id() + "/checkpoints/step-00009999.tmp"));
  ASSERT_NO_FATAL_FAILURE(StartManager(Options()));
  EXPECT_TRUE(store_->Get("straight").ok());  // succeeded jobs' adapters are registered again
  RecordingWatcher after;
  ASSERT_TRUE(after.Start(manager_.get(), job.job_id()).ok());
  v1::Job done = WaitDone(job.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.error();
  EXPECT_EQ(done.progress().step(), 300u);
  uint64_t first_step = 0;
  for (const v1::JobEvent& e : after.events()) {
    if (e.has_progress()) {
      first_step = e.progress().step();
      break;
    }
  }
  EXPECT_EQ(first_step, checkpoint_step + 1);  // continued, not from 0
  EXPECT_FALSE(
      fs::exists(dir_.File("data/jobs/" + job.job_id() + "/checkpoints/step-00009999.tmp")));

  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string a = read(AdapterDir(reference.job_id()) + "/adapter_model.safetensors");
  const std::string b = read(AdapterDir(job.job_id()) + "/adapter_model.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "the resumed run's adapter differs from the uninterrupted run's";
}

}  // namespace
}  // namespace lorad::server
