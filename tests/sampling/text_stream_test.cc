#include "engine/sampling/text_stream.h"

#include "gtest/gtest.h"

namespace lorad {
namespace {

std::string Feed(TextStream& s, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += s.Append(p);
  return out + s.Flush();
}

TEST(TextStreamTest, PassesPlainText) {
  TextStream s({});
  EXPECT_EQ(s.Append("Hello"), "Hello");
  EXPECT_EQ(s.Append(" world"), " world");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, NeverSplitsMultiByteCharacters) {
  TextStream s({});
  const std::string euro = "\xE2\x82\xAC";  // U+20AC, 3 bytes
  EXPECT_EQ(s.Append(euro.substr(0, 1)), "");
  EXPECT_EQ(s.Append(euro.substr(1, 1)), "");
  EXPECT_EQ(s.Append(euro.substr(2, 1) + "a"), euro + "a");
}

TEST(TextStreamTest, InvalidBytesBecomeReplacementCharacter) {
  TextStream s({});
  EXPECT_EQ(s.Append("a\xFF"
                     "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(s.Append("\xE2\x82"
                     "c"),
            "\xEF\xBF\xBD"
            "c");
  EXPECT_EQ(s.Append("\xF0\x9F"), "");
  EXPECT_EQ(s.Flush(), "\xEF\xBF\xBD");
}

TEST(TextStreamTest, StopsBeforeStopSequenceSplitAcrossTokens) {
  TextStream s({"###"});
  EXPECT_EQ(s.Append("abc#"), "abc");
  EXPECT_EQ(s.Append("#"), "");
  EXPECT_EQ(s.Append("#tail"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.Append("more"), "");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, ReleasesHeldTextWhenNoStopFollows) {
  TextStream s({"STOP"});
  EXPECT_EQ(s.Append("go ST"), "go ");
  EXPECT_EQ(s.Append("AY"), "STAY");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStreamTest, EarliestOfSeveralStops) {
  TextStream s({"world", "lo"});
  EXPECT_EQ(Feed(s, {"hel", "lo wor", "ld"}), "hel");
}

TEST(TextStreamTest, FlushEmitsHeldPrefix) {
  TextStream s({"</end>"});
  EXPECT_EQ(s.Append("x </e"), "x ");
  EXPECT_EQ(s.Flush(), "</e");
}

}  // namespace
}  // namespace lorad
