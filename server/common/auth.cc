#include "server/common/auth.h"

#include <optional>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/sha256.h"

namespace lorad::server {
namespace {

// Compares two equal-length digests without an early exit.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string TokenDigest(absl::string_view token) { return adapters::Sha256Hex({token}); }

}  // namespace

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Parse(absl::string_view text,
                                                              absl::string_view origin) {
  std::vector<Entry> entries;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_number, ": expected \"token role\""));
    }
    Role role;
    if (fields[1] == "inference") {
      role = Role::kInference;
    } else if (fields[1] == "admin") {
      role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(origin, ":", line_number, ": unknown role \"",
                                                     fields[1], "\" (inference or admin)"));
    }
    for (const Entry& entry : entries) {
      if (entry.token == fields[0]) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ":", line_number, ": duplicate token"));
      }
    }
    entries.push_back({std::string(fields[0]), TokenDigest(fields[0]), role});
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": no tokens defined"));
  }
  return std::unique_ptr<Authorizer>(new Authorizer(std::move(entries)));
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_tokens_file=", path, ": cannot open file"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  return Parse(contents.str(), path);
}

Role Authorizer::RequiredRole(absl::string_view method) {
  return absl::StartsWith(method, "/lorad.v1.Inference/") ? Role::kInference : Role::kAdmin;
}

const Authorizer::Entry* Authorizer::Find(absl::string_view token) const {
  // Digests, not the tokens, are compared: they have one length, so neither the comparison's
  // time nor its early length check says anything about a token's length or prefix. Every entry
  // is compared, whichever matches.
  const std::string digest = TokenDigest(token);
  const Entry* found = nullptr;
  for (const Entry& entry : entries_) {
    if (ConstantTimeEquals(entry.digest, digest)) found = &entry;
  }
  return found;
}

absl::Status Authorizer::CheckHeader(std::optional<absl::string_view> authorization,
                                     Role required) const {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError("missing \"authorization: Bearer <token>\"");
  }
  absl::string_view value = *authorization;
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("authorization must be \"Bearer <token>\"");
  }
  const Entry* entry = Find(absl::StripAsciiWhitespace(value));
  if (entry == nullptr) return absl::UnauthenticatedError("invalid token");
  if (required == Role::kAdmin && entry->role != Role::kAdmin) {
    return absl::PermissionDeniedError(
        "this call needs a token with role admin; the token has role inference");
  }
  return absl::OkStatus();
}

grpc::Status Authorizer::Check(const grpc::ServerContextBase& context, Role required) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  std::optional<absl::string_view> header;
  if (it != metadata.end()) header = absl::string_view(it->second.data(), it->second.size());
  const absl::Status status = CheckHeader(header, required);
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(status.code() == absl::StatusCode::kPermissionDenied
                          ? grpc::StatusCode::PERMISSION_DENIED
                          : grpc::StatusCode::UNAUTHENTICATED,
                      std::string(status.message()));
}

std::vector<std::string> Authorizer::tokens() const {
  std::vector<std::string> out;
  for (const Entry& entry : entries_) out.push_back(entry.token);
  return out;
}

grpc::Status Authorize(const Authorizer* auth, const grpc::ServerContextBase& context,
                       Role required) {
  return auth == nullptr ? grpc::Status::OK : auth->Check(context, required);
}

}  // namespace lorad::server
