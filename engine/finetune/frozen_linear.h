// y = x · Wᵀ against a frozen base matrix kept in its stored (quantized) format, as a LibTorch
// autograd op: W is dequantized (to fp32, or straight to bf16) while the forward op runs and
// again in the backward op (which only returns dL/dx; W gets no gradient), so the model is never
// held in full precision; the output head, multiplied over row chunks, is dequantized once.
// Each forward and backward call first asks the gate to pause; a gate error throws GateStop.
// Internal to engine/finetune (includes LibTorch).
#pragma once

#include <exception>
#include <vector>

#include "absl/status/status.h"
#include "engine/finetune/train_gate.h"
#include "engine/model/model_weights.h"
#include "torch/torch.h"

namespace lorad::finetune {

// Thrown through LibTorch when the gate returns an error; carries that status.
struct GateStop : std::exception {
  explicit GateStop(absl::Status s) : status(std::move(s)) {}
  const char* what() const noexcept override { return "training stopped by its gate"; }
  absl::Status status;
};

// Where the gate's error is kept when LibTorch's autograd engine rewraps the exception.
struct GateState {
  TrainGate* gate = nullptr;  // null: never pauses
  absl::Status stopped;       // the first gate error of the current pass
  // Calls the gate; on error records it and throws GateStop.
  void Pause();
};

// The matrices `ws` (same cols) in the dtype FrozenLinear multiplies in, their rows stacked in
// order: dequantized to fp32, or with `bf16` straight to bf16 (a row chunk at a time), rows
// split over LibTorch's threads. The result lives in this thread's scratch buffer for that
// dtype, reused by the next call: use it before converting other matrices of the same dtype
// and do not let autograd keep it. (Reuse matters: a fresh 100 MB allocation per call is a
// fresh mmap whose page faults cost a fifth of a step.)
torch::Tensor FrozenWeights(const std::vector<const WeightMatrix*>& ws, bool bf16);

// x [n, cols] -> [n, Σ rows] for the frozen matrices `ws` on the same input (e.g. q, k and v:
// one multiply forward and backward, their outputs side by side), fp32 in and out. With `bf16`,
// W and x (and in backward the incoming gradient) are rounded to bf16 for the multiply,
// accumulated in fp32 by oneDNN. `ws` and `gate` must outlive the autograd graph.
torch::Tensor FrozenLinear(const torch::Tensor& x, const std::vector<const WeightMatrix*>& ws,
                           GateState* gate, bool bf16);

// The same op on a weight from FrozenWeights, for callers that multiply one matrix many times
// (the output head over row chunks): `w` must stay valid (no other FrozenWeights call of the
// same dtype on this thread) until the op's backward has run.
torch::Tensor FrozenLinear(const torch::Tensor& x, const torch::Tensor& w, GateState* gate);

}  // namespace lorad::finetune
