#include "server/common/status_to_grpc.h"

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

struct MappingCase {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

class StatusToGrpcTest : public ::testing::TestWithParam<MappingCase> {};

TEST_P(StatusToGrpcTest, KeepsCodeAndMessage) {
  const grpc::Status status = ToGrpcStatus(absl::Status(GetParam().absl_code, "adapter x: why"));
  EXPECT_EQ(status.error_code(), GetParam().grpc_code);
  EXPECT_EQ(status.error_message(), "adapter x: why");
}

INSTANTIATE_TEST_SUITE_P(
    AllCanonicalCodes, StatusToGrpcTest,
    ::testing::Values(
        MappingCase{absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
        MappingCase{absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
        MappingCase{absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
        MappingCase{absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
        MappingCase{absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
        MappingCase{absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
        MappingCase{absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
        MappingCase{absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
        MappingCase{absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
        MappingCase{absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
        MappingCase{absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
        MappingCase{absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
        MappingCase{absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
        MappingCase{absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
        MappingCase{absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
        MappingCase{absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED}));

TEST(StatusToGrpcTest, OkIsOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

}  // namespace
}  // namespace lorad::server
