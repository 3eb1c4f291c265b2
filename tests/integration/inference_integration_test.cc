// The Inference service of a real lorad on the tiny model: streaming equals unary, concurrent
// streams, cancellation and deadlines free their slot, a flood gets RESOURCE_EXHAUSTED, SIGTERM
// lets running streams finish, and bad inputs get INVALID_ARGUMENT naming the field.
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/base/process_memory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;

// Enough tokens that a request outlives the test's next few RPCs on the tiny model.
constexpr uint32_t kLongTokens = 2000;

// Retries a short Generate until it is not RESOURCE_EXHAUSTED (the freed slot shows up within
// one engine step); returns the last status.
grpc::Status GenerateWhenSlotFree(v1::Inference::Stub& stub) {
  grpc::Status status;
  for (int attempt = 0; attempt < 100; ++attempt) {
    v1::GenerateResponse response;
    status = RunUnary(stub, GreedyRequest("after", 4), &response);
    if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

class InferenceIntegrationTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& args) {
    ASSERT_NO_FATAL_FAILURE(StartLorad(args, &lorad_));
    stub_ = v1::Inference::NewStub(lorad_.Channel());
  }
  void TearDown() override {
    stub_.reset();  // An idle open channel would delay the server's shutdown by seconds.
    if (lorad_.process != nullptr && !stopped_) EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad_));
  }

  RunningLorad lorad_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  bool stopped_ = false;
};

TEST_F(InferenceIntegrationTest, ConcurrentStreamsEqualUnaryResults) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  const std::vector<std::string> prompts = {"alpha",         "beta gamma",          "hello world",
                                            "<|im_start|>x", "the quick brown fox", "1 2 3"};
  std::vector<v1::GenerateResponse> unary(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    grpc::Status status = RunUnary(*stub_, GreedyRequest(prompts[i], 24), &unary[i]);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(unary[i].token_ids_size(), 24);
    EXPECT_EQ(unary[i].finish_reason(), v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(unary[i].usage().completion_tokens(), 24u);
    EXPECT_GT(unary[i].usage().prompt_tokens(), 0u);
    EXPECT_FALSE(unary[i].request_id().empty());
  }
  std::vector<StreamResult> streams(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] { streams[i] = RunStream(*stub_, GreedyRequest(prompts[i], 24)); });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    ASSERT_TRUE(streams[i].status.ok()) << streams[i].status.error_message();
    EXPECT_EQ(streams[i].text, unary[i].text());
    EXPECT_THAT(streams[i].token_ids, ::testing::ElementsAreArray(unary[i].token_ids()));
    EXPECT_EQ(streams[i].finish_reason, v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(streams[i].usage.completion_tokens(), 24u);
    EXPECT_GT(streams[i].messages, 1);
  }
}

TEST_F(InferenceIntegrationTest, ChatMessagesLogprobsAndTokenize) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  v1::GenerateRequest request = GreedyRequest("", 5);
  v1::ChatMessage* message = request.mutable_messages()->add_messages();
  message->set_role("user");
  message->set_content("hi");
  request.mutable_sampling()->set_logprobs(3);
  v1::GenerateResponse response;
  grpc::Status status = RunUnary(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.logprobs_size(), 5);
  for (int i = 0; i < response.logprobs_size(); ++i) {
    EXPECT_EQ(response.logprobs(i).chosen().token_id(), response.token_ids(i));
    EXPECT_EQ(response.logprobs(i).top_size(), 3);
    EXPECT_LE(response.logprobs(i).chosen().logprob(), 0.0f);
  }

  grpc::ClientContext context;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello world");
  v1::TokenizeResponse tokens;
  status = stub_->Tokenize(&context, tokenize, &tokens);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GT(tokens.token_ids_size(), 0);
  EXPECT_EQ(tokens.tokens_size(), tokens.token_ids_size());
  v1::GenerateResponse generated;
  ASSERT_TRUE(RunUnary(*stub_, GreedyRequest("hello world", 1), &generated).ok());
  EXPECT_EQ(generated.usage().prompt_tokens(), static_cast<uint32_t>(tokens.token_ids_size()));
}

