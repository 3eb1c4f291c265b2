#include "tests/server/reflection_client.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"

namespace lorad::testing {
namespace {

constexpr char kMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// Writes one request, half-closes, collects every response until the server ends the call.
class OneRequestBidi : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  OneRequestBidi(grpc::GenericStub* stub, grpc::ClientContext* context, grpc::ByteBuffer request)
      : request_(std::move(request)) {
    stub->PrepareBidiStreamingCall(context, kMethod, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    responses_.push_back(response_);
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }

  grpc::Status Await() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return status_;
  }

  const std::vector<grpc::ByteBuffer>& responses() const { return responses_; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::vector<grpc::ByteBuffer> responses_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel) {
  namespace pb = google::protobuf;
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  const pb::Descriptor* request_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const pb::Descriptor* response_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  if (request_type == nullptr || response_type == nullptr) {
    return absl::FailedPreconditionError("reflection descriptors not linked in");
  }
  pb::DynamicMessageFactory factory(pool);
  std::unique_ptr<pb::Message> request(factory.GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"),
                                      "*");
  std::string request_bytes = request->SerializeAsString();
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request_buffer(&slice, 1);

  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  OneRequestBidi call(&stub, &context, std::move(request_buffer));
  grpc::Status status = call.Await();
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("reflection call: ", status.error_message()));
  }
  if (call.responses().size() != 1) {
    return absl::DataLossError(absl::StrCat("expected 1 response, got ", call.responses().size()));
  }
  std::vector<grpc::Slice> slices;
  (void)call.responses()[0].Dump(&slices);
  std::string response_bytes;
  for (const grpc::Slice& s : slices) {
    response_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  std::unique_ptr<pb::Message> response(factory.GetPrototype(response_type)->New());
  if (!response->ParseFromString(response_bytes)) return absl::DataLossError("bad response");
  const pb::Message& list = response->GetReflection()->GetMessage(
      *response, response_type->FindFieldByName("list_services_response"));
  const pb::FieldDescriptor* service_field = list.GetDescriptor()->FindFieldByName("service");
  std::vector<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const pb::Message& service = list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    names.push_back(service.GetReflection()->GetString(
        service, service.GetDescriptor()->FindFieldByName("name")));
  }
  return names;
}

}  // namespace lorad::testing
