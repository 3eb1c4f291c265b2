// lorad-finetune: trains a LoRA adapter in-process (no server) on the resident 4-bit base, as a
// fine-tune job would, printing one line per optimizer step; the benchmark and offline tool.
//   lorad-finetune --model=PATH (--dataset=FILE.jsonl | --tokens=FILE.jsonl) [--out=DIR]
//                  [--pack=N] [--dump_tokens=FILE] [--steps=N | --epochs=N] [--rank=8]
//                  [--alpha=2*rank] [--targets=all|q_proj,v_proj,...] [--batch_size=4]
//                  [--grad_accum=1] [--max_seq_len=512] [--learning_rate=2e-4]
//                  [--warmup_steps=0] [--lr_scheduler=cosine] [--dropout=0] [--seed=1]
//                  [--threads=0] [--validation=FILE.jsonl | --validation_split=F]
//                  [--eval_every_steps=N] [--early_stopping_patience=N]
//                  [--checkpoint_dir=DIR] [--checkpoint_every_steps=50] [--keep_checkpoints=2]
//                  [--train_on_inputs] [--overlong=error|truncate|drop]
// The run is the daemon's (engine/finetune/training_run.h): evaluation on the validation set,
// checkpoints (resumed from when --checkpoint_dir holds some), early stopping.
// --tokens reads pre-tokenized examples {"tokens": [...], "target": [0/1...]} (what
// --dump_tokens writes), so that another trainer can be fed identical tokens. --pack=N joins
// every example's tokens into rows of exactly N tokens, all of them targets (benchmarks).
// Prints a JSON summary last: mean tokens/s (steps after the first) and peak RSS.
// Exit 0 on success, 2 on bad flags or inputs, 1 when training fails.
#include <sys/resource.h>
#include <algorithm>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "engine/base/openmp_env.h"
#include "engine/engine.h"
#include "engine/finetune/data_order.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/lora_trainer.h"
#include "engine/finetune/training_run.h"
#include "engine/model/model_weights.h"
#include "nlohmann/json.hpp"

// Trainer settings default to the trainer's own defaults (the fine-tune API's).
static const lorad::finetune::LoraTrainConfig kDefaults;

ABSL_FLAG(std::string, model, "", "GGUF file or Hugging Face model directory");
ABSL_FLAG(std::string, dataset, "", "JSONL dataset ({text} / {prompt, completion} / {messages})");
ABSL_FLAG(std::string, tokens, "", "pre-tokenized JSONL ({tokens, target}) instead of --dataset");
ABSL_FLAG(std::string, dump_tokens, "",
          "write the examples as tokens (JSONL), in the order the run visits them");
ABSL_FLAG(std::string, out, "", "write the trained adapter here (PEFT directory)");
ABSL_FLAG(int32_t, pack, 0, "join all tokens into rows of exactly N tokens (0 = off)");
ABSL_FLAG(int64_t, steps, 0, "optimizer steps (0 = --epochs)");
ABSL_FLAG(int32_t, epochs, 1, "passes over the dataset when --steps is 0");
ABSL_FLAG(int32_t, rank, kDefaults.rank, "LoRA rank");
ABSL_FLAG(double, alpha, 0, "lora_alpha (0: 2 x rank)");
ABSL_FLAG(std::string, targets, "",
          "all, or a comma list of q_proj,...,down_proj (empty: q_proj,k_proj,v_proj,o_proj)");
ABSL_FLAG(int32_t, batch_size, kDefaults.batch_size, "examples per micro-batch");
ABSL_FLAG(int32_t, grad_accum, kDefaults.grad_accum, "micro-batches per optimizer step");
ABSL_FLAG(int32_t, max_seq_len, kDefaults.max_seq_len, "longest example in tokens");
ABSL_FLAG(double, learning_rate, kDefaults.learning_rate, "peak AdamW learning rate");
ABSL_FLAG(int32_t, warmup_steps, kDefaults.warmup_steps, "linear warm-up steps");
ABSL_FLAG(std::string, lr_scheduler, lorad::finetune::LrScheduleName(kDefaults.schedule),
          "cosine, linear or constant");
