// absl::Time -> google.protobuf.Timestamp (seconds and nanoseconds since the Unix epoch).
// Thread-safety: stateless.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace lorad::server {

inline void ToProtoTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t ns = absl::ToUnixNanos(time);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

}  // namespace lorad::server
