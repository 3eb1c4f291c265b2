// lorad_soak: a soak client for a running lorad (bench/soak/run.sh starts one and calls this).
// Many client threads send N requests of mixed kinds over many adapters, while a churn thread
// unloads and reloads adapters, a fine-tune job runs, and a monitor samples the daemon's RSS
// and open descriptors. At the end it prints the status codes per request kind, the probe
// results (greedy requests that must equal the solo output recorded before the load), and the
// RSS/fd series, and exits 1 if a code outside a kind's expected set appeared, a probe
// differed, or descriptors grew.
//
//   lorad_soak --addr=127.0.0.1:50051 --pid=PID --adapters=16 --requests=2000 --clients=16
//
// Adapters: ids soak-0..N-1 loaded from sources soak/a0..a{N-1} under the daemon's adapter
// root (run.sh writes them with --write_adapters=DIR --model=GGUF first).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "bench/multi_lora/random_adapter.h"
#include "engine/base/process_memory.h"
#include "engine/model/model_weights.h"
#include "grpcpp/grpcpp.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "lorad/v1/finetuning.grpc.pb.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "server/common/grpc_code_name.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051", "lorad's gRPC address");
ABSL_FLAG(int, pid, 0, "lorad's process id, for RSS and fd samples (0: none)");
ABSL_FLAG(int, adapters, 16, "adapters soak-0..N-1 (sources soak/a<i>)");
ABSL_FLAG(int, requests, 2000, "requests in all");
ABSL_FLAG(int, clients, 16, "concurrent client threads");
ABSL_FLAG(int, max_new_tokens, 24, "tokens per ordinary request");
ABSL_FLAG(bool, finetune, true, "run a fine-tune job during the soak");
ABSL_FLAG(int, churn_ms, 500, "unload and reload one adapter every this many ms (0: none)");
ABSL_FLAG(uint64_t, seed, 1, "seed of the request mix");
ABSL_FLAG(std::string, write_adapters, "", "write the random adapters into DIR/soak and exit");
ABSL_FLAG(std::string, model, "", "the GGUF the adapters are shaped for (with --write_adapters)");

namespace lorad::soak {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { kUnary, kStream, kCancel, kDeadline, kStop, kProbe };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kUnary:
      return "unary";
    case Kind::kStream:
      return "stream";
    case Kind::kCancel:
      return "stream+cancel";
    case Kind::kDeadline:
      return "short deadline";
    case Kind::kStop:
      return "stop string";
    case Kind::kProbe:
      return "probe";
  }
  return "?";
}

// The codes each kind may end with. NOT_FOUND: its adapter was unloaded by the churn thread
// at that moment; RESOURCE_EXHAUSTED: the queue was full (the daemon's --max_queue; any other
// RESOURCE_EXHAUSTED, such as a full adapter cache, is counted apart and fails the soak).
std::set<grpc::StatusCode> Expected(Kind k) {
  std::set<grpc::StatusCode> ok = {grpc::StatusCode::OK, grpc::StatusCode::NOT_FOUND,
                                   grpc::StatusCode::RESOURCE_EXHAUSTED};
  if (k == Kind::kCancel) ok.insert(grpc::StatusCode::CANCELLED);
  if (k == Kind::kDeadline) ok.insert(grpc::StatusCode::DEADLINE_EXCEEDED);
  return ok;
}

// What the engine says when --max_queue is reached (engine/engine.cc).
constexpr char kQueueFull[] = "request queue is full";

struct Probe {
  std::string adapter_id, prompt, expected;
};

v1::GenerateRequest Greedy(const std::string& adapter, const std::string& prompt, int tokens) {
  v1::GenerateRequest r;
  r.set_adapter_id(adapter);
  r.set_prompt(prompt);
  r.mutable_sampling()->set_max_new_tokens(tokens);
  return r;
}

grpc::Status Unary(v1::Inference::Stub& stub, const v1::GenerateRequest& r, std::string* text,
                   int deadline_ms = 120000) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  v1::GenerateResponse response;
  grpc::Status s = stub.Generate(&context, r, &response);
  if (text != nullptr) *text = response.text();
  return s;
}

std::pair<int, int64_t> FdsAndRss(int pid) {
  return {OpenDescriptorCount(pid), ResidentBytesOf(pid)};
}

grpc::Status LoadAdapter(v1::Adapters::Stub& stub, int i) {
  grpc::ClientContext context;
  v1::LoadAdapterRequest r;
  r.set_adapter_id(absl::StrCat("soak-", i));
  r.set_source(absl::StrCat("soak/a", i));
  v1::LoadAdapterResponse response;
  return stub.LoadAdapter(&context, r, &response);
}

