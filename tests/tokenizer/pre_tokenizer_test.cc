#include "engine/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "engine/tokenizer/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::tokenizer_internal {
namespace {

using testing::ElementsAre;

std::vector<std::string> Split(PreTokenizer pre, const std::string& text) {
  auto d = DecodeUtf8(text);
  EXPECT_TRUE(d.ok());
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t len : SplitWords(pre, d->codepoints)) {
    words.push_back(
        text.substr(d->byte_offsets[start], d->byte_offsets[start + len] - d->byte_offsets[start]));
    start += len;
  }
  return words;
}

TEST(PreTokenizerTest, Names) {
  EXPECT_EQ(*PreTokenizerFromName("smollm"), PreTokenizer::kSmolLm);
  EXPECT_EQ(*PreTokenizerFromName("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(*PreTokenizerFromName("qwen2"), PreTokenizer::kQwen2);
  EXPECT_EQ(*PreTokenizerFromName("gpt2"), PreTokenizer::kGpt2);
  EXPECT_EQ(*PreTokenizerFromName("default"), PreTokenizer::kDefault);
  EXPECT_FALSE(PreTokenizerFromName("no-such-pre").ok());
}

TEST(PreTokenizerTest, Gpt2) {
  EXPECT_THAT(Split(PreTokenizer::kGpt2, "Hello world, it's 2024!"),
              ElementsAre("Hello", " world", ",", " it", "'s", " 2024", "!"));
  // \s+(?!\S): the last space of a run joins the next word; a trailing run stays whole.
  EXPECT_THAT(Split(PreTokenizer::kGpt2, "a   b  "), ElementsAre("a", "  ", " b", "  "));
  EXPECT_THAT(Split(PreTokenizer::kGpt2, "x\n\ny"), ElementsAre("x", "\n", "\n", "y"));
  EXPECT_THAT(Split(PreTokenizer::kGpt2, "Привет мир"), ElementsAre("Привет", " мир"));
  EXPECT_THAT(Split(PreTokenizer::kGpt2, "'S"), ElementsAre("'", "S"));  // case-sensitive
}

TEST(PreTokenizerTest, SmolLmIsolatesEachDigit) {
  EXPECT_THAT(Split(PreTokenizer::kSmolLm, "abc 123 d4"),
              ElementsAre("abc", " ", "1", "2", "3", " d", "4"));
  EXPECT_THAT(Split(PreTokenizer::kSmolLm, "٣٤"), ElementsAre("٣", "٤"));
}

TEST(PreTokenizerTest, Llama3) {
  EXPECT_THAT(Split(PreTokenizer::kLlama3, "I'M 12345 ok\n\n  x"),
              ElementsAre("I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"));
  EXPECT_THAT(Split(PreTokenizer::kLlama3, "(hello) ..."), ElementsAre("(hello", ")", " ..."));
}

TEST(PreTokenizerTest, Qwen2DigitsOneByOne) {
  EXPECT_THAT(Split(PreTokenizer::kQwen2, "x 123"), ElementsAre("x", " ", "1", "2", "3"));
}

TEST(PreTokenizerTest, DefaultGroupsDigitTriples) {
  EXPECT_THAT(Split(PreTokenizer::kDefault, "n 12345"), ElementsAre("n", " ", "123", "45"));
}

TEST(PreTokenizerTest, EmptyAndLongInputs) {
  EXPECT_TRUE(Split(PreTokenizer::kSmolLm, "").empty());
  const std::string long_word(100000, 'a');
  EXPECT_THAT(Split(PreTokenizer::kSmolLm, long_word), ElementsAre(long_word));
}

}  // namespace
}  // namespace lorad::tokenizer_internal
