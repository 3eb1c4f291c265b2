#include "engine/model/reference_forward.h"

#include <algorithm>
#include <cmath>

#include "engine/quant/dequantize.h"

namespace lorad {
namespace {

std::vector<float> Dense(const WeightMatrix& w) {
  std::vector<float> out(static_cast<size_t>(w.rows) * w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    quant::DequantizeRow(w.type, static_cast<const uint8_t*>(w.data) + r * w.row_bytes,
                         out.data() + r * w.cols, w.cols);
  }
  return out;
}

// y[n, rows] = x[n, cols] · Wᵀ
std::vector<float> MatMul(const std::vector<float>& x, int64_t n, const std::vector<float>& w,
                          int64_t rows, int64_t cols) {
  std::vector<float> y(n * rows);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t c = 0; c < cols; ++c) acc += double{x[i * cols + c]} * w[r * cols + c];
      y[i * rows + r] = static_cast<float>(acc);
    }
  }
  return y;
}

std::vector<float> RmsNorm(const std::vector<float>& x, int64_t n, int64_t d,
                           const std::vector<float>& w, float eps) {
  std::vector<float> y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0.0;
    for (int64_t c = 0; c < d; ++c) ss += double{x[i * d + c]} * x[i * d + c];
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t c = 0; c < d; ++c) y[i * d + c] = static_cast<float>(x[i * d + c] * inv * w[c]);
  }
  return y;
}

void ApplyRope(std::vector<float>& v, int64_t n, int32_t heads, const ModelSpec& s,
               const std::vector<float>& freq_factors) {
  const int32_t d = s.head_dim;
  for (int64_t p = 0; p < n; ++p) {
    for (int32_t h = 0; h < heads; ++h) {
      float* x = v.data() + (p * heads + h) * d;
      for (int32_t i = 0; i < d / 2; ++i) {
        double freq = std::pow(double{s.rope_theta}, -2.0 * i / d);
        if (!freq_factors.empty()) freq /= freq_factors[i];
        const double theta = p * freq;
        const int32_t i0 = s.rope_neox ? i : 2 * i;
        const int32_t i1 = s.rope_neox ? i + d / 2 : 2 * i + 1;
        const double x0 = x[i0], x1 = x[i1];
        x[i0] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
        x[i1] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
      }
    }
  }
}

}  // namespace

absl::StatusOr<ReferenceModel> ReferenceModel::Create(const ModelWeights& weights) {
  ReferenceModel m;
  m.spec_ = weights.spec;
  m.embedding_ = Dense(weights.token_embedding);
  m.output_ = Dense(weights.output);
  m.output_norm_ = weights.output_norm;
  m.rope_freq_factors_ = weights.rope_freq_factors;
  for (const LayerWeights& lw : weights.layers) {
    Layer l;
    l.attn_norm = lw.attn_norm;
    l.ffn_norm = lw.ffn_norm;
    l.bq = lw.bq;
    l.bk = lw.bk;
    l.bv = lw.bv;
    const WeightMatrix* ws[kNumLoraTargets] = {&lw.wq,     &lw.wk,   &lw.wv,    &lw.wo,
                                               &lw.w_gate, &lw.w_up, &lw.w_down};
    for (int t = 0; t < kNumLoraTargets; ++t) l.w[t] = Dense(*ws[t]);
    m.layers_.push_back(std::move(l));
  }
  return m;
}

void ReferenceModel::MergeLora(int32_t layer, LoraTarget target, const float* a, const float* b,
                               int32_t rank, float scale) {
  std::vector<float>& w = layers_[layer].w[static_cast<int>(target)];
  const auto [in, out] = LoraModuleShapeOf(spec_, target);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) {
      double acc = 0.0;
      for (int32_t k = 0; k < rank; ++k) acc += double{b[r * rank + k]} * a[k * in + c];
      w[r * in + c] += static_cast<float>(scale * acc);
    }
  }
}

std::vector<float> ReferenceModel::Forward(const std::vector<int32_t>& tokens) const {
  const ModelSpec& s = spec_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t d = s.hidden_size, hd = s.head_dim;
  const int64_t qd = s.num_heads * hd, kvd = s.num_kv_heads * hd, ff = s.intermediate_size;
  std::vector<float> x(n * d);
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(embedding_.begin() + tokens[i] * d, d, x.begin() + i * d);
  }
  for (const Layer& l : layers_) {
    std::vector<float> h = RmsNorm(x, n, d, l.attn_norm, s.rms_norm_eps);
    std::vector<float> q = MatMul(h, n, l.w[0], qd, d);
    std::vector<float> k = MatMul(h, n, l.w[1], kvd, d);
    std::vector<float> v = MatMul(h, n, l.w[2], kvd, d);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < qd && !l.bq.empty(); ++c) q[i * qd + c] += l.bq[c];
      for (int64_t c = 0; c < kvd && !l.bk.empty(); ++c) k[i * kvd + c] += l.bk[c];
      for (int64_t c = 0; c < kvd && !l.bv.empty(); ++c) v[i * kvd + c] += l.bv[c];
    }
    ApplyRope(q, n, s.num_heads, s, rope_freq_factors_);
    ApplyRope(k, n, s.num_kv_heads, s, rope_freq_factors_);
    std::vector<float> att(n * qd, 0.0f);
    const int32_t group = s.num_heads / s.num_kv_heads;
    for (int64_t i = 0; i < n; ++i) {
      for (int32_t hh = 0; hh < s.num_heads; ++hh) {
        const int64_t g = hh / group;
        std::vector<double> p(i + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < hd; ++c)
            dot +=
                double{q[(i * s.num_heads + hh) * hd + c]} * k[(j * s.num_kv_heads + g) * hd + c];
          p[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, p[j]);
        }
        double sum = 0.0;
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (int64_t c = 0; c < hd; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j <= i; ++j) acc += p[j] / sum * v[(j * s.num_kv_heads + g) * hd + c];
          att[(i * s.num_heads + hh) * hd + c] = static_cast<float>(acc);
        }
      }
    }
    std::vector<float> o = MatMul(att, n, l.w[3], d, qd);
    for (int64_t i = 0; i < n * d; ++i) x[i] += o[i];
    h = RmsNorm(x, n, d, l.ffn_norm, s.rms_norm_eps);
    std::vector<float> g = MatMul(h, n, l.w[4], ff, d);
    std::vector<float> u = MatMul(h, n, l.w[5], ff, d);
    for (int64_t i = 0; i < n * ff; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    std::vector<float> dn = MatMul(g, n, l.w[6], d, ff);
    for (int64_t i = 0; i < n * d; ++i) x[i] += dn[i];
  }
  std::vector<float> h = RmsNorm(x, n, d, output_norm_, s.rms_norm_eps);
  return MatMul(h, n, output_, s.vocab_size, d);
}

}  // namespace lorad
