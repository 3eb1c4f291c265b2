// `loractl adapters list|get ID|load ID SOURCE [--pin]|unload ID`: the Adapters service.
// list prints one tab-separated line per adapter (id, tier, rank, alpha, bytes, pinned,
// version, source); get and load print "key: value" lines of the adapter.
#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "tools/loractl_commands.h"

namespace lorad::loractl {
namespace {

const char* TierName(v1::ResidencyTier tier) {
  switch (tier) {
    case v1::RESIDENCY_TIER_DEVICE:
      return "device";
    case v1::RESIDENCY_TIER_HOST:
      return "host";
    case v1::RESIDENCY_TIER_DISK:
      return "disk";
    default:
      return "unspecified";
  }
}

void PrintAdapter(const v1::AdapterInfo& a) {
  std::printf(
      "adapter_id: %s\nsource: %s\ntier: %s\nrank: %u\nalpha: %g\nuse_rslora: %s\n"
      "target_modules: %s\nbytes: %llu\npinned: %s\ndigest: %s\nversion: %llu\n"
      "active_requests: %u\n",
      a.adapter_id().c_str(), a.source().c_str(), TierName(a.tier()), a.rank(), a.alpha(),
      a.use_rslora() ? "true" : "false", absl::StrJoin(a.target_modules(), ",").c_str(),
      static_cast<unsigned long long>(a.bytes()), a.pinned() ? "true" : "false", a.digest().c_str(),
      static_cast<unsigned long long>(a.version()), a.active_requests());
}

int Usage(const char* message) {
  std::fprintf(stderr, "loractl: adapters: %s\n", message);
  return kExitUsage;
}

}  // namespace

int RunAdapters(const Invocation& invocation) {
  const std::vector<std::string>& args = invocation.positional;
  if (args.empty()) return Usage("expected list, get ID, load ID SOURCE or unload ID");
  const std::string& verb = args[0];
  const size_t want = verb == "list" ? 1 : verb == "load" ? 3 : 2;
  if ((verb != "list" && verb != "get" && verb != "load" && verb != "unload") ||
      args.size() != want) {
    return Usage("expected list, get ID, load ID SOURCE or unload ID");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(invocation);
  grpc::ClientContext context;
  absl::Status prepared = channel.ok() ? PrepareContext(invocation, &context) : channel.status();
  if (!prepared.ok()) return Usage(std::string(prepared.message()).c_str());
  auto stub = v1::Adapters::NewStub(*channel);
  const std::string command = "adapters " + verb;
  grpc::Status status;
  if (verb == "list") {
    v1::ListAdaptersResponse response;
    status = stub->ListAdapters(&context, v1::ListAdaptersRequest(), &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    for (const v1::AdapterInfo& a : response.adapters()) {
      std::printf("%s\t%s\t%u\t%g\t%llu\t%s\t%llu\t%s\n", a.adapter_id().c_str(),
                  TierName(a.tier()), a.rank(), a.alpha(),
                  static_cast<unsigned long long>(a.bytes()), a.pinned() ? "pinned" : "-",
                  static_cast<unsigned long long>(a.version()), a.source().c_str());
    }
  } else if (verb == "get") {
    v1::GetAdapterRequest request;
    request.set_adapter_id(args[1]);
    v1::GetAdapterResponse response;
    status = stub->GetAdapter(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    PrintAdapter(response.adapter());
  } else if (verb == "load") {
    v1::LoadAdapterRequest request;
    request.set_adapter_id(args[1]);
    request.set_source(args[2]);
    request.set_pin(invocation.BoolFlag("pin"));
    v1::LoadAdapterResponse response;
    status = stub->LoadAdapter(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
    PrintAdapter(response.adapter());
  } else {
    v1::UnloadAdapterRequest request;
    request.set_adapter_id(args[1]);
    v1::UnloadAdapterResponse response;
    status = stub->UnloadAdapter(&context, request, &response);
    if (!status.ok()) return ReportRpcError(command.c_str(), status);
  }
  return kExitOk;
}

}  // namespace lorad::loractl
