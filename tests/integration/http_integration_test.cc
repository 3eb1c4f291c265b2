// The OpenAI-compatible HTTP front against the real daemon on the tiny model: models, health
// and metrics on one port; greedy completions equal to gRPC's; the raw SSE framing (role first,
// finish_reason, usage chunk, [DONE]); errors as OpenAI objects with their status codes;
// bearer-token auth with the gRPC roles; vLLM's runtime adapter load and unload; a client that
// disconnects mid-stream, or gives up on a non-streaming request, frees its slot;
// 256 streams open at once.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures/tiny_adapter.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"

namespace lorad::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kBase[] = "tiny";  // the tiny model file is tiny.gguf

std::string AdapterRoot() {
  const std::string root = TestDir() + "/http_adapter_root";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root + "/good");
  TinyAdapterOptions options;
  options.b_stddev = 0.5f;
  EXPECT_TRUE(WriteTinyPeftAdapter(TinyModelOptions(), options, root + "/good").ok());
  return root;
}

std::string TokensFile() {
  const std::string path = TestDir() + "/http_tokens.txt";
  std::ofstream(path) << "inf-token inference\nadmin-token admin\n";
  return path;
}

json Body(const httplib::Result& r) { return json::parse(r->body, nullptr, false); }

class HttpIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    lorad_ = new RunningLorad;
    ASSERT_NO_FATAL_FAILURE(
        StartLorad({"--adapter_root=" + AdapterRoot(), "--preload_adapters=good=good",
                    "--max_queue=300", "--max_request_bytes=65536"},
                   lorad_));
  }
  static void TearDownTestSuite() {
    StopLorad(lorad_);
    delete lorad_;
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", lorad_->http_port);
    c.set_read_timeout(60, 0);
    return c;
  }
  // The daemon reports exactly one cancelled request within `seconds`.
  void ExpectCancelledWithinSeconds(int seconds) {
    httplib::Client c = Client();
    bool cancelled = false;
    for (int i = 0; i < seconds * 10 && !cancelled; ++i) {
      auto m = c.Get("/metrics");
      ASSERT_TRUE(m);
      cancelled = m->body.find("lorad_requests_finished_total{outcome=\"cancelled\"} 1") !=
                  std::string::npos;
      if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(cancelled) << c.Get("/metrics")->body;
  }
  static RunningLorad* lorad_;
};
RunningLorad* HttpIntegrationTest::lorad_ = nullptr;

TEST_F(HttpIntegrationTest, ModelsHealthAndMetricsOnOnePort) {
  httplib::Client c = Client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200);
  const json list = Body(models);
  ASSERT_EQ(list["data"].size(), 2u) << models->body;
  EXPECT_EQ(list["data"][0]["id"], kBase);
  EXPECT_EQ(list["data"][1]["id"], "good");
  EXPECT_EQ(list["data"][1]["parent"], kBase);
  EXPECT_EQ(list["data"][1]["object"], "model");
  auto one = c.Get("/v1/models/good");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(Body(one)["id"], "good");
  auto missing = c.Get("/v1/models/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Body(missing)["error"]["type"], "not_found_error");
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("lorad_build_info{"));
  EXPECT_THAT(metrics->body, HasSubstr("lorad_serving 1"));
  // Each answered request is counted by route and code; unknown paths fold into "other".
  EXPECT_EQ(c.Get("/no/such/path")->status, 404);
  auto counted = c.Get("/metrics");
  ASSERT_TRUE(counted);
  EXPECT_THAT(counted->body,
              HasSubstr(R"(lorad_http_requests_total{code="404",route="/v1/models/{id}"} 1)"));
  EXPECT_THAT(counted->body,
              HasSubstr(R"(lorad_http_requests_total{code="200",route="/health"} 1)"));
  EXPECT_THAT(counted->body, HasSubstr(R"(lorad_http_requests_total{code="404",route="other"} 1)"));
}

