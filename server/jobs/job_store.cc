#include "server/jobs/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace lorad::server {
namespace {

constexpr int kSchemaVersion = 1;
constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  create_us INTEGER NOT NULL,
  state INTEGER NOT NULL,
  dataset_path TEXT NOT NULL,
  job BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (create_us DESC, job_id DESC);
CREATE TABLE IF NOT EXISTS events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
)sql";

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::InternalError(absl::StrCat("job store: ", what, ": ", sqlite3_errmsg(db)));
}

int64_t CreateMicros(const v1::Job& job) {
  return job.create_time().seconds() * 1000000 + job.create_time().nanos() / 1000;
}

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status status() const {
    return stmt_ != nullptr ? absl::OkStatus() : SqliteError(db_, "prepare");
  }
  void Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void Bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int index, const std::string& bytes) {
    sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  std::string Bytes(int column) {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

absl::StatusOr<v1::Job> ParseJob(const std::string& bytes, absl::string_view job_id) {
  v1::Job job;
  if (!job.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("job store: row of job '", job_id, "' is corrupt"));
  }
  return job;
}

std::string EncodePageToken(int64_t create_us, const std::string& job_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(create_us, "/", job_id));
}

absl::Status DecodePageToken(const std::string& token, int64_t* create_us, std::string* job_id) {
  std::string text;
  const size_t slash =
      absl::WebSafeBase64Unescape(token, &text) ? text.find('/') : std::string::npos;
  if (slash == std::string::npos || !absl::SimpleAtoi(text.substr(0, slash), create_us)) {
    return absl::InvalidArgumentError("page.page_token: not a token from a previous ListJobs");
  }
  *job_id = text.substr(slash + 1);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = absl::FailedPreconditionError(absl::StrCat(
        "job database '", path, "': ", db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return status;
  }
  std::unique_ptr<JobStore> store(new JobStore(db));
  absl::MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, 5000);
  if (absl::Status status = store->Exec("PRAGMA journal_mode = WAL"); !status.ok()) {
    const bool busy = sqlite3_errcode(db) == SQLITE_BUSY || sqlite3_errcode(db) == SQLITE_LOCKED;
    return absl::FailedPreconditionError(
        absl::StrCat("job database '", path, "': ", status.message(),
                     busy ? " (another process holds a lock on it; is a second lorad using "
                            "this --data_dir?)"
                          : ""));
  }
  LORAD_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous = FULL"));
  // A damaged file is refused before anything writes to it (the schema statements below would).
  {
    Statement check(db, "PRAGMA quick_check");
    LORAD_RETURN_IF_ERROR(check.status());
    if (check.Step() != SQLITE_ROW) {
      return absl::FailedPreconditionError(
          absl::StrCat("job database '", path, "' cannot be read: ", sqlite3_errmsg(db)));
    }
    const std::string verdict = check.Bytes(0);
    if (verdict != "ok") {
      return absl::FailedPreconditionError(absl::StrCat(
          "job database '", path, "' is damaged (", verdict,
          "); it was not modified: restore it from a backup or move it away to start empty"));
    }
  }
  Statement version(db, "PRAGMA user_version");
  LORAD_RETURN_IF_ERROR(version.status());
  const int64_t found = version.Step() == SQLITE_ROW ? version.Int(0) : 0;
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("job database '", path, "' has schema ",
                                                      found, ", newer than this lorad's ",
                                                      kSchemaVersion));
  }
  LORAD_RETURN_IF_ERROR(store->Exec(kSchema));
  LORAD_RETURN_IF_ERROR(
      store->Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str()));
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

absl::Status JobStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status status = absl::InternalError(
        absl::StrCat("job store: ", error != nullptr ? error : sqlite3_errmsg(db_)));
    sqlite3_free(error);
    return status;
  }
  return absl::OkStatus();
}

