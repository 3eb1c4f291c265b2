// JSONL dataset parsing: the three shapes, the loss masks (the same tokens inference would see,
// targets only where the model must learn), and every malformed input failing with its line.
#include "engine/finetune/dataset.h"

#include <algorithm>

#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_from_gguf.h"
#include "gmock/gmock.h"
#include "tests/finetune/finetune_test_util.h"
#include "tests/fixtures/tiny_vocab.h"

namespace lorad::finetune {
namespace {

using ::testing::HasSubstr;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_ = testing::LoadTinyModel(dir_);
    ASSERT_NE(weights_, nullptr);
    auto vocab = VocabFromGguf(*weights_->gguf);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    chat_ = DetectChatTemplate(vocab->chat_template);
    auto tok = Tokenizer::Create(*std::move(vocab));
    ASSERT_TRUE(tok.ok());
    tokenizer_ = *std::move(tok);
  }

  absl::StatusOr<std::vector<TrainExample>> Parse(const std::string& jsonl,
                                                  int32_t max_seq_len = 256,
                                                  int64_t max_bytes = 1 << 20) {
    DatasetOptions options;
    options.max_seq_len = max_seq_len;
    options.max_bytes = max_bytes;
    absl::StatusOr<ParsedDataset> parsed = ParseWith(jsonl, options);
    if (!parsed.ok()) return parsed.status();
    return std::move(parsed->examples);
  }

  absl::StatusOr<ParsedDataset> ParseWith(const std::string& jsonl, const DatasetOptions& options) {
    return ParseJsonlDataset(jsonl, *tokenizer_, chat_, options);
  }

  std::vector<int32_t> Encode(const std::string& text, bool add_special, bool parse_special) {
    return *tokenizer_->Encode(text, add_special, parse_special);
  }

  // The target tokens of `e`, decoded.
  std::string Targets(const TrainExample& e) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      if (e.target[i]) ids.push_back(e.tokens[i]);
    }
    return tokenizer_->Decode(ids);
  }

  lorad::testing::ScopedTempDir dir_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_;
};

TEST_F(DatasetTest, PromptCompletionMasksThePromptAndEndsWithEos) {
  auto ds = Parse(R"({"prompt": "2+2=", "completion": " 4"})"
                  "\n\n"
                  R"({"prompt": "hi", "completion": " there"})"
                  "\n");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->size(), 2u);
  const TrainExample& e = (*ds)[0];
  std::vector<int32_t> want = Encode("2+2=", true, true);
  const size_t prompt_len = want.size();
  for (int32_t id : Encode(" 4", false, false)) want.push_back(id);
  want.push_back(tokenizer_->eos_id());
  EXPECT_EQ(e.tokens, want);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(e.target[i], i >= prompt_len) << i;
  EXPECT_EQ(e.line, 1);
  EXPECT_EQ((*ds)[1].line, 3);
  EXPECT_EQ(Targets((*ds)[1]), " there<|im_end|>");
}

TEST_F(DatasetTest, MessagesTrainOnAssistantTurnsAsTheChatTemplateRendersThem) {
  auto ds = Parse(
      R"({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, )"
      R"({"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}, )"
      R"({"role": "assistant", "content": "ciao"}]})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  const TrainExample& e = (*ds)[0];
  // The whole conversation is exactly the template's rendering.
  const std::string full =
      "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
      "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n"
      "<|im_start|>assistant\nciao<|im_end|>\n";
  EXPECT_EQ(tokenizer_->Decode(e.tokens), full);
  EXPECT_EQ(e.tokens, Encode(full, true, true));
  EXPECT_EQ(Targets(e), "hello<|im_end|>\nciao<|im_end|>\n");
}

