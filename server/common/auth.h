// Bearer-token authentication and role authorization for lorad's RPCs. Tokens come from a file
// of "token role" lines; role `inference` may call lorad.v1.Inference, role `admin` may call
// everything. Clients send "authorization: Bearer <token>".
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace lorad::server {

enum class Role { kInference, kAdmin };

// Immutable after creation; thread-safe.
class Authorizer {
 public:
  // Parses "token role" lines ('#' comments and blank lines skipped). INVALID_ARGUMENT naming
  // `origin` and the line for a bad line, an unknown role or a duplicate token; also when no
  // token is defined.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Parse(absl::string_view text,
                                                           absl::string_view origin);
  // Parse() of the file at `path`; INVALID_ARGUMENT if it cannot be read.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromFile(const std::string& path);

  // The role that RPC `method` ("/lorad.v1.Inference/Generate") needs.
  static Role RequiredRole(absl::string_view method);

  // OK when the call's bearer token has a role that covers `required`; UNAUTHENTICATED without
  // a valid token, PERMISSION_DENIED for a role that does not cover `required`.
  grpc::Status Check(const grpc::ServerContextBase& context, Role required) const;
  // The same check on an "authorization" header value (any transport; nullopt: no header):
  // UNAUTHENTICATED or PERMISSION_DENIED as above.
  absl::Status CheckHeader(std::optional<absl::string_view> authorization, Role required) const;

  // Every known token (for health checks when --open_health is not set).
  std::vector<std::string> tokens() const;

 private:
  struct Entry {
    std::string token;
    std::string digest;  // SHA-256 (hex) of token: what Find compares
    Role role;
  };
  explicit Authorizer(std::vector<Entry> entries) : entries_(std::move(entries)) {}
  // The entry whose token equals `token`, or null. Compares SHA-256 digests in constant time
  // against every entry, so timing reveals neither which entry matched nor a token's length.
  const Entry* Find(absl::string_view token) const;

  const std::vector<Entry> entries_;
};

// auth->Check(context, required), or OK when auth is off (`auth` null).
grpc::Status Authorize(const Authorizer* auth, const grpc::ServerContextBase& context,
                       Role required);

// The check every lorad gRPC service makes before its work, in this order: the caller's token
// covers `required` (Authorize), then the service's dependency is ready (`ready` is set once
// the model has loaded; UNAVAILABLE "the model is still loading" before). On OK, *out is it.
template <typename T>
grpc::Status Admit(const Authorizer* auth, const grpc::ServerContextBase& context, Role required,
                   const std::atomic<T*>& ready, T** out) {
  grpc::Status status = Authorize(auth, context, required);
  if (!status.ok()) return status;
  *out = ready.load(std::memory_order_acquire);
  if (*out == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
  }
  return grpc::Status::OK;
}

}  // namespace lorad::server
