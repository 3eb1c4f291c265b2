// Training of one fine-tune job on the resident base: restores the newest checkpoint, runs
// optimizer steps until total_steps (reporting progress and checkpoints), then publishes the
// adapter: writes it as a PEFT directory into a temporary directory under the adapter root,
// renames it into place (no half-written adapter is ever visible) and registers it with the
// adapter store.
// Thread-safety: RunTrainingJob runs on the caller's thread; the listener is called from it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/train_config.h"
#include "lorad/v1/finetuning.pb.h"
#include "server/job_gate.h"

namespace lorad {
struct ModelWeights;
struct ModelSpec;
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
  int32_t keep_checkpoints = 2;                // newest checkpoints kept
};

// One job to run.
struct JobRunSpec {
  std::string job_id;
  std::string adapter_id;
  std::string job_dir;  // <data_dir>/jobs/<job_id>; checkpoints go to <job_dir>/checkpoints
  finetune::LoraTrainConfig config;
  int64_t checkpoint_every_steps = 50;
};

// Called by the run on its thread.
class JobRunListener {
 public:
  virtual ~JobRunListener() = default;
  // Training (re)starts at optimizer step `step` (> 0 after a checkpoint was restored). Returns
  // the tokens trained on up to that step (for TrainingProgress.tokens_seen).
  virtual int64_t OnTrainingStart(int64_t step) = 0;
  // An optimizer step finished.
  virtual void OnProgress(const v1::TrainingProgress& progress) = 0;
  // A checkpoint of `step` was written to `path` (relative to the data directory).
  virtual void OnCheckpoint(int64_t step, const std::string& path) = 0;
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
};

// Trains `spec` on `examples` under `gate`. Never throws.
JobRunResult RunTrainingJob(const JobRunSpec& spec, std::vector<finetune::TrainExample> examples,
                            JobGate* gate, const JobRunEnv& env, JobRunListener* listener);

// The adapter directory a job publishes, relative to the adapter root ("finetuned/<job_id>").
std::string JobAdapterSource(const std::string& job_id);

}  // namespace lorad::server
