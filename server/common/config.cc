#include "server/common/config.h"

#include <filesystem>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/adapters/adapter_preload.h"
#include "server/common/host_port.h"

namespace lorad::server {
namespace {

constexpr char kDefaultModelRelativePath[] = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

absl::Status SetInt(absl::string_view name, absl::string_view value, int min, int max, int* out) {
  int parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", value, ": expected an integer in [", min, ", ", max, "]"));
  }
  *out = parsed;
  return absl::OkStatus();
}

absl::Status SetBool(absl::string_view name, absl::string_view value, bool* out) {
  if (value == "true" || value == "1") {
    *out = true;
  } else if (value == "false" || value == "0") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", value, ": expected true or false"));
  }
  return absl::OkStatus();
}

// One configuration key: its flag name, help and how it is stored.
struct Option {
  const char* name;
  const char* help;
  absl::Status (*set)(absl::string_view value, ServerConfig* config);
};

constexpr Option kOptions[] = {
    {"listen", "gRPC listen address host:port (port 0: any free port) [127.0.0.1:50051]",
     [](absl::string_view v, ServerConfig* c) {
       c->listen = std::string(v);
       return absl::OkStatus();
     }},
    {"metrics_listen", "Prometheus /metrics address host:port; empty disables [127.0.0.1:9464]",
     [](absl::string_view v, ServerConfig* c) {
       c->metrics_listen = std::string(v);
       return absl::OkStatus();
     }},
    {"http_listen",
     "OpenAI-compatible HTTP address host:port (/v1/..., /health, /metrics); empty disables "
     "[127.0.0.1:8000]",
     [](absl::string_view v, ServerConfig* c) {
       c->http_listen = std::string(v);
       return absl::OkStatus();
     }},
    {"http_threads", "HTTP worker threads: connections and open streams served at once [256]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("http_threads", v, 1, 4096, &c->http_threads);
     }},
    {"model",
     "base model: GGUF file or HF model directory [<data_dir>/"
     "models/...gguf]",
     [](absl::string_view v, ServerConfig* c) {
       c->model = std::string(v);
       return absl::OkStatus();
     }},
    {"data_dir", "root for jobs, adapters and the default model [./data]",
     [](absl::string_view v, ServerConfig* c) {
       c->data_dir = std::string(v);
       return absl::OkStatus();
     }},
    {"grace_period_s", "seconds running RPCs get to finish after SIGTERM [8]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("grace_period_s", v, 0, 3600, &c->grace_period_s);
     }},
    {"threads", "CPU compute threads; 0 = one per core [0]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("threads", v, 0, 4096, &c->threads);
     }},
    {"kv_cache_mb", "KV cache memory in MiB [512]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("kv_cache_mb", v, 1, 1 << 20, &c->kv_cache_mb);
     }},
    {"max_batch_tokens", "token budget of one forward step [512]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_batch_tokens", v, 1, 1 << 20, &c->max_batch_tokens);
     }},
    {"max_running", "sequences decoding at once [64]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_running", v, 1, 1 << 16, &c->max_running);
     }},
    {"max_queue", "requests queued or running; beyond: RESOURCE_EXHAUSTED [256]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_queue", v, 1, 1 << 20, &c->max_queue);
     }},
    {"max_new_tokens", "largest max_new_tokens a request may ask for [4096]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_new_tokens", v, 1, 1 << 20, &c->max_new_tokens);
     }},
    {"default_max_new_tokens", "max_new_tokens when a request gives 0 [256]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("default_max_new_tokens", v, 1, 1 << 20, &c->default_max_new_tokens);
     }},
    {"max_prompt_tokens", "longest prompt in tokens; 0 = context length - 1 [0]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_prompt_tokens", v, 0, 1 << 24, &c->max_prompt_tokens);
     }},
    {"max_request_bytes", "largest gRPC request message in bytes [4194304]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_request_bytes", v, 1024, 1 << 30, &c->max_request_bytes);
     }},
    {"adapter_root", "directory adapter sources are relative to [<data_dir>/adapters]",
     [](absl::string_view v, ServerConfig* c) {
       c->adapter_root = std::string(v);
       return absl::OkStatus();
     }},
    {"adapter_host_budget_mb", "host memory for resident adapters in MiB [1024]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("adapter_host_budget_mb", v, 1, 1 << 24, &c->adapter_host_budget_mb);
     }},
    {"adapter_max_pinned_percent", "share of the adapter budget pinned adapters may hold [50]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("adapter_max_pinned_percent", v, 0, 100, &c->adapter_max_pinned_percent);
     }},
    {"adapter_cycle_ms",
     "while a cold adapter waits for cache room, active adapters rotate out after this [2000]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("adapter_cycle_ms", v, 1, 3600 * 1000, &c->adapter_cycle_ms);
     }},
    {"preload_adapters", "adapters loaded at start: id=source[,id=source...] []",
     [](absl::string_view v, ServerConfig* c) {
       c->preload_adapters = std::string(v);
       return absl::OkStatus();
     }},
    {"auth_tokens_file", "file of 'token role' lines (inference|admin); empty: no auth []",
     [](absl::string_view v, ServerConfig* c) {
       c->auth_tokens_file = std::string(v);
       return absl::OkStatus();
     }},
    {"open_health", "with auth, serve grpc.health.v1.Health without a token too [false]",
     [](absl::string_view v, ServerConfig* c) {
       return SetBool("open_health", v, &c->open_health);
     }},
    {"open_metrics",
     "with auth, serve /metrics (on --metrics_listen and --http_listen) without a token too; "
     "else a scrape needs a token of any role [false]",
     [](absl::string_view v, ServerConfig* c) {
       return SetBool("open_metrics", v, &c->open_metrics);
     }},
    {"open_reflection", "with auth, serve server reflection (without a token) [false]",
     [](absl::string_view v, ServerConfig* c) {
       return SetBool("open_reflection", v, &c->open_reflection);
     }},
    {"max_dataset_bytes", "largest fine-tune dataset in bytes [67108864]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_dataset_bytes", v, 1, 1 << 30, &c->max_dataset_bytes);
     }},
    {"checkpoint_every_steps", "fine-tune checkpoint interval in optimizer steps [50]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("checkpoint_every_steps", v, 1, 1 << 30, &c->checkpoint_every_steps);
     }},
    {"max_queued_jobs", "fine-tune jobs validating or queued; beyond: RESOURCE_EXHAUSTED [16]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("max_queued_jobs", v, 1, 1 << 20, &c->max_queued_jobs);
     }},
    {"train_threads", "LibTorch threads for fine-tuning; 0 = LibTorch's default [0]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("train_threads", v, 0, 4096, &c->train_threads);
     }},
    {"train_recompute",
     "fine-tuning recomputes layer activations in backward (true: ~3x less memory, ~30% "
     "slower), keeps them (false), or keeps them when they fit train_activation_memory_mb "
     "(auto) [auto]",
     [](absl::string_view v, ServerConfig* c) {
       absl::Status s = finetune::ParseRecomputePolicy(std::string(v), &c->train_recompute);
       if (s.ok()) return s;
       return absl::InvalidArgumentError(
           absl::StrCat("--train_recompute=", v, ": expected auto, true or false"));
     }},
    {"train_activation_memory_mb",
     "most MiB of activations a fine-tune micro-batch may use: with --train_recompute=auto, "
     "activations are kept when they fit and recomputed otherwise; a job that does not fit "
     "even so fails before training (0: no limit, and auto always recomputes) [4096]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("train_activation_memory_mb", v, 0, 1 << 24, &c->train_activation_memory_mb);
     }},
    {"train_adapter_memory_mb",
     "most MiB a fine-tune job's LoRA parameters, gradients and AdamW state may use (16 bytes "
     "per parameter); CreateJob refuses a rank and target set that needs more with "
     "RESOURCE_EXHAUSTED [4096]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("train_adapter_memory_mb", v, 1, 1 << 24, &c->train_adapter_memory_mb);
     }},
    {"train_max_pause_ms", "longest wait of training for busy inference, per pause point [500]",
     [](absl::string_view v, ServerConfig* c) {
       return SetInt("train_max_pause_ms", v, 0, 600000, &c->train_max_pause_ms);
     }},
    {"tls_cert", "PEM certificate chain; with --tls_key the gRPC port serves TLS []",
     [](absl::string_view v, ServerConfig* c) {
       c->tls_cert = std::string(v);
       return absl::OkStatus();
     }},
    {"tls_key", "PEM private key for --tls_cert []",
     [](absl::string_view v, ServerConfig* c) {
       c->tls_key = std::string(v);
       return absl::OkStatus();
     }},
};