TEST_F(DatasetTest, PerMessageWeightsChooseWhichAssistantTurnsCount) {
  const std::string conversation =
      R"({"messages": [{"role": "user", "content": "hi"}, )"
      R"({"role": "assistant", "content": "hello", "weight": 0}, {"role": "user", "content": "bye"}, )"
      R"({"role": "assistant", "content": "ciao", "weight": 1}]})";
  auto ds = Parse(conversation);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(Targets((*ds)[0]), "ciao<|im_end|>\n");
  // The same conversation without weights trains on both turns: the weights changed the mask,
  // not the tokens.
  auto unweighted = Parse(
      R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, )"
      R"({"role": "user", "content": "bye"}, {"role": "assistant", "content": "ciao"}]})");
  ASSERT_TRUE(unweighted.ok());
  EXPECT_EQ((*unweighted)[0].tokens, (*ds)[0].tokens);
  EXPECT_EQ(Targets((*unweighted)[0]), "hello<|im_end|>\nciao<|im_end|>\n");
  // Every turn weighted 0: nothing to learn.
  auto none = Parse(R"({"messages": [{"role": "user", "content": "hi"}, )"
                    R"({"role": "assistant", "content": "hello", "weight": 0}]})");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), ::testing::HasSubstr("line 1"));
  for (
      const char* bad :
      {R"({"messages": [{"role": "user", "content": "hi", "weight": 1}, {"role": "assistant", "content": "x"}]})",
       R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0.5}]})",
       R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": "1"}]})"}) {
    auto result = Parse(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr(".weight")) << bad;
  }
}

TEST_F(DatasetTest, TrainOnInputsPutsTheLossOnPromptsAndUserTurns) {
  DatasetOptions options;
  options.train_on_inputs = true;
  auto pc = ParseWith(R"({"prompt": "2+2=", "completion": " 4"})", options);
  ASSERT_TRUE(pc.ok()) << pc.status();
  const TrainExample& e = pc->examples[0];
  EXPECT_EQ(std::count(e.target.begin(), e.target.end(), 1),
            static_cast<std::ptrdiff_t>(e.tokens.size()) - 1);
  auto chat = ParseWith(R"({"messages": [{"role": "user", "content": "hi"}, )"
                        R"({"role": "assistant", "content": "hello"}]})",
                        options);
  ASSERT_TRUE(chat.ok()) << chat.status();
  const TrainExample& c = chat->examples[0];
  EXPECT_EQ(std::count(c.target.begin(), c.target.end(), 1),
            static_cast<std::ptrdiff_t>(c.tokens.size()) - 1);
}

TEST_F(DatasetTest, OverlongExamplesErrorTruncateOrDrop) {
  const std::string short_line = R"({"prompt": "a", "completion": "b"})";
  const std::string long_line =
      R"({"prompt": "a", "completion": ")" + std::string(200, 'z') + R"("})";
  const std::string jsonl = short_line + "\n" + long_line + "\n";
  DatasetOptions options;
  options.max_seq_len = 16;
  auto error = ParseWith(jsonl, options);
  ASSERT_FALSE(error.ok());
  EXPECT_THAT(std::string(error.status().message()), ::testing::HasSubstr("line 2"));

  options.overlong = OverlongPolicy::kTruncate;
  auto truncated = ParseWith(jsonl, options);
  ASSERT_TRUE(truncated.ok()) << truncated.status();
  ASSERT_EQ(truncated->examples.size(), 2u);
  EXPECT_EQ(truncated->examples[1].tokens.size(), 16u);
  EXPECT_EQ(truncated->truncated, 1);
  EXPECT_EQ(truncated->dropped, 0);

  options.overlong = OverlongPolicy::kDrop;
  auto dropped = ParseWith(jsonl, options);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ASSERT_EQ(dropped->examples.size(), 1u);
  EXPECT_EQ(dropped->examples[0].line, 1);
  EXPECT_EQ(dropped->dropped, 1);

  // A long prompt truncated before its completion leaves nothing to learn: dropped.
  const std::string long_prompt =
      R"({"prompt": ")" + std::string(200, 'z') + R"(", "completion": "b"})";
  options.overlong = OverlongPolicy::kTruncate;
  auto cut = ParseWith(short_line + "\n" + long_prompt + "\n", options);
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_EQ(cut->examples.size(), 1u);
  EXPECT_EQ(cut->dropped, 1);
  // Everything dropped is an empty dataset, and says why.
  options.overlong = OverlongPolicy::kDrop;
  auto empty = ParseWith(long_line + "\n", options);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()),
              ::testing::HasSubstr("longer than max_seq_len"));

  OverlongPolicy policy;
  EXPECT_TRUE(ParseOverlongPolicy("truncate", &policy).ok());
  EXPECT_EQ(policy, OverlongPolicy::kTruncate);
  EXPECT_FALSE(ParseOverlongPolicy("cut", &policy).ok());
  EXPECT_STREQ(OverlongPolicyName(OverlongPolicy::kDrop), "drop");
}