ABSL_FLAG(double, dropout, kDefaults.dropout, "LoRA dropout");
ABSL_FLAG(uint64_t, seed, 1, "initialization, dropout and data order");
ABSL_FLAG(int32_t, threads, 0, "LibTorch threads; 0 = LibTorch's default");
ABSL_FLAG(std::string, recompute, "auto",
          "recompute layer activations in backward (true: less memory), keep them (false: "
          "faster), or keep them when they fit --activation_memory_mb (auto)");
ABSL_FLAG(int64_t, activation_memory_mb, lorad::finetune::kDefaultActivationBudgetMb,
          "with --recompute=auto, most MiB of activations kept for backward");
ABSL_FLAG(std::string, validation, "", "JSONL validation set (same shapes as --dataset)");
ABSL_FLAG(double, validation_split, 0.0, "hold out this fraction of --dataset for evaluation");
ABSL_FLAG(int64_t, eval_every_steps, 0, "evaluate every N steps (0: at checkpoints and the end)");
ABSL_FLAG(int32_t, early_stopping_patience, 0, "stop after N evaluations without improvement");
ABSL_FLAG(std::string, checkpoint_dir, "", "write resumable checkpoints here (resume from them)");
ABSL_FLAG(int64_t, checkpoint_every_steps, 50, "checkpoint interval with --checkpoint_dir");
ABSL_FLAG(int32_t, keep_checkpoints, 2, "checkpoints kept besides the newest");
ABSL_FLAG(bool, train_on_inputs, false, "loss on prompts and user turns too");
ABSL_FLAG(std::string, overlong, "error", "examples over --max_seq_len: error, truncate or drop");

