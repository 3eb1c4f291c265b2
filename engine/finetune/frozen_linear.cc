#include "engine/finetune/frozen_linear.h"

#include <cstdint>

#include "ATen/Parallel.h"
#include "engine/kernels/quant_matmul.h"

namespace lorad::finetune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t w_addr,
                               int64_t gate_addr) {
    ctx->saved_data["w"] = w_addr;
    ctx->saved_data["gate"] = gate_addr;
    reinterpret_cast<GateState*>(gate_addr)->Pause();
    const torch::Tensor w = DequantizeWeight(*reinterpret_cast<const WeightMatrix*>(w_addr));
    return torch::matmul(x, w.t());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto* w = reinterpret_cast<const WeightMatrix*>(ctx->saved_data["w"].toInt());
    reinterpret_cast<GateState*>(ctx->saved_data["gate"].toInt())->Pause();
    const torch::Tensor dense = DequantizeWeight(*w);
    return {torch::matmul(grads[0], dense), torch::Tensor(), torch::Tensor()};
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
  torch::Tensor out = torch::empty({w.rows, w.cols}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  const kernels::QuantMatrix q{w.type, w.rows, w.cols, w.data, w.row_bytes};
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, w.cols));
  at::parallel_for(0, w.rows, grain, [&](int64_t begin, int64_t end) {
    kernels::DequantizeRows(q, begin, end, dst + begin * w.cols);
  });
  return out;
}

torch::Tensor FrozenLinear(const torch::Tensor& x, const WeightMatrix& w, GateState* gate) {
  return FrozenLinearFn::apply(x, reinterpret_cast<int64_t>(&w), reinterpret_cast<int64_t>(gate));
}

}  // namespace lorad::finetune
