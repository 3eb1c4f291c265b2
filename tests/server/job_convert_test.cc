// job_convert: defaults, field-naming validation, total steps, and the trainer config; job ids
// and data-root confinement of dataset paths (job_files).
#include "server/jobs/job_convert.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "adapters/adapter_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/jobs/job_files.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad::server {
namespace {

// The deprecated lr_scheduler_name is exercised on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Status Check(const v1::Hyperparameters& hp) {
  return EffectiveHyperparameters(hp, JobDefaults{2048, 50}).status();
}

TEST(JobConvertTest, DefaultsAreFilledIn) {
  absl::StatusOr<v1::Hyperparameters> hp =
      EffectiveHyperparameters(v1::Hyperparameters(), JobDefaults{256, 25});
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->rank(), 8u);
  EXPECT_EQ(hp->alpha(), 16.0f);
  EXPECT_THAT(hp->target_modules(), ElementsAre("q_proj", "k_proj", "v_proj", "o_proj"));
  EXPECT_FLOAT_EQ(hp->learning_rate(), 2e-4f);
  EXPECT_EQ(hp->length_case(), v1::Hyperparameters::kEpochs);
  EXPECT_EQ(hp->epochs(), 1u);
  EXPECT_EQ(hp->batch_size(), 4u);
  EXPECT_EQ(hp->grad_accum(), 1u);
  EXPECT_EQ(hp->max_seq_len(), 256u);  // min(512, context)
  EXPECT_EQ(hp->lr_scheduler(), v1::LR_SCHEDULER_COSINE);
  EXPECT_EQ(hp->overlong_examples(), v1::OVERLONG_EXAMPLES_ERROR);
  EXPECT_EQ(hp->keep_checkpoints(), 2u);
  EXPECT_EQ(hp->checkpoint_every_steps(), 25u);
  EXPECT_EQ(hp->max_grad_norm(), 1.0f);
  EXPECT_TRUE(hp->has_seed());

  v1::Hyperparameters named;  // the deprecated string form still works
  named.set_lr_scheduler_name("linear");
  hp = EffectiveHyperparameters(named, JobDefaults{256, 25});
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->lr_scheduler(), v1::LR_SCHEDULER_LINEAR);
  EXPECT_TRUE(hp->lr_scheduler_name().empty());

  v1::Hyperparameters all_linear;
  all_linear.add_target_modules("all-linear");
  hp = EffectiveHyperparameters(all_linear, JobDefaults{256, 25});
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_THAT(hp->target_modules(), ElementsAre("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                "up_proj", "down_proj"));

  v1::Hyperparameters given;
  given.set_rank(4);
  given.set_seed(0);  // an explicit 0 is kept
  given.set_max_steps(9);
  given.set_max_grad_norm(0);  // an explicit 0 turns clipping off
  hp = EffectiveHyperparameters(given, JobDefaults{2048, 50});
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->alpha(), 8.0f);
  EXPECT_EQ(hp->seed(), 0u);
  EXPECT_TRUE(hp->has_max_grad_norm());
  EXPECT_EQ(hp->max_grad_norm(), 0.0f);
  absl::StatusOr<finetune::LoraTrainConfig> unclipped = ToTrainConfig(*hp, 9, 1, 2048);
  ASSERT_TRUE(unclipped.ok()) << unclipped.status();
  EXPECT_EQ(unclipped->max_grad_norm, 0.0f);
  EXPECT_EQ(hp->max_steps(), 9u);
  EXPECT_EQ(hp->max_seq_len(), 512u);
}

