// A fine-tune job's run in the daemon: finetune::RunTraining (the training run itself: resume,
// evaluation, checkpoints, early stopping) mapped to lorad.v1 progress and checkpoint messages,
// then publishing: a checkpoint's PEFT files are copied into a temporary directory under the
// adapter root, renamed into place (no half-written adapter is ever visible) and registered with
// the adapter store.
// Thread-safety: RunTrainingJob runs on the caller's thread; the listener is called from it.
// PublishCheckpoint is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/train_config.h"
#include "engine/finetune/training_run.h"
#include "lorad/v1/finetuning.pb.h"
#include "server/jobs/job_gate.h"

namespace lorad {
struct ModelWeights;
}  // namespace lorad

namespace lorad::adapters {
class AdapterStore;
}  // namespace lorad::adapters

namespace lorad::server {

// What a run needs besides the job itself.
struct JobRunEnv {
  const ModelWeights* weights = nullptr;       // the frozen base (and its spec)
  adapters::AdapterStore* adapters = nullptr;  // registers the result
  std::string data_dir;                        // checkpoint paths are reported relative to it
  std::string adapter_root;                    // the adapter store's root
  std::string base_model_name;                 // base_model_name_or_path of adapter_config.json
};

// One job to run.
struct JobRunSpec {
  std::string job_id;
  std::string adapter_id;
  std::string job_dir;  // <data_dir>/jobs/<job_id>; checkpoints go to <job_dir>/checkpoints
  finetune::LoraTrainConfig config;
  finetune::TrainingRunOptions run;  // checkpoints_dir is set from job_dir
};

// Called by the run on its thread.
class JobRunListener {
 public:
  virtual ~JobRunListener() = default;
  // An optimizer step finished (with its evaluation, when it was evaluated).
  virtual void OnProgress(const v1::TrainingProgress& progress) = 0;
  // A checkpoint was written (path relative to the data directory).
  virtual void OnCheckpoint(const v1::CheckpointWritten& checkpoint) = 0;
};

struct JobRunResult {
  enum class Outcome {
    kSucceeded,  // adapter_source is registered
    kFailed,     // error says why
    kCancelled,  // the gate was cancelled; no adapter was written
    kStopped,    // the gate was stopped (shutdown); resume later from the last checkpoint
  };
  Outcome outcome = Outcome::kFailed;
  absl::Status error;
  std::string adapter_source;  // relative to the adapter root
  int64_t published_step = 0;  // the checkpoint published: the best by eval loss, else the last
  bool stopped_early = false;
};

// Trains `spec` on `train`, evaluating on `eval` (may be empty), under `gate`. Never throws.
JobRunResult RunTrainingJob(const JobRunSpec& spec, std::vector<finetune::TrainExample> train,
                            std::vector<finetune::TrainExample> eval, JobGate* gate,
                            const JobRunEnv& env, JobRunListener* listener);

// Publishes the checkpoint of `step` under `job_dir` as the adapter directory `source` (relative
// to the adapter root; reused when a previous call already renamed it into place) and registers
// it as `adapter_id`. NOT_FOUND when the job has no such checkpoint; ALREADY_EXISTS when
// `adapter_id` is registered; INTERNAL when files cannot be written.
absl::Status PublishCheckpoint(const JobRunEnv& env, const std::string& job_dir, int64_t step,
                               const std::string& source, const std::string& adapter_id);

// The adapter directory a job publishes, relative to the adapter root ("finetuned/<job_id>"),
// and the one PublishCheckpoint uses for a chosen step ("finetuned/<job_id>-step-<step>").
std::string JobAdapterSource(const std::string& job_id);
std::string CheckpointAdapterSource(const std::string& job_id, int64_t step);

// v1 messages of the run's records. `data_dir`: paths are reported relative to it.
v1::Evaluation ToProtoEvaluation(int64_t step, const finetune::EvalResult& eval);
v1::CheckpointWritten ToProtoCheckpoint(const finetune::CheckpointRecord& record,
                                        const std::string& data_dir);

}  // namespace lorad::server
