// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every
// line must be a # HELP, a # TYPE, or a sample "name{labels} value [timestamp]" of a family
// declared by a preceding # TYPE.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::testing {

struct PromSample {
  std::string name;  // may carry a _bucket/_sum/_count/_total suffix of its family
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;
  std::vector<PromSample> samples;
};

// Parses `text`; INVALID_ARGUMENT naming the line on any syntax error, a sample of an
// undeclared family, or a histogram without its +Inf bucket, _sum and _count.
absl::StatusOr<std::map<std::string, PromFamily>> ParsePromText(const std::string& text);

}  // namespace lorad::testing