TEST(JobConvertTest, BadValuesNameTheField) {
  struct Case {
    void (*set)(v1::Hyperparameters*);
    const char* field;
  };
  const Case cases[] = {
      {[](v1::Hyperparameters* h) { h->set_rank(5000); }, "hyperparameters.rank"},
      {[](v1::Hyperparameters* h) { h->set_alpha(-1); }, "hyperparameters.alpha"},
      {[](v1::Hyperparameters* h) { h->set_dropout(1.0f); }, "hyperparameters.dropout"},
      {[](v1::Hyperparameters* h) { h->add_target_modules("x_proj"); },
       "hyperparameters.target_modules"},
      {[](v1::Hyperparameters* h) {
         h->add_target_modules("q_proj");
         h->add_target_modules("q_proj");
       },
       "hyperparameters.target_modules"},
      {[](v1::Hyperparameters* h) { h->set_learning_rate(2.0f); }, "hyperparameters.learning_rate"},
      {[](v1::Hyperparameters* h) { h->set_batch_size(5000); }, "hyperparameters.batch_size"},
      {[](v1::Hyperparameters* h) { h->set_grad_accum(5000); }, "hyperparameters.grad_accum"},
      {[](v1::Hyperparameters* h) { h->set_max_seq_len(4096); }, "hyperparameters.max_seq_len"},
      {[](v1::Hyperparameters* h) {
         h->set_max_steps(3);
         h->set_warmup_steps(4);
       },
       "hyperparameters.warmup_steps"},
      {[](v1::Hyperparameters* h) { h->set_lr_scheduler(static_cast<v1::LrScheduler>(99)); },
       "hyperparameters.lr_scheduler"},
      {[](v1::Hyperparameters* h) { h->set_max_grad_norm(-1); }, "hyperparameters.max_grad_norm"},
      {[](v1::Hyperparameters* h) { h->set_lr_scheduler_name("step"); },
       "hyperparameters.lr_scheduler_name"},
      {[](v1::Hyperparameters* h) {
         h->set_lr_scheduler_name("linear");
         h->set_lr_scheduler(v1::LR_SCHEDULER_CONSTANT);
       },
       "hyperparameters.lr_scheduler"},
      {[](v1::Hyperparameters* h) {
         h->set_overlong_examples(static_cast<v1::OverlongExamples>(9));
       },
       "hyperparameters.overlong_examples"},
      {[](v1::Hyperparameters* h) { h->set_keep_checkpoints(5000); },
       "hyperparameters.keep_checkpoints"},
      {[](v1::Hyperparameters* h) { h->set_weight_decay(-1); }, "hyperparameters.weight_decay"},
  };
  for (const Case& c : cases) {
    v1::Hyperparameters hp;
    c.set(&hp);
    absl::Status status = Check(hp);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(status.message(), HasSubstr(c.field));
  }
}

TEST(JobConvertTest, TotalStepsAndTrainConfig) {
  v1::Hyperparameters hp = *EffectiveHyperparameters(v1::Hyperparameters(), JobDefaults{});
  hp.set_epochs(3);
  hp.set_batch_size(4);
  hp.set_grad_accum(2);
  EXPECT_EQ(TotalSteps(hp, 17), 9);  // 3 * ceil(17 / 8): a short last step per epoch
  EXPECT_EQ(TotalSteps(hp, 16), 6);
  EXPECT_EQ(TotalSteps(hp, 3), 3);  // fewer examples than a step holds: one step per epoch
  EXPECT_EQ(TotalSteps(hp, 8), 3);  // n = k: one full step per epoch
  EXPECT_EQ(TotalSteps(hp, 9), 6);  // n = k + 1: a full step and a one-example step per epoch
  hp.set_max_steps(11);
  EXPECT_EQ(TotalSteps(hp, 17), 11);

  hp.set_lr_scheduler(v1::LR_SCHEDULER_LINEAR);
  hp.set_warmup_steps(2);
  absl::StatusOr<finetune::LoraTrainConfig> config = ToTrainConfig(hp, 11, 3, 2048);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->total_steps, 11);
  EXPECT_EQ(config->schedule, finetune::LrSchedule::kLinear);
  EXPECT_EQ(config->num_threads, 3);
  EXPECT_EQ(config->targets.size(), 4u);
  EXPECT_EQ(config->seed, hp.seed());

  // warmup_ratio: ceil(ratio x steps); min_lr_ratio: the decay's floor.
  v1::Hyperparameters ratio = hp;
  ratio.set_warmup_steps(0);
  ratio.set_warmup_ratio(0.1f);
  ratio.set_min_lr_ratio(0.25f);
  ratio.set_lr_scheduler(v1::LR_SCHEDULER_COSINE);
  absl::StatusOr<finetune::LoraTrainConfig> ratio_config = ToTrainConfig(ratio, 11, 1, 2048);
  ASSERT_TRUE(ratio_config.ok()) << ratio_config.status();
  EXPECT_EQ(ratio_config->warmup_steps, 2);  // ceil(1.1)
  EXPECT_FLOAT_EQ(finetune::LearningRateAt(*ratio_config, 1), ratio.learning_rate());
  EXPECT_NEAR(finetune::LearningRateAt(*ratio_config, 10),
              ratio.learning_rate() * (0.25 + 0.75 * 0.5 * (1 + std::cos(M_PI * 8.0 / 9.0))), 1e-9);
  ratio_config->schedule = finetune::LrSchedule::kLinear;
  EXPECT_NEAR(finetune::LearningRateAt(*ratio_config, 11), ratio.learning_rate() * 0.25, 1e-9);
  v1::Hyperparameters both = ratio;
  both.set_warmup_steps(3);
  EXPECT_THAT(EffectiveHyperparameters(both, JobDefaults{}).status().message(),
              HasSubstr("not both"));
  v1::Hyperparameters bad_ratio = ratio;
  bad_ratio.set_warmup_ratio(1.0f);
  EXPECT_THAT(EffectiveHyperparameters(bad_ratio, JobDefaults{}).status().message(),
              HasSubstr("hyperparameters.warmup_ratio"));
  bad_ratio.set_warmup_ratio(0.0f);
  bad_ratio.set_min_lr_ratio(-0.5f);
  EXPECT_THAT(EffectiveHyperparameters(bad_ratio, JobDefaults{}).status().message(),
              HasSubstr("hyperparameters.min_lr_ratio"));

  hp.set_warmup_steps(20);  // more than the epochs-derived total
  EXPECT_THAT(ToTrainConfig(hp, 11, 0, 2048).status().message(),
              HasSubstr("hyperparameters.warmup_steps"));
}