const Option* FindOption(absl::string_view name) {
  for (const Option& option : kOptions) {
    if (name == option.name) return &option;
  }
  return nullptr;
}

absl::Status ApplyJson(absl::string_view text, absl::string_view origin, ServerConfig* config) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a JSON object"));
  }
  for (const auto& [key, value] : json.items()) {
    const Option* option = FindOption(key);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": unknown key \"", key, "\""));
    }
    std::string text_value;
    if (value.is_string()) {
      text_value = value.get<std::string>();
    } else if (value.is_number_integer() || value.is_boolean()) {
      text_value = value.dump();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ": key \"", key, "\" must be a string, an integer or a boolean"));
    }
    absl::Status status = option->set(text_value, config);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyKeyValue(absl::string_view text, absl::string_view origin, ServerConfig* config) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_number, ": expected key = value"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    const Option* option = FindOption(key);
    if (option == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_number, ": unknown key \"", key, "\""));
    }
    absl::Status status = option->set(value, config);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_number, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path, ServerConfig* config) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat("--config=", path, ": cannot open file"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  return ApplyConfigText(contents.str(), path, config);
}

}  // namespace

absl::Status ApplyConfigText(absl::string_view text, absl::string_view origin,
                             ServerConfig* config) {
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) {
    return ApplyJson(text, origin, config);
  }
  return ApplyKeyValue(text, origin, config);
}

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  CommandLine result;
  std::string config_path;
  std::vector<std::pair<const Option*, std::string>> flags;  // Applied after the file.
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\" (flags are --name=value; see --help)"));
    }
    if (arg == "help") {
      result.help = true;
      continue;
    }
    if (arg == "version") {
      result.version = true;
      continue;
    }
    if (arg == "check_config") {
      result.check_config = true;
      continue;
    }
    const size_t eq = arg.find('=');
    const absl::string_view name = arg.substr(0, eq);
    const Option* option = FindOption(name);
    if (option == nullptr && name != "config") {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
    }
    if (option == nullptr) {
      config_path = value;
    } else {
      flags.emplace_back(option, std::move(value));
    }
  }
  if (result.help || result.version) return result;
  if (!config_path.empty()) LORAD_RETURN_IF_ERROR(ApplyConfigFile(config_path, &result.config));
  for (const auto& [option, value] : flags) {
    LORAD_RETURN_IF_ERROR(option->set(value, &result.config));
  }
  LORAD_RETURN_IF_ERROR(ValidateConfig(result.config));
  return result;
}

