#include "server/metrics/job_metrics.h"

#include <string>
#include <utility>

#include "server/jobs/job_state_name.h"
#include "server/metrics/metric_families.h"

namespace lorad::server {

std::vector<prometheus::MetricFamily> JobMetricsCollector::Collect() const {
  using prometheus::MetricType;
  const JobStats::Snapshot s = stats_->Get();
  std::vector<prometheus::MetricFamily> families;
  families.push_back(
      MetricFamilyOf("lorad_finetune_jobs", "Fine-tune jobs, by state.", MetricType::Gauge));
  for (int state = v1::JOB_STATE_VALIDATING; state <= v1::JOB_STATE_CANCELLED; ++state) {
    AddSample(families.back(), static_cast<double>(s.jobs_by_state[state]),
              {{"state", JobStateName(static_cast<v1::JobState>(state))}});
  }
  families.push_back(MetricFamilyOf(
      "lorad_finetune_trained_tokens_total",
      "Tokens trained on by fine-tune jobs since the process started.", MetricType::Counter));
  AddSample(families.back(), s.trained_tokens);
  families.push_back(MetricFamilyOf("lorad_finetune_jobs_finished_total",
                                    "Fine-tune jobs that ended since the process started, by "
                                    "final state (succeeded, failed, cancelled).",
                                    MetricType::Counter));
  for (v1::JobState state :
       {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    AddSample(families.back(), static_cast<double>(s.finished_by_state[state]),
              {{"state", JobStateName(state)}});
  }
  if (s.jobs_by_state[v1::JOB_STATE_RUNNING] > 0 && s.last_progress_unix_s > 0) {
    families.push_back(MetricFamilyOf(
        "lorad_finetune_last_progress_timestamp_seconds",
        "Unix time the running job last showed progress (entered RUNNING or finished a step); "
        "time() minus it is how long the job has been stalled.",
        MetricType::Gauge));
    AddSample(families.back(), s.last_progress_unix_s);
  }
  if (!s.training) return families;
  auto gauge = [&](const char* name, const char* help, double value) {
    families.push_back(MetricFamilyOf(name, help, MetricType::Gauge));
    AddSample(families.back(), value);
  };
  gauge("lorad_finetune_tokens_per_second", "Training throughput of the running job.",
        s.progress.tokens_per_second());
  gauge("lorad_finetune_loss", "Training loss of the running job's last step (nats per token).",
        s.progress.loss());
  gauge("lorad_finetune_step", "Optimizer steps the running job has completed.",
        static_cast<double>(s.progress.step()));
  gauge("lorad_finetune_total_steps", "Optimizer steps the running job will run.",
        static_cast<double>(s.progress.total_steps()));
  if (s.has_eval) {
    gauge("lorad_finetune_eval_loss", "The running job's latest validation loss.", s.eval_loss);
  }
  return families;
}

}  // namespace lorad::server