TEST(JobConvertTest, AdapterIdsAndStates) {
  EXPECT_TRUE(adapters::ValidateAdapterId("tenant/a-1.v2@x:y+z").ok());
  EXPECT_FALSE(adapters::ValidateAdapterId("").ok());
  EXPECT_FALSE(adapters::ValidateAdapterId("a b").ok());
  EXPECT_FALSE(adapters::ValidateAdapterId(std::string(257, 'a')).ok());
  EXPECT_TRUE(adapters::ValidateAdapterId("org/name").ok());
  EXPECT_TRUE(adapters::ValidateAdapterId("a..b/.c/d.").ok());
  for (const char* bad : {"../evil", "/abs", "a/../b", "a/./b", "a//b", "a/", ".", "..", "/"}) {
    const absl::Status status = adapters::ValidateAdapterId(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("segment"), std::string::npos) << status;
  }
  EXPECT_TRUE(IsTerminal(v1::JOB_STATE_CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_RUNNING));
}

TEST(JobFilesTest, JobIdsAreUniqueSortableUlids) {
  std::set<std::string> seen;
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewJobId();
    ASSERT_EQ(id.size(), 4u + 26u) << id;
    ASSERT_EQ(id.substr(0, 4), "job-");
    EXPECT_GT(id, previous);
    previous = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(JobFilesTest, DatasetPathsStayUnderTheRoot) {
  lorad::testing::ScopedTempDir dir;
  std::filesystem::create_directories(dir.File("root/sub"));
  ASSERT_TRUE(lorad::testing::WriteBytes(dir.File("root/sub/d.jsonl"), "{}\n"));
  ASSERT_TRUE(lorad::testing::WriteBytes(dir.File("outside.jsonl"), "{}\n"));
  std::filesystem::create_symlink(dir.File("outside.jsonl"), dir.File("root/escape.jsonl"));
  const std::string root = dir.File("root");
  std::filesystem::create_directories(dir.File("elsewhere"));
  ASSERT_TRUE(lorad::testing::WriteBytes(dir.File("elsewhere/d.jsonl"), "{\"secret\": 1}\n"));
  std::filesystem::create_directory_symlink(dir.File("elsewhere"), dir.File("root/linkdir"));
  std::filesystem::create_symlink("sub/d.jsonl", dir.File("root/inside.jsonl"));
  auto ResolveDataFile = [](const std::string& r, const std::string& p) {
    return ReadDataFile(r, p, 1 << 20);
  };
  EXPECT_EQ(*ResolveDataFile(root, "sub/d.jsonl"), "{}\n");
  EXPECT_EQ(*ResolveDataFile(root, "./sub/d.jsonl"), "{}\n");
  EXPECT_EQ(*ResolveDataFile(root, "inside.jsonl"), "{}\n");  // a symlink within the root
  // A directory symlink leading out, as a swap after a check would make it: refused at open.
  EXPECT_EQ(ResolveDataFile(root, "linkdir/d.jsonl").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadDataFile(root, "sub/d.jsonl", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDataFile(root, "/etc/passwd").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDataFile(root, "sub/../../outside.jsonl").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDataFile(root, "escape.jsonl").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDataFile(root, "sub").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveDataFile(root, "nope.jsonl").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFileLimited(dir.File("root/sub/d.jsonl"), 2, "d").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lorad::server
