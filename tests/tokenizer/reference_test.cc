// The default model's real vocabulary (read from its GGUF) against reference token ids from
// Hugging Face `tokenizers` and chat prompts rendered by jinja2, recorded in
// tests/data/tokenizer_reference_hf.json by tests/tokenizer/gen_reference_hf.py. Skipped when
// the model file is absent ($LORAD_DEFAULT_MODEL or
// $LORAD_SOURCE_DIR/data/models/SmolLM2-135M-Instruct.Q4_1.gguf).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/base/gguf.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_from_gguf.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

std::string SourceDir() {
  const char* dir = std::getenv("LORAD_SOURCE_DIR");
  return dir ? dir : ".";
}

std::string DefaultModelPath() {
  if (const char* path = std::getenv("LORAD_DEFAULT_MODEL")) return path;
  return SourceDir() + "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

nlohmann::json LoadFixture() {
  std::ifstream in(SourceDir() + "/tests/data/tokenizer_reference_hf.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

class DefaultModelTokenizerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = DefaultModelPath();
    if (!std::filesystem::exists(path)) return;
    auto gguf = GgufFile::Open(path);
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    auto vocab = VocabFromGguf(**gguf);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    auto tokenizer = Tokenizer::Create(*std::move(vocab));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) GTEST_SKIP() << "default model not found at " << DefaultModelPath();
    fixture_ = LoadFixture();
    ASSERT_FALSE(fixture_.is_discarded()) << "tests/data/tokenizer_reference_hf.json unreadable";
  }

  static Tokenizer* tokenizer_;
  nlohmann::json fixture_;
};

Tokenizer* DefaultModelTokenizerTest::tokenizer_ = nullptr;

TEST_F(DefaultModelTokenizerTest, MetadataAsLlamaCppReadsIt) {
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.vocab().pre, "smollm");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_FALSE(t.vocab().add_bos);
  EXPECT_TRUE(t.IsEndOfGeneration(2));  // <|im_end|>
  EXPECT_TRUE(t.IsEndOfGeneration(0));  // <|endoftext|>
  EXPECT_FALSE(t.IsEndOfGeneration(1));
  EXPECT_TRUE(t.IsSpecial(1));
}

TEST_F(DefaultModelTokenizerTest, MatchesHuggingFaceIds) {
  const Tokenizer& t = *tokenizer_;
  for (const auto& c : fixture_["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    auto ids = t.Encode(text, /*add_special=*/false, /*parse_special=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, want) << "text: " << text;
    EXPECT_EQ(t.Decode(*ids), text);
  }
}

// SmolLM2's vocabulary has no byte token for 0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xf1 and 0xf2
// (found by tokenizer_fuzz on this vocabulary). Those bytes are dropped, as llama.cpp drops a
// symbol it has no token for; every other byte of the text survives the round trip.
TEST_F(DefaultModelTokenizerTest, BytesWithoutAByteTokenAreDroppedAsLlamaCppDropsThem) {
  const Tokenizer& t = *tokenizer_;
  const std::string text("HHllw,o2\x1d\x00ok\x04\x06!\x13\x14\x16z", 19);
  auto ids = t.Encode(text, false, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(t.Decode(*ids), std::string("HHllw,o2\x00ok!z", 13));
  ids = t.Encode("\x1c\x1e\x1f\x7f", false, false);  // neighbours that have byte tokens
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(t.Decode(*ids), "\x1c\x1e\x1f\x7f");
}

TEST_F(DefaultModelTokenizerTest, ChatTemplateMatchesJinja) {
  const std::string tmpl = tokenizer_->vocab().chat_template;
  EXPECT_EQ(tmpl, fixture_["chat_template"].get<std::string>());
  for (const auto& chat : fixture_["chats"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : chat["messages"]) {
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    auto out = ApplyChatTemplate(tmpl, messages, chat["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, chat["expected"].get<std::string>());
    auto ids = tokenizer_->Encode(*out, false, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ((*ids)[0], 1);  // <|im_start|> parsed as one token
  }
}

TEST(ChatTemplateFixtureTest, RenderedWithoutModel) {
  // The fixture alone pins the SmolLM2 rendering, model file or not.
  const nlohmann::json fixture = LoadFixture();
  ASSERT_FALSE(fixture.is_discarded());
  const std::string tmpl = fixture["chat_template"].get<std::string>();
  for (const auto& chat : fixture["chats"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : chat["messages"]) {
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    auto out = ApplyChatTemplate(tmpl, messages, chat["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, chat["expected"].get<std::string>());
  }
}

}  // namespace
}  // namespace lorad
