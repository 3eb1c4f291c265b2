// The fused fine-tuning ops (engine/finetune/fused_ops.h) against the plain LibTorch composites
// they replace: forward values and input gradients on random inputs, at model-like and odd
// shapes (rows and widths that are not multiples of the vector width or the attention block).
#include "engine/finetune/fused_ops.h"

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace lorad::finetune {
namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;

// Runs fn on copies of `inputs` that require grad, backpropagates `seed`, returns
// {output, grads of each input}.
template <typename Fn>
std::vector<torch::Tensor> ValueAndGrads(Fn fn, const std::vector<torch::Tensor>& inputs,
                                         const torch::Tensor& seed) {
  std::vector<torch::Tensor> leaves;
  for (const torch::Tensor& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
  torch::Tensor y = fn(leaves);
  y.backward(seed);
  std::vector<torch::Tensor> out = {y.detach()};
  for (const torch::Tensor& l : leaves) out.push_back(l.grad());
  return out;
}

template <typename Fused, typename Reference>
void ExpectSame(Fused fused, Reference reference, const std::vector<torch::Tensor>& inputs,
                const torch::Tensor& seed) {
  const std::vector<torch::Tensor> got = ValueAndGrads(fused, inputs, seed);
  const std::vector<torch::Tensor> want = ValueAndGrads(reference, inputs, seed);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i == 0 ? "forward" : "grad of input " + std::to_string(i - 1));
    ASSERT_EQ(got[i].sizes(), want[i].sizes());
    EXPECT_TRUE(torch::allclose(got[i], want[i], kRtol, kAtol))
        << "max abs diff " << (got[i] - want[i]).abs().max().item<float>();
  }
}

class FusedOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(7); }
};

TEST_F(FusedOpsTest, RmsNormMatchesComposite) {
  for (auto [rows, d] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 33}, {64, 576}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << d);
    const torch::Tensor x = torch::randn({rows, d}) * 3, gain = torch::randn({d});
    const float eps = 1e-5f;
    ExpectSame(
        [&](auto& in) { return FusedRmsNorm(in[0], gain, eps); },
        [&](auto& in) { return in[0] * torch::rsqrt(in[0].pow(2).mean(-1, true) + eps) * gain; },
        {x}, torch::randn({rows, d}));
  }
}

// The composite RoPE torch_llama.cc used before FusedRope.
torch::Tensor ReferenceRope(const torch::Tensor& x, const torch::Tensor& cos,
                            const torch::Tensor& sin, bool neox) {
  const int64_t hd = x.size(3);
  const torch::Tensor c = cos.view({1, cos.size(0), 1, hd / 2});
  const torch::Tensor s = sin.view({1, sin.size(0), 1, hd / 2});
  if (neox) {
    const torch::Tensor x0 = x.narrow(3, 0, hd / 2), x1 = x.narrow(3, hd / 2, hd / 2);
    return torch::cat({x0 * c - x1 * s, x0 * s + x1 * c}, 3);
  }
  const torch::Tensor pairs = x.view({x.size(0), x.size(1), x.size(2), hd / 2, 2});
  const torch::Tensor x0 = pairs.select(4, 0), x1 = pairs.select(4, 1);
  return torch::stack({x0 * c - x1 * s, x0 * s + x1 * c}, 4).view(x.sizes());
}

TEST_F(FusedOpsTest, RopeMatchesCompositeInBothLayouts) {
  for (bool neox : {true, false}) {
    for (auto [batch, len, heads, hd] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
             {1, 1, 1, 2}, {2, 5, 3, 6}, {3, 17, 9, 64}}) {
      SCOPED_TRACE(testing::Message()
                   << "neox " << neox << " " << batch << "x" << len << "x" << heads << "x" << hd);
      const torch::Tensor angles = torch::rand({len, hd / 2}) * 6;
      const torch::Tensor cos = angles.cos(), sin = angles.sin();
      ExpectSame([&](auto& in) { return FusedRope(in[0], cos, sin, neox); },
                 [&](auto& in) { return ReferenceRope(in[0], cos, sin, neox); },
                 {torch::randn({batch, len, heads, hd})}, torch::randn({batch, len, heads, hd}));
    }
  }
}

TEST_F(FusedOpsTest, SwiGluMatchesComposite) {
  for (auto [rows, d] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 37}, {33, 1536}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << d);
    // Wide enough to reach the saturated ends of the sigmoid.
    const torch::Tensor g = torch::randn({rows, d}) * 8, u = torch::randn({rows, d});
    ExpectSame([](auto& in) { return FusedSwiGlu(in[0], in[1]); },
               [](auto& in) { return torch::silu(in[0]) * in[1]; }, {g, u},
               torch::randn({rows, d}));
  }
}

// The composite attention torch_llama.cc used before CausalAttention.
torch::Tensor ReferenceAttention(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, int64_t batch, int64_t nh, int64_t nkv,
                                 int64_t hd) {
  const int64_t len = q.size(0) / batch;
  torch::Tensor qh = q.view({batch, len, nh, hd}).permute({0, 2, 1, 3});
  torch::Tensor kh = k.view({batch, len, nkv, hd}).permute({0, 2, 1, 3});
  torch::Tensor vh = v.view({batch, len, nkv, hd}).permute({0, 2, 1, 3});
  if (nh != nkv) {
    kh = kh.repeat_interleave(nh / nkv, 1);
    vh = vh.repeat_interleave(nh / nkv, 1);
  }
  torch::Tensor scores = torch::matmul(qh, kh.transpose(2, 3)) / std::sqrt(double(hd));
  scores = scores.masked_fill(torch::ones({len, len}, torch::kBool).triu(1),
                              -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), vh)
      .permute({0, 2, 1, 3})
      .reshape({batch * len, nh * hd});
}

TEST_F(FusedOpsTest, CausalAttentionMatchesComposite) {
  // batch, len, heads, kv heads, head_dim: lengths below, at and across the 64-row block.
  for (auto [batch, len, nh, nkv, hd] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1, 4}, {2, 7, 4, 2, 6}, {1, 64, 3, 3, 8}, {2, 131, 9, 3, 64}}) {
    SCOPED_TRACE(testing::Message()
                 << batch << "x" << len << " heads " << nh << "/" << nkv << " hd " << hd);
    const int64_t n = batch * len;
    ExpectSame(
        [&](auto& in) { return CausalAttention(in[0], in[1], in[2], batch, nh, nkv, hd); },
        [&](auto& in) { return ReferenceAttention(in[0], in[1], in[2], batch, nh, nkv, hd); },
        {torch::randn({n, nh * hd}) * 2, torch::randn({n, nkv * hd}) * 2,
         torch::randn({n, nkv * hd})},
        torch::randn({n, nh * hd}));
  }
}

}  // namespace
}  // namespace lorad::finetune
