// safetensors writer -> reader round trips and malformed headers.
#include <cstring>

#include "engine/base/half.h"
#include "engine/base/safetensors.h"
#include "engine/base/safetensors_writer.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::WriteBytes;

TEST(SafetensorsTest, RoundTripsF32F16Bf16AndMetadata) {
  ScopedTempDir dir;
  const std::vector<float> v = {1.0f, -2.5f, 0.333f, 1e-3f, 65504.0f, -0.0f};
  SafetensorsWriter w;
  ASSERT_TRUE(w.AddFromF32("z.f32", DType::kF32, {2, 3}, v.data()).ok());
  ASSERT_TRUE(w.AddFromF32("a.f16", DType::kF16, {6}, v.data()).ok());
  ASSERT_TRUE(w.AddFromF32("m.bf16", DType::kBF16, {3, 2}, v.data()).ok());
  ASSERT_TRUE(w.Add("empty", DType::kF32, {0, 4}, nullptr, 0).ok());
  w.SetMetadata("format", "pt");
  const std::string path = dir.File("x.safetensors");
  ASSERT_TRUE(w.Write(path).ok());

  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const SafetensorsFile& s = **f;
  ASSERT_EQ(s.tensors().size(), 4u);
  EXPECT_EQ(s.tensors()[0].name, "a.f16");  // sorted by name
  EXPECT_EQ(s.metadata().at("format"), "pt");
  const SafetensorsTensor* f32 = s.Find("z.f32");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->dtype, DType::kF32);
  EXPECT_EQ(f32->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32->num_elements, 6);
  EXPECT_EQ(f32->bytes, 24u);
  EXPECT_EQ(std::memcmp(f32->data, v.data(), 24), 0);
  const SafetensorsTensor* f16 = s.Find("a.f16");
  const SafetensorsTensor* bf16 = s.Find("m.bf16");
  ASSERT_NE(f16, nullptr);
  ASSERT_NE(bf16, nullptr);
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h, b;
    std::memcpy(&h, static_cast<const uint8_t*>(f16->data) + 2 * i, 2);
    std::memcpy(&b, static_cast<const uint8_t*>(bf16->data) + 2 * i, 2);
    EXPECT_NEAR(Fp16ToFp32(h), v[i], std::abs(v[i]) * 1e-3 + 1e-6);
    EXPECT_NEAR(Bf16ToFp32(b), v[i], std::abs(v[i]) * 1e-2 + 1e-6);
  }
  EXPECT_EQ(s.Find("empty")->bytes, 0u);
  EXPECT_EQ(s.Find("nope"), nullptr);
  EXPECT_EQ(s.Get("nope").status().code(), absl::StatusCode::kNotFound);
  // Header padded so data starts 8-byte aligned in the file.
  uint64_t header_len;
  std::memcpy(&header_len, w.Serialize().data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  SafetensorsWriter w;
  const std::vector<float> v(8);
  EXPECT_EQ(w.Add("q", DType::kQ8_0, {32}, v.data(), 34).code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(w.Add("short", DType::kF32, {4}, v.data(), 8).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("__metadata__", DType::kF32, {1}, v.data(), 4).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Add("neg", DType::kF32, {-1}, v.data(), 0).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.Add("t", DType::kF32, {2}, v.data(), 8).ok());
  EXPECT_EQ(w.Add("t", DType::kF32, {2}, v.data(), 8).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(w.Write("/nonexistent/dir/x.safetensors").ok());
}

// A file of header JSON `json` followed by `data_bytes` zero bytes.
std::string Image(const std::string& json, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  return out + json + std::string(data_bytes, '\0');
}

struct Case {
  const char* name;
  std::string bytes;
  absl::StatusCode code;
  const char* message_part;
};

TEST(SafetensorsMalformedTest, EachCaseIsASpecificError) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  std::string huge_len(8, '\0');
  const uint64_t big = 200ull << 20;
  std::memcpy(huge_len.data(), &big, 8);
  std::string past_end(8, '\0');
  const uint64_t len = 100;
  std::memcpy(past_end.data(), &len, 8);
  past_end += "{}";
  const std::vector<Case> cases = {
      {"short", "abc", kInvalid, "has no header length"},
      {"header_over_limit", huge_len + "{}", kInvalid, "exceeds the limit"},
      {"header_past_end", past_end, kInvalid, "is past the end of the file"},
      {"bad_json", Image("{\"a\": [1, 2", 0), kInvalid, "not valid JSON"},
      {"not_object", Image("[1, 2]", 0), kInvalid, "not a JSON object"},
      {"entry_not_object", Image("{\"t\": 5}", 0), kInvalid, "tensor 't' is not a JSON object"},
      {"no_dtype", Image(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", 4), kInvalid,
       "tensor 't' has no string 'dtype'"},
      {"no_shape", Image(R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", 4), kInvalid,
       "tensor 't' has no array 'shape'"},
      {"bad_offsets", Image(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4),
       kInvalid, "tensor 't' has no 'data_offsets'"},
      {"unsupported_dtype",
       Image(R"({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8),
       absl::StatusCode::kUnimplemented, "tensor 'w': dtype I64 is not supported"},
      {"negative_dim",
       Image(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4), kInvalid,
       "tensor 't': shape [-1]"},
      {"float_dim", Image(R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
       kInvalid, "tensor 't': shape [1.5]"},
      {"overflow_shape",
       Image(
           R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
           4),
       kInvalid, "overflowing dimension"},
      {"offsets_past_end",
       Image(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4), kInvalid,
       "tensor 't': data_offsets [0,8] are past the end of the data section (4 bytes)"},
      {"begin_after_end",
       Image(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}})", 4), kInvalid,
       "begin <= end"},
      {"negative_offset",
       Image(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4), kInvalid,
       "tensor 't': data_offsets"},
      {"size_mismatch",
       Image(R"({"t": {"dtype": "F16", "shape": [3, 2], "data_offsets": [0, 8]}})", 16), kInvalid,
       "tensor 't': shape [3,2] of F16 needs 6 elements but data_offsets span 8 bytes"},
      {"overlap",
       Image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
             12),
       kInvalid, "tensor 'b' starts at data offset 4 inside the previous tensor"},
      {"same_bytes_twice",
       Image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
             4),
       kInvalid, "inside the previous tensor"},
      {"hole",
       Image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
             12),
       kInvalid, "tensor 'b' starts at data offset 8 leaving a hole"},
      {"hole_at_start",
       Image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8), kInvalid,
       "tensor 'a' starts at data offset 4 leaving a hole"},
      {"trailing_bytes",
       Image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 12), kInvalid,
       "tensors cover 4 of the data section's 12 bytes"},
      {"metadata_not_object", Image(R"({"__metadata__": 3})", 0), kInvalid,
       "__metadata__ is not an object"},
      {"metadata_value_not_string", Image(R"({"__metadata__": {"a": 1}})", 0), kInvalid,
       "__metadata__ value of 'a' is not a string"},
  };
  ScopedTempDir dir;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.File(std::string(c.name) + ".safetensors");
    ASSERT_TRUE(WriteBytes(path, c.bytes));
    auto f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), c.code) << f.status();
    EXPECT_NE(f.status().message().find(c.message_part), std::string::npos) << f.status();
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status();
  }
}

TEST(SafetensorsMalformedTest, EveryTruncationIsAnError) {
  SafetensorsWriter w;
  const std::vector<float> v(16, 1.0f);
  ASSERT_TRUE(w.AddFromF32("a", DType::kF32, {4, 4}, v.data()).ok());
  ASSERT_TRUE(w.AddFromF32("b", DType::kBF16, {16}, v.data()).ok());
  const std::string image = w.Serialize();
  ScopedTempDir dir;
  const std::string path = dir.File("cut.safetensors");
  for (size_t n = 0; n < image.size(); ++n) {
    ASSERT_TRUE(WriteBytes(path, image.substr(0, n)));
    auto f = SafetensorsFile::Open(path);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << "cut at " << n;
  }
  ASSERT_TRUE(WriteBytes(path, image));
  EXPECT_TRUE(SafetensorsFile::Open(path).ok());
}

TEST(SafetensorsTest, EmptyTensorsMayShareAnOffset) {
  ScopedTempDir dir;
  const std::string path = dir.File("empty.safetensors");
  ASSERT_TRUE(
      WriteBytes(path, Image(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "c": {"dtype": "F16", "shape": [0, 3], "data_offsets": [4, 4]}})",
                             4)));
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), 3u);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent/x.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lorad
