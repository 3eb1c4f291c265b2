#include "tools/loractl_cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/common/grpc_code_name.h"

namespace lorad::loractl {
namespace {

bool IsGlobalFlag(const std::string& name) {
  return name == kAddrFlag || name == kTimeoutFlag || name == kTokenFlag || name == kTlsCaFlag ||
         name == kTlsServerNameFlag;
}

bool IsBoolFlag(const std::vector<Command>& commands, const Command* command,
                const std::string& name) {
  auto has = [&](const Command& c) {
    return std::find(c.bool_flags.begin(), c.bool_flags.end(), name) != c.bool_flags.end();
  };
  if (command != nullptr) return has(*command);
  return std::any_of(commands.begin(), commands.end(), has);
}

}  // namespace

std::string Invocation::Flag(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

std::vector<std::string> Invocation::FlagValues(const std::string& name) const {
  std::vector<std::string> values;
  for (const auto& [flag, value] : flag_list) {
    if (flag == name) values.push_back(value);
  }
  return values;
}

bool Invocation::BoolFlag(const std::string& name) const {
  const std::string value = Flag(name, "false");
  return value == "true" || value == "1";
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
    } else if (IsBoolFlag(commands, *command, name)) {
      flags.emplace_back(name, "true");
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
    invocation.flags[name] = value;
    invocation.flag_list.emplace_back(name, std::move(value));
  }
  return invocation;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const Invocation& invocation) {
  const std::string address = invocation.Flag(kAddrFlag, kDefaultAddr);
  const std::string ca_path = invocation.Flag(kTlsCaFlag, "");
  if (ca_path.empty()) {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }
  std::ifstream file(ca_path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_ca=", ca_path, ": cannot open file"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = contents.str();
  grpc::ChannelArguments args;
  const std::string server_name = invocation.Flag(kTlsServerNameFlag, "");
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), args);
}

void AddToken(const Invocation& invocation, grpc::ClientContext* context) {
  const std::string token = invocation.Flag(kTokenFlag, "");
  if (!token.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

absl::Status PrepareContext(const Invocation& invocation, grpc::ClientContext* context,
                            const char* default_timeout_s) {
  AddToken(invocation, context);
  const std::string text = invocation.Flag(kTimeoutFlag, default_timeout_s);
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
  std::fprintf(stderr, "loractl: %s: %s: %s\n", command, server::GrpcCodeName(status.error_code()),
               status.error_message().c_str());
  return kExitFailed;
}

}  // namespace lorad::loractl
