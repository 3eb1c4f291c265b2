#include "server/common/http_auth.h"

#include <optional>
#include <string>

#include "httplib.h"
#include "server/common/status_to_http.h"

namespace lorad::server {

absl::Status AuthorizeHttp(const Authorizer* auth, const httplib::Request& req, Role required) {
  if (auth == nullptr) return absl::OkStatus();
  const std::string value = req.get_header_value("Authorization");
  std::optional<absl::string_view> header;
  if (req.has_header("Authorization")) header = value;
  return auth->CheckHeader(header, required);
}

void SetAuthFailure(const absl::Status& status, httplib::Response& res) {
  res.status = HttpStatusOf(status.code());
  if (res.status == 401) res.set_header("WWW-Authenticate", "Bearer");
}

}  // namespace lorad::server
