// Tokenizer on small synthetic vocabularies: byte-level BPE and SentencePiece BPE.
#include "engine/tokenizer/tokenizer.h"

#include <string>
#include <thread>
#include <vector>

#include "engine/tokenizer/byte_unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures/spm_vocab.h"

namespace lorad {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// 0: <|endoftext|>, 1: <|im_start|>, 2: <|im_end|>, 3: <tool> (user-defined),
// 4..259: the 256 byte tokens, then merge results.
VocabData ByteLevelVocab() {
  VocabData v;
  v.model = "gpt2";
  v.pre = "smollm";
  v.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"};
  v.token_types = {kTokenTypeControl, kTokenTypeControl, kTokenTypeControl, kTokenTypeUserDefined};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)));
    v.token_types.push_back(kTokenTypeNormal);
  }
  for (const char* merge :
       {"l l", "h e", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d", "Ġ Ġ"}) {
    v.merges.push_back(merge);
    std::string m = merge;
    m.erase(m.find(' '), 1);
    v.tokens.push_back(m);
    v.token_types.push_back(kTokenTypeNormal);
  }
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  return v;
}

int32_t Id(const Tokenizer& t, const std::string& text) {
  for (int32_t i = 0; i < t.vocab_size(); ++i) {
    if (t.vocab().tokens[i] == text) return i;
  }
  return -1;
}

int32_t ByteId(uint8_t b) { return 4 + b; }

TEST(ByteLevelTokenizerTest, MergesByRank) {
  auto t = Tokenizer::Create(ByteLevelVocab());
  ASSERT_TRUE(t.ok()) << t.status();
  auto ids = (*t)->Encode("hello world", false, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(Id(**t, "hello"), Id(**t, "Ġworld")));
  // Unmergeable characters stay as byte tokens; digits are split one by one.
  ids = (*t)->Encode("hx 12", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(ByteId('h'), ByteId('x'), ByteId(' '), ByteId('1'), ByteId('2')));
}

TEST(ByteLevelTokenizerTest, NonAsciiIsEncodedByBytes) {
  auto t = *Tokenizer::Create(ByteLevelVocab());
  auto ids = t->Encode("é", false, false);  // C3 A9
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(ByteId(0xC3), ByteId(0xA9)));
  EXPECT_EQ(t->TokenPiece(ByteId(0xC3)), "\xC3");
  EXPECT_EQ(t->Decode(*ids), "é");
}

TEST(ByteLevelTokenizerTest, SpecialTokens) {
  auto t = *Tokenizer::Create(ByteLevelVocab());
  auto ids = t->Encode("<|im_start|>hello<|im_end|>", false, /*parse_special=*/true);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(1, Id(*t, "hello"), 2));
  // Without parse_special, control tokens are plain text ...
  ids = t->Encode("<|im_end|>", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_GT(ids->size(), 1u);
  EXPECT_EQ(t->Decode(*ids), "<|im_end|>");
  // ... but user-defined tokens are always recognized.
  ids = t->Encode("a<tool>b", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(ByteId('a'), 3, ByteId('b')));
}

TEST(ByteLevelTokenizerTest, BosEosAndEndOfGeneration) {
  VocabData v = ByteLevelVocab();
  v.add_bos = true;
  v.add_eos = true;
  auto t = *Tokenizer::Create(v);
  auto ids = t->Encode("he", /*add_special=*/true, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(1, Id(*t, "he"), 2));
  ids = t->Encode("he", /*add_special=*/false, false);
  EXPECT_THAT(*ids, ElementsAre(Id(*t, "he")));
  EXPECT_TRUE(t->IsEndOfGeneration(2));   // eos
  EXPECT_TRUE(t->IsEndOfGeneration(0));   // <|endoftext|> by text
  EXPECT_FALSE(t->IsEndOfGeneration(1));  // <|im_start|>
  EXPECT_TRUE(t->IsSpecial(1));
  EXPECT_FALSE(t->IsSpecial(3));  // user-defined
  EXPECT_EQ(t->Decode(*t->Encode("<|im_start|>he", false, true), /*skip_special=*/true), "he");
  EXPECT_EQ(t->Decode(*t->Encode("<|im_start|>he", false, true)), "<|im_start|>he");
}

