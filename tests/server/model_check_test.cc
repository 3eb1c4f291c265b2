#include "server/common/model_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(ModelCheckTest, AcceptsGgufMagic) {
  EXPECT_TRUE(CheckModelPath(WriteFile("ok.gguf", std::string("GGUF\x03\0\0\0", 8))).ok());
}

TEST(ModelCheckTest, RejectsOtherFiles) {
  for (const char* contents : {"", "GGU", "PK\x03\x04 not a model", "gguf lowercase"}) {
    const absl::Status status = CheckModelPath(WriteFile("bad.bin", contents));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << contents;
    EXPECT_NE(std::string(status.message()).find("not a GGUF file"), std::string::npos);
  }
}

TEST(ModelCheckTest, MissingPathIsNotFound) {
  const absl::Status status = CheckModelPath(TempPath("no/such/model.gguf"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(status.message()).find("no/such/model.gguf"), std::string::npos);
  EXPECT_EQ(CheckModelPath("").code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelCheckTest, HuggingFaceDirectoryNeedsConfigJson) {
  const std::string dir = TempPath("hf_model");
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/config.json");
  EXPECT_EQ(CheckModelPath(dir).code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir + "/config.json") << "{}";
  EXPECT_TRUE(CheckModelPath(dir).ok());
}

TEST(ModelCheckTest, UnreadableFileIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string path = WriteFile("locked.gguf", "GGUF");
  chmod(path.c_str(), 0);
  EXPECT_EQ(CheckModelPath(path).code(), absl::StatusCode::kPermissionDenied);
  chmod(path.c_str(), 0644);
}

}  // namespace
}  // namespace lorad::server
