// `loractl jobs create|get|list|cancel|watch|events|checkpoints|publish`: the FineTuning
// service. get, create and cancel print "key: value" lines of the job; list prints one
// tab-separated line per job (id, state, adapter, step/total, loss, eval loss, created); watch
// prints the job's events (a progress bar redrawn in place when stdout is a terminal, else one
// line per event) and exits 0 only if the job succeeds; events prints the stored events, one
// line each, with their sequence numbers; checkpoints prints one line per kept checkpoint
// (step, train loss, eval loss, token accuracy, path, "best"); publish registers one.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "lorad/v1/finetuning.grpc.pb.h"
#include "server/jobs/job_state_name.h"
#include "tools/loractl_commands.h"

namespace lorad::loractl {
namespace {

// No deadline to speak of for watching a long job unless --timeout_s says otherwise.
constexpr char kWatchTimeoutS[] = "31536000";
constexpr int kBarWidth = 24;

int Usage(const std::string& message) {
  std::fprintf(stderr, "loractl: jobs: %s\n", message.c_str());
  return kExitUsage;
}

bool ParseState(const std::string& name, v1::JobState* state) {
  for (int s = v1::JOB_STATE_VALIDATING; s <= v1::JOB_STATE_CANCELLED; ++s) {
    if (name == server::JobStateName(static_cast<v1::JobState>(s))) {
      *state = static_cast<v1::JobState>(s);
      return true;
    }
  }
  return false;
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string FormatEta(const google::protobuf::Duration& eta) {
  const int64_t s = eta.seconds();
  char text[32];
  std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return text;
}

const char* LrSchedulerName(v1::LrScheduler s) {
  switch (s) {
    case v1::LR_SCHEDULER_LINEAR:
      return "linear";
    case v1::LR_SCHEDULER_CONSTANT:
      return "constant";
    default:
      return "cosine";
  }
}

const char* OverlongName(v1::OverlongExamples o) {
  switch (o) {
    case v1::OVERLONG_EXAMPLES_TRUNCATE:
      return "truncate";
    case v1::OVERLONG_EXAMPLES_DROP:
      return "drop";
    default:
      return "error";
  }
}

std::string FormatEval(const v1::Evaluation& e) {
  return absl::StrFormat("%.4f (token accuracy %.3f, step %llu)", e.loss(), e.token_accuracy(),
                         static_cast<unsigned long long>(e.step()));
}

// One line of an event: "progress step 3/10 loss ...", "state running", "checkpoint step 5 ...".
std::string FormatEvent(const v1::JobEvent& event) {
  if (event.has_state_change()) {
    std::string line = absl::StrCat("state ", server::JobStateName(event.state_change().state()));
    if (!event.state_change().error().empty()) {
      absl::StrAppend(&line, ": ", event.state_change().error());
    }
    return line;
  }
  if (event.has_progress()) {
    const v1::TrainingProgress& p = event.progress();
    std::string line = absl::StrFormat(
        "progress step %llu/%llu epoch %u loss %.4f lr %.3g grad_norm %.3f",
        static_cast<unsigned long long>(p.step()), static_cast<unsigned long long>(p.total_steps()),
        p.epoch(), p.loss(), p.learning_rate(), p.grad_norm());
    if (p.has_eval())
      absl::StrAppend(&line, " eval_loss ", absl::StrFormat("%.4f", p.eval().loss()));
    return line;
  }
  if (event.has_checkpoint()) {
    return absl::StrFormat("checkpoint step %llu %s",
                           static_cast<unsigned long long>(event.checkpoint().step()),
                           event.checkpoint().path());
  }
  return "unknown";
}

void PrintJob(const v1::Job& job) {
  const v1::Hyperparameters& hp = job.hyperparameters();
  const v1::TrainingProgress& p = job.progress();
  std::printf("job_id: %s\nstate: %s\nadapter_id: %s\n", job.job_id().c_str(),
              server::JobStateName(job.state()), job.adapter_id().c_str());
  if (!job.error().empty()) std::printf("error: %s\n", job.error().c_str());
  std::printf("created: %s\nstarted: %s\nended: %s\nnum_examples: %llu\n",
              FormatTime(job.create_time()).c_str(), FormatTime(job.start_time()).c_str(),
              FormatTime(job.end_time()).c_str(),
              static_cast<unsigned long long>(job.num_examples()));
  std::printf("step: %llu/%llu\nepoch: %u\nloss: %.4f\nlearning_rate: %.3g\ntokens_seen: %llu\n",
              static_cast<unsigned long long>(p.step()),
              static_cast<unsigned long long>(p.total_steps()), p.epoch(), p.loss(),
              p.learning_rate(), static_cast<unsigned long long>(p.tokens_seen()));
  std::printf(
      "rank: %u\nalpha: %g\ndropout: %g\ntarget_modules: %s\nlearning_rate_peak: %g\n"
      "%s: %u\nbatch_size: %u\ngrad_accum: %u\nmax_seq_len: %u\nwarmup_steps: %u\n"
      "lr_scheduler: %s\nseed: %llu\ncheckpoint_every_steps: %u\n",
      hp.rank(), hp.alpha(), hp.dropout(), absl::StrJoin(hp.target_modules(), ",").c_str(),
      hp.learning_rate(),
      hp.length_case() == v1::Hyperparameters::kMaxSteps ? "max_steps" : "epochs",
      hp.length_case() == v1::Hyperparameters::kMaxSteps ? hp.max_steps() : hp.epochs(),
      hp.batch_size(), hp.grad_accum(), hp.max_seq_len(), hp.warmup_steps(),
      LrSchedulerName(hp.lr_scheduler()), static_cast<unsigned long long>(hp.seed()),
      hp.checkpoint_every_steps());
  std::printf(
      "keep_checkpoints: %u\neval_every_steps: %u\nearly_stopping_patience: %u\n"
      "train_on_inputs: %s\noverlong_examples: %s\n",
      hp.keep_checkpoints(), hp.eval_every_steps(), hp.early_stopping_patience(),
      hp.train_on_inputs() ? "true" : "false", OverlongName(hp.overlong_examples()));
  if (!job.base_adapter_id().empty()) {
    std::printf("base_adapter_id: %s\n", job.base_adapter_id().c_str());
  }
  std::printf("num_validation_examples: %llu\n",
              static_cast<unsigned long long>(job.num_validation_examples()));
  if (job.examples_truncated() > 0 || job.examples_dropped() > 0) {
    std::printf("examples_truncated: %llu\nexamples_dropped: %llu\n",
                static_cast<unsigned long long>(job.examples_truncated()),
                static_cast<unsigned long long>(job.examples_dropped()));
  }
  if (job.has_last_eval()) std::printf("eval_loss: %s\n", FormatEval(job.last_eval()).c_str());
  if (job.has_best_eval()) std::printf("best_eval_loss: %s\n", FormatEval(job.best_eval()).c_str());
  if (job.stopped_early()) std::printf("stopped_early: true\n");
  if (job.published_step() > 0) {
    std::printf("published_step: %llu\n", static_cast<unsigned long long>(job.published_step()));
  }
  if (!job.last_checkpoint().empty()) {
    std::printf("last_checkpoint: %s\n", job.last_checkpoint().c_str());
  }
  if (!job.adapter_source().empty()) {
    std::printf("adapter_source: %s\n", job.adapter_source().c_str());
  }
}

// Sets the numeric flag `name` (if given) through `set`; false with a usage message otherwise.
template <typename T, typename Setter>
bool NumberFlag(const Invocation& invocation, const char* name, Setter set, std::string* error) {
  const std::string text = invocation.Flag(name, "");
  if (text.empty()) return true;
  T value{};
  bool ok;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtof(text, &value) && std::isfinite(value);
  } else {
    ok = absl::SimpleAtoi(text, &value);
  }
  if (!ok) {
    *error = absl::StrCat("--", name, "=", text, ": expected a number");
    return false;
  }
  set(value);
  return true;
}

// Sets `dataset` from a local file (sent inline) or a path under the server's data root.
bool SetDataset(const std::string& file, const std::string& path, const char* flag,
                v1::Dataset* dataset, std::string* error) {
  if (file.empty()) {
    dataset->set_path(path);
    return true;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    *error = absl::StrCat("--", flag, "=", file, ": cannot open file");
    return false;
  }
  std::stringstream contents;
  contents << in.rdbuf();
  dataset->set_inline_jsonl(contents.str());
  return true;
}

// The CreateJobRequest of the command line; a usage message in *error on failure.
bool BuildCreateRequest(const Invocation& invocation, v1::CreateJobRequest* request,
                        std::string* error) {
  request->set_adapter_id(invocation.Flag("adapter_id", ""));
  if (request->adapter_id().empty()) {
    *error = "create: --adapter_id is required";
    return false;
  }
  const std::string file = invocation.Flag("dataset", "");
  const std::string path = invocation.Flag("dataset_path", "");
  if (file.empty() == path.empty()) {
    *error =
        "create: give exactly one of --dataset (a local file) and --dataset_path (a file "
        "under the server's data root)";
    return false;
  }
  if (!SetDataset(file, path, "dataset", request->mutable_dataset(), error)) return false;
  const std::string validation_file = invocation.Flag("validation", "");
  const std::string validation_path = invocation.Flag("validation_path", "");
  if (!validation_file.empty() && !validation_path.empty()) {
    *error = "create: --validation and --validation_path exclude each other";
    return false;
  }
  if ((!validation_file.empty() || !validation_path.empty()) &&
      !SetDataset(validation_file, validation_path, "validation", request->mutable_validation(),
                  error)) {
    return false;
  }
  request->set_base_adapter_id(invocation.Flag("base_adapter", ""));
  v1::Hyperparameters* hp = request->mutable_hyperparameters();
  const std::string scheduler = invocation.Flag("lr_scheduler", "");
  if (scheduler == "cosine") {
    hp->set_lr_scheduler(v1::LR_SCHEDULER_COSINE);
  } else if (scheduler == "linear") {
    hp->set_lr_scheduler(v1::LR_SCHEDULER_LINEAR);
  } else if (scheduler == "constant") {
    hp->set_lr_scheduler(v1::LR_SCHEDULER_CONSTANT);
  } else if (!scheduler.empty()) {
    *error = absl::StrCat("--lr_scheduler=", scheduler, ": expected cosine, linear or constant");
    return false;
  }
  const std::string overlong = invocation.Flag("overlong", "");
  if (overlong == "error") {
    hp->set_overlong_examples(v1::OVERLONG_EXAMPLES_ERROR);
  } else if (overlong == "truncate") {
    hp->set_overlong_examples(v1::OVERLONG_EXAMPLES_TRUNCATE);
  } else if (overlong == "drop") {
    hp->set_overlong_examples(v1::OVERLONG_EXAMPLES_DROP);
  } else if (!overlong.empty()) {
    *error = absl::StrCat("--overlong=", overlong, ": expected error, truncate or drop");
    return false;
  }
  hp->set_train_on_inputs(invocation.BoolFlag("train_on_inputs"));
  if (!invocation.Flag("epochs", "").empty() && !invocation.Flag("max_steps", "").empty()) {
    *error = "create: --epochs and --max_steps exclude each other";
    return false;
  }
  const std::string targets = invocation.Flag("target_modules", "");
  if (!targets.empty()) {
    for (absl::string_view t : absl::StrSplit(targets, ',', absl::SkipEmpty())) {
      hp->add_target_modules(std::string(t));
    }
  }
  hp->set_use_rslora(invocation.BoolFlag("use_rslora"));
  return NumberFlag<uint32_t>(
             invocation, "rank", [&](uint32_t v) { hp->set_rank(v); }, error) &&
         NumberFlag<float>(
             invocation, "alpha", [&](float v) { hp->set_alpha(v); }, error) &&
         NumberFlag<float>(
             invocation, "dropout", [&](float v) { hp->set_dropout(v); }, error) &&
         NumberFlag<float>(
             invocation, "learning_rate", [&](float v) { hp->set_learning_rate(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "epochs", [&](uint32_t v) { hp->set_epochs(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "max_steps", [&](uint32_t v) { hp->set_max_steps(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "batch_size", [&](uint32_t v) { hp->set_batch_size(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "grad_accum", [&](uint32_t v) { hp->set_grad_accum(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "max_seq_len", [&](uint32_t v) { hp->set_max_seq_len(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "warmup_steps", [&](uint32_t v) { hp->set_warmup_steps(v); }, error) &&
         NumberFlag<uint64_t>(
             invocation, "seed", [&](uint64_t v) { hp->set_seed(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "checkpoint_every_steps",
             [&](uint32_t v) { hp->set_checkpoint_every_steps(v); }, error) &&
         NumberFlag<float>(
             invocation, "weight_decay", [&](float v) { hp->set_weight_decay(v); }, error) &&
         NumberFlag<float>(
             invocation, "max_grad_norm", [&](float v) { hp->set_max_grad_norm(v); }, error) &&
         NumberFlag<float>(
             invocation, "warmup_ratio", [&](float v) { hp->set_warmup_ratio(v); }, error) &&
         NumberFlag<float>(
             invocation, "min_lr_ratio", [&](float v) { hp->set_min_lr_ratio(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "eval_every_steps", [&](uint32_t v) { hp->set_eval_every_steps(v); },
             error) &&
         NumberFlag<uint32_t>(
             invocation, "early_stopping_patience",
             [&](uint32_t v) { hp->set_early_stopping_patience(v); }, error) &&
         NumberFlag<uint32_t>(
             invocation, "keep_checkpoints", [&](uint32_t v) { hp->set_keep_checkpoints(v); },
             error) &&
         NumberFlag<float>(
             invocation, "validation_split", [&](float v) { request->set_validation_split(v); },
             error);
}

// Prints WatchJob's events until the stream ends; returns the exit code.
int Watch(const Invocation& invocation, v1::FineTuning::Stub& stub, const std::string& job_id) {
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(invocation, &context, kWatchTimeoutS); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  std::string error;
  if (!NumberFlag<uint64_t>(
          invocation, "after", [&](uint64_t v) { request.set_after_sequence(v); }, &error)) {
    return Usage(error);
  }
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub.WatchJob(&context, request);
  const bool tty = ::isatty(::fileno(stdout)) != 0;
  bool bar_drawn = false;  // the cursor is at the end of a progress bar line
  auto end_bar = [&] {
    if (bar_drawn) std::fputc('\n', stdout);
    bar_drawn = false;
  };
  v1::JobState last = v1::JOB_STATE_UNSPECIFIED;
  v1::JobEvent event;
  while (reader->Read(&event)) {
    if (event.has_state_change()) {
      end_bar();
      last = event.state_change().state();
      std::printf("state: %s\n", server::JobStateName(last));
      if (!event.state_change().error().empty()) error = event.state_change().error();
    } else if (event.has_progress()) {
      const v1::TrainingProgress& p = event.progress();
      std::string stats =
          absl::StrFormat("loss %.4f  lr %.3g  %.0f tok/s  eta %s", p.loss(), p.learning_rate(),
                          p.tokens_per_second(), FormatEta(p.eta()));
      if (p.has_eval()) {
        stats = absl::StrCat(stats, absl::StrFormat("  eval_loss %.4f", p.eval().loss()));
      }
      if (tty) {
        const int filled =
            p.total_steps() == 0 ? 0 : static_cast<int>(kBarWidth * p.step() / p.total_steps());
        std::printf("\r[%s%s] %llu/%llu  %s\x1b[K", std::string(filled, '#').c_str(),
                    std::string(kBarWidth - filled, '.').c_str(),
                    static_cast<unsigned long long>(p.step()),
                    static_cast<unsigned long long>(p.total_steps()), stats.c_str());
        bar_drawn = true;
      } else {
        std::printf("step %llu/%llu  epoch %u  %s\n", static_cast<unsigned long long>(p.step()),
                    static_cast<unsigned long long>(p.total_steps()), p.epoch(), stats.c_str());
      }
    } else if (event.has_checkpoint()) {
      end_bar();
      std::printf("checkpoint: step %llu %s\n",
                  static_cast<unsigned long long>(event.checkpoint().step()),
                  event.checkpoint().path().c_str());
    }
    std::fflush(stdout);
  }
  end_bar();
  grpc::Status status = reader->Finish();
  if (!status.ok()) return ReportRpcError("jobs watch", status);
  if (last == v1::JOB_STATE_SUCCEEDED) return kExitOk;
  std::fprintf(stderr, "loractl: jobs watch: job %s %s%s%s\n", job_id.c_str(),
               server::JobStateName(last), error.empty() ? "" : ": ", error.c_str());
  return kExitFailed;
}

}  // namespace

int RunJobs(const Invocation& invocation) {
  const std::vector<std::string>& args = invocation.positional;
  const char* kExpected =
      "expected create, get ID, list, cancel ID, watch ID, events ID, checkpoints ID or publish "
      "ID STEP ADAPTER_ID";
  if (args.empty()) return Usage(kExpected);
  const std::string& verb = args[0];
  const size_t want = verb == "create" || verb == "list" ? 1 : verb == "publish" ? 4 : 2;
  if ((verb != "create" && verb != "get" && verb != "list" && verb != "cancel" && verb != "watch" &&
       verb != "events" && verb != "checkpoints" && verb != "publish") ||
      args.size() != want) {
    return Usage(kExpected);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(invocation);
  if (!channel.ok()) return Usage(std::string(channel.status().message()));
  auto stub = v1::FineTuning::NewStub(*channel);
  if (verb == "watch") return Watch(invocation, *stub, args[1]);

  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(invocation, &context); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  const std::string command = "jobs " + verb;
  grpc::Status status;
  if (verb == "create") {
    v1::CreateJobRequest request;
    std::string error;
    if (!BuildCreateRequest(invocation, &request, &error)) return Usage(error);
    v1::CreateJobResponse response;
    status = stub->CreateJob(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    if (invocation.BoolFlag("watch")) {
      std::printf("job_id: %s\n", response.job().job_id().c_str());
      std::fflush(stdout);
      return Watch(invocation, *stub, response.job().job_id());
    }
    PrintJob(response.job());
  } else if (verb == "get") {
    v1::GetJobRequest request;
    request.set_job_id(args[1]);
    v1::GetJobResponse response;
    status = stub->GetJob(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    PrintJob(response.job());
  } else if (verb == "cancel") {
    v1::CancelJobRequest request;
    request.set_job_id(args[1]);
    v1::CancelJobResponse response;
    status = stub->CancelJob(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    std::printf("job_id: %s\nstate: %s\n", response.job().job_id().c_str(),
                server::JobStateName(response.job().state()));
  } else if (verb == "events") {
    v1::ListJobEventsRequest request;
    request.set_job_id(args[1]);
    std::string error;
    if (!NumberFlag<uint64_t>(
            invocation, "after", [&](uint64_t v) { request.set_after_sequence(v); }, &error)) {
      return Usage(error);
    }
    while (true) {
      v1::ListJobEventsResponse response;
      grpc::ClientContext page_context;
      page_context.set_deadline(context.deadline());
      AddToken(invocation, &page_context);
      status = stub->ListJobEvents(&page_context, request, &response);
      if (!status.ok()) return ReportRpcError(command.c_str(), status);
      for (const v1::JobEvent& event : response.events()) {
        std::printf("%llu\t%s\t%s\n", static_cast<unsigned long long>(event.sequence()),
                    FormatTime(event.time()).c_str(), FormatEvent(event).c_str());
        request.set_after_sequence(event.sequence());
      }
      if (!response.has_more()) break;
    }
  } else if (verb == "checkpoints") {
    v1::ListJobCheckpointsRequest request;
    request.set_job_id(args[1]);
    v1::ListJobCheckpointsResponse response;
    status = stub->ListJobCheckpoints(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    for (const v1::CheckpointWritten& c : response.checkpoints()) {
      std::printf(
          "%llu\t%.4f\t%s\t%s\t%s%s\n", static_cast<unsigned long long>(c.step()), c.train_loss(),
          c.has_eval() ? absl::StrFormat("%.4f", c.eval().loss()).c_str() : "-",
          c.has_eval() ? absl::StrFormat("%.3f", c.eval().token_accuracy()).c_str() : "-",
          c.path().c_str(), c.step() == response.best_step() && c.has_eval() ? "\tbest" : "");
    }
  } else if (verb == "publish") {
    v1::PublishCheckpointRequest request;
    request.set_job_id(args[1]);
    uint64_t step = 0;
    if (!absl::SimpleAtoi(args[2], &step))
      return Usage(absl::StrCat("STEP ", args[2], ": expected a number"));
    request.set_step(step);
    request.set_adapter_id(args[3]);
    v1::PublishCheckpointResponse response;
    status = stub->PublishCheckpoint(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    std::printf("adapter_id: %s\nadapter_source: %s\n", response.adapter_id().c_str(),
                response.adapter_source().c_str());
  } else {
    v1::ListJobsRequest request;
    const std::string state = invocation.Flag("state", "");
    v1::JobState filter = v1::JOB_STATE_UNSPECIFIED;
    if (!state.empty() && !ParseState(state, &filter)) {
      return Usage(absl::StrCat("--state=", state,
                                ": expected validating, queued, running, succeeded, failed or "
                                "cancelled"));
    }
    request.set_state(filter);
    // Every page, one RPC each; the first RPC's deadline covers them all.
    while (true) {
      v1::ListJobsResponse response;
      grpc::ClientContext page_context;
      page_context.set_deadline(context.deadline());
      AddToken(invocation, &page_context);
      status = stub->ListJobs(&page_context, request, &response);
      if (!status.ok()) return ReportRpcError(command.c_str(), status);
      for (const v1::Job& job : response.jobs()) {
        std::printf(
            "%s\t%s\t%s\t%llu/%llu\t%.4f\t%s\t%s\n", job.job_id().c_str(),
            server::JobStateName(job.state()), job.adapter_id().c_str(),
            static_cast<unsigned long long>(job.progress().step()),
            static_cast<unsigned long long>(job.progress().total_steps()), job.progress().loss(),
            job.has_last_eval() ? absl::StrFormat("%.4f", job.last_eval().loss()).c_str() : "-",
            FormatTime(job.create_time()).c_str());
      }
      if (response.page().next_page_token().empty()) break;
      request.mutable_page()->set_page_token(response.page().next_page_token());
    }
  }
  return kExitOk;
}

}  // namespace lorad::loractl
