// The optimized forward on the real default model against the fp32 reference forward.
// With the scalar kernels (fp32 arithmetic) and an fp32 KV cache the two must agree tightly:
// that checks the forward logic (paged KV, RoPE, GQA, norms, batching). With the SIMD kernels,
// activations are rounded to 8-bit blocks and K/V to fp16 as llama.cpp does, which moves logits
// by a few percent of their range.
#include <algorithm>
#include <cmath>

#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/reference_forward.h"
#include "gtest/gtest.h"
#include "tests/engine/model_test_util.h"

namespace lorad {
namespace {

class RealModelForwardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = testing::DefaultModelPath();
    if (path.empty()) return;
    auto weights = LoadModel(path);
    ASSERT_TRUE(weights.ok()) << weights.status();
    auto ref = ReferenceModel::Create(**weights);
    ASSERT_TRUE(ref.ok());
    reference_ = new ReferenceModel(std::move(*ref));
    pool_ = new kernels::ThreadPool(2);
    model_ = LlamaModel::Create(std::move(*weights), pool_)->release();
    for (int i = 0; i < 40; ++i) seq_a_.push_back(1000 + 37 * i);
    for (int i = 0; i < 23; ++i) seq_b_.push_back(200 + 101 * i);
    want_a_ = reference_->Forward(seq_a_);
    want_b_ = reference_->Forward(seq_b_);
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "default model not present";
  }

  // Max |got - want| over max |want|, per position, for both sequences run in one batch.
  std::vector<double> RelativeErrors(DType kv_dtype) {
    auto cache = KvCache::Create(model_->CacheOptions(64, 16, kv_dtype));
    EXPECT_TRUE(cache.ok());
    const std::vector<float> got = testing::ForwardAll(*model_, **cache, {seq_a_, seq_b_});
    const int32_t vocab = model_->spec().vocab_size;
    EXPECT_EQ(got.size(), (seq_a_.size() + seq_b_.size()) * vocab);
    std::vector<float> want = want_a_;
    want.insert(want.end(), want_b_.begin(), want_b_.end());
    std::vector<double> errs;
    for (size_t p = 0; p * vocab < got.size(); ++p) {
      double max_err = 0.0, max_ref = 0.0;
      for (int32_t v = 0; v < vocab; ++v) {
        max_err = std::max(max_err, double{std::fabs(got[p * vocab + v] - want[p * vocab + v])});
        max_ref = std::max(max_ref, double{std::fabs(want[p * vocab + v])});
      }
      errs.push_back(max_err / max_ref);
    }
    return errs;
  }

  static inline ReferenceModel* reference_ = nullptr;
  static inline kernels::ThreadPool* pool_ = nullptr;
  static inline LlamaModel* model_ = nullptr;
  static inline std::vector<int32_t> seq_a_, seq_b_;
  static inline std::vector<float> want_a_, want_b_;
};

TEST_F(RealModelForwardTest, ScalarKernelsMatchReferenceTightly) {
  const kernels::Isa previous = kernels::ActiveIsa();
  kernels::SetKernelIsaForTesting(kernels::Isa::kScalar);
  const std::vector<double> errs = RelativeErrors(DType::kF32);
  kernels::SetKernelIsaForTesting(previous);
  for (size_t p = 0; p < errs.size(); ++p) EXPECT_LT(errs[p], 1e-4) << "row " << p;
}

TEST_F(RealModelForwardTest, SimdKernelsAndFp16CacheStayCloseToReference) {
  const std::vector<double> errs = RelativeErrors(DType::kF16);
  double sum = 0.0;
  for (size_t p = 0; p < errs.size(); ++p) {
    EXPECT_LT(errs[p], 0.08) << "row " << p;
    sum += errs[p];
  }
  EXPECT_LT(sum / errs.size(), 0.04);
}

}  // namespace
}  // namespace lorad
