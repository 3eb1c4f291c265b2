#include "engine/tokenizer/unicode.h"

#include <string>

#include "engine/tokenizer/byte_unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::tokenizer_internal {
namespace {

TEST(UnicodeTest, CategoryFlags) {
  EXPECT_TRUE(CodepointFlags('a') & kCpLetter);
  EXPECT_TRUE(CodepointFlags(0x0416) & kCpLetter);  // Ж
  EXPECT_TRUE(CodepointFlags(0x6771) & kCpLetter);  // 東
  EXPECT_TRUE(CodepointFlags('7') & kCpNumber);
  EXPECT_TRUE(CodepointFlags(0x0663) & kCpNumber);  // Arabic-Indic three
  EXPECT_TRUE(CodepointFlags(0x00B2) & kCpNumber);  // superscript two (No)
  EXPECT_TRUE(CodepointFlags(' ') & kCpWhitespace);
  EXPECT_TRUE(CodepointFlags('\n') & kCpWhitespace);
  EXPECT_TRUE(CodepointFlags(0x3000) & kCpWhitespace);
  EXPECT_FALSE(CodepointFlags(0x200B) & kCpWhitespace);  // zero-width space is Cf
  EXPECT_TRUE(CodepointFlags('!') & kCpPunctuation);
  EXPECT_TRUE(CodepointFlags(0x1F600) & kCpSymbol);  // 😀
  EXPECT_EQ(CodepointFlags(0x0378), kCpUndefined);   // unassigned
  EXPECT_EQ(CodepointFlags(0x110000), kCpUndefined);
}

TEST(UnicodeTest, DecodeUtf8) {
  auto d = DecodeUtf8("aЖ東😀");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->codepoints, testing::ElementsAre('a', 0x416, 0x6771, 0x1F600));
  EXPECT_THAT(d->byte_offsets, testing::ElementsAre(0, 1, 3, 6, 10));
}

TEST(UnicodeTest, DecodeUtf8RejectsInvalidWithOffset) {
  for (const auto& [text, offset] :
       std::vector<std::pair<std::string, int>>{{"ab\xFF", 2},
                                                {"abc\xC3", 3},           // truncated
                                                {"\xC0\xAF", 0},          // overlong '/'
                                                {"x\xE0\x80\x80", 1},     // overlong 3-byte
                                                {"xy\xED\xA0\x80", 2},    // surrogate
                                                {"\xF4\x90\x80\x80", 0},  // > U+10FFFF
                                                {"ok\x80", 2},            // stray continuation
                                                {"\xE2\x82", 0}}) {       // truncated 3-byte
    auto d = DecodeUtf8(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()),
                testing::HasSubstr("byte offset " + std::to_string(offset)));
  }
}

TEST(UnicodeTest, AppendUtf8RoundTrips) {
  for (uint32_t cp : {0x41u, 0xE9u, 0x416u, 0x20ACu, 0x1F600u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, &s);
    auto d = DecodeUtf8(s);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->codepoints.size(), 1u);
    EXPECT_EQ(d->codepoints[0], cp);
  }
}

TEST(ByteUnicodeTest, Gpt2Table) {
  EXPECT_EQ(ByteToUnicode(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(ByteToUnicode('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(ByteToUnicode('a'), "a");
  EXPECT_EQ(ByteToUnicode(0xAD), "\xC5\x83");  // the last remapped byte: U+0143
  std::string all, encoded;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
    encoded += ByteToUnicode(static_cast<uint8_t>(b));
  }
  std::string back;
  UnicodeToBytes(encoded, &back);
  EXPECT_EQ(back, all);
}

}  // namespace
}  // namespace lorad::tokenizer_internal
