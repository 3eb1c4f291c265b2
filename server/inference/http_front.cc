#include "server/inference/http_front.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/adapter_store.h"
#include "engine/engine.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/common/affinity.h"
#include "server/common/auth.h"
#include "server/common/http_auth.h"
#include "server/common/http_listen.h"
#include "server/common/http_peer.h"
#include "server/common/status_to_http.h"
#include "server/common/write_queue.h"
#include "server/inference/generate_call.h"
#include "server/inference/openai_api.h"
#include "server/metrics/http_metrics.h"
#include "server/metrics/metrics.h"

namespace lorad::server {
namespace {

using nlohmann::json;

constexpr char kJson[] = "application/json";
// How often a waiting stream checks that its client is still connected.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(200);

void SendError(httplib::Response& res, const absl::Status& status, const std::string& param = "") {
  res.status = HttpStatusOf(status.code());
  if (res.status == 429) res.set_header("Retry-After", "1");
  res.set_content(OpenAiErrorJson(status, param), kJson);
}

// The end of an HTTP reply's queue (the last GenerateOutput itself says how it ended).
struct Ended {};
using OutputQueue = WriteQueue<GenerateOutput, Ended>;

// Queues a request's engine outputs for the HTTP worker that pulls them; the final output
// (`finished`, which a failed one also is) also queues the end.
class QueueSink final : public GenerateSink {
 public:
  explicit QueueSink(std::shared_ptr<OutputQueue> queue) : queue_(std::move(queue)) {}
  void OnOutput(GenerateOutput output) override {
    std::optional<Ended> end;
    if (output.finished) end = Ended{};
    (void)queue_->Push(std::move(output), end);  // a pulling writer never takes the turn here
  }

 private:
  std::shared_ptr<OutputQueue> queue_;
};

// One request's wait on its outputs, pulled by the HTTP worker serving it. A client that went
// away cancels the request in the engine and drops what is still queued for it; the server
// stopping cancels it too, and its final (CANCELLED) output is still delivered.
class OutputWait {
 public:
  OutputWait(const std::atomic<bool>* stopping, Engine* engine, std::string request_id,
             std::shared_ptr<OutputQueue> queue, HttpPeer peer)
      : stopping_(stopping),
        engine_(engine),
        request_id_(std::move(request_id)),
        queue_(std::move(queue)),
        peer_(std::move(peer)) {}

  // The next output; nullopt once the queue has ended. Looks at the client at least every
  // kStreamPoll, whether or not outputs keep coming.
  std::optional<GenerateOutput> Next() {
    while (!ended_) {
      OutputQueue::Step step = queue_->WaitNext(kStreamPoll);
      if (step.end.has_value()) ended_ = true;
      if (!ended_ && !cancelled_ && absl::Now() >= next_check_) {
        next_check_ = absl::Now() + kStreamPoll;
        if (peer_.Gone()) {
          Cancel();
        } else if (stopping_->load()) {
          cancelled_ = true;
          engine_->Cancel(request_id_);
        }
      }
      if (step.message.has_value()) return std::move(step.message);
    }
    return std::nullopt;
  }

  // The client is gone: stops the request; nothing more is delivered but the queue's end.
  void Cancel() {
    if (queue_->broken()) return;
    cancelled_ = true;
    queue_->Break();
    engine_->Cancel(request_id_);
  }

 private:
  const std::atomic<bool>* stopping_;
  Engine* engine_;
  std::string request_id_;
  std::shared_ptr<OutputQueue> queue_;
  HttpPeer peer_;
  bool cancelled_ = false;
  bool ended_ = false;
  absl::Time next_check_ = absl::Now() + kStreamPoll;  // the first look costs a socket search
};

// One streamed request: the SSE framing of its outputs, written as they come.
struct Stream {
  OpenAiRequest request;
  std::string response_id;
  int64_t created;
  OutputWait wait;
  std::optional<GenerateOutput> first;  // taken by the handler, not yet written
  bool first_chunk = true;
  bool done = false;  // [DONE] was written

  static std::string Event(const std::string& data) { return absl::StrCat("data: ", data, "\n\n"); }

