// MappedFile: contents, empty files, errors naming the path.
#include "engine/base/mapped_file.h"

#include <cstring>

#include "engine/base/atomic_file.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;

TEST(MappedFileTest, MapsContents) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("f"), {"hello ", "world"}).ok());
  auto f = MappedFile::Open(dir.File("f"));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ((*f)->size(), 11u);
  EXPECT_EQ(std::memcmp((*f)->data(), "hello world", 11), 0);
  EXPECT_EQ((*f)->path(), dir.File("f"));
}

TEST(MappedFileTest, EmptyFile) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("e"), {}).ok());
  auto f = MappedFile::Open(dir.File("e"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->size(), 0u);
  EXPECT_EQ((*f)->data(), nullptr);
}

TEST(MappedFileTest, Errors) {
  ScopedTempDir dir;
  auto missing = MappedFile::Open(dir.File("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir.File("nope")), std::string::npos);
  auto directory = MappedFile::Open(dir.path());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AtomicFileTest, ReplacesAndLeavesNoTemporaries) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("f"), {"one"}).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.File("f"), {"two!"}).ok());
  auto f = MappedFile::Open(dir.File("f"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*f)->data()), (*f)->size()), "two!");
  EXPECT_EQ(WriteFileAtomically(dir.File("missing/f"), {"x"}).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lorad