TEST_F(HttpIntegrationTest, GreedyCompletionsEqualGrpc) {
  auto stub = v1::Inference::NewStub(lorad_->Channel());
  httplib::Client c = Client();
  for (const std::string& model :
       {std::string(kBase), std::string("good"), absl::StrCat(kBase, ":good")}) {
    v1::GenerateRequest grpc_request = GreedyRequest("hello world", 10);
    if (model != kBase) grpc_request.set_adapter_id("good");
    StreamResult grpc = RunStream(*stub, grpc_request, std::chrono::seconds(30));
    ASSERT_TRUE(grpc.status.ok()) << grpc.status.error_message();
    auto r = c.Post("/v1/completions",
                    json{{"model", model},
                         {"prompt", "hello world"},
                         {"max_tokens", 10},
                         {"temperature", 0},
                         {"ignore_eos", true}}
                        .dump(),
                    "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json body = Body(r);
    EXPECT_EQ(body["object"], "text_completion");
    EXPECT_EQ(body["model"], model);
    EXPECT_EQ(body["choices"][0]["text"], grpc.text) << model;
    EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(body["usage"]["completion_tokens"], 10);
  }
}

TEST_F(HttpIntegrationTest, ChatStreamFramingIsOpenAis) {
  httplib::Client c = Client();
  std::string raw;
  auto r = c.Post("/v1/chat/completions",
                  json{{"model", "good"},
                       {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                       {"max_tokens", 6},
                       {"temperature", 0},
                       {"ignore_eos", true},
                       {"stream", true},
                       {"stream_options", {{"include_usage", true}}}}
                      .dump(),
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  std::vector<std::string> events = absl::StrSplit(r->body, "\n\n", absl::SkipEmpty());
  ASSERT_GE(events.size(), 4u) << r->body;
  EXPECT_EQ(events.back(), "data: [DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].rfind("data: ", 0), 0u) << events[i];
    const json chunk = json::parse(events[i].substr(6));
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    if (i + 2 == events.size()) {  // the usage chunk
      EXPECT_TRUE(chunk["choices"].empty());
      EXPECT_EQ(chunk["usage"]["completion_tokens"], 6);
      continue;
    }
    const json& choice = chunk["choices"][0];
    if (i == 0) EXPECT_EQ(choice["delta"]["role"], "assistant");
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (i + 3 == events.size())
      EXPECT_EQ(choice["finish_reason"], "length");
    else
      EXPECT_TRUE(choice["finish_reason"].is_null());
  }
  // The same request without streaming gives the same text.
  auto whole = c.Post("/v1/chat/completions",
                      json{{"model", "good"},
                           {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                           {"max_tokens", 6},
                           {"temperature", 0},
                           {"ignore_eos", true}}
                          .dump(),
                      "application/json");
  ASSERT_TRUE(whole);
  EXPECT_EQ(Body(whole)["choices"][0]["message"]["content"], text);
  EXPECT_EQ(Body(whole)["choices"][0]["message"]["role"], "assistant");
}

// x-lorad-adapter (the header a router hashes on) must name the request's own adapter, over
// HTTP and gRPC alike; a matching header is accepted, a missing one is no claim.
TEST_F(HttpIntegrationTest, AffinityHeaderMustMatchTheRequestedAdapter) {
  httplib::Client c = Client();
  const std::string body =
      json{{"model", "good"}, {"prompt", "hi"}, {"max_tokens", 2}, {"temperature", 0}}.dump();
  auto same = c.Post("/v1/completions", {{"x-lorad-adapter", "good"}}, body, "application/json");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 200) << same->body;
  auto other = c.Post("/v1/completions", {{"x-lorad-adapter", "other"}}, body, "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 400) << other->body;
  EXPECT_EQ(Body(other)["error"]["param"], "model");
  EXPECT_THAT(Body(other)["error"]["message"].get<std::string>(), HasSubstr("x-lorad-adapter"));
  const std::string base = json{{"model", kBase}, {"prompt", "hi"}, {"max_tokens", 2}}.dump();
  auto base_named =
      c.Post("/v1/completions", {{"x-lorad-adapter", "good"}}, base, "application/json");
  ASSERT_TRUE(base_named);
  EXPECT_EQ(base_named->status, 400) << base_named->body;

  auto stub = v1::Inference::NewStub(lorad_->Channel());
  v1::GenerateRequest request = GreedyRequest("hello", 2);
  request.set_adapter_id("good");
  for (const auto& [header, code] :
       {std::pair<std::string, grpc::StatusCode>{"good", grpc::StatusCode::OK},
        {"", grpc::StatusCode::OK},
        {"bad", grpc::StatusCode::INVALID_ARGUMENT}}) {
    grpc::ClientContext context;
    context.AddMetadata("x-lorad-adapter", header);
    v1::GenerateResponse response;
    const grpc::Status status = stub->Generate(&context, request, &response);
    EXPECT_EQ(status.error_code(), code) << header << ": " << status.error_message();
  }
}

TEST_F(HttpIntegrationTest, BadRequestsGetOpenAiErrors) {
  httplib::Client c = Client();
  struct Case {
    std::string body;
    int status;
    std::string param;
  } cases[] = {
      {"{not json", 400, ""},
      {"[1, 2]", 400, ""},
      {R"({"model": "tiny"})", 400, "prompt"},
      {R"({"model": "tiny", "prompt": 5})", 400, "prompt"},
      {R"({"model": "tiny", "prompt": "x", "max_tokens": "many"})", 400, "max_tokens"},
      {R"({"model": "tiny", "prompt": "x", "n": 2})", 400, "n"},
      {R"({"model": "tiny", "prompt": "x", "presence_penalty": "high"})", 400, "presence_penalty"},
      {R"({"model": "tiny", "prompt": "x", "frequency_penalty": 3})", 400, ""},
      {R"({"model": "tiny", "prompt": "x", "temperature": -1})", 400, ""},
      {R"({"model": "nope", "prompt": "x"})", 404, "model"},
      {R"({"prompt": "x"})", 400, "model"},
  };
  for (const Case& t : cases) {
    auto r = c.Post("/v1/completions", t.body, "application/json");
    ASSERT_TRUE(r) << t.body;
    EXPECT_EQ(r->status, t.status) << t.body << " -> " << r->body;
    const json body = Body(r);
    ASSERT_TRUE(body.contains("error")) << r->body;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
    if (!t.param.empty()) EXPECT_EQ(body["error"]["param"], t.param) << r->body;
  }
  auto huge = c.Post("/v1/completions", std::string(100000, 'x'), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_TRUE(Body(huge).contains("error")) << huge->body;
  auto unknown = c.Get("/v2/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(HttpIntegrationTest, LoadAndUnloadLoraAdapterAtRuntime) {
  httplib::Client c = Client();
  auto load = c.Post("/v1/load_lora_adapter", R"({"lora_name": "extra", "lora_path": "good"})",
                     "application/json");
  ASSERT_TRUE(load);
  EXPECT_EQ(load->status, 200) << load->body;
  auto listed = c.Get("/v1/models/extra");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  auto unload = c.Post("/v1/unload_lora_adapter", R"({"lora_name": "extra"})", "application/json");
  ASSERT_TRUE(unload);
  EXPECT_EQ(unload->status, 200) << unload->body;
  EXPECT_EQ(Body(unload)["deleted"], true);
  auto gone = c.Post("/v1/completions", R"({"model": "extra", "prompt": "x", "max_tokens": 2})",
                     "application/json");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404) << gone->body;
  auto again = c.Post("/v1/unload_lora_adapter", R"({"lora_name": "extra"})", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404) << again->body;
  EXPECT_EQ(Body(again)["error"]["param"], "lora_name");
  auto bad = c.Post("/v1/unload_lora_adapter", R"({"lora_name": 3})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_EQ(Body(bad)["error"]["param"], "lora_name");
}

TEST_F(HttpIntegrationTest, DisconnectMidStreamFreesTheSlot) {
  // A long stream read for a moment and dropped: the daemon cancels the request.
  {
    httplib::Client c = Client();
    std::atomic<int> chunks{0};
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{
        {"model", kBase},
        {"prompt", "count"},
        {"max_tokens", 4000},
        {"ignore_eos", true},
        {"stream",
         true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      return ++chunks < 3;  // false: the client closes the connection
    };
    auto r = c.send(req);
    EXPECT_GE(chunks.load(), 3);
  }
  // The engine cancels it well before 4000 tokens could have been generated.
  ExpectCancelledWithinSeconds(10);
}

TEST_F(HttpIntegrationTest, ClientGoneDuringANonStreamingRequestCancelsIt) {
  // No byte is written until the whole completion is ready, so only the connection's state can
  // tell the daemon that this client gave up (after 0.5 s) on 4000 tokens.
  {
    httplib::Client c("127.0.0.1", lorad_->http_port);
    c.set_read_timeout(0, 500000);
    auto r = c.Post(
        "/v1/completions",
        json{{"model", kBase}, {"prompt", "count"}, {"max_tokens", 4000}, {"ignore_eos", true}}
            .dump(),
        "application/json");
    EXPECT_FALSE(r);  // timed out
  }
  ExpectCancelledWithinSeconds(10);
  // The slot is free again: the next request is served at once.
  auto r = Client().Post("/v1/completions",
                         json{{"model", kBase}, {"prompt", "hi"}, {"max_tokens", 2}}.dump(),
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(HttpIntegrationTest, TwoHundredFiftySixStreamsOpenAtOnce) {
  constexpr int kStreams = 256;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", lorad_->http_port);
      c.set_read_timeout(120, 0);
      auto r = c.Post("/v1/completions",
                      json{{"model", i % 2 ? "good" : kBase},
                           {"prompt", "hello"},
                           {"max_tokens", 8},
                           {"ignore_eos", true},
                           {"stream", true}}
                          .dump(),
                      "application/json");
      if (r && r->status == 200 && r->body.find("data: [DONE]") != std::string::npos) {
        ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kStreams);
}

TEST(HttpAuthTest, TokensAndRolesAreTheGrpcOnes) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad(
      {"--auth_tokens_file=" + TokensFile(), "--adapter_root=" + AdapterRoot()}, &lorad));
  httplib::Client c("127.0.0.1", lorad.http_port);
  const std::string body = json{{"model", kBase}, {"prompt", "hi"}, {"max_tokens", 2}}.dump();
  auto none = c.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(Body(none)["error"]["type"], "authentication_error");
  auto bad =
      c.Post("/v1/completions", {{"Authorization", "Bearer wrong"}}, body, "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto good =
      c.Post("/v1/completions", {{"Authorization", "Bearer inf-token"}}, body, "application/json");
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200) << good->body;
  // Loading an adapter needs the admin role.
  const std::string load = json{{"lora_name", "good"}, {"lora_path", "good"}}.dump();
  auto denied = c.Post("/v1/load_lora_adapter", {{"Authorization", "Bearer inf-token"}}, load,
                       "application/json");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(Body(denied)["error"]["type"], "permission_error");
  auto loaded = c.Post("/v1/load_lora_adapter", {{"Authorization", "Bearer admin-token"}}, load,
                       "application/json");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->status, 200) << loaded->body;
  auto models = c.Get("/v1/models", {{"Authorization", "Bearer inf-token"}});
  ASSERT_TRUE(models);
  EXPECT_THAT(models->body, HasSubstr("\"good\""));
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 401);  // not --open_health
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

}  // namespace
}  // namespace lorad::testing
