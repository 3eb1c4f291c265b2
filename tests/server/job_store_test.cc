// JobStore: create/get/update, events, listing with state filter and pagination (newest first),
// errors, and that everything survives closing and reopening the database.
#include "server/jobs/job_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

JobRecord MakeRecord(const std::string& id, int64_t create_s, v1::JobState state) {
  JobRecord record;
  record.job.set_job_id(id);
  record.job.set_state(state);
  record.job.set_adapter_id("out-" + id);
  record.job.mutable_create_time()->set_seconds(create_s);
  record.job.mutable_hyperparameters()->set_rank(4);
  record.job.mutable_hyperparameters()->set_max_steps(7);
  record.dataset_path = "jobs/" + id + "/dataset.jsonl";
  return record;
}

std::vector<std::string> Ids(const std::vector<v1::Job>& jobs) {
  std::vector<std::string> ids;
  for (const v1::Job& job : jobs) ids.push_back(job.job_id());
  return ids;
}

class JobStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobStore> Open() {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_.File("jobs.db"));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  lorad::testing::ScopedTempDir dir_;
};

TEST_F(JobStoreTest, CreateGetUpdate) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Create(MakeRecord("job-a", 10, v1::JOB_STATE_VALIDATING)).ok());
  absl::StatusOr<JobRecord> got = store->Get("job-a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->job.adapter_id(), "out-job-a");
  EXPECT_EQ(got->job.hyperparameters().max_steps(), 7u);
  EXPECT_EQ(got->dataset_path, "jobs/job-a/dataset.jsonl");

  v1::Job job = got->job;
  job.set_state(v1::JOB_STATE_RUNNING);
  job.mutable_progress()->set_step(3);
  ASSERT_TRUE(store->Update(job).ok());
  got = store->Get("job-a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(got->job.progress().step(), 3u);
  EXPECT_EQ(got->dataset_path, "jobs/job-a/dataset.jsonl");  // kept by Update
}

TEST_F(JobStoreTest, Errors) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Create(MakeRecord("job-a", 10, v1::JOB_STATE_QUEUED)).ok());
  EXPECT_EQ(store->Create(MakeRecord("job-a", 11, v1::JOB_STATE_QUEUED)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->Create(MakeRecord("", 11, v1::JOB_STATE_QUEUED)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get("job-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store->Get("job-x").status().message(), HasSubstr("job-x"));
  v1::Job missing;
  missing.set_job_id("job-x");
  EXPECT_EQ(store->Update(missing).code(), absl::StatusCode::kNotFound);
  v1::JobEvent event;
  event.set_job_id("job-x");
  EXPECT_EQ(store->AppendEvent(event).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Events("job-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->List(v1::JOB_STATE_UNSPECIFIED, "garbage!", 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, EventsInOrderPerJob) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Create(MakeRecord("job-a", 10, v1::JOB_STATE_RUNNING)).ok());
  ASSERT_TRUE(store->Create(MakeRecord("job-b", 11, v1::JOB_STATE_RUNNING)).ok());
  for (int step = 1; step <= 3; ++step) {
    v1::JobEvent event;
    event.set_job_id("job-a");
    event.mutable_progress()->set_step(step);
    absl::StatusOr<int64_t> seq = store->AppendEvent(event);
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, step);
  }
  v1::JobEvent other;
  other.set_job_id("job-b");
  other.mutable_checkpoint()->set_step(9);
  EXPECT_EQ(*store->AppendEvent(other), 1);

  v1::Job job = store->Get("job-a")->job;
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  v1::JobEvent done;
  done.set_job_id("job-a");
  done.mutable_state_change()->set_previous(v1::JOB_STATE_RUNNING);
  done.mutable_state_change()->set_state(v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(store->UpdateWithEvent(job, done).ok());
  EXPECT_EQ(store->Get("job-a")->job.state(), v1::JOB_STATE_SUCCEEDED);

  absl::StatusOr<EventPage> page = store->Events("job-a");
  ASSERT_TRUE(page.ok());
  const std::vector<v1::JobEvent>& events = page->events;
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(events[i].progress().step(), i + 1u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(events[i].sequence(), i + 1u);
  EXPECT_EQ(events[3].state_change().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(page->has_more);
  // Pages after a sequence number.
  absl::StatusOr<EventPage> tail = store->Events("job-a", 1, 2);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->events.size(), 2u);
  EXPECT_EQ(tail->events[0].sequence(), 2u);
  EXPECT_TRUE(tail->has_more);
  tail = store->Events("job-a", 3, 2);
  ASSERT_EQ(tail->events.size(), 1u);
  EXPECT_FALSE(tail->has_more);
  ASSERT_EQ(store->Events("job-b")->events.size(), 1u);

  // A failed UpdateWithEvent leaves nothing behind.
  v1::Job ghost;
  ghost.set_job_id("job-ghost");
  v1::JobEvent ghost_event;
  ghost_event.set_job_id("job-a");
  EXPECT_EQ(store->UpdateWithEvent(ghost, ghost_event).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Events("job-a")->events.size(), 4u);
}

TEST_F(JobStoreTest, ListNewestFirstWithFilterAndPages) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // Two jobs share a create time: the id breaks the tie.
  ASSERT_TRUE(store->Create(MakeRecord("job-1", 100, v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(store->Create(MakeRecord("job-2", 200, v1::JOB_STATE_RUNNING)).ok());
  ASSERT_TRUE(store->Create(MakeRecord("job-3", 200, v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(store->Create(MakeRecord("job-4", 300, v1::JOB_STATE_FAILED)).ok());
  ASSERT_TRUE(store->Create(MakeRecord("job-5", 400, v1::JOB_STATE_SUCCEEDED)).ok());

  absl::StatusOr<JobPage> all = store->List(v1::JOB_STATE_UNSPECIFIED, "", 0);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Ids(all->jobs), ElementsAre("job-5", "job-4", "job-3", "job-2", "job-1"));
  EXPECT_EQ(all->total_size, 5);
  EXPECT_TRUE(all->next_page_token.empty());

  std::vector<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<JobPage> page = store->List(v1::JOB_STATE_UNSPECIFIED, token, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->jobs.size(), 2u);
    EXPECT_EQ(page->total_size, 5);
    for (const std::string& id : Ids(page->jobs)) paged.push_back(id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(paged, ElementsAre("job-5", "job-4", "job-3", "job-2", "job-1"));

  absl::StatusOr<JobPage> done = store->List(v1::JOB_STATE_SUCCEEDED, "", 2);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Ids(done->jobs), ElementsAre("job-5", "job-3"));
  EXPECT_EQ(done->total_size, 3);
  ASSERT_FALSE(done->next_page_token.empty());
  done = store->List(v1::JOB_STATE_SUCCEEDED, done->next_page_token, 2);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Ids(done->jobs), ElementsAre("job-1"));
  EXPECT_TRUE(done->next_page_token.empty());

  absl::StatusOr<std::vector<JobRecord>> unfinished =
      store->ListInStates({v1::JOB_STATE_RUNNING, v1::JOB_STATE_FAILED});
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ((*unfinished)[0].job.job_id(), "job-2");  // oldest first
  EXPECT_EQ((*unfinished)[1].job.job_id(), "job-4");
}

TEST_F(JobStoreTest, SurvivesReopen) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Create(MakeRecord("job-a", 10, v1::JOB_STATE_VALIDATING)).ok());
    v1::Job job = store->Get("job-a")->job;
    job.set_state(v1::JOB_STATE_RUNNING);
    job.set_last_checkpoint("jobs/job-a/checkpoints/step-00000004");
    v1::JobEvent event;
    event.set_job_id("job-a");
    event.mutable_checkpoint()->set_step(4);
    ASSERT_TRUE(store->UpdateWithEvent(job, event).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<JobRecord> got = store->Get("job-a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->job.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(got->job.last_checkpoint(), "jobs/job-a/checkpoints/step-00000004");
  EXPECT_EQ(got->dataset_path, "jobs/job-a/dataset.jsonl");
  ASSERT_EQ(store->Events("job-a")->events.size(), 1u);
  EXPECT_EQ(*store->AppendEvent(store->Events("job-a")->events.front()), 2);
  EXPECT_EQ(store->Create(MakeRecord("job-a", 10, v1::JOB_STATE_QUEUED)).code(),
            absl::StatusCode::kAlreadyExists);
}

// Reads the whole file.
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A database whose pages are damaged (a valid header, garbage after it) is refused at open with
// a message saying so, and its bytes are left as they were.
TEST_F(JobStoreTest, DamagedDatabaseIsRefusedAndLeftAlone) {
  const std::string path = dir_.File("jobs.db");
  {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          (*store)->Create(MakeRecord("job-" + std::to_string(i), i, v1::JOB_STATE_QUEUED)).ok());
    }
  }
  std::string bytes = Slurp(path);
  ASSERT_GT(bytes.size(), 3 * 4096u);
  for (size_t i = 4096 + 100; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(i * 31);
  ASSERT_TRUE(lorad::testing::WriteBytes(path, bytes));
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(),
              ::testing::AnyOf(::testing::HasSubstr("damaged"), ::testing::HasSubstr("malformed")));
  EXPECT_EQ(Slurp(path), bytes);
}

// Another process holding an exclusive lock: a clear error after the busy timeout, no wait
// forever, and the holder's data intact.
TEST_F(JobStoreTest, LockedDatabaseIsAClearError) {
  const std::string path = dir_.File("jobs.db");
  { ASSERT_TRUE(JobStore::Open(path).ok()); }
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr("locked"));
  EXPECT_TRUE(JobStore::Open(path).ok());  // usable again once the holder is gone
}

TEST_F(JobStoreTest, NotADatabase) {
  ASSERT_TRUE(lorad::testing::WriteBytes(dir_.File("jobs.db"), std::string(4096, 'x')));
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(dir_.File("jobs.db"));
  EXPECT_FALSE(store.ok());
  EXPECT_EQ(JobStore::Open(dir_.File("missing/dir/jobs.db")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace lorad::server
