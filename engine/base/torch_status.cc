#include "engine/base/torch_status.h"

#include <c10/util/Exception.h>

#include <new>
#include <string>

#include "absl/strings/str_cat.h"

namespace lorad {
namespace {

// Torch messages carry a C++ stack trace after the first line; the first line is the message.
std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

absl::Status TorchCall(const char* what, const std::function<void()>& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const c10::NotImplementedError& e) {
    return absl::UnimplementedError(absl::StrCat(what, ": ", FirstLine(e.msg())));
  } catch (const c10::IndexError& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", FirstLine(e.msg())));
  } catch (const c10::TypeError& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", FirstLine(e.msg())));
  } catch (const c10::ValueError& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", FirstLine(e.msg())));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", FirstLine(e.msg())));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace lorad
