// State of a LoraTrainer, shared by its step (lora_trainer.cc) and checkpoint
// (lora_trainer_checkpoint.cc) halves. Internal to engine/finetune.
#pragma once

#include <memory>
#include <vector>

#include "engine/finetune/lora_trainer.h"
#include "engine/finetune/torch_llama.h"
#include "torch/torch.h"

namespace lorad::finetune {

class LoraTrainer::Impl {
 public:
  Impl(const ModelWeights& base, LoraTrainConfig config, std::vector<TrainExample> dataset,
       TrainGate* gate);

  // Every trainable tensor in a fixed order (layer, target, A then B): the optimizer's order.
  std::vector<torch::Tensor> Parameters() const;
  // Sum of target-token cross-entropy of `examples` (in micro-batches of batch_size); with
  // `backward`, d(sum / `normalizer`)/dθ accumulates into the parameters' grads.
  double LossSum(const std::vector<const TrainExample*>& examples, bool train, bool backward,
                 double normalizer);
  absl::Status Guarded(const char* what, const std::function<void()>& fn);

  const ModelWeights& base;
  const LoraTrainConfig config;
  const std::vector<TrainExample> dataset;
  GateState gate;
  TorchLlama model;
  LoraParamSet lora;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  int64_t step = 0;
};

}  // namespace lorad::finetune