  // The SSE events of one output.
  std::string Events(GenerateOutput out) {
    if (!out.status.ok()) {
      done = true;
      return Event(OpenAiErrorJson(out.status)) + Event("[DONE]");
    }
    std::string text;
    OpenAiOutput delta;
    delta.text = std::move(out.text);
    delta.logprobs = std::move(out.logprobs);
    if (out.finished) delta.finish = out.finish_reason;
    if (!delta.text.empty() || delta.finish.has_value() || first_chunk) {
      text = Event(OpenAiChunkJson(request, response_id, created, delta, first_chunk));
      first_chunk = false;
    }
    if (out.finished) {
      if (request.include_usage) {
        text += Event(OpenAiUsageChunkJson(request, response_id, created, out.prompt_tokens,
                                           out.completion_tokens));
      }
      text += Event("[DONE]");
      done = true;
    }
    return text;
  }

  // Writes the whole stream (cpp-httplib calls it once); false when the client is gone.
  bool Pump(httplib::DataSink& sink) {
    std::optional<GenerateOutput> out = std::move(first);
    if (!out.has_value()) out = wait.Next();
    while (out.has_value()) {
      const std::string text = Events(*std::move(out));
      if (!text.empty() && !sink.write(text.data(), text.size())) {
        if (!done) wait.Cancel();
        return false;
      }
      out = wait.Next();
    }
    if (!done) return false;  // cancelled: the client is gone
    sink.done();
    return true;
  }
};

// True when `body` is an object with a string at each of `keys`; otherwise a 400 naming the first
// key that is not.
bool HasStrings(const json& body, std::initializer_list<const char*> keys, httplib::Response& res) {
  for (const char* key : keys) {
    if (!body.is_object() || !body.contains(key) || !body[key].is_string()) {
      SendError(res, absl::InvalidArgumentError(absl::StrCat(key, ": must be a string")), key);
      return false;
    }
  }
  return true;
}

json ModelJson(const std::string& id, int64_t created, const std::string& parent) {
  json m = {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "lorad"}};
  m["parent"] = parent.empty() ? json() : json(parent);
  m["root"] = parent.empty() ? id : parent;
  return m;
}

}  // namespace

HttpFront::HttpFront(HttpFrontOptions options) : options_(std::move(options)) {}

HttpFront::~HttpFront() { Stop(); }

int HttpFront::port() const { return running_->port(); }

void HttpFront::Stop() {
  stopping_.store(true);
  if (running_ != nullptr) running_->Stop();
}

absl::StatusOr<std::unique_ptr<HttpFront>> HttpFront::Start(HttpFrontOptions options) {
  std::unique_ptr<HttpFront> front(new HttpFront(std::move(options)));
  const HttpFrontOptions& o = front->options_;
  std::unique_ptr<httplib::Server> server;
  if (!o.tls_cert.empty() && !o.tls_key.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(
          "--http_listen: cannot use --tls_cert / --tls_key for HTTPS");
    }
    server = std::move(ssl);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(o.threads, 1);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
  server->set_keep_alive_max_count(1000);
  server->set_keep_alive_timeout(5);
  server->set_read_timeout(10, 0);
  front->Route(*server);
  if (o.metrics != nullptr) {
    front->http_metrics_ = std::make_unique<HttpMetrics>(o.metrics->registry());
    server->set_logger([metrics = front->http_metrics_.get()](const httplib::Request& req,
                                                              const httplib::Response& res) {
      metrics->Observe(req.path, res.status);
    });
  }
  absl::StatusOr<std::unique_ptr<RunningHttpServer>> running =
      RunningHttpServer::Start(std::move(server), o.listen, "--http_listen");
  if (!running.ok()) return running.status();
  front->running_ = *std::move(running);
  return front;
}

