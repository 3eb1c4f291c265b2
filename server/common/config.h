// Daemon configuration: the ServerConfig struct, its command-line flags and its optional config
// file. Flags override the file; the file overrides the defaults below. Pure functions, no I/O
// except reading the config file named by --config.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/finetune/train_config.h"

namespace lorad::server {

// Everything `lorad` is configured with. Plain data; copyable.
struct ServerConfig {
  // gRPC listen address, "host:port" or "[v6]:port". Port 0 picks a free port (printed on
  // stdout at start).
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics HTTP address, "host:port"; empty disables the metrics endpoint.
  std::string metrics_listen = "127.0.0.1:9464";
  // OpenAI-compatible HTTP address, "host:port" (/v1/completions, /v1/chat/completions,
  // /v1/models, /health, /metrics); empty disables it.
  std::string http_listen = "127.0.0.1:8000";
  // HTTP worker threads: connections (open streams) served at once.
  int http_threads = 256;
  // Base model: a GGUF file or a Hugging Face model directory. Empty means the default model,
  // <data_dir>/models/SmolLM2-135M-Instruct.Q4_1.gguf (what scripts/fetch_model.sh writes).
  std::string model;
  // Root for jobs, adapters and the default model.
  std::string data_dir = "./data";
  // On SIGTERM/SIGINT, seconds that running RPCs get to finish before they are cancelled. The
  // default keeps signal-to-exit under 10 s.
  int grace_period_s = 8;
  // CPU threads for the engine's compute; 0 means one per core.
  int threads = 0;
  // Memory for the KV cache, in MiB.
  int kv_cache_mb = 512;
  // Token budget of one forward step (prefill chunks + decode tokens).
  int max_batch_tokens = 512;
  // Sequences decoding at once.
  int max_running = 64;
  // Requests queued or running; beyond it a request gets RESOURCE_EXHAUSTED.
  int max_queue = 256;
  // Largest SamplingParams.max_new_tokens a request may ask for.
  int max_new_tokens = 4096;
  // SamplingParams.max_new_tokens used when a request leaves it 0 (capped by max_new_tokens).
  int default_max_new_tokens = 256;
  // Longest prompt in tokens; 0 means the model's context length minus one.
  int max_prompt_tokens = 0;
  // Largest gRPC request message in bytes (bigger: RESOURCE_EXHAUSTED from gRPC).
  int max_request_bytes = 4 << 20;
  // Directory that adapter sources are relative to; empty means <data_dir>/adapters (created
  // if missing).
  std::string adapter_root;
  // Host memory for resident adapter weights, in MiB.
  int adapter_host_budget_mb = 1024;
  // Percent of adapter_host_budget_mb that pinned adapters may hold, so they cannot starve
  // the rest.
  int adapter_max_pinned_percent = 50;
  // While a cold adapter waits for room in the cache, an adapter active this long stops
  // admitting requests so its memory frees (LoRAX's adapter_cycle_time_s), in milliseconds.
  int adapter_cycle_ms = 2000;
  // Adapters registered at start: "id=source" entries separated by commas (source relative to
  // adapter_root). A failure to load one stops the start.
  std::string preload_adapters;
  // File of "token role" lines (role: inference or admin); empty disables authentication.
  std::string auth_tokens_file;
  // With auth on, grpc.health.v1.Health needs a token (any role) unless this is set.
  bool open_health = false;
  // With auth on, /metrics (both ports) needs a token (any role) unless this is set.
  bool open_metrics = false;
  // With auth on, server reflection is served (to anyone) only when this is set: gRPC 1.51's
  // reflection service cannot check a token, so it is either open or absent. Without auth,
  // reflection is always on.
  bool open_reflection = false;
  // Fine-tune jobs: largest dataset (inline or file) in bytes.
  int max_dataset_bytes = 64 << 20;
  // Fine-tune jobs: default checkpoint interval in optimizer steps (a job may set its own).
  int checkpoint_every_steps = 50;
  // Fine-tune jobs validating or queued at once; beyond: RESOURCE_EXHAUSTED.
  int max_queued_jobs = 16;
  // LibTorch intra-op threads for training; 0 means LibTorch's default.
  int train_threads = 0;
  // Fine-tuning: recompute layer activations in backward (less memory) or keep them (faster);
  // kAuto keeps them when a job's estimate fits train_activation_memory_mb.
  finetune::RecomputePolicy train_recompute = finetune::RecomputePolicy::kAuto;
  int train_activation_memory_mb = finetune::kDefaultActivationBudgetMb;
  // Most MiB of a job's LoRA parameters, gradients and optimizer state (CreateJob checks it).
  int train_adapter_memory_mb = finetune::kDefaultLoraStateBudgetMb;
  // While inference has work, training waits up to this long per pause point, then goes on.
  int train_max_pause_ms = 500;
  // PEM certificate chain and private key; both set: the gRPC port serves TLS only.
  std::string tls_cert;
  std::string tls_key;
};

// What the command line asked for besides the config.
struct CommandLine {
  // The effective configuration (defaults <- --config file <- flags), validated.
  ServerConfig config;
  // --help was given: print UsageText() and exit 0.
  bool help = false;
  // --version was given: print the version and exit 0.
  bool version = false;
  // --check_config was given: the configuration is valid (else ParseCommandLine failed);
  // print "configuration OK" and exit 0 without starting.
  bool check_config = false;
};

// Parses `args` (argv without argv[0]). Accepts --name=value and --name value; --config=path
// loads a file first. Returns INVALID_ARGUMENT naming the flag or file line on any error.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args);

// Applies a config file's text to `config`. The text is a JSON object ({"listen": "...",
// "grace_period_s": 5}) when it starts with '{', else "key = value" lines ('#' starts a
// comment). Keys are the flag names. `origin` names the file in error messages.
absl::Status ApplyConfigText(absl::string_view text, absl::string_view origin,
                             ServerConfig* config);

// Checks the values of a complete config (address syntax, ranges). INVALID_ARGUMENT on error.
absl::Status ValidateConfig(const ServerConfig& config);

// The model path `config` resolves to (config.model, or the default under data_dir).
std::string ResolvedModelPath(const ServerConfig& config);
// The base model's id in the HTTP API (/v1/models, `model`): the model file's name without
// ".gguf", or the model directory's name.
std::string BaseModelId(const ServerConfig& config);

// Flag help text for --help.
std::string UsageText();

}  // namespace lorad::server