absl::Status ValidateConfig(const ServerConfig& config) {
  if (absl::StatusOr<HostPort> listen = ParseHostPort(config.listen); !listen.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--listen: ", listen.status().message()));
  }
  if (!config.metrics_listen.empty()) {
    if (absl::StatusOr<HostPort> metrics = ParseHostPort(config.metrics_listen); !metrics.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics_listen: ", metrics.status().message()));
    }
  }
  if (!config.http_listen.empty()) {
    if (absl::StatusOr<HostPort> http = ParseHostPort(config.http_listen); !http.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--http_listen: ", http.status().message()));
    }
  }
  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: must not be empty");
  if (absl::Status preload = ParsePreloadList(config.preload_adapters).status(); !preload.ok()) {
    return preload;
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key must be given together");
  }
  return absl::OkStatus();
}

std::string ResolvedModelPath(const ServerConfig& config) {
  if (!config.model.empty()) return config.model;
  return absl::StrCat(config.data_dir, "/", kDefaultModelRelativePath);
}

std::string BaseModelId(const ServerConfig& config) {
  std::filesystem::path path(ResolvedModelPath(config));
  if (path.filename().empty()) path = path.parent_path();  // "dir/"
  std::string name = path.filename().string();
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0)
    name.resize(name.size() - 5);
  return name.empty() ? "base" : name;
}

std::string UsageText() {
  std::string text =
      "usage: lorad [--config=FILE] [--flag=value ...]\n"
      "Serves one 4-bit base model with many LoRA adapters over gRPC.\n\n"
      "  --config=FILE  JSON object or key = value lines with the keys below; flags override it\n";
  for (const Option& option : kOptions) {
    absl::StrAppend(&text, "  --", option.name, "  ", option.help, "\n");
  }
  absl::StrAppend(&text,
                  "  --check_config  validate the configuration (file and flags), print "
                  "\"configuration OK\" and exit 0, or the error and exit 2\n"
                  "  --help, --version\n");
  return text;
}

}  // namespace lorad::server
