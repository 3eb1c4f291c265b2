// LoraTrainer::SaveCheckpoint / RestoreCheckpoint. A checkpoint directory holds the adapter as
// PEFT files (adapter_config.json, adapter_model.safetensors: servable as is), the AdamW state
// (optimizer.pt, LibTorch serialization), trainer_state.json (step and the identity of the
// run: seed, rank, targets, dataset size, total steps) and the caller's extra files.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/base/atomic_file.h"
#include "engine/base/safetensors.h"
#include "engine/base/status_macros.h"
#include "engine/base/torch_status.h"
#include "engine/finetune/lora_trainer.h"
#include "engine/finetune/lora_trainer_impl.h"
#include "nlohmann/json.hpp"

namespace lorad::finetune {
namespace {

namespace fs = std::filesystem;

constexpr char kStateFile[] = "trainer_state.json";
constexpr char kOptimizerFile[] = "optimizer.pt";

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path, " to fsync"));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync failed on ", path));
  return absl::OkStatus();
}

// What must match for a checkpoint to continue this run.
nlohmann::json Identity(const LoraTrainConfig& c, int64_t num_examples) {
  std::vector<int> targets;
  for (LoraTarget t : c.targets) targets.push_back(static_cast<int>(t));
  return {{"seed", std::to_string(c.seed)},
          {"rank", c.rank},
          {"targets", targets},
          {"num_examples", num_examples},
          {"total_steps", c.total_steps},
          {"batch_size", c.batch_size},
          {"grad_accum", c.grad_accum}};
}

}  // namespace

absl::Status LoraTrainer::SaveCheckpoint(
    const std::string& dir,
    const std::vector<std::pair<std::string, std::string>>& extra_files) const {
  const Impl& im = *impl_;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("checkpoint directory ", dir, " exists"));
  }
  const std::string tmp = absl::StrCat(dir, ".tmp");
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec)) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  }
  absl::Status s = [&]() -> absl::Status {
    LORAD_RETURN_IF_ERROR(WritePeftAdapter(tmp, Lora(), im.base.spec, im.base.spec.name));
    const std::string opt_path = absl::StrCat(tmp, "/", kOptimizerFile);
    LORAD_RETURN_IF_ERROR(
        TorchCall("saving optimizer state", [&] { torch::save(*im.optimizer, opt_path); }));
    LORAD_RETURN_IF_ERROR(FsyncPath(opt_path, false));
    nlohmann::json state = {{"step", im.step}, {"run", Identity(im.config, im.dataset.size())}};
    LORAD_RETURN_IF_ERROR(
        WriteFileAtomically(absl::StrCat(tmp, "/", kStateFile), {state.dump(2) + "\n"}));
    for (const auto& [name, contents] : extra_files) {
      LORAD_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(tmp, "/", name), {contents}));
    }
    LORAD_RETURN_IF_ERROR(FsyncPath(tmp, true));
    if (std::rename(tmp.c_str(), dir.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", dir));
    }
    return FsyncPath(fs::path(dir).parent_path().string(), true);
  }();
  if (!s.ok()) fs::remove_all(tmp, ec);
  return s;
}

absl::Status LoraTrainer::RestoreCheckpoint(const std::string& dir) {
  Impl& im = *impl_;
  std::ifstream in(absl::StrCat(dir, "/", kStateFile));
  if (!in) return absl::NotFoundError(absl::StrCat(dir, ": no ", kStateFile));
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json state = nlohmann::json::parse(text.str(), nullptr, false);
  if (state.is_discarded() || !state.contains("step") || !state.contains("run")) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/", kStateFile, " is malformed"));
  }
  if (state["run"] != Identity(im.config, im.dataset.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": checkpoint of a different run (config or dataset differ)"));
  }
  const int64_t step = state["step"].get<int64_t>();
  if (step < 0 || step > im.config.total_steps) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": step ", step, " out of range"));
  }
  LORAD_ASSIGN_OR_RETURN(auto file,
                         SafetensorsFile::Open(absl::StrCat(dir, "/adapter_model.safetensors")));
  TrainedLora lora = Lora();
  const ModelSpec& spec = im.base.spec;
  for (int32_t l = 0; l < spec.num_layers; ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      TrainedLoraPair& p = lora.layers[l][t];
      if (p.rank == 0) continue;
      const auto target = static_cast<LoraTarget>(t);
      const std::string prefix = "base_model.model." + LoraModuleKey(l, target);
      for (bool is_b : {false, true}) {
        LORAD_ASSIGN_OR_RETURN(
            const SafetensorsTensor* st,
            file->Get(absl::StrCat(prefix, is_b ? ".lora_B" : ".lora_A", ".weight")));
        std::vector<float>& dst = is_b ? p.b : p.a;
        if (st->dtype != DType::kF32 || st->num_elements != static_cast<int64_t>(dst.size())) {
          return absl::InvalidArgumentError(
              absl::StrCat(dir, ": tensor ", st->name, " has the wrong dtype or size"));
        }
        std::vector<float> values(dst.size());
        std::memcpy(values.data(), st->data, st->bytes);
        if (is_b && !spec.rope_neox && (target == LoraTarget::kQ || target == LoraTarget::kK)) {
          for (int64_t r = 0; r < LoraModuleShapeOf(spec, target).out; ++r) {
            const int64_t hf_row = HfToGgufQkSourceRow(r, spec.head_dim);
            std::copy_n(values.data() + hf_row * p.rank, p.rank, dst.data() + r * p.rank);
          }
        } else {
          dst = std::move(values);
        }
      }
    }
  }
  LORAD_RETURN_IF_ERROR(SetLora(lora));
  LORAD_RETURN_IF_ERROR(TorchCall("loading optimizer state", [&] {
    torch::load(*im.optimizer, absl::StrCat(dir, "/", kOptimizerFile));
  }));
  im.step = step;
  return absl::OkStatus();
}

}  // namespace lorad::finetune
