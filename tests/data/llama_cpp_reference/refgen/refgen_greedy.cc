// refgen_greedy: llama.cpp's greedy continuations of a set of prompts, written as JSON in the
// schema of ../greedy.json. Built against a llama.cpp checkout by build_llama_cpp.sh; not part
// of the lorad build. Uses only the public llama.h API.
//
//   refgen_greedy <model.gguf> <prompts.json> <out.json> <n_threads> <n_predict> <label>
//
// prompts.json: any JSON with a "prompts" array of {"prompt", "add_special", "parse_special"}
// (../greedy.json itself works). For each prompt: the KV cache is cleared, the prompt is decoded
// in one llama_decode (logits of its last token), then each generated token alone. The next
// token is the argmax of the raw logits (ties to the lowest id); no samplers. It stops after
// n_predict tokens or at an end-of-generation token, which is kept. Context: n_ctx 512,
// n_batch = n_ubatch = 512, otherwise llama_context_default_params() (F16 KV cache, flash
// attention auto), CPU only.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "llama.h"
#include "nlohmann/json.hpp"

namespace {

std::vector<std::pair<int, float>> TopK(const float* logits, int n_vocab, int k) {
  std::vector<int> ids(n_vocab);
  for (int i = 0; i < n_vocab; ++i) ids[i] = i;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int a, int b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  std::vector<std::pair<int, float>> top;
  for (int i = 0; i < k; ++i) top.emplace_back(ids[i], logits[ids[i]]);
  return top;
}

std::string Piece(const llama_vocab* vocab, llama_token t) {
  char buf[256];
  const int n = llama_token_to_piece(vocab, t, buf, sizeof(buf), 0, true);
  return n > 0 ? std::string(buf, n) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s model prompts.json out.json n_threads n_predict label\n",
                 argv[0]);
    return 2;
  }
  const int n_threads = std::stoi(argv[4]);
  const int n_predict = std::stoi(argv[5]);
  std::ifstream in(argv[2]);
  const nlohmann::json prompts = nlohmann::json::parse(in)["prompts"];

  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = n_threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) return 1;

  nlohmann::json out;
  out["llama_cpp"] = argv[6];
  out["command"] = std::string("refgen_greedy <model> <prompts> <out> ") + argv[4] + " " + argv[5];
  out["n_threads"] = n_threads;
  out["n_predict"] = n_predict;
  out["prompts"] = nlohmann::json::array();
  for (const auto& p : prompts) {
    const std::string text = p["prompt"];
    const bool add_special = p["add_special"], parse_special = p["parse_special"];
    std::vector<llama_token> ids(text.size() + 8);
    const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                                 static_cast<int32_t>(ids.size()), add_special, parse_special);
    if (n < 0) return 1;
    ids.resize(n);
    llama_memory_clear(llama_get_memory(ctx), true);
    std::vector<llama_token> prompt_ids = ids;
    if (llama_decode(ctx, llama_batch_get_one(ids.data(), n)) != 0) return 1;
    nlohmann::json gen = nlohmann::json::array(), steps = nlohmann::json::array(), first;
    std::string gen_text;
    bool eog = false;
    for (int step = 0; step < n_predict; ++step) {
      const float* logits = llama_get_logits_ith(ctx, -1);
      const auto top = TopK(logits, n_vocab, 5);
      if (step == 0) {
        for (const auto& [id, l] : top) first.push_back({id, l});
      }
      steps.push_back({top[0].second, top[1].first, top[1].second});
      llama_token tok = top[0].first;
      gen.push_back(tok);
      gen_text += Piece(vocab, tok);
      if (llama_vocab_is_eog(vocab, tok)) {
        eog = true;
        break;
      }
      if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) return 1;
    }
    out["prompts"].push_back({{"prompt", text},
                              {"add_special", add_special},
                              {"parse_special", parse_special},
                              {"prompt_ids", prompt_ids},
                              {"generated_ids", gen},
                              {"stopped_at_eog", eog},
                              {"generated_text", gen_text},
                              {"first_pos_top5", first},
                              {"steps_top1_logit_top2", steps}});
    std::fprintf(stderr, "%zu tokens: %.40s\n", gen.size(), text.c_str());
  }
  std::ofstream(argv[3]) << out.dump(1) << "\n";
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