void HttpFront::Route(httplib::Server& server) {
  const HttpFrontOptions& o = options_;

  // The check every endpoint makes; false (with the response written) when the caller may not.
  auto admit = [&o](const httplib::Request& req, httplib::Response& res, Role role,
                    bool open) -> bool {
    if (open) return true;
    const absl::Status status = AuthorizeHttp(o.auth, req, role);
    if (status.ok()) return true;
    SendError(res, status);
    SetAuthFailure(status, res);
    return false;
  };

  // Bodies cpp-httplib rejects itself (413, 400, 404 of unknown paths) get OpenAI errors.
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
      case 413:
        res.set_content(OpenAiErrorJson(absl::InvalidArgumentError(
                            "the request body is over the server's limit (--max_request_bytes)")),
                        kJson);
        break;
      case 404:
        res.set_content(OpenAiErrorJson(absl::NotFoundError("no such endpoint")), kJson);
        break;
      default:
        res.set_content(
            OpenAiErrorJson(absl::InvalidArgumentError(absl::StrCat("HTTP ", res.status))), kJson);
    }
  });

  server.Get("/health", [&o, admit](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res, Role::kInference, o.open_health)) return;
    const bool up = o.serving() && o.engine() != nullptr;
    res.status = up ? 200 : 503;
    res.set_content(json{{"status", up ? "ok" : "unavailable"}}.dump(), kJson);
  });

  server.Get("/metrics", [&o, admit](const httplib::Request& req, httplib::Response& res) {
    if (!admit(req, res, Role::kInference, o.open_metrics)) return;
    res.set_content(o.metrics->TextExposition(), "text/plain; version=0.0.4");
  });

  // vLLM's runtime adapter loading: {"lora_name": id, "lora_path": source under the adapter
  // root}. Needs the admin role, like lorad.v1.Adapters/LoadAdapter.
  server.Post(
      "/v1/load_lora_adapter", [&o, admit](const httplib::Request& req, httplib::Response& res) {
        if (!admit(req, res, Role::kAdmin, false)) return;
        adapters::AdapterStore* store = o.adapters();
        if (store == nullptr) {
          SendError(res, absl::UnavailableError("the model is still loading"));
          return;
        }
        const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (!HasStrings(body, {"lora_name", "lora_path"}, res)) return;
        absl::StatusOr<adapters::AdapterInfo> info = store->Load(
            body["lora_name"].get<std::string>(), body["lora_path"].get<std::string>(), false);
        if (!info.ok()) {
          SendError(res, info.status());
          return;
        }
        res.set_content(json{{"id", info->adapter_id}, {"object", "model"}}.dump(), kJson);
      });

  // vLLM's runtime unloading: {"lora_name": id}. The admin role, and the daemon's one unload
  // (lorad.v1.Adapters/UnloadAdapter's): requests using the adapter finish with it.
  server.Post(
      "/v1/unload_lora_adapter", [&o, admit](const httplib::Request& req, httplib::Response& res) {
        if (!admit(req, res, Role::kAdmin, false)) return;
        if (o.adapters() == nullptr) {
          SendError(res, absl::UnavailableError("the model is still loading"));
          return;
        }
        const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (!HasStrings(body, {"lora_name"}, res)) return;
        const std::string id = body["lora_name"].get<std::string>();
        if (absl::Status s = o.unload_adapter(id); !s.ok()) {
          SendError(res, s, s.code() == absl::StatusCode::kNotFound ? "lora_name" : "");
          return;
        }
        res.set_content(json{{"id", id}, {"object", "model"}, {"deleted", true}}.dump(), kJson);
      });

  auto models = [&o](httplib::Response& res, adapters::AdapterStore** store) {
    Engine* engine = o.engine();
    *store = o.adapters();
    if (engine == nullptr || *store == nullptr) {
      SendError(res, absl::UnavailableError("the model is still loading"));
      return false;
    }
    return true;
  };
  const int64_t started = absl::ToUnixSeconds(absl::Now());

  server.Get("/v1/models", [&o, admit, models, started](const httplib::Request& req,
                                                        httplib::Response& res) {
    if (!admit(req, res, Role::kInference, false)) return;
    adapters::AdapterStore* store = nullptr;
    if (!models(res, &store)) return;
    json data = json::array({ModelJson(o.base_model_id, started, "")});
    for (const adapters::AdapterInfo& a : store->List()) {
      data.push_back(ModelJson(a.adapter_id, absl::ToUnixSeconds(a.loaded_at), o.base_model_id));
    }
    res.set_content(json{{"object", "list"}, {"data", data}}.dump(), kJson);
  });

  server.Get(R"(/v1/models/(.+))", [&o, admit, models, started](const httplib::Request& req,
                                                                httplib::Response& res) {
    if (!admit(req, res, Role::kInference, false)) return;
    adapters::AdapterStore* store = nullptr;
    if (!models(res, &store)) return;
    const std::string id = req.matches[1];
    if (id == o.base_model_id) {
      res.set_content(ModelJson(id, started, "").dump(), kJson);
      return;
    }
    absl::StatusOr<adapters::AdapterInfo> info = store->Get(id);
    if (!info.ok()) {
      SendError(res, absl::NotFoundError(absl::StrCat("model '", id, "' does not exist")), "model");
      return;
    }
    res.set_content(ModelJson(id, absl::ToUnixSeconds(info->loaded_at), o.base_model_id).dump(),
                    kJson);
  });

  const std::atomic<bool>* stopping = &stopping_;
  auto generate = [&o, admit, stopping](OpenAiEndpoint endpoint) {
    return [&o, admit, stopping, endpoint](const httplib::Request& req, httplib::Response& res) {
      if (!admit(req, res, Role::kInference, false)) return;
      Engine* engine = o.engine();
      adapters::AdapterStore* store = o.adapters();
      if (engine == nullptr || store == nullptr || !o.serving()) {
        SendError(res, absl::UnavailableError(engine == nullptr ? "the model is still loading"
                                                                : "the server is draining"));
        return;
      }
      ModelNames names;
      names.base = o.base_model_id;
      names.adapter_registered = [store](const std::string& id) { return store->Get(id).ok(); };
      auto request = std::make_shared<OpenAiRequest>();
      if (std::optional<OpenAiError> error =
              ParseOpenAiRequest(endpoint, req.body, names, o.default_max_tokens, request.get())) {
        SendError(res, error->status, error->param);
        return;
      }
      std::optional<absl::string_view> affinity;
      const std::string affinity_value = req.get_header_value(kAffinityHeader);
      if (req.has_header(kAffinityHeader)) affinity = affinity_value;
      if (absl::Status s = CheckAffinityHeader(affinity, request->engine.adapter_id); !s.ok()) {
        SendError(res, s, "model");
        return;
      }
      const std::string request_id = NextRequestId();
      request->engine.request_id = request_id;
      auto queue = std::make_shared<OutputQueue>(OutputQueue::Writer::kPulling);
      if (absl::Status s = engine->Submit(request->engine, std::make_shared<QueueSink>(queue));
          !s.ok()) {
        SendError(res, s);
        return;
      }
      OutputWait wait(stopping, engine, request_id, queue, HttpPeer(req));
      const std::string response_id =
          absl::StrCat(endpoint == OpenAiEndpoint::kChat ? "chatcmpl-" : "cmpl-", request_id);
      const int64_t created = absl::ToUnixSeconds(absl::Now());
      // The first output decides the HTTP status (an adapter that fails to load is an error
      // response, not a stream that fails). Every output ends with a final one, so there is one.
      std::optional<GenerateOutput> first = wait.Next();
      if (!first.has_value() || !first->status.ok()) {
        if (first.has_value()) SendError(res, first->status);
        return;
      }
      if (request->stream) {
        auto stream = std::make_shared<Stream>(
            Stream{*request, response_id, created, std::move(wait), std::move(first)});
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [stream](size_t, httplib::DataSink& sink) { return stream->Pump(sink); },
            [stream](bool) {
              // Not written to the end (the library gave up on the client): stop generating.
              if (!stream->done) stream->wait.Cancel();
            });
        return;
      }
      OpenAiOutput result;
      for (std::optional<GenerateOutput> out = std::move(first); out.has_value();
           out = wait.Next()) {
        if (!out->status.ok()) {
          SendError(res, out->status);
          return;
        }
        result.text += out->text;
        for (SampledToken& t : out->logprobs) result.logprobs.push_back(std::move(t));
        result.prompt_tokens = out->prompt_tokens;
        result.completion_tokens = out->completion_tokens;
        if (out->finished) result.finish = out->finish_reason;
      }
      if (!result.finish.has_value()) return;  // cancelled: the client is gone
      res.set_content(OpenAiResponseJson(*request, response_id, created, result), kJson);
    };
  };
  server.Post("/v1/completions", generate(OpenAiEndpoint::kCompletions));
  server.Post("/v1/chat/completions", generate(OpenAiEndpoint::kChat));
}

}  // namespace lorad::server
