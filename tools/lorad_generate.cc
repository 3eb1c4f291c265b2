// lorad-generate: runs the engine in-process (no server) and prints a completion.
//   lorad-generate --model=PATH [--prompt=TEXT | --chat=TEXT] [--max_new_tokens=N]
//                  [--temperature=T] [--top_p=P] [--top_k=K] [--seed=S] [--threads=N]
//                  [--ids] (print token ids too)
// Reads the prompt from stdin when neither --prompt nor --chat is given. Exit 0 on success,
// 2 on bad flags or a model that does not load, 1 when generation fails.
#include <cstdio>
#include <future>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "engine/engine.h"

ABSL_FLAG(std::string, model, "", "GGUF file or Hugging Face model directory");
ABSL_FLAG(std::string, prompt, "", "raw prompt (special tokens are parsed)");
ABSL_FLAG(std::string, chat, "", "a user message, formatted with the model's chat template");
ABSL_FLAG(int32_t, max_new_tokens, 64, "tokens to generate at most");
ABSL_FLAG(double, temperature, 0.0, "0 = greedy");
ABSL_FLAG(double, top_p, 1.0, "nucleus sampling threshold");
ABSL_FLAG(int32_t, top_k, 0, "top-k sampling; 0 = off");
ABSL_FLAG(uint64_t, seed, 0, "sampling seed; 0 = random");
ABSL_FLAG(int32_t, threads, 0, "compute threads; 0 = all cores");
ABSL_FLAG(bool, ids, false, "also print the generated token ids");

namespace {

class PrintingSink : public lorad::GenerateSink {
 public:
  void OnOutput(lorad::GenerateOutput out) override {
    std::fwrite(out.text.data(), 1, out.text.size(), stdout);
    std::fflush(stdout);
    ids_.insert(ids_.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.finished) done_.set_value(out);
  }
  std::future<lorad::GenerateOutput> done() { return done_.get_future(); }
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  std::promise<lorad::GenerateOutput> done_;
  std::vector<int32_t> ids_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lorad-generate --model=PATH --prompt=TEXT");
  absl::ParseCommandLine(argc, argv);
  lorad::EngineOptions options;
  options.model_path = absl::GetFlag(FLAGS_model);
  options.num_threads = absl::GetFlag(FLAGS_threads);
  options.kv_cache_bytes = int64_t{256} << 20;
  if (options.model_path.empty()) {
    std::fprintf(stderr, "lorad-generate: --model is required\n");
    return 2;
  }
  auto engine = lorad::Engine::Create(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "lorad-generate: %s\n", std::string(engine.status().message()).c_str());
    return 2;
  }
  lorad::GenerateRequest req;
  if (!absl::GetFlag(FLAGS_chat).empty()) {
    req.messages.push_back({"user", absl::GetFlag(FLAGS_chat)});
  } else if (!absl::GetFlag(FLAGS_prompt).empty()) {
    req.prompt = absl::GetFlag(FLAGS_prompt);
  } else {
    req.prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  req.sampling.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  req.sampling.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  req.sampling.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  req.sampling.top_k = absl::GetFlag(FLAGS_top_k);
  req.sampling.seed = absl::GetFlag(FLAGS_seed);
  auto sink = std::make_shared<PrintingSink>();
  auto done = sink->done();
  if (absl::Status st = (*engine)->Submit(std::move(req), sink); !st.ok()) {
    std::fprintf(stderr, "lorad-generate: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  const lorad::GenerateOutput last = done.get();
  std::printf("\n");
  if (absl::GetFlag(FLAGS_ids)) {
    std::printf("ids:");
    for (int32_t id : sink->ids()) std::printf(" %d", id);
    std::printf("\n");
  }
  if (!last.status.ok()) {
    std::fprintf(stderr, "lorad-generate: %s\n", std::string(last.status.message()).c_str());
    return 1;
  }
  return 0;
}
