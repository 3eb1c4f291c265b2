#include "engine/tokenizer/vocab_from_tokenizer_json.h"

#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad {
namespace {

using testing::ElementsAre;

// A SmolLM2-shaped tokenizer.json: Digits + ByteLevel, three added special tokens.
constexpr char kByteLevelJson[] = R"({
  "added_tokens": [
    {"id": 0, "content": "<|endoftext|>", "special": true},
    {"id": 1, "content": "<|im_start|>", "special": true},
    {"id": 2, "content": "<|im_end|>", "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": true},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
  "post_processor": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2,
    "h": 3, "i": 4, "Ġ": 5, "1": 6, "hi": 7, "Ġhi": 8},
    "merges": ["h i", ["Ġ", "hi"]]}
})";

constexpr char kConfigJson[] = R"({
  "bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
  "chat_template": "{{ '<|im_start|>' }}"
})";

TEST(VocabFromTokenizerJsonTest, ByteLevel) {
  auto v = VocabFromTokenizerJson(kByteLevelJson, kConfigJson);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, "gpt2");
  EXPECT_EQ(v->pre, "smollm");
  EXPECT_EQ(v->tokens.size(), 9u);
  EXPECT_EQ(v->token_types[1], kTokenTypeControl);
  EXPECT_EQ(v->token_types[3], kTokenTypeNormal);
  EXPECT_THAT(v->merges, ElementsAre("h i", "Ġ hi"));
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_FALSE(v->add_bos);
  EXPECT_EQ(v->chat_template, "{{ '<|im_start|>' }}");
  auto t = Tokenizer::Create(*v);
  ASSERT_TRUE(t.ok()) << t.status();
  auto ids = (*t)->Encode("hi hi1<|im_end|>", false, true);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(7, 8, 6, 2));
}

constexpr char kLlama2Json[] = R"({
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "},
     "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
  "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "▁": 5, "a": 6,
              "b": 7, "ab": 8, "▁ab": 9},
    "merges": ["a b", "▁ ab"]}
})";

TEST(VocabFromTokenizerJsonTest, SentencePieceWithByteFallback) {
  auto v = VocabFromTokenizerJson(kLlama2Json, "");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, "llama");
  EXPECT_TRUE(v->add_space_prefix);
  EXPECT_TRUE(v->add_bos);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->token_types[0], kTokenTypeUnknown);
  EXPECT_EQ(v->token_types[3], kTokenTypeByte);
  EXPECT_GT(v->scores[8], v->scores[9]);  // "a b" ranks before "▁ ab"
  auto t = Tokenizer::Create(*v);
  ASSERT_TRUE(t.ok()) << t.status();
  auto ids = (*t)->Encode("ab é", true, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(1, 9, 5, 3, 4));
  EXPECT_EQ((*t)->Decode(*ids, /*skip_special=*/true), "ab é");
}

TEST(VocabFromTokenizerJsonTest, Errors) {
  EXPECT_EQ(VocabFromTokenizerJson("not json", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(VocabFromTokenizerJson(R"({"model": {"type": "Unigram", "vocab": []}})", "").ok());
  EXPECT_FALSE(VocabFromTokenizerJson(
                   R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": null})", "")
                   .ok());  // no ByteLevel and no byte_fallback
  EXPECT_FALSE(
      VocabFromTokenizerJson(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}})", "").ok());
}

}  // namespace
}  // namespace lorad