TEST_F(DatasetTest, TextTrainsOnEveryTokenButTheFirst) {
  auto ds = Parse(R"({"text": "abc abc"})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  const TrainExample& e = (*ds)[0];
  // The text's tokens, then end-of-sequence as a target so that the adapter learns to stop.
  std::vector<int32_t> expected = Encode("abc abc", true, true);
  ASSERT_GE(tokenizer_->eos_id(), 0);
  expected.push_back(tokenizer_->eos_id());
  EXPECT_EQ(e.tokens, expected);
  EXPECT_EQ(e.target[0], 0);
  EXPECT_EQ(e.target.back(), 1);
  EXPECT_EQ(std::count(e.target.begin(), e.target.end(), 1),
            static_cast<std::ptrdiff_t>(e.tokens.size()) - 1);
}

TEST_F(DatasetTest, TextEndingWithEndOfSequenceGetsNoSecondOne) {
  const std::string eos = tokenizer_->Decode({tokenizer_->eos_id()});
  auto ds = Parse(R"({"text": "abc abc)" + eos + R"("})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  const TrainExample& e = (*ds)[0];
  EXPECT_EQ(e.tokens, Encode("abc abc" + eos, true, true));
  EXPECT_EQ(e.tokens.back(), tokenizer_->eos_id());
  EXPECT_NE(e.tokens[e.tokens.size() - 2], tokenizer_->eos_id());
}

TEST_F(DatasetTest, BadInputsNameTheLine) {
  const std::string good = R"({"prompt": "a", "completion": "b"})";
  const std::string long_text(400, 'z');
  struct Case {
    std::string jsonl;
    std::string want;
  } cases[] = {
      {"", "dataset is empty"},
      {"\n  \n", "dataset is empty"},
      {good + "\n{not json\n", "line 2: not valid JSON"},
      {good + "\n[1, 2]\n", "line 2: not a JSON object"},
      {good + "\n" + R"({"question": "a"})", "line 2: expected an object"},
      {good + "\n" + R"({"prompt": "a"})", "line 2: missing field \"completion\""},
      {good + "\n" + R"({"prompt": "a", "completion": 3})", "line 2: \"completion\" is not"},
      {good + "\n" + R"({"prompt": "a", "completion": ""})", "line 2: \"completion\" is empty"},
      {good + "\n" + R"({"text": "abc"})", "line 2: shape {\"text\"} differs"},
      {R"({"messages": [{"role": "user", "content": "x"}]})", "line 1: no assistant"},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "line 1: messages[0].role"},
      {R"({"messages": []})", "line 1: \"messages\" must be a non-empty array"},
      {R"({"messages": [{"role": "user"}]})", "line 1: messages[0].content"},
      {good + "\n" + good + "\n" + R"({"prompt": "a", "completion": ")" + long_text + "\"}",
       "line 3: "},
      {"{\"text\": \"\xff\xfe\"}", "line 1: not valid JSON"},
  };
  for (const Case& c : cases) {
    auto ds = Parse(c.jsonl, 64);
    ASSERT_FALSE(ds.ok()) << c.jsonl;
    EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ds.status().message()), HasSubstr(c.want)) << c.jsonl;
  }
  auto too_long = Parse(good + "\n" + R"({"prompt": "a", "completion": ")" + long_text + "\"}", 64);
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("max_seq_len is 64"));
  auto too_big = Parse(good + "\n" + good, 64, 40);
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("the limit is 40"));
}

}  // namespace
}  // namespace lorad::finetune
