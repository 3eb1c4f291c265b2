#include "engine/finetune/frozen_linear.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ATen/Parallel.h"
#include "engine/finetune/fused_kernels.h"
#include "engine/kernels/quant_matmul.h"

namespace lorad::finetune {
namespace {

using fused_kernels::FloatToBf16;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = x·wᵀ with w already in the multiply's dtype (bf16: x and the incoming gradient are rounded
// to bf16 too, the products accumulate in fp32).
torch::Tensor Multiply(const torch::Tensor& x, const torch::Tensor& w) {
  if (w.scalar_type() == torch::kFloat32) return torch::matmul(x, w.t());
  return torch::matmul(x.to(w.scalar_type()), w.t()).to(torch::kFloat32);
}

torch::Tensor MultiplyBackward(const torch::Tensor& dy, const torch::Tensor& w) {
  if (w.scalar_type() == torch::kFloat32) return torch::matmul(dy, w);
  return torch::matmul(dy.to(w.scalar_type()), w).to(torch::kFloat32);
}

struct FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, std::vector<int64_t> w_addrs,
                               int64_t gate_addr, bool bf16) {
    ctx->saved_data["w"] = w_addrs;
    ctx->saved_data["gate"] = gate_addr;
    ctx->saved_data["bf16"] = bf16;
    reinterpret_cast<GateState*>(gate_addr)->Pause();
    return Multiply(x, FrozenWeights(Matrices(w_addrs), bf16));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const std::vector<int64_t> w_addrs = ctx->saved_data["w"].toIntVector();
    reinterpret_cast<GateState*>(ctx->saved_data["gate"].toInt())->Pause();
    const torch::Tensor dx = MultiplyBackward(
        grads[0], FrozenWeights(Matrices(w_addrs), ctx->saved_data["bf16"].toBool()));
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

  static std::vector<const WeightMatrix*> Matrices(const std::vector<int64_t>& addrs) {
    std::vector<const WeightMatrix*> out;
    for (int64_t a : addrs) out.push_back(reinterpret_cast<const WeightMatrix*>(a));
    return out;
  }
};

// The same op on a weight the caller converted once (kept by reference, not copied).
struct PreparedLinearFn : public torch::autograd::Function<PreparedLinearFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor w,
                               int64_t gate_addr) {
    ctx->saved_data["gate"] = gate_addr;
    ctx->save_for_backward({w});
    reinterpret_cast<GateState*>(gate_addr)->Pause();
    return Multiply(x, w);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    reinterpret_cast<GateState*>(ctx->saved_data["gate"].toInt())->Pause();
    const torch::Tensor dx = MultiplyBackward(grads[0], ctx->get_saved_variables()[0]);
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// This thread's scratch buffer of T, at least n long (reused by the next call).
template <typename T>
T* Scratch(size_t n) {
  thread_local std::vector<T> scratch;
  if (scratch.size() < n) scratch.resize(n);
  return scratch.data();
}

// Rows per task of the dequantization.
int64_t Grain(int64_t cols) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, cols));
}

void DequantizeInto(const WeightMatrix& w, float* dst) {
  const kernels::QuantMatrix q{w.type, w.rows, w.cols, w.data, w.row_bytes};
  at::parallel_for(0, w.rows, Grain(w.cols), [&](int64_t begin, int64_t end) {
    kernels::DequantizeRows(q, begin, end, dst + begin * w.cols);
  });
}

// Dequantized a chunk of rows at a time (about 16 KB of fp32, still in L1 when converted).
void DequantizeBf16Into(const WeightMatrix& w, uint16_t* dst) {
  const kernels::QuantMatrix q{w.type, w.rows, w.cols, w.data, w.row_bytes};
  const int64_t chunk = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, w.cols));
  at::parallel_for(0, w.rows, Grain(w.cols), [&](int64_t begin, int64_t end) {
    std::vector<float> rows(static_cast<size_t>(chunk * w.cols));
    for (int64_t r = begin; r < end; r += chunk) {
      const int64_t r_end = std::min(end, r + chunk);
      kernels::DequantizeRows(q, r, r_end, rows.data());
      FloatToBf16(rows.data(), (r_end - r) * w.cols, dst + r * w.cols);
    }
  });
}

}  // namespace

void GateState::Pause() {
  if (gate == nullptr) return;
  absl::Status s = gate->Pause();
  if (s.ok()) return;
  if (stopped.ok()) stopped = s;
  throw GateStop(std::move(s));
}

torch::Tensor FrozenWeights(const std::vector<const WeightMatrix*>& ws, bool bf16) {
  const int64_t cols = ws.front()->cols;
  int64_t rows = 0;
  for (const WeightMatrix* w : ws) rows += w->rows;
  const size_t n = static_cast<size_t>(rows) * cols;
  if (!bf16) {
    float* const out = Scratch<float>(n);
    float* dst = out;
    for (const WeightMatrix* w : ws) {
      DequantizeInto(*w, dst);
      dst += w->rows * cols;
    }
    return torch::from_blob(out, {rows, cols}, torch::kFloat32);
  }
  at::BFloat16* const out = Scratch<at::BFloat16>(n);
  at::BFloat16* dst = out;
  for (const WeightMatrix* w : ws) {
    DequantizeBf16Into(*w, reinterpret_cast<uint16_t*>(dst));
    dst += w->rows * cols;
  }
  return torch::from_blob(out, {rows, cols}, torch::kBFloat16);
}

torch::Tensor FrozenLinear(const torch::Tensor& x, const torch::Tensor& w, GateState* gate) {
  return PreparedLinearFn::apply(x, w, reinterpret_cast<int64_t>(gate));
}

torch::Tensor FrozenLinear(const torch::Tensor& x, const std::vector<const WeightMatrix*>& ws,
                           GateState* gate, bool bf16) {
  std::vector<int64_t> addrs;
  for (const WeightMatrix* w : ws) addrs.push_back(reinterpret_cast<int64_t>(w));
  return FrozenLinearFn::apply(x, addrs, reinterpret_cast<int64_t>(gate), bf16);
}

}  // namespace lorad::finetune