absl::Status JobStore::Create(const JobRecord& record) {
  if (record.job.job_id().empty()) return absl::InvalidArgumentError("job store: empty job_id");
  absl::MutexLock lock(&mu_);
  Statement insert(db_,
                   "INSERT INTO jobs (job_id, create_us, state, dataset_path, job) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)");
  LORAD_RETURN_IF_ERROR(insert.status());
  insert.Bind(1, record.job.job_id());
  insert.Bind(2, CreateMicros(record.job));
  insert.Bind(3, static_cast<int64_t>(record.job.state()));
  insert.Bind(4, record.dataset_path);
  insert.BindBlob(5, record.job.SerializeAsString());
  const int rc = insert.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(absl::StrCat("job '", record.job.job_id(), "' exists"));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "insert job");
  return absl::OkStatus();
}

absl::Status JobStore::UpdateLocked(const v1::Job& job) {
  Statement update(db_, "UPDATE jobs SET state = ?2, job = ?3 WHERE job_id = ?1");
  LORAD_RETURN_IF_ERROR(update.status());
  update.Bind(1, job.job_id());
  update.Bind(2, static_cast<int64_t>(job.state()));
  update.BindBlob(3, job.SerializeAsString());
  if (update.Step() != SQLITE_DONE) return SqliteError(db_, "update job");
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("job '", job.job_id(), "' not found"));
  }
  return absl::OkStatus();
}

absl::Status JobStore::Update(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  return UpdateLocked(job);
}

absl::StatusOr<int64_t> JobStore::UpdateWithEvent(const v1::Job& job, const v1::JobEvent& event) {
  absl::MutexLock lock(&mu_);
  LORAD_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = UpdateLocked(job);
  int64_t seq = 0;
  if (status.ok()) {
    absl::StatusOr<int64_t> appended = AppendEventLocked(event);
    status = appended.status();
    if (appended.ok()) seq = *appended;
  }
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return status;
  }
  return seq;
}

absl::StatusOr<JobRecord> JobStore::Get(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  Statement select(db_, "SELECT job, dataset_path FROM jobs WHERE job_id = ?1");
  LORAD_RETURN_IF_ERROR(select.status());
  select.Bind(1, job_id);
  const int rc = select.Step();
  if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  if (rc != SQLITE_ROW) return SqliteError(db_, "read job");
  JobRecord record;
  LORAD_ASSIGN_OR_RETURN(record.job, ParseJob(select.Bytes(0), job_id));
  record.dataset_path = select.Bytes(1);
  return record;
}

absl::StatusOr<JobPage> JobStore::List(v1::JobState state, const std::string& page_token,
                                       int32_t page_size) const {
  if (page_size <= 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  int64_t after_us = 0;
  std::string after_id;
  if (!page_token.empty()) LORAD_RETURN_IF_ERROR(DecodePageToken(page_token, &after_us, &after_id));

  absl::MutexLock lock(&mu_);
  JobPage page;
  Statement count(db_, "SELECT COUNT(*) FROM jobs WHERE (?1 = 0 OR state = ?1)");
  LORAD_RETURN_IF_ERROR(count.status());
  count.Bind(1, static_cast<int64_t>(state));
  if (count.Step() != SQLITE_ROW) return SqliteError(db_, "count jobs");
  page.total_size = count.Int(0);

  Statement select(db_,
                   "SELECT job_id, create_us, job FROM jobs WHERE (?1 = 0 OR state = ?1) "
                   "AND (?2 = 0 OR create_us < ?3 OR (create_us = ?3 AND job_id < ?4)) "
                   "ORDER BY create_us DESC, job_id DESC LIMIT ?5");
  LORAD_RETURN_IF_ERROR(select.status());
  select.Bind(1, static_cast<int64_t>(state));
  select.Bind(2, page_token.empty() ? int64_t{0} : int64_t{1});
  select.Bind(3, after_us);
  select.Bind(4, after_id);
  select.Bind(5, int64_t{page_size} + 1);
  int rc;
  std::string last_id;
  int64_t last_us = 0;
  while ((rc = select.Step()) == SQLITE_ROW) {
    if (static_cast<int32_t>(page.jobs.size()) == page_size) {
      page.next_page_token = EncodePageToken(last_us, last_id);
      break;
    }
    last_id = select.Bytes(0);
    last_us = select.Int(1);
    LORAD_ASSIGN_OR_RETURN(v1::Job job, ParseJob(select.Bytes(2), last_id));
    page.jobs.push_back(std::move(job));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db_, "list jobs");
  return page;
}

absl::StatusOr<std::vector<JobRecord>> JobStore::ListInStates(
    const std::vector<v1::JobState>& states) const {
  absl::MutexLock lock(&mu_);
  Statement select(db_,
                   "SELECT job_id, job, dataset_path, state FROM jobs "
                   "ORDER BY create_us ASC, job_id ASC");
  LORAD_RETURN_IF_ERROR(select.status());
  std::vector<JobRecord> records;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    const auto state = static_cast<v1::JobState>(select.Int(3));
    if (std::find(states.begin(), states.end(), state) == states.end()) continue;
    JobRecord record;
    LORAD_ASSIGN_OR_RETURN(record.job, ParseJob(select.Bytes(1), select.Bytes(0)));
    record.dataset_path = select.Bytes(2);
    records.push_back(std::move(record));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "list jobs");
  return records;
}

