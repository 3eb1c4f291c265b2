// Daemon configuration: the ServerConfig struct, its command-line flags and its optional config
// file. Flags override the file; the file overrides the defaults below. Pure functions, no I/O
// except reading the config file named by --config.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

// Everything `lorad` is configured with. Plain data; copyable.
struct ServerConfig {
  // gRPC listen address, "host:port" or "[v6]:port". Port 0 picks a free port (printed on
  // stdout at start).
  std::string listen = "127.0.0.1:50051";
  // Prometheus /metrics HTTP address, "host:port"; empty disables the metrics endpoint.
  std::string metrics_listen = "127.0.0.1:9464";
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
};

// What the command line asked for besides the config.
struct CommandLine {
  // The effective configuration (defaults <- --config file <- flags), validated.
  ServerConfig config;
  // --help was given: print UsageText() and exit 0.
  bool help = false;
  // --version was given: print the version and exit 0.
  bool version = false;
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

// Flag help text for --help.
std::string UsageText();

}  // namespace lorad::server
