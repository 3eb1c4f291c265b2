// Malformed GGUF files: each is a specific error naming the problem, never a crash or a huge
// allocation. Files are crafted byte by byte with RawGguf.
#include <cstring>

#include "engine/base/gguf.h"
#include "engine/base/gguf_writer.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::WriteBytes;

// Appends little-endian GGUF fields.
struct RawGguf {
  std::string b;
  RawGguf& U32(uint32_t v) { return Put(&v, 4); }
  RawGguf& U64(uint64_t v) { return Put(&v, 8); }
  RawGguf& Str(const std::string& s) {
    U64(s.size());
    b += s;
    return *this;
  }
  RawGguf& Put(const void* p, size_t n) {
    b.append(static_cast<const char*>(p), n);
    return *this;
  }
  RawGguf& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return U32(kGgufMagic).U32(version).U64(n_tensors).U64(n_kv);
  }
  // Tensor info of an F32 tensor (ggml type `type`).
  RawGguf& Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type,
                  uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  RawGguf& PadTo(size_t align) {
    b.append((align - b.size() % align) % align, '\0');
    return *this;
  }
};

struct Case {
  const char* name;
  std::string bytes;
  absl::StatusCode code;
  const char* message_part;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  auto add = [&](const char* name, const RawGguf& r, absl::StatusCode code, const char* part) {
    cases.push_back(Case{name, r.b, code, part});
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  add("empty", RawGguf(), kInvalid, "truncated reading magic");
  add("bad_magic", RawGguf().U32(0x12345678).U32(3).U64(0).U64(0), kInvalid, "bad magic");
  add("version1", RawGguf().Header(0, 0, 1), absl::StatusCode::kUnimplemented, "version 1");
  add("version4", RawGguf().Header(0, 0, 4), absl::StatusCode::kUnimplemented, "version 4");
  add("big_endian", RawGguf().Header(0, 0, 0x03000000u), absl::StatusCode::kUnimplemented,
      "big-endian");
  add("huge_kv_count", RawGguf().Header(0, 1ull << 60), kInvalid, "metadata count");
  add("huge_tensor_count", RawGguf().Header(~0ull, 0), kInvalid, "tensor count");
  add("huge_key_length", RawGguf().Header(0, 1).U64(1ull << 62).U32(0).U32(0), kInvalid,
      "string length");
  add("empty_key", RawGguf().Header(0, 1).Str("").U32(4).U32(1), kInvalid, "empty key");
  add("unknown_value_type", RawGguf().Header(0, 1).Str("k").U32(13).U32(0), kInvalid,
      "key 'k': unknown value type 13");
  add("truncated_scalar", RawGguf().Header(0, 1).Str("k").U32(10).U32(0), kInvalid,
      "truncated reading key 'k'");
  add("huge_string_value", RawGguf().Header(0, 1).Str("k").U32(8).U64(1ull << 40), kInvalid,
      "key 'k': string length");
  add("huge_array", RawGguf().Header(0, 1).Str("arr").U32(9).U32(5).U64(1ull << 61), kInvalid,
      "key 'arr': array of 2305843009213693952 int32");
  add("huge_string_array",
      RawGguf().Header(0, 1).Str("sa").U32(9).U32(8).U64(~0ull >> 1).U64(1).Put("x", 1), kInvalid,
      "key 'sa': array");
  add("string_array_element_past_end",
      RawGguf().Header(0, 1).Str("sa").U32(9).U32(8).U64(2).Str("ok").U64(1000).Put("x", 1),
      kInvalid, "key 'sa' element 1");
  add("nested_array", RawGguf().Header(0, 1).Str("n").U32(9).U32(9).U64(0), kInvalid,
      "nested arrays");
  add("bad_array_type", RawGguf().Header(0, 1).Str("a").U32(9).U32(99).U64(0), kInvalid,
      "unknown value type 99");
  add("duplicate_key", RawGguf().Header(0, 2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2),
      kInvalid, "duplicate metadata key 'k'");
  add("bad_alignment", RawGguf().Header(0, 1).Str("general.alignment").U32(4).U32(3), kInvalid,
      "general.alignment 3");
  add("alignment_not_int", RawGguf().Header(0, 1).Str("general.alignment").U32(8).Str("x"),
      kInvalid, "general.alignment has type string");
  add("too_many_dims",
      RawGguf().Header(1, 0).Tensor("t", {1, 1, 1, 1, 1}, 0, 0).PadTo(32).Put("\0\0\0\0", 4),
      kInvalid, "tensor 't' has 5 dimensions");
  add("zero_dim", RawGguf().Header(1, 0).Tensor("t", {4, 0}, 0, 0).PadTo(32), kInvalid,
      "tensor 't': dimension 1 = 0");
  add("dims_overflow", RawGguf().Header(1, 0).Tensor("t", {1ull << 40, 1ull << 40}, 0, 0).PadTo(32),
      kInvalid, "tensor 't': dimension 1");
  add("negative_dim", RawGguf().Header(1, 0).Tensor("t", {~0ull}, 0, 0).PadTo(32), kInvalid,
      "tensor 't': dimension 0");
  add("unsupported_type_q5_1", RawGguf().Header(1, 0).Tensor("blk.0.x", {32}, 7, 0).PadTo(32),
      absl::StatusCode::kUnimplemented, "tensor 'blk.0.x': unsupported ggml tensor type Q5_1");
  add("unknown_type", RawGguf().Header(1, 0).Tensor("t", {32}, 1234, 0).PadTo(32),
      absl::StatusCode::kUnimplemented, "tensor 't': unsupported ggml tensor type unknown");
  add("row_not_block_multiple", RawGguf().Header(1, 0).Tensor("q", {33}, 8, 0).PadTo(32), kInvalid,
      "tensor 'q': row length 33");
  add("misaligned_offset",
      RawGguf().Header(1, 0).Tensor("t", {4}, 0, 4).PadTo(32).Put(std::string(64, '\0').data(), 64),
      kInvalid, "tensor 't': data offset 4 is not a multiple of the alignment 32");
  add("offset_past_end",
      RawGguf().Header(1, 0).Tensor("t", {4}, 0, 64).PadTo(32).Put(std::string(16, 0).data(), 16),
      kInvalid, "tensor 't': data [64, +16) is past the end");
  add("huge_offset", RawGguf().Header(1, 0).Tensor("t", {4}, 0, ~0ull << 5).PadTo(32), kInvalid,
      "past the end of the data section");
  add("size_past_end",
      RawGguf().Header(1, 0).Tensor("t", {1024}, 0, 0).PadTo(32).Put(std::string(16, 0).data(), 16),
      kInvalid, "tensor 't': data [0, +4096)");
  add("duplicate_tensor",
      RawGguf().Header(2, 0).Tensor("t", {4}, 0, 0).Tensor("t", {4}, 0, 32).PadTo(32), kInvalid,
      "duplicate tensor 't'");
  add("empty_tensor_name", RawGguf().Header(1, 0).Tensor("", {4}, 0, 0), kInvalid, "empty name");
  add("data_section_missing", RawGguf().Header(1, 0).Tensor("t", {4}, 0, 0), kInvalid,
      "truncated: tensor data would start");
  return cases;
}

TEST(GgufMalformedTest, EachCaseIsASpecificError) {
  ScopedTempDir dir;
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.File(std::string(c.name) + ".gguf");
    ASSERT_TRUE(WriteBytes(path, c.bytes));
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), c.code) << f.status();
    EXPECT_NE(f.status().message().find(c.message_part), std::string::npos) << f.status();
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status();
  }
}