absl::StatusOr<int64_t> JobStore::AppendEventLocked(const v1::JobEvent& event) {
  Statement exists(db_, "SELECT 1 FROM jobs WHERE job_id = ?1");
  LORAD_RETURN_IF_ERROR(exists.status());
  exists.Bind(1, event.job_id());
  if (exists.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("job '", event.job_id(), "' not found"));
  }
  Statement insert(db_,
                   "INSERT INTO events (job_id, seq, event) VALUES (?1, "
                   "(SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?1), ?2) "
                   "RETURNING seq");
  LORAD_RETURN_IF_ERROR(insert.status());
  insert.Bind(1, event.job_id());
  insert.BindBlob(2, event.SerializeAsString());
  if (insert.Step() != SQLITE_ROW) return SqliteError(db_, "append event");
  const int64_t seq = insert.Int(0);
  if (insert.Step() != SQLITE_DONE) return SqliteError(db_, "append event");
  return seq;
}

absl::StatusOr<int64_t> JobStore::AppendEvent(const v1::JobEvent& event) {
  absl::MutexLock lock(&mu_);
  return AppendEventLocked(event);
}

absl::StatusOr<EventPage> JobStore::Events(const std::string& job_id, int64_t after,
                                           int32_t limit) const {
  absl::MutexLock lock(&mu_);
  Statement exists(db_, "SELECT 1 FROM jobs WHERE job_id = ?1");
  LORAD_RETURN_IF_ERROR(exists.status());
  exists.Bind(1, job_id);
  if (exists.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("job '", job_id, "' not found"));
  }
  Statement select(db_,
                   "SELECT seq, event FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq ASC "
                   "LIMIT ?3");
  LORAD_RETURN_IF_ERROR(select.status());
  select.Bind(1, job_id);
  select.Bind(2, after);
  // One more than asked tells whether another page follows.
  select.Bind(3, limit > 0 ? int64_t{limit} + 1 : int64_t{-1});
  EventPage page;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    if (limit > 0 && static_cast<int32_t>(page.events.size()) == limit) {
      page.has_more = true;
      continue;
    }
    v1::JobEvent event;
    if (!event.ParseFromString(select.Bytes(1))) {
      return absl::DataLossError(
          absl::StrCat("job store: an event of job '", job_id, "' is corrupt"));
    }
    event.set_sequence(static_cast<uint64_t>(select.Int(0)));
    page.events.push_back(std::move(event));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_, "read events");
  return page;
}

}  // namespace lorad::server