TEST(ByteLevelTokenizerTest, InvalidUtf8NamesOffset) {
  auto t = *Tokenizer::Create(ByteLevelVocab());
  auto ids = t->Encode("hello \xFFworld", false, true);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("byte offset 6"));
}

TEST(ByteLevelTokenizerTest, RoundTripAndLongWords) {
  auto t = *Tokenizer::Create(ByteLevelVocab());
  for (const std::string& text :
       {std::string("hello hello  world\n\tok"), std::string("Ωmega 東京 😀 \r\n"),
        std::string(50000, 'l'), std::string(""), std::string("<|im_start|><|im_end|>")}) {
    auto ids = t->Encode(text, false, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(t->Decode(*ids), text);
  }
  auto ids = t->Encode(std::string(50000, 'l'), false, false);
  EXPECT_EQ(ids->size(), 25000u);  // "ll" merges pair up left to right
}

TEST(ByteLevelTokenizerTest, ConcurrentEncode) {
  auto t = *Tokenizer::Create(ByteLevelVocab());
  std::vector<std::thread> threads;
  std::vector<bool> ok(4, false);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      bool all = true;
      for (int k = 0; k < 200; ++k) {
        auto ids = t->Encode("hello world <|im_end|>", false, true);
        all = all && ids.ok() && ids->size() == 4;
      }
      ok[i] = all;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(ok, ::testing::Each(true));
}

TEST(TokenizerCreateTest, RejectsBadVocabularies) {
  VocabData v = ByteLevelVocab();
  v.model = "wordpiece";
  EXPECT_THAT(std::string(Tokenizer::Create(v).status().message()), HasSubstr("wordpiece"));
  v = ByteLevelVocab();
  v.token_types.pop_back();
  EXPECT_FALSE(Tokenizer::Create(v).ok());
  v = ByteLevelVocab();
  v.eos_id = 100000;
  EXPECT_THAT(std::string(Tokenizer::Create(v).status().message()), HasSubstr("eos_token_id"));
  v = ByteLevelVocab();
  v.merges.push_back("nospace");
  EXPECT_THAT(std::string(Tokenizer::Create(v).status().message()), HasSubstr("nospace"));
  v = ByteLevelVocab();
  v.pre = "unknown-pre";
  EXPECT_FALSE(Tokenizer::Create(v).ok());
  v = ByteLevelVocab();
  v.bos_id = -1;
  v.add_bos = true;
  EXPECT_FALSE(Tokenizer::Create(v).ok());
}

TEST(SentencePieceTokenizerTest, MergesByScoreWithSpacePrefix) {
  auto t = *Tokenizer::Create(testing::SentencePieceTestVocab());
  auto ids = t->Encode("hello world", /*add_special=*/true, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(1, Id(*t, "\xE2\x96\x81hello"), Id(*t, "\xE2\x96\x81world")));
  EXPECT_EQ(t->Decode(*ids, /*skip_special=*/true), "hello world");
  EXPECT_EQ(t->TokenPiece(Id(*t, "\xE2\x96\x81world")), " world");
}

TEST(SentencePieceTokenizerTest, ByteFallbackAndRoundTrip) {
  auto t = *Tokenizer::Create(testing::SentencePieceTestVocab());
  auto ids = t->Encode("hé", false, false);
  ASSERT_TRUE(ids.ok());
  // "▁h" is not a token: ▁, h, then é as bytes C3 A9.
  EXPECT_THAT(*ids, ElementsAre(Id(*t, "\xE2\x96\x81"), Id(*t, "h"), 3 + 0xC3, 3 + 0xA9));
  EXPECT_EQ(t->TokenPiece(3 + 0xC3), "\xC3");
  for (const std::string& text : {"hello world", " two  spaces ", "日本 😀", "x\ny"}) {
    auto enc = t->Encode(text, true, false);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(t->Decode(*enc, /*skip_special=*/true), text);
  }
}

TEST(SentencePieceTokenizerTest, SpecialTokensResetSpacePrefix) {
  auto t = *Tokenizer::Create(testing::SentencePieceTestVocab());
  auto ids = t->Encode("</s>hello", false, /*parse_special=*/true);
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre(2, Id(*t, "\xE2\x96\x81hello")));
}

}  // namespace
}  // namespace lorad
