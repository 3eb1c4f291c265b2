// loractl: the command-line client of lorad. `loractl <command> [--flags] [args]`; the table
// below lists the commands. Exit codes: 0 success, 1 RPC failed or negative answer, 2 usage.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/loractl_cli.h"
#include "tools/loractl_commands.h"

namespace {

using lorad::loractl::Command;

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"health",
       "health [--service=NAME]  print the server's health; exit 0 only if SERVING",
       {"service"},
       lorad::loractl::RunHealth},
  };
  return kCommands;
}

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: loractl [--addr=HOST:PORT] [--timeout_s=S] <command> [flags] [args]\n"
               "  --addr       lorad's gRPC address [%s]\n"
               "  --timeout_s  RPC deadline in seconds [%s]\ncommands:\n",
               lorad::loractl::kDefaultAddr, lorad::loractl::kDefaultTimeoutS);
  for (const Command& command : Commands()) std::fprintf(out, "  %s\n", command.summary);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "help") {
      PrintUsage(stdout);
      return lorad::loractl::kExitOk;
    }
  }
  const Command* command = nullptr;
  absl::StatusOr<lorad::loractl::Invocation> invocation =
      lorad::loractl::ParseArgs(args, Commands(), &command);
  if (!invocation.ok()) {
    std::fprintf(stderr, "loractl: %s\n", std::string(invocation.status().message()).c_str());
    return lorad::loractl::kExitUsage;
  }
  return command->run(*invocation);
}
