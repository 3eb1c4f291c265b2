// Status propagation macros for absl::Status / absl::StatusOr at module boundaries.
// The Abseil packaged in Debian 12 predates its own RETURN_IF_ERROR, so lorad carries these.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LORAD_STATUS_CONCAT_INNER(a, b) a##b
#define LORAD_STATUS_CONCAT(a, b) LORAD_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function when not OK.
#define LORAD_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status lorad_status_ = (expr);         \
    if (!lorad_status_.ok()) return lorad_status_; \
  } while (0)

// `LORAD_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value of an absl::StatusOr or returns
// its status from the enclosing function.
#define LORAD_ASSIGN_OR_RETURN(lhs, rexpr) \
  LORAD_ASSIGN_OR_RETURN_IMPL(LORAD_STATUS_CONCAT(lorad_statusor_, __LINE__), lhs, rexpr)

#define LORAD_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr)  \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
