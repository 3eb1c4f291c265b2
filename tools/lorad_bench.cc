// lorad-bench: prefill and decode throughput of the forward pass on a model, in-process.
//   lorad-bench --model=PATH [--threads=1,2] [--prompt_tokens=512] [--batch=1]
//               [--decode_tokens=128] [--repeats=3]
// Prefill: one forward of `prompt_tokens` tokens of one sequence. Decode: `batch` sequences
// after a 16-token prompt, `decode_tokens` steps of one token each. Prints one line per
// (threads, test) with the best of `repeats` runs, in the style of llama-bench.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/llama_model.h"

ABSL_FLAG(std::string, model, "", "GGUF file or Hugging Face model directory");
ABSL_FLAG(std::string, threads, "1,2", "comma-separated thread counts");
ABSL_FLAG(int32_t, prompt_tokens, 512, "prefill length");
ABSL_FLAG(int32_t, batch, 1, "concurrent sequences in the decode test");
ABSL_FLAG(int32_t, decode_tokens, 128, "decode steps");
ABSL_FLAG(int32_t, repeats, 3, "runs per test; the best is reported");

namespace {

using Clock = std::chrono::steady_clock;

double RunPrefill(lorad::LlamaModel& model, lorad::KvCache& cache, int32_t n) {
  std::mt19937 rng(1);
  std::vector<int32_t> tokens(n), positions(n), seq(n, 0);
  for (int32_t i = 0; i < n; ++i) {
    tokens[i] = static_cast<int32_t>(rng() % model.spec().vocab_size);
    positions[i] = i;
  }
  lorad::BlockTable table;
  cache.Reserve(table, n);
  const lorad::BlockTable* tables[] = {&table};
  int32_t last = n - 1;
  std::vector<float> logits(model.spec().vocab_size);
  lorad::ForwardBatch b{tokens, positions, seq, tables, absl::MakeSpan(&last, 1), nullptr};
  const auto t0 = Clock::now();
  absl::Status st = model.Forward(b, cache, logits.data());
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  cache.Release(table);
  if (!st.ok()) std::fprintf(stderr, "prefill failed: %s\n", std::string(st.message()).c_str());
  return n / s;
}

double RunDecode(lorad::LlamaModel& model, lorad::KvCache& cache, int32_t batch, int32_t steps) {
  const int32_t prompt = 16;
  std::vector<lorad::BlockTable> tables(batch);
  std::vector<const lorad::BlockTable*> table_ptrs;
  for (auto& t : tables) {
    cache.Reserve(t, prompt + steps);
    table_ptrs.push_back(&t);
  }
  std::vector<float> logits(static_cast<size_t>(model.spec().vocab_size) * batch);
  // Prompts, all sequences in one prefill batch.
  std::vector<int32_t> tokens, positions, seq, rows;
  for (int32_t s = 0; s < batch; ++s) {
    for (int32_t p = 0; p < prompt; ++p) {
      tokens.push_back(100 + p + s);
      positions.push_back(p);
      seq.push_back(s);
    }
    rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
  }
  (void)model.Forward({tokens, positions, seq, table_ptrs, rows, nullptr}, cache, logits.data());
  double seconds = 0.0;
  for (int32_t step = 0; step < steps; ++step) {
    tokens.assign(batch, 0);
    positions.assign(batch, prompt + step);
    seq.resize(batch);
    rows.resize(batch);
    for (int32_t s = 0; s < batch; ++s) {
      const float* l = logits.data() + static_cast<size_t>(s) * model.spec().vocab_size;
      tokens[s] = static_cast<int32_t>(std::max_element(l, l + model.spec().vocab_size) - l);
      seq[s] = s;
      rows[s] = s;
    }
    const auto t0 = Clock::now();
    (void)model.Forward({tokens, positions, seq, table_ptrs, rows, nullptr}, cache, logits.data());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  for (auto& t : tables) cache.Release(t);
  return static_cast<double>(batch) * steps / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_model);
  std::vector<int> thread_counts;
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int v;
    if (!absl::SimpleAtoi(t, &v) || v < 1) {
      std::fprintf(stderr, "lorad-bench: bad --threads value\n");
      return 2;
    }
    thread_counts.push_back(v);
  }
  std::printf("| model | threads | test | tokens/s |\n|---|---|---|---|\n");
  for (int threads : thread_counts) {
    lorad::kernels::ThreadPool pool(threads);
    auto weights = lorad::LoadModel(path);
    if (!weights.ok()) {
      std::fprintf(stderr, "lorad-bench: %s\n", std::string(weights.status().message()).c_str());
      return 2;
    }
    auto model = lorad::LlamaModel::Create(std::move(*weights), &pool);
    if (!model.ok()) {
      std::fprintf(stderr, "lorad-bench: %s\n", std::string(model.status().message()).c_str());
      return 2;
    }
    const int32_t p = absl::GetFlag(FLAGS_prompt_tokens);
    const int32_t b = absl::GetFlag(FLAGS_batch);
    const int32_t d = absl::GetFlag(FLAGS_decode_tokens);
    auto cache = lorad::KvCache::Create(
        (*model)->CacheOptions((std::max(p, b * (16 + d)) + 64) / 16 + b + 1));
    if (!cache.ok()) return 2;
    double best_p = 0, best_d = 0;
    for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
      best_p = std::max(best_p, RunPrefill(**model, **cache, p));
      best_d = std::max(best_d, RunDecode(**model, **cache, b, d));
    }
    const std::string name = (*model)->spec().name;
    std::printf("| %s | %d | pp%d | %.1f |\n", name.c_str(), threads, p, best_p);
    std::printf("| %s | %d | tg%d x%d | %.1f |\n", name.c_str(), threads, d, b, best_d);
  }
  return 0;
}
