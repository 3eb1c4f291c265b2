// How training yields to inference: the trainer calls Pause() between layers of its forward
// and backward passes; an implementation blocks while serving has work (inference keeps
// priority) and may end the run early by returning an error (cancellation).
#pragma once

#include "absl/status/status.h"

namespace lorad::finetune {

class TrainGate {
 public:
  virtual ~TrainGate() = default;
  // Called often (several times per layer). OK: go on. Non-OK (e.g. CANCELLED): the current
  // step is abandoned and the trainer returns this status; its state is unchanged by the
  // abandoned step.
  virtual absl::Status Pause() = 0;
};

}  // namespace lorad::finetune
