// The durable record of fine-tune jobs: an embedded SQLite database (WAL journal, synchronous
// FULL, so a committed write survives a crash of the process or the machine). Table `jobs` holds
// one row per job (the serialized lorad.v1.Job, which carries the effective hyper-parameters,
// plus the dataset location needed to resume it); table `events` holds each job's JobEvents in
// order.
// Thread-safety: thread-safe (one connection behind a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/finetuning.pb.h"

struct sqlite3;

namespace lorad::server {

// A job as stored: the public Job plus what the server needs to run or resume it.
struct JobRecord {
  v1::Job job;
  // The job's JSONL dataset, relative to the data directory (e.g. "jobs/<id>/dataset.jsonl").
  std::string dataset_path;
};

// One page of List().
struct JobPage {
  std::vector<v1::Job> jobs;    // newest first (create_time, then job_id, descending)
  std::string next_page_token;  // empty on the last page
  int64_t total_size = 0;       // jobs matching the filter across all pages
};

// One page of Events().
struct EventPage {
  std::vector<v1::JobEvent> events;
  bool has_more = false;  // events after the last one returned exist
};

class JobStore {
 public:
  // Opens (creating if missing) the database file `path`; its directory must exist.
  // INTERNAL / FAILED_PRECONDITION with SQLite's message when it cannot be opened or is not a
  // job database.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts a new job. ALREADY_EXISTS if its job_id is taken; INVALID_ARGUMENT for an empty id.
  absl::Status Create(const JobRecord& record);
  // Replaces the stored Job (the dataset path is kept). NOT_FOUND for an unknown job_id.
  absl::Status Update(const v1::Job& job);
  // Update(job) and AppendEvent(event) in one transaction; returns the event's sequence number.
  absl::StatusOr<int64_t> UpdateWithEvent(const v1::Job& job, const v1::JobEvent& event);
  // NOT_FOUND naming the id when unknown.
  absl::StatusOr<JobRecord> Get(const std::string& job_id) const;
  // Jobs in `state` (JOB_STATE_UNSPECIFIED: all), newest first. `page_size` 0 means 100 and is
  // clamped to 1000. `page_token` is empty or a previous page's next_page_token
  // (INVALID_ARGUMENT otherwise).
  absl::StatusOr<JobPage> List(v1::JobState state, const std::string& page_token,
                               int32_t page_size) const;
  // Every job in one of `states`, oldest first (daemon start: jobs to resume).
  absl::StatusOr<std::vector<JobRecord>> ListInStates(
      const std::vector<v1::JobState>& states) const;

  // Appends `event` to its job's (event.job_id()) event log; returns its sequence number
  // (1, 2, ... per job). NOT_FOUND for an unknown job.
  absl::StatusOr<int64_t> AppendEvent(const v1::JobEvent& event);
  // The job's events with sequence number > `after`, in order, at most `limit` of them (0: all),
  // each with JobEvent.sequence set. NOT_FOUND for an unknown job.
  absl::StatusOr<EventPage> Events(const std::string& job_id, int64_t after = 0,
                                   int32_t limit = 0) const;

 private:
  explicit JobStore(sqlite3* db) : db_(db) {}
  absl::Status UpdateLocked(const v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> AppendEventLocked(const v1::JobEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace lorad::server
