#include "engine/finetune/checkpoint_records.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace lorad::finetune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kCheckpointPrefix[] = "step-";

bool ParseCheckpointName(absl::string_view name, int64_t* step) {
  if (!absl::ConsumePrefix(&name, kCheckpointPrefix) || name.size() < 8) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(name, step);
}

// Lower eval loss first; records without an evaluation last; newer first on ties.
bool BetterEval(const CheckpointRecord& a, const CheckpointRecord& b) {
  if (a.eval.has_value() != b.eval.has_value()) return a.eval.has_value();
  if (a.eval.has_value() && a.eval->loss != b.eval->loss) return a.eval->loss < b.eval->loss;
  return a.step > b.step;
}

}  // namespace

std::string CheckpointName(int64_t step) {
  return absl::StrFormat("%s%08d", kCheckpointPrefix, step);
}

std::string RunRecordJson(const CheckpointRecord& r) {
  json j = {{"step", r.step},
            {"train_loss", r.train_loss},
            {"tokens_seen", r.tokens_seen},
            {"evals_without_improvement", r.evals_without_improvement}};
  if (r.eval.has_value()) {
    j["eval"] = {{"loss", r.eval->loss},
                 {"token_accuracy", r.eval->token_accuracy},
                 {"target_tokens", r.eval->target_tokens}};
  }
  if (r.best_eval_loss.has_value()) j["best_eval_loss"] = *r.best_eval_loss;
  return j.dump(2) + "\n";
}

bool ParseRunRecord(const std::string& text, CheckpointRecord* r) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto number = [&](const json& o, const char* key, auto* out) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_number()) return false;
    *out = it->get<std::remove_pointer_t<decltype(out)>>();
    return true;
  };
  if (!number(j, "step", &r->step) || !number(j, "train_loss", &r->train_loss) ||
      !number(j, "tokens_seen", &r->tokens_seen) ||
      !number(j, "evals_without_improvement", &r->evals_without_improvement)) {
    return false;
  }
  if (auto it = j.find("eval"); it != j.end()) {
    EvalResult e;
    if (!it->is_object() || !number(*it, "loss", &e.loss) ||
        !number(*it, "token_accuracy", &e.token_accuracy) ||
        !number(*it, "target_tokens", &e.target_tokens)) {
      return false;
    }
    r->eval = e;
  }
  if (float best; number(j, "best_eval_loss", &best)) r->best_eval_loss = best;
  return true;
}

std::vector<CheckpointRecord> ListCheckpoints(const std::string& checkpoints_dir) {
  std::vector<CheckpointRecord> found;
  std::error_code error;
  fs::directory_iterator it(checkpoints_dir, error);
  if (error) return found;
  std::vector<fs::path> leftovers;
  for (const auto& entry : it) {
    int64_t step = 0;
    if (!entry.is_directory(error) ||
        !ParseCheckpointName(entry.path().filename().string(), &step)) {
      leftovers.push_back(entry.path());
      continue;
    }
    CheckpointRecord record;
    std::ifstream in(entry.path() / kRunRecordFile);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || !ParseRunRecord(text.str(), &record) || record.step != step) {
      record = CheckpointRecord{};
    }
    record.step = step;
    record.dir = entry.path().string();
    found.push_back(std::move(record));
  }
  for (const auto& path : leftovers) fs::remove_all(path, error);
  std::sort(found.begin(), found.end(),
            [](const CheckpointRecord& a, const CheckpointRecord& b) { return a.step > b.step; });
  return found;
}

std::optional<int64_t> BestCheckpointStep(const std::vector<CheckpointRecord>& records) {
  const CheckpointRecord* best = nullptr;
  for (const CheckpointRecord& r : records) {
    if (r.eval.has_value() && (best == nullptr || BetterEval(r, *best))) best = &r;
  }
  if (best == nullptr) return std::nullopt;
  return best->step;
}

std::vector<int64_t> CheckpointsToKeep(const std::vector<CheckpointRecord>& records, int keep) {
  std::vector<int64_t> kept;
  if (records.empty()) return kept;
  kept.push_back(records.front().step);  // the newest: where a restart resumes
  std::vector<const CheckpointRecord*> ranked;
  for (const CheckpointRecord& r : records) ranked.push_back(&r);
  std::stable_sort(
      ranked.begin(), ranked.end(),
      [](const CheckpointRecord* a, const CheckpointRecord* b) { return BetterEval(*a, *b); });
  for (int i = 0; i < keep && i < static_cast<int>(ranked.size()); ++i) {
    if (std::find(kept.begin(), kept.end(), ranked[i]->step) == kept.end()) {
      kept.push_back(ranked[i]->step);
    }
  }
  return kept;
}

void PruneCheckpoints(const std::string& checkpoints_dir, int keep) {
  const std::vector<CheckpointRecord> found = ListCheckpoints(checkpoints_dir);
  const std::vector<int64_t> kept = CheckpointsToKeep(found, std::max(keep, 1));
  std::error_code error;
  for (const CheckpointRecord& r : found) {
    if (std::find(kept.begin(), kept.end(), r.step) == kept.end()) fs::remove_all(r.dir, error);
  }
}

}  // namespace lorad::finetune
