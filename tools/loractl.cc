// loractl: the command-line client of lorad. `loractl <command> [--flags] [args]`; the table
// below lists the commands. Exit codes: 0 success, 1 RPC failed or negative answer, 2 usage.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/loractl_cli.h"
#include "tools/loractl_commands.h"

namespace {

using lorad::loractl::Command;

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"health",
       "health [--service=NAME]  print the server's health; exit 0 only if SERVING",
       {"service"},
       lorad::loractl::RunHealth},
      {"generate",
       "generate [PROMPT] [--adapter=ID] [--max_new_tokens=N] [--temperature=T] [--top_p=P]\n"
       "           [--top_k=K] [--min_p=P] [--repetition_penalty=R] [--presence_penalty=P]\n"
       "           [--frequency_penalty=F] [--seed=S] [--stop=S]...\n"
       "           [--logprobs=N] [--ignore_eos] [--chat [--system=TEXT]] [--request_id=ID]\n"
       "           [--usage]  stream a completion to stdout (prompt from stdin if none)",
       {"adapter", "max_new_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
        "presence_penalty", "frequency_penalty", "seed", "stop", "logprobs", "ignore_eos", "chat",
        "system", "request_id", "usage"},
       lorad::loractl::RunGenerate,
       {"ignore_eos", "chat", "usage"}},
      {"adapters",
       "adapters list | get ID | load ID SOURCE [--pin] | unload ID  manage LoRA adapters "
       "(admin)",
       {"pin"},
       lorad::loractl::RunAdapters,
       {"pin"}},
      {"jobs",
       "jobs create --adapter_id=ID (--dataset=LOCAL.jsonl | --dataset_path=PATH) [--rank=R]\n"
       "           [--alpha=A] [--dropout=P] [--target_modules=q_proj,v_proj] "
       "[--learning_rate=LR]\n"
       "           [--epochs=N | --max_steps=N] [--batch_size=N] [--grad_accum=N]\n"
       "           [--max_seq_len=N] [--warmup_steps=N] [--lr_scheduler=cosine|linear|constant]\n"
       "           [--seed=S] [--checkpoint_every_steps=N] [--weight_decay=W] [--use_rslora]\n"
       "           [--max_grad_norm=G] [--warmup_ratio=F] [--min_lr_ratio=F]\n"
       "           [--validation=LOCAL.jsonl | --validation_path=PATH | --validation_split=F]\n"
       "           [--eval_every_steps=N] [--early_stopping_patience=N] [--keep_checkpoints=N]\n"
       "           [--base_adapter=ID] [--train_on_inputs] [--overlong=error|truncate|drop]\n"
       "           [--watch]\n"
       "         | get ID | list [--state=running] | cancel ID | watch ID [--after=SEQ]\n"
       "         | events ID [--after=SEQ] | checkpoints ID | publish ID STEP ADAPTER_ID\n"
       "           fine-tune jobs (admin); watch exits 0 only if the job succeeds",
       {"adapter_id",
        "dataset",
        "dataset_path",
        "rank",
        "alpha",
        "dropout",
        "target_modules",
        "learning_rate",
        "epochs",
        "max_steps",
        "batch_size",
        "grad_accum",
        "max_seq_len",
        "warmup_steps",
        "lr_scheduler",
        "seed",
        "checkpoint_every_steps",
        "weight_decay",
        "use_rslora",
        "max_grad_norm",
        "warmup_ratio",
        "min_lr_ratio",
        "validation",
        "validation_path",
        "validation_split",
        "eval_every_steps",
        "early_stopping_patience",
        "keep_checkpoints",
        "base_adapter",
        "train_on_inputs",
        "overlong",
        "after",
        "watch",
        "state"},
       lorad::loractl::RunJobs,
       {"watch", "use_rslora", "train_on_inputs"}},
      {"tokenize",
       "tokenize [TEXT] [--pieces]  print the token ids of TEXT (stdin if none)",
       {"pieces"},
       lorad::loractl::RunTokenize,
       {"pieces"}},
  };
  return kCommands;
}

void PrintUsage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: loractl [--addr=HOST:PORT] [--timeout_s=S] [--token=T] [--tls_ca=PEM]\n"
      "               <command> [flags] [args]\n"
      "  --addr             lorad's gRPC address [%s]\n"
      "  --timeout_s        RPC deadline in seconds [%s; generate: 600; jobs watch: none]\n"
      "  --token            bearer token (lorad --auth_tokens_file)\n"
      "  --tls_ca           PEM root certificates; dial with TLS\n"
      "  --tls_server_name  host name to verify in the server's certificate\n"
      "exit codes: 0 ok, 1 RPC failed (\"loractl: CMD: CODE: message\" on stderr), "
      "2 usage\ncommands:\n",
      lorad::loractl::kDefaultAddr, lorad::loractl::kDefaultTimeoutS);
  for (const Command& command : Commands()) std::fprintf(out, "  %s\n", command.summary);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "help") {
      PrintUsage(stdout);
      return lorad::loractl::kExitOk;
    }
  }
  const Command* command = nullptr;
  absl::StatusOr<lorad::loractl::Invocation> invocation =
      lorad::loractl::ParseArgs(args, Commands(), &command);
  if (!invocation.ok()) {
    std::fprintf(stderr, "loractl: %s\n", std::string(invocation.status().message()).c_str());
    return lorad::loractl::kExitUsage;
  }
  return command->run(*invocation);
}