TEST_F(InferenceIntegrationTest, CancelledStreamFreesItsSlot) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_queue=1"}));
  grpc::ClientContext context;
  auto reader = stub_->GenerateStream(&context, GreedyRequest("long", kLongTokens));
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  // The one slot is taken.
  v1::GenerateResponse response;
  grpc::Status busy = RunUnary(*stub_, GreedyRequest("busy", 4), &response);
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << busy.error_message();
  context.TryCancel();
  while (reader->Read(&first)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  grpc::Status after = GenerateWhenSlotFree(*stub_);
  EXPECT_TRUE(after.ok()) << after.error_message();
}

// Open descriptors and resident bytes of process `pid`.
std::pair<int, int64_t> FdsAndRss(pid_t pid) {
  return {OpenDescriptorCount(pid), ResidentBytesOf(pid)};
}

// 1,000 clients that go away mid-stream: most cancel, every tenth drops its own connection
// with the call still open. Afterwards the daemon serves, and its descriptors and memory are
// back where they were after a warm-up of the same traffic.
TEST_F(InferenceIntegrationTest, ThousandMidStreamDisconnectsLeaveNothingBehind) {
  ASSERT_NO_FATAL_FAILURE(Start({}));
  auto disconnect = [&](int i) {
    std::shared_ptr<grpc::Channel> own =
        i % 10 == 0 ? grpc::CreateChannel(lorad_.grpc_address, grpc::InsecureChannelCredentials())
                    : nullptr;
    auto own_stub = own != nullptr ? v1::Inference::NewStub(own) : nullptr;
    v1::Inference::Stub& stub = own_stub != nullptr ? *own_stub : *stub_;
    auto context = std::make_unique<grpc::ClientContext>();
    auto reader = stub.GenerateStream(context.get(), GreedyRequest("long", kLongTokens));
    v1::GenerateResponse first;
    EXPECT_TRUE(reader->Read(&first)) << "request " << i;
    context->TryCancel();
    if (own == nullptr) {
      while (reader->Read(&first)) {
      }
      reader->Finish().IgnoreError();
    }
    // With its own channel, the call, its context and the connection are dropped unfinished.
    reader.reset();
    context.reset();
  };
  auto settle = [&] {
    ASSERT_TRUE(GenerateWhenSlotFree(*stub_).ok());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  };
  for (int i = 0; i < 100; ++i) disconnect(i);
  ASSERT_NO_FATAL_FAILURE(settle());
  const auto [fds_before, rss_before] = FdsAndRss(lorad_.process->pid());
  for (int i = 0; i < 1000; ++i) disconnect(i);
  ASSERT_NO_FATAL_FAILURE(settle());
  const auto [fds_after, rss_after] = FdsAndRss(lorad_.process->pid());
  EXPECT_LE(fds_after, fds_before + 2) << "before " << fds_before;
#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine holds freed memory: RSS says nothing
  EXPECT_LE(rss_after, rss_before + rss_before / 10) << "before " << rss_before;
#endif
  v1::GenerateResponse response;
  EXPECT_TRUE(RunUnary(*stub_, GreedyRequest("still here", 4), &response).ok());
}

TEST_F(InferenceIntegrationTest, ExpiredDeadlineFreesItsSlot) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_queue=1"}));
  v1::GenerateResponse response;
  grpc::Status status = RunUnary(*stub_, GreedyRequest("long", kLongTokens), &response,
                                 std::chrono::milliseconds(150));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  grpc::Status after = GenerateWhenSlotFree(*stub_);
  EXPECT_TRUE(after.ok()) << after.error_message();
  StreamResult stream =
      RunStream(*stub_, GreedyRequest("long", kLongTokens), std::chrono::milliseconds(150));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  after = GenerateWhenSlotFree(*stub_);
  EXPECT_TRUE(after.ok()) << after.error_message();
}

