// Writes the seed corpora of the fuzz targets from the project's fixtures, one directory per
// target: `lorad_fuzz_seeds OUT_DIR` writes OUT_DIR/<target>/seed-*. The committed corpora in
// tests/fuzz/corpus/ came from this program (plus crash inputs, named crash-*, kept as
// regressions). Every seed is small (a few KB) so that fuzzing stays fast.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/safetensors_writer.h"
#include "lorad/v1/inference.pb.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_adapter.h"
#include "tests/fixtures/tiny_model.h"
#include "tests/fixtures/tiny_vocab.h"
#include "tests/fuzz/fuzz_support.h"

namespace lorad {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class SeedWriter {
 public:
  explicit SeedWriter(std::string root) : root_(std::move(root)) {}
  void Write(const std::string& target, const std::string& bytes) {
    const fs::path dir = fs::path(root_) / target;
    fs::create_directories(dir);
    const std::string name = absl::StrCat("seed-", count_[target]++);
    std::ofstream(dir / name, std::ios::binary) << bytes;
  }

 private:
  std::string root_;
  std::map<std::string, int> count_;
};

// The smallest tiny model: one layer, 64 wide, the 259-token byte vocabulary.
testing::TinyModelOptions SmallModel(DType type) {
  testing::TinyModelOptions o;
  o.num_layers = 1;
  o.hidden = 64;
  o.intermediate = 64;
  o.vocab = 259;
  o.weight_type = type;
  return o;
}

int Run(const std::string& out) {
  SeedWriter seeds(out);
  testing::ScopedTempDir scratch;

  for (DType type : {DType::kQ4_1, DType::kQ8_0}) {
    const std::string path = scratch.File("tiny.gguf");
    if (!testing::WriteTinyGguf(SmallModel(type), path).ok()) return 1;
    seeds.Write("gguf_fuzz", ReadFile(path));
  }

  {
    SafetensorsWriter w;
    const std::vector<float> v = {1.0f, -2.0f, 0.5f, 3.0f, 0.0f, -0.25f};
    w.AddFromF32("a.weight", DType::kF32, {2, 3}, v.data()).IgnoreError();
    w.AddFromF32("b.weight", DType::kF16, {3, 2}, v.data()).IgnoreError();
    w.AddFromF32("c.weight", DType::kBF16, {6}, v.data()).IgnoreError();
    w.SetMetadata("format", "pt");
    seeds.Write("safetensors_fuzz", w.Serialize());
    SafetensorsWriter empty;
    seeds.Write("safetensors_fuzz", empty.Serialize());
  }

  const testing::TinyModelOptions base;
  std::vector<testing::TinyAdapterOptions> adapters(3);
  adapters[1].use_rslora = true;
  adapters[1].rank = 2;
  adapters[2].target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  adapters[2].rank = 1;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const std::string dir = scratch.File(absl::StrCat("adapter", i));
    if (!testing::WriteTinyPeftAdapter(base, adapters[i], dir).ok()) return 1;
    seeds.Write("peft_adapter_fuzz", fuzz::EncodeField(ReadFile(dir + "/adapter_config.json")) +
                                         ReadFile(dir + "/adapter_model.safetensors"));
  }

  for (const char* text :
       {"Hello, world!", "  leading spaces and\ttabs\nnewlines  ", "<|im_start|>user\nhi<|im_end|>",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "1234567890 !@#$%^&*()",
        "ab\xff\xfe"}) {
    // Tiny byte-level BPE, then SentencePiece (bit 2), then the model's vocabulary (bit 3).
    for (char mode : {'\0', '\3', '\4', '\7', '\x08'}) {
      seeds.Write("tokenizer_fuzz", std::string(1, mode) + text);
    }
  }

  struct Chat {
    std::string source;
    std::vector<std::pair<uint8_t, std::string>> messages;
  };
  const std::vector<std::pair<uint8_t, std::string>> turns = {
      {0, "You are terse."}, {1, "Hi there"}, {2, "Hello."}, {1, "Bye"}};
  for (const std::string& source :
       {std::string(testing::kTinyChatTemplate), std::string("<|start_header_id|>"),
        std::string("[INST] <<SYS>>"), std::string("[INST]"), std::string("")}) {
    std::string bytes = fuzz::EncodeField(source) + '\1';
    for (const auto& [role, content] : turns)
      bytes += static_cast<char>(role) + fuzz::EncodeField(content);
    seeds.Write("chat_template_fuzz", bytes);
  }

  // A limits byte, a policy byte (over-long policy = byte % 3, train_on_inputs = byte & 4).
  const std::string kLimit(1, 100);
  seeds.Write("jsonl_dataset_fuzz", kLimit + '\0' + "{\"text\": \"abc abc\"}\n{\"text\": \"x\"}\n");
  seeds.Write("jsonl_dataset_fuzz", kLimit + '\4' +
                                        "{\"prompt\": \"a\", \"completion\": \"b c\"}\n\n"
                                        "{\"prompt\": \"q\", \"completion\": \"r\"}\r\n");
  seeds.Write(
      "jsonl_dataset_fuzz",
      std::string(1, 3) + '\1' +
          R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a", "weight": 1}, {"role": "user", "content": "v"}, {"role": "assistant", "content": "b", "weight": 0}]})"
          "\n");

  // openai_request_fuzz: an endpoint byte (0 completions, 1 chat), then the JSON body.
  seeds.Write(
      "openai_request_fuzz",
      std::string(1, '\0') +
          R"({"model": "tiny", "prompt": "hi", "max_tokens": 4, "stop": ["x"], "logprobs": 2})");
  seeds.Write(
      "openai_request_fuzz",
      std::string(1, '\1') +
          R"({"model": "tiny:good", "messages": [{"role": "system", "content": "s"}, )"
          R"({"role": "user", "content": [{"type": "text", "text": "u"}]}], "stream": true, )"
          R"("stream_options": {"include_usage": true}, "logprobs": true, "top_logprobs": 2, )"
          R"("temperature": 0.5, "seed": 7, "top_k": -1, "n": 1})");
  seeds.Write("openai_request_fuzz", std::string(1, '\0') + R"({"model": "nope", "prompt": 1})");

  {
    v1::GenerateRequest r;
    r.set_prompt("Once upon a time");
    r.mutable_sampling()->set_max_new_tokens(8);
    r.mutable_sampling()->set_temperature(0.7f);
    r.mutable_sampling()->set_top_p(0.9f);
    r.mutable_sampling()->add_stop("\n");
    seeds.Write("proto_request_fuzz", r.SerializeAsString());
    v1::GenerateRequest chat;
    auto* m = chat.mutable_messages()->add_messages();
    m->set_role("user");
    m->set_content("hi");
    chat.set_adapter_id("org/name");
    chat.mutable_sampling()->set_logprobs(2);
    seeds.Write("proto_request_fuzz", chat.SerializeAsString());
  }
  std::printf("seeds written under %s\n", out.c_str());
  return 0;
}

}  // namespace
}  // namespace lorad

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  return lorad::Run(argv[1]);
}