namespace {

using lorad::finetune::TrainExample;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "lorad-finetune: %s\n", message.c_str());
  return code;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::vector<TrainExample>> ReadTokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::vector<TrainExample> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("tokens") || !j.contains("target")) {
      return absl::InvalidArgumentError(path + ": line " + std::to_string(out.size() + 1) +
                                        " is not {tokens, target}");
    }
    TrainExample e;
    e.tokens = j["tokens"].get<std::vector<int32_t>>();
    e.target = j["target"].get<std::vector<uint8_t>>();
    e.line = static_cast<int64_t>(out.size()) + 1;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<TrainExample> Pack(const std::vector<TrainExample>& in, int32_t n) {
  std::vector<int32_t> all;
  for (const TrainExample& e : in) all.insert(all.end(), e.tokens.begin(), e.tokens.end());
  std::vector<TrainExample> out;
  for (size_t i = 0; i + n <= all.size(); i += n) {
    TrainExample e;
    e.tokens.assign(all.begin() + i, all.begin() + i + n);
    e.target.assign(n, 1);
    e.target[0] = 0;
    e.line = static_cast<int64_t>(out.size()) + 1;
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<lorad::LoraTarget>> ParseTargets(const std::string& text) {
  std::vector<lorad::LoraTarget> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    lorad::LoraTarget t;
    if (part == "all") {
      for (int i = 0; i < lorad::kNumLoraTargets; ++i)
        out.push_back(static_cast<lorad::LoraTarget>(i));
    } else if (lorad::LoraTargetFromName(std::string_view(part.data(), part.size()), &t)) {
      out.push_back(t);
    } else {
      return absl::InvalidArgumentError("unknown target module " + std::string(part));
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lorad::ReexecWithPassiveOpenMpWait(argv);
  absl::SetProgramUsageMessage("lorad-finetune --model=PATH --dataset=FILE.jsonl");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_model).empty()) return Fail(2, "--model is required");
  if (absl::GetFlag(FLAGS_dataset).empty() == absl::GetFlag(FLAGS_tokens).empty()) {
    return Fail(2, "give one of --dataset or --tokens");
  }
  lorad::EngineOptions options;
  options.model_path = absl::GetFlag(FLAGS_model);
  options.num_threads = 1;
  options.kv_cache_bytes = int64_t{16} << 20;
  auto engine = lorad::Engine::Create(options);
  if (!engine.ok()) return Fail(2, engine.status().ToString());

  lorad::finetune::LoraTrainConfig c;
  c.rank = absl::GetFlag(FLAGS_rank);
  c.alpha = absl::GetFlag(FLAGS_alpha) > 0 ? static_cast<float>(absl::GetFlag(FLAGS_alpha))
                                           : 2.0f * static_cast<float>(c.rank);
  c.dropout = static_cast<float>(absl::GetFlag(FLAGS_dropout));
  c.learning_rate = static_cast<float>(absl::GetFlag(FLAGS_learning_rate));
  c.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  c.batch_size = absl::GetFlag(FLAGS_batch_size);
  c.grad_accum = absl::GetFlag(FLAGS_grad_accum);
  c.max_seq_len = absl::GetFlag(FLAGS_max_seq_len);
  c.seed = absl::GetFlag(FLAGS_seed);
  c.num_threads = absl::GetFlag(FLAGS_threads);
  lorad::finetune::RecomputePolicy recompute;
  if (auto s = lorad::finetune::ParseRecomputePolicy(absl::GetFlag(FLAGS_recompute), &recompute);
      !s.ok()) {
    return Fail(2, s.ToString());
  }
  auto targets = ParseTargets(absl::GetFlag(FLAGS_targets));
  if (!targets.ok()) return Fail(2, targets.status().ToString());
  if (!targets->empty()) c.targets = *targets;
  if (auto s = lorad::finetune::ParseLrSchedule(absl::GetFlag(FLAGS_lr_scheduler), &c.schedule);
      !s.ok()) {
    return Fail(2, s.ToString());
  }

  lorad::finetune::DatasetOptions dataset_options;
  dataset_options.max_bytes = int64_t{1} << 30;
  dataset_options.max_seq_len =
      absl::GetFlag(FLAGS_pack) > 0 ? (*engine)->max_context() : c.max_seq_len;
  dataset_options.train_on_inputs = absl::GetFlag(FLAGS_train_on_inputs);
  if (auto s = lorad::finetune::ParseOverlongPolicy(absl::GetFlag(FLAGS_overlong),
                                                    &dataset_options.overlong);
      !s.ok()) {
    return Fail(2, s.ToString());
  }
  auto parse = [&](const std::string& path) -> absl::StatusOr<std::vector<TrainExample>> {
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    auto parsed = lorad::finetune::ParseJsonlDataset(*text, (*engine)->tokenizer(),
                                                     (*engine)->chat_template(), dataset_options);
    if (!parsed.ok()) return parsed.status();
    if (parsed->truncated + parsed->dropped > 0) {
      std::printf("%s: %lld examples truncated, %lld dropped\n", path.c_str(),
                  static_cast<long long>(parsed->truncated),
                  static_cast<long long>(parsed->dropped));
    }
    return std::move(parsed->examples);
  };
  absl::StatusOr<std::vector<TrainExample>> data = !absl::GetFlag(FLAGS_tokens).empty()
                                                       ? ReadTokens(absl::GetFlag(FLAGS_tokens))
                                                       : parse(absl::GetFlag(FLAGS_dataset));
  if (!data.ok()) return Fail(2, data.status().ToString());
  std::vector<TrainExample> eval;
  if (!absl::GetFlag(FLAGS_validation).empty()) {
    auto parsed = parse(absl::GetFlag(FLAGS_validation));
    if (!parsed.ok()) return Fail(2, parsed.status().ToString());
    eval = *std::move(parsed);
  } else if (absl::GetFlag(FLAGS_validation_split) > 0) {
    eval = lorad::finetune::SplitValidation(&*data, absl::GetFlag(FLAGS_validation_split), c.seed);
  }
  if (absl::GetFlag(FLAGS_pack) > 0) *data = Pack(*data, absl::GetFlag(FLAGS_pack));
  if (data->empty()) return Fail(2, "no examples");
  const int64_t per_step = int64_t{c.batch_size} * c.grad_accum;
  c.total_steps = absl::GetFlag(FLAGS_steps) > 0
                      ? absl::GetFlag(FLAGS_steps)
                      : lorad::finetune::StepsForEpochs(static_cast<int64_t>(data->size()),
                                                        per_step, absl::GetFlag(FLAGS_epochs));
  if (!absl::GetFlag(FLAGS_dump_tokens).empty()) {
    // In the order this run visits them, each with its 0-based optimizer step, so that a
    // trainer grouping the lines by step sees the same batches (an epoch's last step is short).
    std::ofstream dump(absl::GetFlag(FLAGS_dump_tokens));
    for (int64_t step = 0; step < c.total_steps; ++step) {
      for (int64_t i : lorad::finetune::ExamplesForStep(static_cast<int64_t>(data->size()),
                                                        per_step, c.seed, step)
                           .indices) {
        const TrainExample& e = (*data)[i];
        dump << nlohmann::json{{"step", step}, {"tokens", e.tokens}, {"target", e.target}}.dump()
             << "\n";
      }
    }
  }
  auto plan = lorad::finetune::PlanActivations(recompute, (*engine)->spec(), c, *data,
                                               absl::GetFlag(FLAGS_activation_memory_mb) << 20);
  if (!plan.ok()) return Fail(2, plan.status().ToString());
  c.recompute_activations = plan->recompute;
  if (auto s = lorad::finetune::ValidateTrainConfig(c, (*engine)->max_context()); !s.ok()) {
    return Fail(2, s.ToString());
  }
  std::printf("examples %zu (+%zu held out), steps %lld, rank %d, %zu targets, activations %s\n",
              data->size(), eval.size(), static_cast<long long>(c.total_steps), c.rank,
              c.targets.size(), c.recompute_activations ? "recomputed" : "kept");

  // Prints each step and collects the throughput of the steps after the first.
  class PrintingListener final : public lorad::finetune::TrainingRunListener {
   public:
    explicit PrintingListener(int64_t total) : total_(total) {}
    void OnProgress(const lorad::finetune::RunProgress& p) override {
      const lorad::finetune::StepResult& r = p.step;
      std::printf("step %lld/%lld loss %.4f lr %.3g grad_norm %.3f tokens %lld %.1f tok/s",
                  static_cast<long long>(r.step), static_cast<long long>(total_), r.loss,
                  r.learning_rate, r.grad_norm, static_cast<long long>(r.tokens),
                  r.tokens / r.seconds);
      if (p.eval.has_value()) {
        std::printf(" eval_loss %.4f eval_accuracy %.3f", p.eval->loss, p.eval->token_accuracy);
        eval_losses.push_back(p.eval->loss);
      }
      std::printf("\n");
      std::fflush(stdout);
      losses.push_back(r.loss);
      if (++seen_ > 1 || total_ == 1) {
        tokens_after_first += static_cast<double>(r.tokens);
        seconds_after_first += r.seconds;
      }
    }
    void OnCheckpoint(const lorad::finetune::CheckpointRecord& record) override {
      std::printf("checkpoint step %lld %s\n", static_cast<long long>(record.step),
                  record.dir.c_str());
    }
    std::vector<float> losses, eval_losses;
    double tokens_after_first = 0, seconds_after_first = 0;

   private:
    const int64_t total_;
    int64_t seen_ = 0;
  } listener(c.total_steps);

  lorad::finetune::TrainingRunOptions run;
  run.checkpoints_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  run.checkpoint_every_steps = absl::GetFlag(FLAGS_checkpoint_every_steps);
  run.keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  run.eval_every_steps = absl::GetFlag(FLAGS_eval_every_steps);
  run.early_stopping_patience = absl::GetFlag(FLAGS_early_stopping_patience);
  lorad::finetune::TrainingRunResult result = lorad::finetune::RunTraining(
      (*engine)->weights(), c, *std::move(data), std::move(eval), nullptr, run, &listener);
  if (result.outcome == lorad::finetune::TrainingRunResult::Outcome::kFailed ||
      result.outcome == lorad::finetune::TrainingRunResult::Outcome::kInterrupted) {
    return Fail(1, result.error.ToString());
  }
  if (!absl::GetFlag(FLAGS_out).empty()) {
    std::filesystem::create_directories(absl::GetFlag(FLAGS_out));
    auto s = lorad::finetune::WritePeftAdapter(absl::GetFlag(FLAGS_out), result.trainer->Lora(),
                                               (*engine)->spec(), (*engine)->spec().name);
    if (!s.ok()) return Fail(1, s.ToString());
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  nlohmann::json summary = {
      {"tokens_per_second",
       listener.tokens_after_first / std::max(1e-9, listener.seconds_after_first)},
      {"peak_rss_mb", usage.ru_maxrss / 1024.0},
      {"steps", result.trainer->step()},
      {"stopped_early",
       result.outcome == lorad::finetune::TrainingRunResult::Outcome::kStoppedEarly},
      {"losses", listener.losses}};
  if (!listener.eval_losses.empty()) summary["eval_losses"] = listener.eval_losses;
  if (result.best_step.has_value()) summary["best_step"] = *result.best_step;
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}
