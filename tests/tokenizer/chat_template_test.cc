#include "engine/tokenizer/chat_template.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad {
namespace {

using testing::HasSubstr;

// SmolLM2-135M-Instruct's tokenizer.chat_template, verbatim from its GGUF metadata.
constexpr char kSmolLm2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

const std::vector<ChatMessage> kTwoTurns = {
    {"user", "Hi there!"}, {"assistant", "Hello! How can I help?"}, {"user", "Tell a joke."}};

TEST(ChatTemplateTest, SmolLm2InsertsDefaultSystem) {
  const ChatTemplate tmpl = DetectChatTemplate(kSmolLm2Template);
  EXPECT_EQ(tmpl.family, ChatTemplateFamily::kChatMl);
  EXPECT_EQ(tmpl.default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  auto out = ApplyChatTemplate(kSmolLm2Template, kTwoTurns, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n"
            "Hello! How can I help?<|im_end|>\n<|im_start|>user\nTell a joke.<|im_end|>\n"
            "<|im_start|>assistant\n");
  out = ApplyChatTemplate(kSmolLm2Template, {{"system", "S"}, {"user", "U"}}, false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
}

TEST(ChatTemplateTest, Qwen2DefaultSystemWithEscapedNewlines) {
  const std::string qwen2 =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  EXPECT_EQ(DetectChatTemplate(qwen2).default_system, "You are a helpful assistant.");
  auto out = ApplyChatTemplate(qwen2, {{"user", "q"}}, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nq"
            "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, PlainChatMlAndUnknownFallBack) {
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
      "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
  EXPECT_EQ(DetectChatTemplate(chatml).default_system, "");
  EXPECT_EQ(DetectChatTemplate("").family, ChatTemplateFamily::kChatMl);
  auto out = ApplyChatTemplate("{{ something odd }}", {{"user", "x"}}, false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3) {
  const std::string llama3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
      "trim + '<|eot_id|>' %}{{ content }}{% endfor %}";
  EXPECT_EQ(DetectChatTemplate(llama3).family, ChatTemplateFamily::kLlama3);
  auto out = ApplyChatTemplate(llama3, {{"system", "S"}, {"user", " hi \n"}}, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out,
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Llama2WithSystem) {
  const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
      "messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' }}";
  EXPECT_EQ(DetectChatTemplate(llama2).family, ChatTemplateFamily::kLlama2SysBos);
  auto out = ApplyChatTemplate(
      llama2, {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}}, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST]A1</s><s>[INST] U2 [/INST]");
}

TEST(ChatTemplateTest, MistralV1) {
  const std::string mistral = "{{ ' [INST] ' + system_message }} [INST]";
  EXPECT_EQ(DetectChatTemplate(mistral).family, ChatTemplateFamily::kMistralV1);
  auto out =
      ApplyChatTemplate(mistral, {{"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}}, true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, " [INST] U1 [/INST] A1</s> [INST] U2 [/INST]");
}

TEST(ChatTemplateTest, ValidatesRoles) {
  auto out = ApplyChatTemplate(kSmolLm2Template, {{"user", "a"}, {"tool", "b"}}, false);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("message 1"));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("'tool'"));
  EXPECT_FALSE(ApplyChatTemplate(kSmolLm2Template, {}, true).ok());
  // [INST] formats accept a system message only first.
  auto llama2 = ApplyChatTemplate("[INST] <<SYS>>", {{"user", "a"}, {"system", "s"}}, false);
  EXPECT_FALSE(llama2.ok());
}

}  // namespace
}  // namespace lorad
