// Fine-tune jobs on a real lorad (tiny model): a job killed with SIGKILL after a checkpoint
// resumes from it when the daemon restarts and succeeds, and its adapter is served; loractl jobs
// create --watch / list / get / cancel / watch.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "lorad/v1/finetuning.grpc.pb.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"
#include "tests/server/http_get.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;

std::string MappingJsonl() {
  std::string out;
  for (int i = 0; i < 8; ++i) out += "{\"prompt\": \"a\", \"completion\": \"b c\"}\n";
  return out;
}

std::vector<std::string> Args(const std::string& data_dir) {
  return {"--data_dir=" + data_dir, "--checkpoint_every_steps=20", "--train_threads=1"};
}

grpc::Status GetJob(v1::FineTuning::Stub& stub, const std::string& id, v1::Job* job) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetJobRequest request;
  request.set_job_id(id);
  v1::GetJobResponse response;
  grpc::Status status = stub.GetJob(&context, request, &response);
  *job = response.job();
  return status;
}

TEST(FinetuneIntegrationTest, KilledJobResumesFromItsCheckpoint) {
  const std::string data_dir = TestDir() + "/ft_kill";
  std::filesystem::create_directories(data_dir);
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad(Args(data_dir), &lorad));
  auto stub = v1::FineTuning::NewStub(lorad.Channel());

  v1::CreateJobRequest request;
  request.set_adapter_id("resumed");
  request.mutable_dataset()->set_inline_jsonl(MappingJsonl());
  request.mutable_hyperparameters()->set_max_steps(600);
  request.mutable_hyperparameters()->set_learning_rate(1e-2f);
  request.mutable_hyperparameters()->set_max_seq_len(32);
  std::string job_id;
  {
    grpc::ClientContext context;
    v1::CreateJobResponse response;
    grpc::Status status = stub->CreateJob(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    job_id = response.job().job_id();
  }

  // Wait for the checkpoint of step 100, then kill the daemon without warning. (A restart from
  // step 0 could not reach step 100 before the watch below begins.)
  auto checkpoint_step = [](const v1::Job& j) -> uint64_t {
    const std::string& path = j.last_checkpoint();
    return path.empty() ? 0 : std::stoull(path.substr(path.rfind('-') + 1));
  };
  v1::Job job;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(GetJob(*stub, job_id, &job).ok());
    const bool unfinished = job.state() == v1::JOB_STATE_VALIDATING ||
                            job.state() == v1::JOB_STATE_QUEUED ||
                            job.state() == v1::JOB_STATE_RUNNING;
    if (checkpoint_step(job) >= 100 || !unfinished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  lorad.process->Signal(SIGKILL);
  ASSERT_TRUE(lorad.process->Wait(10000).ok());
  ASSERT_EQ(job.state(), v1::JOB_STATE_RUNNING) << job.error();
  const uint64_t resume_from = checkpoint_step(job);
  ASSERT_GE(resume_from, 100u);
  ASSERT_LT(job.progress().step(), 600u) << "the job finished before the kill; make it longer";

  RunningLorad restarted;
  ASSERT_NO_FATAL_FAILURE(StartLorad(Args(data_dir), &restarted));
  stub = v1::FineTuning::NewStub(restarted.Channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::WatchJobRequest watch;
  watch.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub->WatchJob(&context, watch);
  v1::JobEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.state_change().previous(), v1::JOB_STATE_UNSPECIFIED);
  uint64_t first_step = 0;
  v1::JobState last_state = event.state_change().state();
  while (reader->Read(&event)) {
    if (event.has_progress() && first_step == 0) first_step = event.progress().step();
    if (event.has_state_change()) last_state = event.state_change().state();
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(last_state, v1::JOB_STATE_SUCCEEDED);
  // Training continued after the checkpoint, not from step 1. (When the restarted job was
  // already past its first step before the watch began, first_step is later still.)
  EXPECT_GT(first_step, resume_from);

  ASSERT_TRUE(GetJob(*stub, job_id, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.progress().step(), 600u);

  auto inference = v1::Inference::NewStub(restarted.Channel());
  v1::GenerateRequest generate = GreedyRequest("a", 3);
  generate.set_adapter_id("resumed");
  v1::GenerateResponse response;
  status = RunUnary(*inference, generate, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "b c");

  // Unloading the job's adapter lasts: the next start does not register it again.
  {
    auto adapters = v1::Adapters::NewStub(restarted.Channel());
    grpc::ClientContext unload_context;
    v1::UnloadAdapterRequest unload;
    unload.set_adapter_id("resumed");
    v1::UnloadAdapterResponse unloaded;
    status = adapters->UnloadAdapter(&unload_context, unload, &unloaded);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_NO_FATAL_FAILURE(StopLorad(&restarted));
  RunningLorad third;
  ASSERT_NO_FATAL_FAILURE(StartLorad(Args(data_dir), &third));
  auto adapters = v1::Adapters::NewStub(third.Channel());
  grpc::ClientContext get_context;
  v1::GetAdapterRequest get;
  get.set_adapter_id("resumed");
  v1::GetAdapterResponse got;
  status = adapters->GetAdapter(&get_context, get, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  stub = v1::FineTuning::NewStub(third.Channel());
  ASSERT_TRUE(GetJob(*stub, job_id, &job).ok());
  EXPECT_TRUE(job.adapter_unloaded());
  EXPECT_NO_FATAL_FAILURE(StopLorad(&third));
}

// Creates the job every trial of KillsAtRandomPointsResumeToTheSameAdapter runs; returns its id.
std::string CreateDropoutJob(v1::FineTuning::Stub& stub, const std::string& adapter_id) {
  v1::CreateJobRequest request;
  request.set_adapter_id(adapter_id);
  std::string jsonl = MappingJsonl();
  for (int i = 0; i < 8; ++i) jsonl += "{\"prompt\": \"x\", \"completion\": \"y z\"}\n";
  request.mutable_dataset()->set_inline_jsonl(jsonl);
  v1::Hyperparameters* hp = request.mutable_hyperparameters();
  hp->set_max_steps(400);
  hp->set_learning_rate(1e-3f);
  hp->set_dropout(0.1f);  // the RNG state must survive the restarts too
  hp->set_batch_size(3);
  hp->set_max_seq_len(32);
  hp->set_seed(5);
  hp->set_checkpoint_every_steps(10);
  grpc::ClientContext context;
  v1::CreateJobResponse response;
  grpc::Status status = stub.CreateJob(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.job().job_id();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// kill -9 at ten random moments of one job (each restart resumes from the newest checkpoint):
// the job succeeds with an adapter bitwise equal to an uninterrupted run's with the same seed.
TEST(FinetuneIntegrationTest, KillsAtRandomPointsResumeToTheSameAdapter) {
  auto weights_of = [](const std::string& data_dir, const std::string& job_id) {
    return ReadAll(data_dir + "/adapters/finetuned/" + job_id + "/adapter_model.safetensors");
  };
  auto wait_done = [](v1::FineTuning::Stub& stub, const std::string& job_id, int seconds) {
    v1::Job job;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!GetJob(stub, job_id, &job).ok()) break;
      if (job.state() == v1::JOB_STATE_SUCCEEDED || job.state() == v1::JOB_STATE_FAILED) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return job;
  };

  const std::string reference_dir = TestDir() + "/ft_kill_reference";
  std::filesystem::create_directories(reference_dir);
  std::string reference_job;
  {
    RunningLorad lorad;
    ASSERT_NO_FATAL_FAILURE(StartLorad(Args(reference_dir), &lorad));
    auto stub = v1::FineTuning::NewStub(lorad.Channel());
    reference_job = CreateDropoutJob(*stub, "same");
    ASSERT_EQ(wait_done(*stub, reference_job, 120).state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
  }
  const std::string reference = weights_of(reference_dir, reference_job);
  ASSERT_FALSE(reference.empty());

  const std::string data_dir = TestDir() + "/ft_kill_ten";
  std::filesystem::create_directories(data_dir);
  std::mt19937 random(20261203);
  std::string job_id;
  std::vector<uint64_t> killed_at;
  v1::Job job;
  for (int trial = 0; trial <= 10; ++trial) {
    RunningLorad lorad;
    ASSERT_NO_FATAL_FAILURE(StartLorad(Args(data_dir), &lorad));
    auto stub = v1::FineTuning::NewStub(lorad.Channel());
    if (job_id.empty()) job_id = CreateDropoutJob(*stub, "same");
    if (trial == 10) {  // the last start runs to the end
      job = wait_done(*stub, job_id, 120);
      EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
      break;
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 400)(random)));
    ASSERT_TRUE(GetJob(*stub, job_id, &job).ok());
    lorad.process->Signal(SIGKILL);
    ASSERT_TRUE(lorad.process->Wait(10000).ok());
    killed_at.push_back(job.progress().step());
  }
  std::string points;
  for (uint64_t step : killed_at) absl::StrAppend(&points, step, " ");
  std::printf("killed at steps: %s\n", points.c_str());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << "; killed at steps " << points;
  EXPECT_EQ(job.progress().step(), 400u);
  EXPECT_TRUE(weights_of(data_dir, job_id) == reference)
      << "the adapter after kills at steps " << points << "differs from the uninterrupted run's";
  // Most kills landed while it trained (not all before the first step or after the last).
  EXPECT_GE(std::count_if(killed_at.begin(), killed_at.end(),
                          [](uint64_t s) { return s > 0 && s < 400; }),
            5)
      << points;
}

TEST(FinetuneIntegrationTest, Loractl) {
  const std::string data_dir = TestDir() + "/ft_loractl";
  std::filesystem::create_directories(data_dir);
  const std::string dataset = TestDir() + "/mapping.jsonl";
  std::ofstream(dataset) << MappingJsonl();
  const std::string bad = TestDir() + "/bad.jsonl";
  std::ofstream(bad) << "{\"prompt\": \"a\", \"completion\": \"b\"}\nnot json\n";
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad(Args(data_dir), &lorad));
  const std::string addr = "--addr=" + lorad.grpc_address;

  absl::StatusOr<RunResult> run = RunToCompletion(
      kLoractl,
      {addr, "jobs", "create", "--adapter_id=cli", "--dataset=" + dataset, "--max_steps=10",
       "--rank=4", "--target_modules=q_proj,v_proj", "--lr_scheduler=linear", "--watch"},
      60000);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->stdout_text << run->stderr_text;
  EXPECT_THAT(run->stdout_text, HasSubstr("step 10/10"));
  EXPECT_THAT(run->stdout_text, HasSubstr("checkpoint: step 10"));
  EXPECT_THAT(run->stdout_text, HasSubstr("state: succeeded"));
  const std::string first_line = run->stdout_text.substr(0, run->stdout_text.find('\n'));
  ASSERT_THAT(first_line, ::testing::StartsWith("job_id: job-"));
  const std::string job_id = first_line.substr(std::string("job_id: ").size());

  run = RunToCompletion(kLoractl, {addr, "jobs", "get", job_id}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_THAT(run->stdout_text, HasSubstr("state: succeeded"));
  EXPECT_THAT(run->stdout_text, HasSubstr("rank: 4"));
  EXPECT_THAT(run->stdout_text, HasSubstr("lr_scheduler: linear"));
  EXPECT_THAT(run->stdout_text, HasSubstr("adapter_source: finetuned/" + job_id));

  // A bad dataset: the watch reports the failure with the line and exits non-zero.
  run = RunToCompletion(kLoractl,
                        {addr, "jobs", "create", "--adapter_id=cli-bad", "--dataset=" + bad,
                         "--max_steps=10", "--watch"},
                        60000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 1);
  EXPECT_THAT(run->stdout_text, HasSubstr("state: failed"));
  EXPECT_THAT(run->stderr_text, HasSubstr("line 2"));

  run = RunToCompletion(kLoractl, {addr, "jobs", "list", "--state=succeeded"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_THAT(run->stdout_text, HasSubstr(job_id + "\tsucceeded\tcli\t10/10"));
  EXPECT_THAT(run->stdout_text, ::testing::Not(HasSubstr("cli-bad")));

  run = RunToCompletion(kLoractl, {addr, "jobs", "watch", job_id}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0);
  EXPECT_EQ(run->stdout_text, "state: succeeded\n");

  run = RunToCompletion(kLoractl, {addr, "jobs", "cancel", job_id}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 1);
  EXPECT_THAT(run->stderr_text, HasSubstr("FAILED_PRECONDITION"));

  run = RunToCompletion(kLoractl, {addr, "jobs", "create", "--adapter_id=x"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 2);  // usage: no dataset

  run = RunToCompletion(kLoractl, {addr, "jobs", "get", "job-unknown"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 1);
  EXPECT_THAT(run->stderr_text, HasSubstr("NOT_FOUND"));

  // The weekly retrain: a warm start from "cli" on a held-out split with early stopping, its
  // checkpoints with eval losses, one published, its event log, and the job metrics.
  run = RunToCompletion(
      kLoractl,
      {addr, "jobs", "create", "--adapter_id=cli-week2", "--dataset=" + dataset, "--max_steps=12",
       "--base_adapter=cli", "--validation_split=0.25", "--eval_every_steps=2",
       "--checkpoint_every_steps=4", "--early_stopping_patience=5", "--watch"},
      60000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->stdout_text << run->stderr_text;
  EXPECT_THAT(run->stdout_text, HasSubstr("eval_loss "));
  const std::string week2 =
      run->stdout_text.substr(8, run->stdout_text.find('\n') - 8);  // after "job_id: "
  run = RunToCompletion(kLoractl, {addr, "jobs", "get", week2}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_THAT(run->stdout_text, HasSubstr("base_adapter_id: cli\n"));
  EXPECT_THAT(run->stdout_text, HasSubstr("rank: 4\n"));  // the base adapter's
  EXPECT_THAT(run->stdout_text, HasSubstr("best_eval_loss: "));
  EXPECT_THAT(run->stdout_text, HasSubstr("published_step: "));
  run = RunToCompletion(kLoractl, {addr, "jobs", "checkpoints", week2}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->stderr_text;
  EXPECT_THAT(run->stdout_text, ::testing::StartsWith("12\t"));
  EXPECT_THAT(run->stdout_text, HasSubstr("\tbest"));
  run = RunToCompletion(kLoractl, {addr, "jobs", "publish", week2, "12", "cli-week2-last"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->stderr_text;
  EXPECT_THAT(run->stdout_text, HasSubstr("adapter_source: finetuned/" + week2 + "-step-12"));
  run = RunToCompletion(kLoractl, {addr, "generate", "--adapter=cli-week2-last", "a"}, 20000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->stderr_text;
  run = RunToCompletion(kLoractl, {addr, "jobs", "events", week2, "--after=2"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->stderr_text;
  EXPECT_THAT(run->stdout_text, ::testing::StartsWith("3\t"));
  EXPECT_THAT(run->stdout_text, HasSubstr("grad_norm"));
  EXPECT_THAT(run->stdout_text, HasSubstr("state succeeded"));
  run = RunToCompletion(kLoractl, {addr, "jobs", "watch", week2, "--after=1000"}, 10000);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->stdout_text, "");  // nothing after the last event; the watch ends
  absl::StatusOr<HttpResponse> metrics = HttpGet(lorad.metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(metrics->body, HasSubstr("lorad_finetune_jobs{state=\"succeeded\"} 2"));
  EXPECT_THAT(metrics->body, HasSubstr("lorad_finetune_trained_tokens_total "));
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

}  // namespace
}  // namespace lorad::testing