int WriteAdapters() {
  auto weights = LoadModel(absl::GetFlag(FLAGS_model));
  if (!weights.ok()) {
    std::fprintf(stderr, "lorad_soak: %s\n", std::string(weights.status().message()).c_str());
    return 2;
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_adapters); ++i) {
    bench::RandomAdapterOptions o;
    o.rank = 8;
    o.modules = {"q_proj", "v_proj"};
    o.seed = 1000 + i;
    o.b_scale = 0.05f;
    const std::string dir = absl::StrCat(absl::GetFlag(FLAGS_write_adapters), "/soak/a", i);
    std::filesystem::create_directories(dir);
    if (absl::Status s = bench::WriteRandomAdapter((*weights)->spec, o, dir); !s.ok()) {
      std::fprintf(stderr, "lorad_soak: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  return 0;
}

int Run() {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_addr), grpc::InsecureChannelCredentials());
  auto inference = v1::Inference::NewStub(channel);
  auto adapters = v1::Adapters::NewStub(channel);
  const int num_adapters = absl::GetFlag(FLAGS_adapters);
  for (int i = 0; i < num_adapters; ++i) {
    if (grpc::Status s = LoadAdapter(*adapters, i); !s.ok()) {
      std::fprintf(stderr, "lorad_soak: LoadAdapter soak-%d: %s\n", i, s.error_message().c_str());
      return 2;
    }
  }
  // Probes, recorded alone before any load. Probe adapters are never churned.
  std::vector<Probe> probes = {{"", "The capital of France is", ""},
                               {"soak-0", "Write a haiku about rain.", ""},
                               {num_adapters > 1 ? "soak-1" : "", "1, 2, 3, 4,", ""}};
  for (Probe& p : probes) {
    if (grpc::Status s = Unary(*inference, Greedy(p.adapter_id, p.prompt, 16), &p.expected);
        !s.ok()) {
      std::fprintf(stderr, "lorad_soak: probe: %s\n", s.error_message().c_str());
      return 2;
    }
  }

  std::mutex mu;
  std::map<Kind, std::map<grpc::StatusCode, int>> codes;
  int probe_mismatches = 0;
  std::map<std::string, int> other_exhausted;  // RESOURCE_EXHAUSTED not from a full queue
  std::atomic<int> next{0};
  std::atomic<bool> done{false};
  const int total = absl::GetFlag(FLAGS_requests);
  const int tokens = absl::GetFlag(FLAGS_max_new_tokens);

  auto client = [&](int thread) {
    std::mt19937_64 random(absl::GetFlag(FLAGS_seed) * 1000 + thread);
    for (int n = next++; n < total; n = next++) {
      const Kind kind = n % 25 == 0 ? Kind::kProbe : static_cast<Kind>(random() % 5);
      const int a = static_cast<int>(random() % (num_adapters + 1)) - 1;
      const std::string adapter = a < 0 ? "" : absl::StrCat("soak-", a);
      grpc::Status status;
      if (kind == Kind::kProbe) {
        const Probe& p = probes[n / 25 % probes.size()];
        std::string text;
        status = Unary(*inference, Greedy(p.adapter_id, p.prompt, 16), &text);
        if (status.ok() && text != p.expected) {
          std::lock_guard<std::mutex> lock(mu);
          ++probe_mismatches;
          std::fprintf(stderr, "probe mismatch (%s): '%s' vs '%s'\n", p.adapter_id.c_str(),
                       text.c_str(), p.expected.c_str());
        }
      } else {
        v1::GenerateRequest r = Greedy(adapter, absl::StrCat("Request ", n, ": tell me"), tokens);
        if (random() % 2) r.mutable_sampling()->set_temperature(0.8f);
        if (kind == Kind::kStop) r.mutable_sampling()->add_stop(random() % 2 ? "." : "e");
        if (kind == Kind::kUnary || kind == Kind::kStop) {
          status = Unary(*inference, r, nullptr);
        } else if (kind == Kind::kDeadline) {
          status = Unary(*inference, r, nullptr, 1 + static_cast<int>(random() % 200));
        } else {
          grpc::ClientContext context;
          auto reader = inference->GenerateStream(&context, r);
          v1::GenerateResponse response;
          const int cancel_after = kind == Kind::kCancel ? 1 + static_cast<int>(random() % 4) : -1;
          int read = 0;
          while (reader->Read(&response)) {
            if (++read == cancel_after) context.TryCancel();
          }
          status = reader->Finish();
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          status.error_message().find(kQueueFull) == std::string::npos) {
        ++other_exhausted[status.error_message()];
      } else {
        ++codes[kind][status.error_code()];
      }
    }
  };

  // Churn: unload and reload adapters other than the probes' (soak-0, soak-1).
  std::thread churn([&] {
    std::mt19937 random(7);
    const int every = absl::GetFlag(FLAGS_churn_ms);
    while (every > 0 && num_adapters > 2 && !done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(every));
      const int i = 2 + static_cast<int>(random() % (num_adapters - 2));
      grpc::ClientContext context;
      v1::UnloadAdapterRequest r;
      r.set_adapter_id(absl::StrCat("soak-", i));
      v1::UnloadAdapterResponse response;
      adapters->UnloadAdapter(&context, r, &response).IgnoreError();
      LoadAdapter(*adapters, i).IgnoreError();
    }
  });

  std::string job_id;
  if (absl::GetFlag(FLAGS_finetune)) {
    auto jobs = v1::FineTuning::NewStub(channel);
    grpc::ClientContext context;
    v1::CreateJobRequest r;
    r.set_adapter_id(absl::StrCat("soak-job-", ::getpid()));
    std::string jsonl;
    for (int i = 0; i < 16; ++i) {
      absl::StrAppend(&jsonl, "{\"prompt\": \"Ticket ", i, ": printer jams\", \"completion\": \"",
                      "Open tray 2 and remove the paper.\"}\n");
    }
    r.mutable_dataset()->set_inline_jsonl(jsonl);
    r.mutable_hyperparameters()->set_max_steps(20);
    r.mutable_hyperparameters()->set_batch_size(2);
    v1::CreateJobResponse response;
    grpc::Status s = jobs->CreateJob(&context, r, &response);
    std::printf("fine-tune job: %s\n",
                s.ok() ? response.job().job_id().c_str() : s.error_message().c_str());
    job_id = response.job().job_id();
  }

  const int pid = absl::GetFlag(FLAGS_pid);
  std::vector<std::pair<int, int64_t>> samples;
  std::thread monitor([&] {
    while (pid > 0 && !done) {
      samples.push_back(FdsAndRss(pid));
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });

  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < absl::GetFlag(FLAGS_clients); ++t) clients.emplace_back(client, t);
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  done = true;
  churn.join();
  monitor.join();

  bool failed = probe_mismatches > 0;
  std::printf("\n%d requests in %.1f s, %d clients, %d adapters\n", total, seconds,
              absl::GetFlag(FLAGS_clients), num_adapters);
  std::printf("| kind | codes |\n|---|---|\n");
  for (const auto& [kind, by_code] : codes) {
    std::string row;
    for (const auto& [code, n] : by_code) {
      const bool expected = Expected(kind).count(code) > 0;
      failed = failed || !expected;
      absl::StrAppend(&row, server::GrpcCodeName(code), " ", n, expected ? "" : " (UNEXPECTED)",
                      "; ");
    }
    std::printf("| %s | %s |\n", KindName(kind), row.c_str());
  }
  for (const auto& [message, n] : other_exhausted) {
    std::printf("RESOURCE_EXHAUSTED not from a full queue (UNEXPECTED): %d x %s\n", n,
                message.c_str());
    failed = true;
  }
  std::printf("probes: %d of %d differed from their solo greedy output\n", probe_mismatches,
              codes[Kind::kProbe][grpc::StatusCode::OK]);
  if (!samples.empty()) {
    int64_t max_rss = 0;
    int max_fds = 0;
    for (const auto& [fds, rss] : samples) {
      max_rss = std::max(max_rss, rss);
      max_fds = std::max(max_fds, fds);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto [end_fds, end_rss] = FdsAndRss(pid);
    std::printf("RSS MiB: first %.0f, max %.0f, end %.0f; fds: first %d, max %d, end %d\n",
                samples.front().second / 1048576.0, max_rss / 1048576.0, end_rss / 1048576.0,
                samples.front().first, max_fds, end_fds);
    if (end_fds > samples.front().first + 8) failed = true;
  }
  std::printf("%s\n", failed ? "SOAK FAILED" : "SOAK OK");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace lorad::soak

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (!absl::GetFlag(FLAGS_write_adapters).empty()) return lorad::soak::WriteAdapters();
  return lorad::soak::Run();
}
