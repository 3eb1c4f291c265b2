#include "tools/loractl_cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lorad::loractl {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

bool IsGlobalFlag(const std::string& name) { return name == kAddrFlag || name == kTimeoutFlag; }

}  // namespace

std::string Invocation::Flag(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<Command>& commands,
                                     const Command** command) {
  Invocation invocation;
  *command = nullptr;
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      if (*command == nullptr) {
        auto it = std::find_if(commands.begin(), commands.end(),
                               [&](const Command& c) { return arg == c.name; });
        if (it == commands.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("unknown command \"", arg, "\" (see --help)"));
        }
        *command = &*it;
      } else {
        invocation.positional.emplace_back(arg);
      }
      continue;
    }
    const size_t eq = arg.find('=');
    std::string name(arg.substr(0, eq));
    if (eq != absl::string_view::npos) {
      flags.emplace_back(name, std::string(arg.substr(eq + 1)));
    } else if (i + 1 < args.size()) {
      flags.emplace_back(name, args[++i]);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
    }
  }
  if (*command == nullptr) return absl::InvalidArgumentError("no command given (see --help)");
  for (auto& [name, value] : flags) {
    const std::vector<std::string>& own = (*command)->flags;
    if (!IsGlobalFlag(name) && std::find(own.begin(), own.end(), name) == own.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for \"", (*command)->name, "\""));
    }
    invocation.flags[name] = std::move(value);
  }
  return invocation;
}

std::shared_ptr<grpc::Channel> Dial(const Invocation& invocation) {
  return grpc::CreateChannel(invocation.Flag(kAddrFlag, kDefaultAddr),
                             grpc::InsecureChannelCredentials());
}

absl::Status SetDeadline(const Invocation& invocation, grpc::ClientContext* context) {
  const std::string text = invocation.Flag(kTimeoutFlag, kDefaultTimeoutS);
  double seconds = 0;
  if (!absl::SimpleAtod(text, &seconds) || !(seconds > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", kTimeoutFlag, "=", text, ": expected a positive number of seconds"));
  }
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  return absl::OkStatus();
}

int ReportRpcError(const char* command, const grpc::Status& status) {
  std::fprintf(stderr, "loractl: %s: %s: %s\n", command, CodeName(status.error_code()),
               status.error_message().c_str());
  return kExitFailed;
}

}  // namespace lorad::loractl
