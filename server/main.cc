// main() of `lorad`: parse the configuration, start the server, load the model (health says
// NOT_SERVING meanwhile), serve until SIGTERM/SIGINT, drain, exit 0. Startup failures (bad flag,
// unreadable or unloadable model, address in use) print one line on stderr and exit 2.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/base/openmp_env.h"
#include "engine/kernels/cpu_isa.h"
#include "server/common/build_info.h"
#include "server/common/config.h"
#include "server/common/grpc_log.h"
#include "server/common/signals.h"
#include "server/server.h"

namespace {

constexpr int kExitStartupError = 2;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "lorad: %s\n", std::string(status.message()).c_str());
  return kExitStartupError;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread: LibTorch's OpenMP workers must not spin on the cores serving inference.
  lorad::ReexecWithPassiveOpenMpWait(argv);
  using namespace lorad::server;
  BlockShutdownSignals();
  RouteGrpcLogsToStderr();

  absl::StatusOr<CommandLine> command_line =
      ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!command_line.ok()) return Fail(command_line.status());
  if (command_line->help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (command_line->check_config) {
    std::printf("lorad: configuration OK\n");
    return 0;
  }
  if (command_line->version) {
    const BuildInfo& info = GetBuildInfo();
    std::printf("lorad %s (commit %s, %s)\n", info.version, info.git_commit, info.compiler);
    return 0;
  }

  absl::StatusOr<std::unique_ptr<LoradServer>> server = LoradServer::Create(command_line->config);
  if (!server.ok()) return Fail(server.status());
  SetGrpcStartupLogsQuiet(true);  // A bind failure is reported once, by Start()'s status.
  absl::Status started = (*server)->Start();
  SetGrpcStartupLogsQuiet(false);
  if (!started.ok()) return Fail(started);

  // Tools and tests read these lines to find the bound ports (useful with port 0).
  std::printf("lorad listening on %s\n", (*server)->listen_address().c_str());
  if (!(*server)->metrics_address().empty()) {
    std::printf("lorad metrics on http://%s/metrics\n", (*server)->metrics_address().c_str());
  }
  if (!(*server)->http_address().empty()) {
    std::printf("lorad http on %s://%s/v1\n",
                command_line->config.tls_cert.empty() ? "http" : "https",
                (*server)->http_address().c_str());
  }
  std::fflush(stdout);

  if (absl::Status loaded = (*server)->LoadModel(); !loaded.ok()) return Fail(loaded);
  // Once the model is loaded, so that a failed start still reports exactly one line.
  std::fprintf(stderr, "lorad: %s\n", lorad::kernels::IsaSelectionDescription());
  std::printf("lorad ready\n");
  std::fflush(stdout);

  const int signal_number = WaitForShutdownSignal();
  const int grace_s = command_line->config.grace_period_s;
  std::fprintf(stderr, "lorad: signal %d, draining for up to %d s\n", signal_number, grace_s);
  (*server)->Shutdown(absl::Seconds(grace_s));
  (*server)->Wait();
  std::fprintf(stderr, "lorad: stopped\n");
  return 0;
}
