// The bearer-token check of an HTTP request (the OpenAI front and the --metrics_listen port):
// the same Authorizer, roles and codes as the gRPC services.
#pragma once

#include "absl/status/status.h"
#include "server/common/auth.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace lorad::server {

// OK when `auth` is null (auth off) or the request's "Authorization: Bearer" token has a role
// that covers `required`; else UNAUTHENTICATED (no or unknown token) or PERMISSION_DENIED.
absl::Status AuthorizeHttp(const Authorizer* auth, const httplib::Request& req, Role required);

// Sets the HTTP status of a failed AuthorizeHttp on `res` (401 with "WWW-Authenticate: Bearer",
// or 403); the caller writes the body in its endpoint's format.
void SetAuthFailure(const absl::Status& status, httplib::Response& res);

}  // namespace lorad::server
