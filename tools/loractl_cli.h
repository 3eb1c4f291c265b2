// loractl's command-line plumbing: the subcommand table entry, parsed arguments, and the gRPC
// channel every subcommand dials. Each subcommand lives in its own loractl_<name>.cc.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace lorad::loractl {

// Exit codes scripts can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // The RPC failed, or the answer was negative.
inline constexpr int kExitUsage = 2;   // Bad command line.

// A subcommand's arguments after parsing.
struct Invocation {
  // --name=value flags (global and the command's own); absent flags are absent.
  std::map<std::string, std::string> flags;
  // Non-flag arguments after the subcommand name.
  std::vector<std::string> positional;

  // The flag's value, or `fallback` when not given.
  std::string Flag(const std::string& name, const std::string& fallback) const;
};

// One row of the subcommand table.
struct Command {
  // The word after `loractl`, e.g. "health".
  const char* name;
  // One line for `loractl --help`, starting with the usage.
  const char* summary;
  // Flags the command accepts besides the global ones.
  std::vector<std::string> flags;
  // Runs the command; returns the process exit code.
  int (*run)(const Invocation& invocation);
};

// Flags every command accepts, with their defaults.
inline constexpr char kAddrFlag[] = "addr";
inline constexpr char kDefaultAddr[] = "127.0.0.1:50051";
inline constexpr char kTimeoutFlag[] = "timeout_s";
inline constexpr char kDefaultTimeoutS[] = "10";

// Parses `args` (argv without argv[0]) against `commands`. Sets *command to the chosen row.
// INVALID_ARGUMENT naming the bad argument on error.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<Command>& commands, const Command** command);

// An insecure channel to --addr.
std::shared_ptr<grpc::Channel> Dial(const Invocation& invocation);

// Sets the deadline from --timeout_s on `context`. INVALID_ARGUMENT if it is not a positive
// number.
absl::Status SetDeadline(const Invocation& invocation, grpc::ClientContext* context);

// Prints "loractl: <command>: <CODE>: <message>" to stderr; returns kExitFailed.
int ReportRpcError(const char* command, const grpc::Status& status);

}  // namespace lorad::loractl
