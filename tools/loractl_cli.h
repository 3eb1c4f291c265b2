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
  // --name=value flags (global and the command's own); absent flags are absent. A repeated
  // flag keeps its last value here; FlagValues() has all of them.
  std::map<std::string, std::string> flags;
  // Every flag in command-line order, repeats included.
  std::vector<std::pair<std::string, std::string>> flag_list;
  // Non-flag arguments after the subcommand name.
  std::vector<std::string> positional;

  // The flag's value, or `fallback` when not given.
  std::string Flag(const std::string& name, const std::string& fallback) const;
  // Every value given for a repeatable flag, in order.
  std::vector<std::string> FlagValues(const std::string& name) const;
  // A boolean flag: true when given as --name, --name=true or --name=1.
  bool BoolFlag(const std::string& name) const;
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
  // Flags among `flags` that take no value (--name alone means true).
  std::vector<std::string> bool_flags = {};
};

// Flags every command accepts, with their defaults.
inline constexpr char kAddrFlag[] = "addr";
inline constexpr char kDefaultAddr[] = "127.0.0.1:50051";
inline constexpr char kTimeoutFlag[] = "timeout_s";
inline constexpr char kDefaultTimeoutS[] = "10";
inline constexpr char kTokenFlag[] = "token";   // bearer token sent as "authorization"
inline constexpr char kTlsCaFlag[] = "tls_ca";  // PEM root certificates; set: dial with TLS
inline constexpr char kTlsServerNameFlag[] = "tls_server_name";  // overrides the TLS host name

// Parses `args` (argv without argv[0]) against `commands`. Sets *command to the chosen row.
// INVALID_ARGUMENT naming the bad argument on error.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<Command>& commands, const Command** command);

// A channel to --addr: TLS with --tls_ca's roots when given, else insecure. INVALID_ARGUMENT
// when the CA file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const Invocation& invocation);

// Adds the bearer token from --token (if any) to `context`.
void AddToken(const Invocation& invocation, grpc::ClientContext* context);

// Sets the deadline from --timeout_s (default `default_timeout_s`) and the bearer token from
// --token on `context`. INVALID_ARGUMENT if the timeout is not a positive number.
absl::Status PrepareContext(const Invocation& invocation, grpc::ClientContext* context,
                            const char* default_timeout_s = kDefaultTimeoutS);

// Prints "loractl: <command>: <CODE>: <message>" to stderr; returns kExitFailed.
int ReportRpcError(const char* command, const grpc::Status& status);

}  // namespace lorad::loractl