// A valid file with every kind of field, cut at every length: always an error, never a crash.
TEST(GgufMalformedTest, EveryTruncationIsAnError) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("n", 3);
  w.SetStringArray("tokens", {"a", "bb", "ccc"});
  w.SetFloat32Array("scores", {1, 2, 3});
  const std::vector<float> v(64, 0.5f);
  ASSERT_TRUE(w.AddTensor("a", {64}, DType::kF32, v.data(), 256).ok());
  ASSERT_TRUE(w.AddTensor("b", {32, 2}, DType::kF32, v.data(), 256).ok());
  const std::string image = w.Serialize();
  ScopedTempDir dir;
  const std::string path = dir.File("cut.gguf");
  ASSERT_TRUE(WriteBytes(path, image));
  ASSERT_TRUE(GgufFile::Open(path).ok());
  for (size_t n = 0; n < image.size(); ++n) {
    ASSERT_TRUE(WriteBytes(path, image.substr(0, n)));
    auto f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << "cut at " << n;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  }
}

// Flipping any single header byte to 0xff must never crash (it may still parse).
TEST(GgufMalformedTest, CorruptedBytesNeverCrash) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetStringArray("tokens", {"a", "bb"});
  const std::vector<float> v(32, 0.5f);
  ASSERT_TRUE(w.AddTensor("a", {32}, DType::kF32, v.data(), 128).ok());
  const std::string image = w.Serialize();
  ScopedTempDir dir;
  const std::string path = dir.File("flip.gguf");
  for (size_t i = 0; i < image.size() - 128; ++i) {
    std::string bad = image;
    bad[i] = static_cast<char>(0xff);
    ASSERT_TRUE(WriteBytes(path, bad));
    auto f = GgufFile::Open(path);
    if (f.ok()) {
      for (const GgufTensor& t : (*f)->tensors()) {
        EXPECT_LE((*f)->data_offset() + t.offset + t.bytes, image.size());
      }
    }
  }
}

}  // namespace
}  // namespace lorad
