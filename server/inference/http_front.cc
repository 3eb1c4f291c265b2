#include "server/inference/http_front.h"

#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/adapter_store.h"
#include "engine/engine.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/common/affinity.h"
#include "server/common/auth.h"
#include "server/common/http_listen.h"
#include "server/common/status_to_http.h"
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

// The engine's outputs for one request, queued for the HTTP worker that waits on them.
class OutputQueue final : public GenerateSink {
 public:
  void OnOutput(GenerateOutput output) override {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(output));
  }
  // Waits up to `timeout` for outputs; returns those queued (empty on timeout).
  std::deque<GenerateOutput> Take(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    std::deque<GenerateOutput> out;
    out.swap(queue_);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::deque<GenerateOutput> queue_ ABSL_GUARDED_BY(mu_);
};

// One streamed request: the SSE framing of its outputs, and its cancellation when the client
// goes away.
struct Stream {
  const std::atomic<bool>* stopping;
  Engine* engine;
  OpenAiRequest request;
  std::string request_id, response_id;
  int64_t created;
  std::shared_ptr<OutputQueue> outputs;
  std::deque<GenerateOutput> pending;  // taken but not yet written
  bool first = true;
  bool done = false;

  static std::string Event(const std::string& data) { return absl::StrCat("data: ", data, "\n\n"); }

  // Writes what is ready; false when the client is gone (the request is then cancelled).
  bool Pump(httplib::DataSink& sink) {
    while (!done) {
      if (pending.empty()) {
        if (!sink.is_writable() || stopping->load()) {
          engine->Cancel(request_id);
          return false;
        }
        pending = outputs->Take(kStreamPoll);
        continue;
      }
      GenerateOutput out = std::move(pending.front());
      pending.pop_front();
      std::string text;
      if (!out.status.ok()) {
        text = Event(OpenAiErrorJson(out.status)) + Event("[DONE]");
        done = true;
      } else {
        OpenAiOutput delta;
        delta.text = std::move(out.text);
        delta.logprobs = std::move(out.logprobs);
        if (out.finished) delta.finish = out.finish_reason;
        if (!delta.text.empty() || delta.finish.has_value() || first) {
          text = Event(OpenAiChunkJson(request, response_id, created, delta, first));
          first = false;
        }
        if (out.finished) {
          if (request.include_usage) {
            text += Event(OpenAiUsageChunkJson(request, response_id, created, out.prompt_tokens,
                                               out.completion_tokens));
          }
          text += Event("[DONE]");
          done = true;
        }
      }
      if (!text.empty() && !sink.write(text.data(), text.size())) {
        if (!done) engine->Cancel(request_id);
        return false;
      }
    }
    sink.done();
    return true;
  }
};

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
    if (o.auth == nullptr || open) return true;
    const std::string value = req.get_header_value("Authorization");
    std::optional<absl::string_view> header;
    if (req.has_header("Authorization")) header = value;
    const absl::Status status = o.auth->CheckHeader(header, role);
    if (status.ok()) return true;
    SendError(res, status);
    if (res.status == 401) res.set_header("WWW-Authenticate", "Bearer");
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
    if (!admit(req, res, Role::kInference, o.open_health)) return;
    res.set_content(o.metrics->TextExposition(), "text/plain; version=0.0.4");
  });

  // vLLM's runtime adapter loading: {"lora_name": id, "lora_path": source under the adapter
  // root}. Needs the admin role, like lorad.v1.Adapters/LoadAdapter.
  server.Post("/v1/load_lora_adapter", [&o, admit](const httplib::Request& req,
                                                   httplib::Response& res) {
    if (!admit(req, res, Role::kAdmin, false)) return;
    adapters::AdapterStore* store = o.adapters();
    if (store == nullptr) {
      SendError(res, absl::UnavailableError("the model is still loading"));
      return;
    }
    const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    for (const char* key : {"lora_name", "lora_path"}) {
      if (!body.is_object() || !body.contains(key) || !body[key].is_string()) {
        SendError(res, absl::InvalidArgumentError(absl::StrCat(key, ": must be a string")), key);
        return;
      }
    }
    absl::StatusOr<adapters::AdapterInfo> info = store->Load(
        body["lora_name"].get<std::string>(), body["lora_path"].get<std::string>(), false);
    if (!info.ok()) {
      SendError(res, info.status());
      return;
    }
    res.set_content(json{{"id", info->adapter_id}, {"object", "model"}}.dump(), kJson);
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
      auto outputs = std::make_shared<OutputQueue>();
      if (absl::Status s = engine->Submit(request->engine, outputs); !s.ok()) {
        SendError(res, s);
        return;
      }
      const std::string response_id =
          absl::StrCat(endpoint == OpenAiEndpoint::kChat ? "chatcmpl-" : "cmpl-", request_id);
      const int64_t created = absl::ToUnixSeconds(absl::Now());
      // The first event decides the HTTP status (an adapter that fails to load is an error
      // response, not a stream that fails).
      // Stop() cancels a request still waiting; its final event then ends the wait.
      auto take = [&](absl::Duration timeout) {
        if (stopping->load()) engine->Cancel(request_id);
        return outputs->Take(timeout);
      };
      std::deque<GenerateOutput> first;
      while (first.empty()) first = take(kStreamPoll);
      if (!first.front().status.ok()) {
        SendError(res, first.front().status);
        return;
      }
      if (request->stream) {
        auto stream =
            std::make_shared<Stream>(Stream{stopping, engine, *request, request_id, response_id,
                                            created, outputs, std::move(first)});
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [stream](size_t, httplib::DataSink& sink) { return stream->Pump(sink); },
            [stream](bool) {
              if (!stream->done) stream->engine->Cancel(stream->request_id);
            });
        return;
      }
      OpenAiOutput result;
      std::deque<GenerateOutput> batch = std::move(first);
      while (!result.finish.has_value()) {
        for (GenerateOutput& out : batch) {
          if (!out.status.ok()) {
            SendError(res, out.status);
            return;
          }
          result.text += out.text;
          for (SampledToken& t : out.logprobs) result.logprobs.push_back(std::move(t));
          result.prompt_tokens = out.prompt_tokens;
          result.completion_tokens = out.completion_tokens;
          if (out.finished) result.finish = out.finish_reason;
        }
        if (!result.finish.has_value()) batch = take(kStreamPoll);
      }
      res.set_content(OpenAiResponseJson(*request, response_id, created, result), kJson);
    };
  };
  server.Post("/v1/completions", generate(OpenAiEndpoint::kCompletions));
  server.Post("/v1/chat/completions", generate(OpenAiEndpoint::kChat));
}

}  // namespace lorad::server