TEST_F(InferenceIntegrationTest, FloodBeyondQueueGetsResourceExhaustedAndServerKeepsServing) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_queue=2"}));
  constexpr int kClients = 12;
  std::vector<StreamResult> results(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = RunStream(*stub_, GreedyRequest(absl::StrCat("flood ", i), 400)); });
  }
  for (std::thread& thread : threads) thread.join();
  int ok = 0, exhausted = 0;
  for (const StreamResult& result : results) {
    if (result.status.ok()) {
      ++ok;
      EXPECT_EQ(result.usage.completion_tokens(), 400u);
    } else {
      EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << result.status.error_message();
      EXPECT_THAT(result.status.error_message(), HasSubstr("queue is full (2 requests"));
      ++exhausted;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(exhausted, 1);
  grpc::Status after = GenerateWhenSlotFree(*stub_);
  EXPECT_TRUE(after.ok()) << after.error_message();
}

TEST_F(InferenceIntegrationTest, SigtermLetsRunningStreamsFinishAndExitsZero) {
  ASSERT_NO_FATAL_FAILURE(Start({"--grace_period_s=20"}));
  constexpr int kStreams = 3;
  constexpr uint32_t kTokens = 1500;
  std::atomic<int> started{0};
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      auto reader = stub_->GenerateStream(&context, GreedyRequest(absl::StrCat("s", i), kTokens));
      v1::GenerateResponse message;
      bool first = true;
      while (reader->Read(&message)) {
        if (first) started.fetch_add(1);
        first = false;
        results[i].token_ids.insert(results[i].token_ids.end(), message.token_ids().begin(),
                                    message.token_ids().end());
        if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
          results[i].finish_reason = message.finish_reason();
        }
      }
      if (first) started.fetch_add(1);
      results[i].status = reader->Finish();
    });
  }
  while (started.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  lorad_.process->Signal(SIGTERM);
  // New work is refused while draining (or the port is already closed).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  v1::GenerateResponse response;
  grpc::Status refused = RunUnary(*stub_, GreedyRequest("late", 2), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  for (std::thread& thread : threads) thread.join();
  for (const StreamResult& result : results) {
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.token_ids.size(), kTokens);
    EXPECT_EQ(result.finish_reason, v1::FINISH_REASON_LENGTH);
  }
  stopped_ = true;
  absl::StatusOr<int> code = lorad_.process->Wait(20000);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

struct BadInputCase {
  const char* name;
  std::function<void(v1::GenerateRequest*)> mutate;
  grpc::StatusCode code;
  const char* message_part;
};

class BadInputTest : public ::testing::TestWithParam<BadInputCase> {
 protected:
  static void SetUpTestSuite() {
    lorad_ = new RunningLorad;
    ASSERT_NO_FATAL_FAILURE(StartLorad({"--max_new_tokens=64", "--max_prompt_tokens=32"}, lorad_));
  }
  static void TearDownTestSuite() {
    EXPECT_NO_FATAL_FAILURE(StopLorad(lorad_));
    delete lorad_;
  }
  static RunningLorad* lorad_;
};
RunningLorad* BadInputTest::lorad_ = nullptr;

TEST_P(BadInputTest, GetsItsCodeAndMessageAndServerStaysUp) {
  ASSERT_NE(lorad_, nullptr);
  auto stub = v1::Inference::NewStub(lorad_->Channel());
  v1::GenerateRequest request = GreedyRequest("hello", 4);
  GetParam().mutate(&request);
  v1::GenerateResponse response;
  grpc::Status status = RunUnary(*stub, request, &response);
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(GetParam().message_part));
  StreamResult stream = RunStream(*stub, request);
  EXPECT_EQ(stream.status.error_code(), GetParam().code) << stream.status.error_message();
  EXPECT_THAT(stream.status.error_message(), HasSubstr(GetParam().message_part));
  EXPECT_EQ(stream.messages, 0);
  ASSERT_TRUE(RunUnary(*stub, GreedyRequest("still up", 2), &response).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadInputTest,
    ::testing::Values(
        BadInputCase{"EmptyPrompt", [](v1::GenerateRequest* r) { r->set_prompt(""); },
                     grpc::StatusCode::INVALID_ARGUMENT, "prompt is empty"},
        BadInputCase{"InvalidUtf8", [](v1::GenerateRequest* r) { r->set_prompt("ab\xff\xfe"); },
                     grpc::StatusCode::INVALID_ARGUMENT, "UTF-8"},
        BadInputCase{"NoInput", [](v1::GenerateRequest* r) { r->clear_input(); },
                     grpc::StatusCode::INVALID_ARGUMENT, "prompt"},
        BadInputCase{"NoMessages", [](v1::GenerateRequest* r) { r->mutable_messages(); },
                     grpc::StatusCode::INVALID_ARGUMENT, "messages"},
        BadInputCase{"UnknownRole",
                     [](v1::GenerateRequest* r) {
                       v1::ChatMessage* m = r->mutable_messages()->add_messages();
                       m->set_role("wizard");
                       m->set_content("hi");
                     },
                     grpc::StatusCode::INVALID_ARGUMENT, "wizard"},
        BadInputCase{"NegativeTemperature",
                     [](v1::GenerateRequest* r) { r->mutable_sampling()->set_temperature(-1); },
                     grpc::StatusCode::INVALID_ARGUMENT, "sampling.temperature"},
        BadInputCase{"TopPAboveOne",
                     [](v1::GenerateRequest* r) { r->mutable_sampling()->set_top_p(1.5f); },
                     grpc::StatusCode::INVALID_ARGUMENT, "sampling.top_p"},
        BadInputCase{"MaxNewTokensOverLimit",
                     [](v1::GenerateRequest* r) { r->mutable_sampling()->set_max_new_tokens(65); },
                     grpc::StatusCode::INVALID_ARGUMENT,
                     "sampling.max_new_tokens must be in [1, 64]"},
        BadInputCase{"TooManyStops",
                     [](v1::GenerateRequest* r) {
                       for (int i = 0; i < 17; ++i) r->mutable_sampling()->add_stop("s");
                     },
                     grpc::StatusCode::INVALID_ARGUMENT, "sampling.stop"},
        BadInputCase{"TooManyLogprobs",
                     [](v1::GenerateRequest* r) { r->mutable_sampling()->set_logprobs(21); },
                     grpc::StatusCode::INVALID_ARGUMENT, "sampling.logprobs"},
        BadInputCase{"PromptTooLong",
                     [](v1::GenerateRequest* r) { r->set_prompt(std::string(200, 'z') + " y"); },
                     grpc::StatusCode::INVALID_ARGUMENT, "the limit is 32"},
        BadInputCase{"MessageTooLarge",
                     [](v1::GenerateRequest* r) { r->set_prompt(std::string(5 << 20, 'a')); },
                     grpc::StatusCode::INVALID_ARGUMENT,
                     "request is 5242891 bytes; the limit is 4194304 bytes"},
        BadInputCase{"MessageFarTooLarge",
                     [](v1::GenerateRequest* r) { r->set_prompt(std::string(12 << 20, 'a')); },
                     grpc::StatusCode::RESOURCE_EXHAUSTED, "larger than max"},
        BadInputCase{"UnknownAdapter",
                     [](v1::GenerateRequest* r) { r->set_adapter_id("no-such-adapter"); },
                     grpc::StatusCode::NOT_FOUND, "no-such-adapter"}),
    [](const ::testing::TestParamInfo<BadInputCase>& info) { return info.param.name; });

}  // namespace
}  // namespace lorad::testing
