// OpenBeneath: client-named paths open only beneath their root, symlinks inside it work, and
// every way out is refused with a message that does not name the host path.
#include "engine/base/confined_open.h"

#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

namespace fs = std::filesystem;

class ConfinedOpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.File("root");
    fs::create_directories(root_ + "/sub");
    fs::create_directories(dir_.File("outside"));
    ASSERT_TRUE(testing::WriteBytes(root_ + "/sub/f.txt", "inside"));
    ASSERT_TRUE(testing::WriteBytes(dir_.File("outside/f.txt"), "secret"));
    fs::create_symlink("sub/f.txt", root_ + "/relative_link");
    fs::create_symlink(root_ + "/sub/f.txt", root_ + "/absolute_link");
    fs::create_directory_symlink(dir_.File("outside"), root_ + "/out_dir");
    fs::create_symlink(dir_.File("outside/f.txt"), root_ + "/sub/out_file");
  }

  // The bytes read through OpenBeneath, or the error code.
  absl::StatusOr<std::string> Read(const std::string& relative) {
    absl::StatusOr<int> fd = OpenBeneath(root_, relative, /*directory=*/false, "test path");
    if (!fd.ok()) return fd.status();
    char buf[64];
    const ssize_t n = ::read(*fd, buf, sizeof(buf));
    ::close(*fd);
    return std::string(buf, n > 0 ? n : 0);
  }

  testing::ScopedTempDir dir_;
  std::string root_;
};

TEST_F(ConfinedOpenTest, OpensFilesAndSymlinksInsideTheRoot) {
  EXPECT_EQ(*Read("sub/f.txt"), "inside");
  EXPECT_EQ(*Read("./sub//f.txt"), "inside");
  EXPECT_EQ(*Read("relative_link"), "inside");
  EXPECT_EQ(*Read("absolute_link"), "inside");
  absl::StatusOr<int> dir = OpenBeneath(root_, "sub", /*directory=*/true, "test path");
  ASSERT_TRUE(dir.ok()) << dir.status();
  ::close(*dir);
}

TEST_F(ConfinedOpenTest, RefusesEveryWayOut) {
  for (const char* path : {"out_dir/f.txt", "sub/out_file", "../outside/f.txt", "/etc/passwd",
                           "sub/../../outside/f.txt", "", "sub"}) {
    absl::StatusOr<std::string> r = Read(path);
    ASSERT_FALSE(r.ok()) << path << " read " << *r;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << path << ": " << r.status();
    EXPECT_EQ(r.status().message().find(dir_.File("outside")), std::string::npos) << r.status();
  }
  EXPECT_EQ(Read("sub/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read(std::string("sub/f.txt\0x", 11)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lorad
