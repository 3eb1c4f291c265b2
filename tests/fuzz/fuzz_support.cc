#include "tests/fuzz/fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/base/gguf.h"
#include "engine/tokenizer/vocab_from_gguf.h"
#include "tests/fixtures/spm_vocab.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad::fuzz {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz harness: %s\n", what.c_str());
  std::abort();
}

struct TinyText {
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat_template;
};

// The tokenizer and chat template of the GGUF file at `path`; dies if it cannot be read.
TinyText* TextOfGguf(const std::string& path) {
  absl::StatusOr<std::unique_ptr<GgufFile>> gguf = GgufFile::Open(path);
  if (!gguf.ok()) Die(std::string(gguf.status().message()));
  absl::StatusOr<VocabData> vocab = VocabFromGguf(**gguf);
  if (!vocab.ok()) Die(std::string(vocab.status().message()));
  auto* out = new TinyText;
  out->chat_template = DetectChatTemplate(vocab->chat_template);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(*std::move(vocab));
  if (!tokenizer.ok()) Die(std::string(tokenizer.status().message()));
  out->tokenizer = *std::move(tokenizer);
  return out;
}

const TinyText& Tiny() {
  static const TinyText* tiny = [] {
    const std::string path = ScratchDir() + "/tiny.gguf";
    if (absl::Status s = testing::WriteTinyGguf(testing::TinyModelOptions(), path); !s.ok()) {
      Die(std::string(s.message()));
    }
    return TextOfGguf(path);
  }();
  return *tiny;
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::string root = "/dev/shm";
    if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') root = tmp;
    if (!std::filesystem::is_directory(root)) root = "/tmp";
    auto* path = new std::string(absl::StrCat(root, "/lorad-fuzz-", ::getpid()));
    std::error_code error;
    std::filesystem::create_directories(*path, error);
    if (error) Die(absl::StrCat("cannot create ", *path, ": ", error.message()));
    // Removed when the process exits normally (libFuzzer exits through exit()).
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(ScratchDir(), ignored);
    });
    return path;
  }();
  return *dir;
}

std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) Die("cannot write " + path);
  return path;
}

const Tokenizer& TinyTokenizer() { return *Tiny().tokenizer; }

const Tokenizer& SentencePieceTokenizer() {
  static const Tokenizer* tokenizer = [] {
    absl::StatusOr<std::unique_ptr<Tokenizer>> made =
        Tokenizer::Create(testing::SentencePieceTestVocab());
    if (!made.ok()) Die(std::string(made.status().message()));
    return made->release();
  }();
  return *tokenizer;
}

const Tokenizer* ModelTokenizer() {
  static const TinyText* model = []() -> const TinyText* {
    const char* path = std::getenv("LORAD_FUZZ_MODEL");
    if (path == nullptr || *path == '\0') return nullptr;
    return TextOfGguf(path);
  }();
  return model == nullptr ? nullptr : model->tokenizer.get();
}
const ChatTemplate& TinyChatTemplate() { return Tiny().chat_template; }

uint8_t ByteReader::Byte() { return pos_ < size_ ? data_[pos_++] : 0; }

std::string_view ByteReader::Field() {
  const size_t length = size_t{Byte()} | (size_t{Byte()} << 8);
  const size_t n = std::min(length, size_ - std::min(pos_, size_));
  std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
  pos_ += n;
  return out;
}

std::string_view ByteReader::Rest() {
  if (pos_ >= size_) return {};
  std::string_view out(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
  pos_ = size_;
  return out;
}

std::string EncodeField(std::string_view bytes) {
  const size_t n = std::min<size_t>(bytes.size(), 0xffff);
  std::string out;
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  out.append(bytes.substr(0, n));
  return out;
}

}  // namespace lorad::fuzz
