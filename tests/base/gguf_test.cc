// GGUF writer -> reader round trips: every metadata type, every supported tensor type, v2/v3,
// custom alignment; typed getter errors.
#include <cstring>
#include <numeric>

#include "engine/base/gguf.h"
#include "engine/base/gguf_writer.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

TEST(GgufTest, MetadataRoundTripsEveryType) {
  ScopedTempDir dir;
  GgufWriter w;
  w.SetUint8("u8", 200);
  w.SetInt8("i8", -5);
  w.SetUint16("u16", 60000);
  w.SetInt16("i16", -30000);
  w.SetUint32("u32", 4000000000u);
  w.SetInt32("i32", -2000000000);
  w.SetUint64("u64", 1ull << 40);
  w.SetUint64("u64big", ~0ull);
  w.SetInt64("i64", -(1ll << 50));
  w.SetFloat32("f32", 1.5f);
  w.SetFloat64("f64", 2.25);
  w.SetBool("b", true);
  w.SetString("s", "hello");
  w.SetString("empty", "");
  w.SetStringArray("sa", {"a", "", "ccc"});
  w.SetInt32Array("ia", {1, -2, 3});
  w.SetFloat32Array("fa", {0.5f, -1.0f});
  const int64_t i64s[] = {-1, 1ll << 40};
  ASSERT_TRUE(w.SetArray("i64a", GgufType::kInt64, i64s, 2).ok());
  const uint8_t bools[] = {1, 0, 1};
  ASSERT_TRUE(w.SetArray("ba", GgufType::kBool, bools, 3).ok());
  const double f64s[] = {0.25, 8.0};
  ASSERT_TRUE(w.SetArray("f64a", GgufType::kFloat64, f64s, 2).ok());
  EXPECT_EQ(w.SetArray("bad", GgufType::kString, nullptr, 0).code(),
            absl::StatusCode::kInvalidArgument);
  w.SetUint32("u32", 7);  // replaces in place
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(w.Write(path).ok());

  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.metadata().size(), 20u);
  EXPECT_EQ(g.metadata()[4].key, "u32");
  EXPECT_EQ(*g.GetInt("u8"), 200);
  EXPECT_EQ(*g.GetInt("i8"), -5);
  EXPECT_EQ(*g.GetInt("u16"), 60000);
  EXPECT_EQ(*g.GetInt("i16"), -30000);
  EXPECT_EQ(*g.GetInt("u32"), 7);
  EXPECT_EQ(*g.GetInt("i32"), -2000000000);
  EXPECT_EQ(*g.GetInt("u64"), 1ll << 40);
  EXPECT_EQ(g.GetInt("u64big").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*g.GetInt("i64"), -(1ll << 50));
  EXPECT_EQ(*g.GetFloat("f32"), 1.5);
  EXPECT_EQ(*g.GetFloat("f64"), 2.25);
  EXPECT_EQ(*g.GetFloat("u32"), 7.0);
  EXPECT_TRUE(*g.GetBool("b"));
  EXPECT_EQ(*g.GetString("s"), "hello");
  EXPECT_EQ(*g.GetString("empty"), "");
  EXPECT_EQ(*g.GetStringArray("sa"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*g.GetArraySize("sa"), 3u);
  EXPECT_EQ(*g.GetIntArray("ia"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*g.GetFloatArray("fa"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(*g.GetIntArray("i64a"), (std::vector<int64_t>{-1, 1ll << 40}));
  EXPECT_EQ(*g.GetIntArray("ba"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(*g.GetFloatArray("f64a"), (std::vector<float>{0.25f, 8.0f}));
  EXPECT_EQ(*g.GetFloatArray("ia"), (std::vector<float>{1, -2, 3}));
}

TEST(GgufTest, GetterErrorsNameTheKey) {
  ScopedTempDir dir;
  GgufWriter w;
  w.SetString("s", "x");
  w.SetInt32Array("ia", {1});
  ASSERT_TRUE(w.Write(dir.File("m.gguf")).ok());
  auto f = GgufFile::Open(dir.File("m.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  auto missing = g.GetString("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);
  auto wrong = g.GetInt("s");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("'s' is string"), std::string::npos) << wrong.status();
  EXPECT_EQ(g.GetStringArray("ia").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.GetStringArray("ia").status().message().find("array of int32"), std::string::npos);
  EXPECT_EQ(g.GetFloat("s").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetBool("s").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetArraySize("s").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.GetTensor("t").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(g.Has("nope"));
  EXPECT_TRUE(g.Has("s"));
}

struct TypeCase {
  DType type;
  uint32_t ggml_type;
};
void PrintTo(const TypeCase& c, std::ostream* os) { *os << DTypeName(c.type); }

class GgufTensorTypeTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(GgufTensorTypeTest, TensorRoundTripsInPlace) {
  const TypeCase c = GetParam();
  ScopedTempDir dir;
  const int64_t cols = 512, rows = 3;
  const size_t bytes = RowBytes(c.type, cols) * rows;
  const std::vector<uint8_t> data = Bytes(bytes, 3);
  const std::vector<uint8_t> vec = Bytes(RowBytes(c.type, cols), 9);
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  ASSERT_TRUE(w.AddTensor("m", {cols, rows}, c.type, data.data(), data.size()).ok());
  ASSERT_TRUE(w.AddTensor("v", {cols}, c.type, vec.data(), vec.size()).ok());
  ASSERT_TRUE(w.Write(dir.File("t.gguf")).ok());
  auto f = GgufFile::Open(dir.File("t.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ((*f)->tensors().size(), 2u);
  const GgufTensor* m = (*f)->FindTensor("m");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->type, c.type);
  EXPECT_EQ(m->ggml_type, c.ggml_type);
  EXPECT_EQ(m->dims, (std::vector<int64_t>{cols, rows}));
  EXPECT_EQ(m->cols(), cols);
  EXPECT_EQ(m->rows(), rows);
  EXPECT_EQ(m->num_elements, cols * rows);
  EXPECT_EQ(m->bytes, bytes);
  EXPECT_EQ(std::memcmp(m->data, data.data(), bytes), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data) % 32, 0u);
  const GgufTensor* v = (*f)->FindTensor("v");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->offset % 32, 0u);
  EXPECT_EQ(std::memcmp(v->data, vec.data(), vec.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(AllSupported, GgufTensorTypeTest,
                         ::testing::Values(TypeCase{DType::kF32, 0}, TypeCase{DType::kF16, 1},
                                           TypeCase{DType::kBF16, 30}, TypeCase{DType::kQ8_0, 8},
                                           TypeCase{DType::kQ4_0, 2}, TypeCase{DType::kQ4_1, 3},
                                           TypeCase{DType::kQ5_0, 6}, TypeCase{DType::kQ4_K, 12},
                                           TypeCase{DType::kQ6_K, 14}),
                         [](const auto& info) { return DTypeName(info.param.type); });

TEST(GgufTest, Version2AndCustomAlignment) {
  ScopedTempDir dir;
  GgufWriter w(64);
  w.set_version(2);
  const std::vector<float> a(5, 1.0f), b(3, 2.0f);
  ASSERT_TRUE(w.AddTensor("a", {5}, DType::kF32, a.data(), 20).ok());
  ASSERT_TRUE(w.AddTensor("b", {3}, DType::kF32, b.data(), 12).ok());
  ASSERT_TRUE(w.Write(dir.File("v2.gguf")).ok());
  auto f = GgufFile::Open(dir.File("v2.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 2u);
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ(*(*f)->GetInt("general.alignment"), 64);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  EXPECT_EQ((*f)->FindTensor("b")->offset, 64u);
  EXPECT_EQ(static_cast<const float*>((*f)->FindTensor("b")->data)[2], 2.0f);
}

TEST(GgufTest, WriterRejectsBadTensors) {
  GgufWriter w;
  const std::vector<uint8_t> data(1024);
  EXPECT_EQ(w.AddTensor("nf4", {64}, DType::kNF4, data.data(), 36).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(w.AddTensor("short", {64}, DType::kF32, data.data(), 100).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("block", {33}, DType::kQ8_0, data.data(), 34).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("nodims", {}, DType::kF32, data.data(), 0).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.AddTensor("ok", {4}, DType::kF32, data.data(), 16).ok());
  EXPECT_EQ(w.AddTensor("ok", {4}, DType::kF32, data.data(), 16).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GgufTest, MissingFileIsNotFound) {
  auto f = GgufFile::Open("/nonexistent/dir/x.gguf");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/dir/x.gguf"), std::string::npos);
}

}  // namespace
}  // namespace lorad
