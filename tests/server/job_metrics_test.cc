// JobStats and JobMetricsCollector: job counts by state, jobs finished in this process, and the
// progress timestamp the "job stalled" alert reads, checked through a strict parse of the text
// exposition.
#include "server/metrics/job_metrics.h"

#include <memory>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/jobs/job_stats.h"
#include "tests/server/prom_text.h"

namespace lorad::server {
namespace {

std::map<std::string, testing::PromFamily> Scrape(const JobMetricsCollector& collector) {
  const std::string text = prometheus::TextSerializer().Serialize(collector.Collect());
  absl::StatusOr<std::map<std::string, testing::PromFamily>> families =
      testing::ParsePromText(text);
  EXPECT_TRUE(families.ok()) << families.status() << "\n" << text;
  return families.ok() ? *families : std::map<std::string, testing::PromFamily>();
}

double Sample(const testing::PromFamily& family, const std::string& state) {
  for (const testing::PromSample& sample : family.samples) {
    auto it = sample.labels.find("state");
    if (state.empty() ? it == sample.labels.end()
                      : it != sample.labels.end() && it->second == state) {
      return sample.value;
    }
  }
  ADD_FAILURE() << "no sample for state '" << state << "'";
  return -1;
}

TEST(JobMetricsTest, CountsStatesFinishedJobsAndTheLastProgressTime) {
  double now = 1000;
  auto stats = std::make_shared<JobStats>([&now] { return now; });
  JobMetricsCollector collector(stats);
  stats->AddJobs(v1::JOB_STATE_SUCCEEDED, 2);  // stored jobs: not finished in this process

  stats->Transition(v1::JOB_STATE_UNSPECIFIED, v1::JOB_STATE_VALIDATING);
  stats->Transition(v1::JOB_STATE_VALIDATING, v1::JOB_STATE_QUEUED);
  auto families = Scrape(collector);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs"], "queued"), 1);
  EXPECT_EQ(families.count("lorad_finetune_last_progress_timestamp_seconds"), 0u);  // none runs

  now = 1010;
  stats->Transition(v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING);
  families = Scrape(collector);
  EXPECT_EQ(Sample(families["lorad_finetune_last_progress_timestamp_seconds"], ""), 1010);
  now = 1100;
  v1::TrainingProgress progress;
  progress.set_step(1);
  progress.set_loss(2.5f);
  stats->Progress(progress, 64);
  families = Scrape(collector);
  EXPECT_EQ(Sample(families["lorad_finetune_last_progress_timestamp_seconds"], ""), 1100);
  EXPECT_EQ(Sample(families["lorad_finetune_loss"], ""), 2.5);
  EXPECT_EQ(Sample(families["lorad_finetune_trained_tokens_total"], ""), 64);

  now = 1200;
  stats->TrainingEnded();
  stats->Transition(v1::JOB_STATE_RUNNING, v1::JOB_STATE_FAILED);
  families = Scrape(collector);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs"], "failed"), 1);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs"], "succeeded"), 2);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs_finished_total"], "failed"), 1);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs_finished_total"], "succeeded"), 0);
  EXPECT_EQ(Sample(families["lorad_finetune_jobs_finished_total"], "cancelled"), 0);
  EXPECT_EQ(families["lorad_finetune_jobs_finished_total"].type, "counter");
  EXPECT_EQ(families.count("lorad_finetune_last_progress_timestamp_seconds"), 0u);
  EXPECT_EQ(families.count("lorad_finetune_loss"), 0u);
}

}  // namespace
}  // namespace lorad::server
