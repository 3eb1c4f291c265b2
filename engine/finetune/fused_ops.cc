#include "engine/finetune/fused_ops.h"

#include <algorithm>

#include "ATen/Parallel.h"
#include "engine/finetune/fused_kernels.h"

namespace lorad::finetune {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows per task: about 32K elements each, so that a task outweighs the cost of handing it out.
int64_t Grain(int64_t row_elements) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, row_elements));
}

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor gain,
                               double eps) {
    const int64_t d = x.size(-1), rows = x.numel() / d;
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor rstd = torch::empty({rows}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* gp = gain.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    at::parallel_for(0, rows, Grain(d), [&](int64_t begin, int64_t end) {
      fused_kernels::RmsNormForward(xp + begin * d, gp, static_cast<float>(eps), end - begin, d,
                                    yp + begin * d, rp + begin);
    });
    ctx->save_for_backward({x, gain, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor dy = grads[0].contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    torch::Tensor dx = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* gp = saved[1].data_ptr<float>();
    const float* rp = saved[2].data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, rows, Grain(d), [&](int64_t begin, int64_t end) {
      fused_kernels::RmsNormBackward(xp + begin * d, gp, rp + begin, dyp + begin * d, end - begin,
                                     d, dxp + begin * d);
    });
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// x [batch, len, heads, head_dim]; sin_sign -1 applies the inverse rotation.
torch::Tensor RotateTokens(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin, bool neox, float sin_sign) {
  const int64_t len = x.size(1), heads = x.size(2), hd = x.size(3);
  const int64_t tokens = x.size(0) * len;
  torch::Tensor y = torch::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, tokens, Grain(heads * hd), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t pos = t % len;
      fused_kernels::RopeToken(xp + t * heads * hd, cp + pos * hd / 2, sp + pos * hd / 2, sin_sign,
                               heads, hd, neox, yp + t * heads * hd);
    }
  });
  return y;
}

struct RopeFn : public torch::autograd::Function<RopeFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor cos,
                               torch::Tensor sin, bool neox) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["neox"] = neox;
    return RotateTokens(x, cos, sin, neox, 1.0f);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor dx = RotateTokens(grads[0].contiguous(), saved[0], saved[1],
                                          ctx->saved_data["neox"].toBool(), -1.0f);
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

struct SwiGluFn : public torch::autograd::Function<SwiGluFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor gate, torch::Tensor up) {
    torch::Tensor y = torch::empty_like(gate);
    const float* gp = gate.data_ptr<float>();
    const float* up_p = up.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, gate.numel(), Grain(1), [&](int64_t begin, int64_t end) {
      fused_kernels::SwiGluForward(gp + begin, up_p + begin, end - begin, yp + begin);
    });
    ctx->save_for_backward({gate, up});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dg = torch::empty_like(saved[0]), du = torch::empty_like(saved[1]);
    const float* gp = saved[0].data_ptr<float>();
    const float* up_p = saved[1].data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float* dgp = dg.data_ptr<float>();
    float* dup = du.data_ptr<float>();
    at::parallel_for(0, dy.numel(), Grain(1), [&](int64_t begin, int64_t end) {
      fused_kernels::SwiGluBackward(gp + begin, up_p + begin, dyp + begin, end - begin, dgp + begin,
                                    dup + begin);
    });
    return {dg, du};
  }
};

}  // namespace

torch::Tensor FusedRmsNorm(const torch::Tensor& x, const torch::Tensor& gain, float eps) {
  return RmsNormFn::apply(x.contiguous(), gain.contiguous(), eps);
}

torch::Tensor FusedRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        bool neox) {
  return RopeFn::apply(x.contiguous(), cos.contiguous(), sin.contiguous(), neox);
}

torch::Tensor FusedSwiGlu(const torch::Tensor& gate, const torch::Tensor& up) {
  return SwiGluFn::apply(gate.contiguous(), up.contiguous());
}

}  // namespace lorad::finetune
