#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace lorad {

Sampler::Sampler(const SamplingParams& params, int32_t vocab_size, uint64_t seed)
    : params_(params),
      vocab_size_(vocab_size),
      rng_(params.seed != 0 ? params.seed : seed),
      seen_(vocab_size, 0) {}

void Sampler::ObservePrompt(int32_t token) {
  if (token < 0 || token >= vocab_size_ || seen_[token]) return;
  seen_[token] = 1;
  seen_list_.push_back(token);
}

void Sampler::ObserveOutput(int32_t token) {
  if (token < 0 || token >= vocab_size_) return;
  ObservePrompt(token);
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    ++output_counts_[token];
  }
}

SampledToken Sampler::Sample(float* logits) {
  SampledToken out;
  const int32_t n = vocab_size_;
  float lse = 0.0f;
  std::vector<float> raw;
  if (params_.logprobs > 0) {
    // Model log-probabilities: log_softmax of the raw logits, before any sampling transform.
    raw.assign(logits, logits + n);
    const float mx = *std::max_element(logits, logits + n);
    double sum = 0.0;
    for (int32_t i = 0; i < n; ++i) sum += std::exp(double{logits[i]} - mx);
    lse = mx + static_cast<float>(std::log(sum));
    std::vector<int32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    const int32_t k = std::min(params_.logprobs, n);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    for (int32_t i = 0; i < k; ++i) out.top.push_back({idx[i], logits[idx[i]] - lse});
  }

  if (params_.repetition_penalty != 1.0f) {
    for (int32_t t : seen_list_) {
      logits[t] = logits[t] > 0 ? logits[t] / params_.repetition_penalty
                                : logits[t] * params_.repetition_penalty;
    }
  }

  for (const auto& [t, count] : output_counts_) {
    logits[t] -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(count);
  }

  int32_t chosen;
  if (params_.temperature == 0.0f) {
    chosen = static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
  } else {
    const float inv_t = 1.0f / params_.temperature;
    candidates_.resize(n);
    std::iota(candidates_.begin(), candidates_.end(), 0);
    auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b]; };
    int32_t m = n;
    if (params_.top_k > 0 && params_.top_k < n) {
      std::nth_element(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(),
                       by_logit);
      m = params_.top_k;
    }
    std::sort(candidates_.begin(), candidates_.begin() + m, by_logit);
    // Softmax over the remaining candidates at this temperature.
    probs_.resize(m);
    const float mx = logits[candidates_[0]];
    double sum = 0.0;
    for (int32_t i = 0; i < m; ++i) {
      probs_[i] = std::exp((logits[candidates_[i]] - mx) * inv_t);
      sum += probs_[i];
    }
    for (int32_t i = 0; i < m; ++i) probs_[i] = static_cast<float>(probs_[i] / sum);
    if (params_.top_p < 1.0f) {
      double cum = 0.0;
      int32_t keep = m;
      for (int32_t i = 0; i < m; ++i) {
        cum += probs_[i];
        if (cum >= params_.top_p) {
          keep = i + 1;
          break;
        }
      }
      m = keep;
    }
    if (params_.min_p > 0.0f) {
      const float floor = params_.min_p * probs_[0];
      int32_t keep = 1;
      while (keep < m && probs_[keep] >= floor) ++keep;
      m = keep;
    }
    double total = 0.0;
    for (int32_t i = 0; i < m; ++i) total += probs_[i];
    std::uniform_real_distribution<double> uni(0.0, total);
    const double r = uni(rng_);
    double cum = 0.0;
    chosen = candidates_[m - 1];
    for (int32_t i = 0; i < m; ++i) {
      cum += probs_[i];
      if (r < cum) {
        chosen = candidates_[i];
        break;
      }
    }
  }
  out.token = chosen;
  if (params_.logprobs > 0) out.logprob = raw[chosen] - lse;
  return out;
}

}  // namespace lorad
