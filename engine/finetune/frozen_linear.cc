#include "engine/finetune/frozen_linear.h"

#include <cstdint>
#include <vector>

#include "ATen/Parallel.h"
#include "engine/kernels/quant_matmul.h"

namespace lorad::finetune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t w_addr,
                               int64_t gate_addr, bool bf16) {
    ctx->saved_data["w"] = w_addr;
    ctx->saved_data["gate"] = gate_addr;
    ctx->saved_data["bf16"] = bf16;
    reinterpret_cast<GateState*>(gate_addr)->Pause();
    const auto& w = *reinterpret_cast<const WeightMatrix*>(w_addr);
    if (bf16) return torch::matmul(x.to(torch::kBFloat16), Bf16Weight(w).t()).to(torch::kFloat32);
    return torch::matmul(x, DequantizeWeight(w).t());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto& w = *reinterpret_cast<const WeightMatrix*>(ctx->saved_data["w"].toInt());
    reinterpret_cast<GateState*>(ctx->saved_data["gate"].toInt())->Pause();
    torch::Tensor dx =
        ctx->saved_data["bf16"].toBool()
            ? torch::matmul(grads[0].to(torch::kBFloat16), Bf16Weight(w)).to(torch::kFloat32)
            : torch::matmul(grads[0], DequantizeWeight(w));
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

  // W as bf16 in this thread's second scratch buffer (same reuse rules as DequantizeWeight).
  static torch::Tensor Bf16Weight(const WeightMatrix& w) {
    thread_local std::vector<at::BFloat16> scratch;
    const size_t n = static_cast<size_t>(w.rows) * w.cols;
    if (scratch.size() < n) scratch.resize(n);
    torch::Tensor out = torch::from_blob(scratch.data(), {w.rows, w.cols}, torch::kBFloat16);
    out.copy_(DequantizeWeight(w));
    return out;
  }
};

}  // namespace

void GateState::Pause() {
  if (gate == nullptr) return;
  absl::Status s = gate->Pause();
  if (s.ok()) return;
  if (stopped.ok()) stopped = s;
  throw GateStop(std::move(s));
}

torch::Tensor DequantizeWeight(const WeightMatrix& w) {
  thread_local std::vector<float> scratch;
  const size_t n = static_cast<size_t>(w.rows) * w.cols;
  if (scratch.size() < n) scratch.resize(n);
  float* dst = scratch.data();
  torch::Tensor out = torch::from_blob(dst, {w.rows, w.cols}, torch::kFloat32);
  const kernels::QuantMatrix q{w.type, w.rows, w.cols, w.data, w.row_bytes};
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, w.cols));
  at::parallel_for(0, w.rows, grain, [&](int64_t begin, int64_t end) {
    kernels::DequantizeRows(q, begin, end, dst + begin * w.cols);
  });
  return out;
}

torch::Tensor FrozenLinear(const torch::Tensor& x, const WeightMatrix& w, GateState* gate,
                           bool bf16) {
  return FrozenLinearFn::apply(x, reinterpret_cast<int64_t>(&w), reinterpret_cast<int64_t>(gate),
                               bf16);
}

}  // namespace lorad::finetune
