#!/usr/bin/env python3
"""HF PEFT LoRA training baseline for the fine-tune benchmark (CPU, fp32).

Trains a LoRA adapter with PEFT on SmolLM2-135M-Instruct (dequantized to fp32 from the same GGUF
file lorad serves, through transformers' GGUF loader, which also undoes llama.cpp's q/k row
permutation) on a tokens file, with the benchmark's hyper-parameters, and reports throughput and
peak memory so lorad's trainer can be compared with it on identical tokens.

Tokens file: JSONL, one example per line, {"tokens": [ids...], "target": [0/1 ...]}, where
target[i] = 1 means token i is predicted from tokens[:i] and counts in the loss (same length as
tokens), and an optional "step" (0-based optimizer step) that, when present, groups the lines
into batches instead of taking --batch lines at a time. lorad's trainer dumps exactly this; for development, make one from a chat JSONL with
  peft_baseline.py tokenize --chat examples/support-tickets/train.jsonl --out /tmp/tokens.jsonl
(the model's chat template; target = the assistant reply and its <|im_end|>).

Training (defaults = the benchmark: rank 16, alpha 32, q/k/v/o/gate/up/down, dropout 0, AdamW
lr 2e-4 betas (0.9, 0.999) eps 1e-8 no weight decay, batch 4, sequence length 256 with every batch
padded to 256, grad clip 1.0, cosine schedule with no warm-up over --steps, seed 0, 2 threads):
  peft_baseline.py train --tokens /tmp/tokens.jsonl --steps 20
Examples are taken in file order (cycling), 4 per step; longer ones are truncated to --seq-len.
The loss is the mean over all target tokens of the batch (HF's causal-LM loss with -100 labels).
Per step it prints: step, loss, lr, step seconds, tokens/s; at the end one JSON line:
  {"mean_tokens_per_s": ..., "mean_padded_tokens_per_s": ..., "peak_rss_mib": ..., ...}
tokens/s counts the real (non-padding) tokens of the batch; padded tokens/s counts batch x
padded length (= 4 x 256 with --pad fixed). Means and medians exclude the first step (warm-up);
on a shared machine the median is the steadier number.

Needs the venv of scripts/setup_peft_venv.sh (torch, transformers, peft, gguf).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODEL_DIR = os.path.join(REPO, "data", "models")
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_tokenizer(args):
    from transformers import AutoTokenizer
    if args.hf_dir:
        return AutoTokenizer.from_pretrained(args.hf_dir)
    return AutoTokenizer.from_pretrained(args.model_dir, gguf_file=args.gguf_file)


def load_model(args):
    import torch
    from transformers import AutoModelForCausalLM
    kw = dict(dtype=torch.float32, attn_implementation=args.attn)
    if args.hf_dir:
        return AutoModelForCausalLM.from_pretrained(args.hf_dir, **kw)
    return AutoModelForCausalLM.from_pretrained(args.model_dir, gguf_file=args.gguf_file, **kw)


def chat_example(tok, messages):
    """Token ids of a chat and its target mask (1 on the last assistant turn + <|im_end|>)."""
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")

    def ids_of(msgs, gen_prompt):
        out = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen_prompt)
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    full = ids_of(messages, False)
    prompt = ids_of(messages[:-1], True)
    if full[:len(prompt)] != prompt:
        raise ValueError("the chat template's prompt is not a prefix of the whole chat")
    end = len(full)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    if eos in full[len(prompt):]:  # stop after the reply's <|im_end|> (drop a trailing "\n")
        end = len(full) - full[::-1].index(eos)
    target = [0] * len(prompt) + [1] * (end - len(prompt)) + [0] * (len(full) - end)
    return full, target


def cmd_tokenize(args):
    tok = load_tokenizer(args)
    n, longest = 0, 0
    with open(args.chat) as f, open(args.out, "w") as out:
        for line in f:
            if not line.strip():
                continue
            tokens, target = chat_example(tok, json.loads(line)["messages"])
            longest = max(longest, len(tokens))
            out.write(json.dumps({"tokens": tokens, "target": target}) + "\n")
            n += 1
    log(f"wrote {n} examples to {args.out}; longest {longest} tokens")


def read_tokens(path):
    examples = []
    with open(path) as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            ex = json.loads(line)
            if len(ex["tokens"]) != len(ex["target"]):
                raise ValueError(f"{path}:{i + 1}: tokens and target differ in length")
            examples.append(ex)
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples


def make_batch(examples, seq_len, pad, pad_id):
    import torch
    exs = [(e["tokens"][:seq_len], e["target"][:seq_len]) for e in examples]
    width = seq_len if pad == "fixed" else max(len(t) for t, _ in exs)
    ids = torch.full((len(exs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(exs), width), dtype=torch.long)
    labels = torch.full((len(exs), width), -100, dtype=torch.long)
    for b, (t, tg) in enumerate(exs):
        n = len(t)
        ids[b, :n] = torch.tensor(t)
        mask[b, :n] = 1
        # HF shifts labels: logits at i-1 are scored against labels[i] = tokens[i].
        labels[b, :n] = torch.tensor([x if m else -100 for x, m in zip(t, tg)])
    return ids, mask, labels, sum(len(t) for t, _ in exs), len(exs) * width


def cmd_train(args):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from peft import LoraConfig, get_peft_model
    from transformers import get_cosine_schedule_with_warmup

    examples = read_tokens(args.tokens)
    t0 = time.perf_counter()
    model = load_model(args)
    load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                      target_modules=TARGETS, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    log(f"model loaded in {time.perf_counter() - t0:.1f} s; {n_trainable} trainable parameters; "
        f"{len(examples)} examples; {args.threads} threads; peak RSS so far {load_rss:.0f} MiB")
    pad_id = model.config.pad_token_id
    if pad_id is None:
        pad_id = model.config.eos_token_id if model.config.eos_token_id is not None else 0
    if isinstance(pad_id, list):
        pad_id = pad_id[0]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=0,
                                            num_training_steps=args.steps)
    rates, padded_rates, losses = [], [], []
    cursor = 0
    for step in range(1, args.steps + 1):
        if "step" in examples[0]:  # lorad's dump: the batches lorad trained, short ones too
            batch = [e for e in examples if e["step"] == step - 1]
            if not batch:
                raise ValueError(f"{args.tokens}: no examples for step {step - 1}")
        else:
            batch = [examples[(cursor + i) % len(examples)] for i in range(args.batch)]
            cursor += args.batch
        ids, mask, labels, real, padded = make_batch(batch, args.seq_len, args.pad, pad_id)
        lr = sched.get_last_lr()[0]
        t = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t
        loss = float(out.loss.detach())
        losses.append(loss)
        if step > 1:
            rates.append(real / dt)
            padded_rates.append(padded / dt)
        print(f"step {step} loss {loss:.4f} lr {lr:.3e} time {dt:.3f}s tokens/s {real / dt:.1f} "
              f"padded_tokens/s {padded / dt:.1f}", flush=True)
    if args.save_adapter:
        model.save_pretrained(args.save_adapter)
        log(f"adapter saved to {args.save_adapter}")
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    median = lambda xs: statistics.median(xs) if xs else float("nan")
    summary = {
        "steps": args.steps, "batch": args.batch, "seq_len": args.seq_len, "pad": args.pad,
        "threads": args.threads, "rank": args.rank, "alpha": args.alpha,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "mean_tokens_per_s": round(mean(rates), 2),
        "mean_padded_tokens_per_s": round(mean(padded_rates), 2),
        "median_tokens_per_s": round(median(rates), 2),
        "median_padded_tokens_per_s": round(median(padded_rates), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "peak_rss_after_load_mib": round(load_rss, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(summary), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help="directory of the GGUF file")
    ap.add_argument("--gguf-file", default=DEFAULT_GGUF)
    ap.add_argument("--hf-dir", default="", help="load an HF directory instead of the GGUF")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenize", help="chat JSONL -> tokens JSONL")
    t.add_argument("--chat", required=True)
    t.add_argument("--out", required=True)
    r = sub.add_parser("train", help="train LoRA with PEFT on a tokens JSONL")
    r.add_argument("--tokens", required=True)
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--batch", type=int, default=4)
    r.add_argument("--seq-len", type=int, default=256)
    r.add_argument("--pad", choices=["fixed", "longest"], default="fixed",
                   help="pad every batch to --seq-len (fixed) or to its longest example")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--lr", type=float, default=2e-4)
    r.add_argument("--rank", type=int, default=16)
    r.add_argument("--alpha", type=float, default=32)
    r.add_argument("--clip", type=float, default=1.0)
    r.add_argument("--save-adapter", default="")
    args = ap.parse_args()
    if args.cmd == "tokenize":
        cmd_tokenize(args)
    else:
        if args.steps < 1:
            ap.error("--steps must be >= 1")
        cmd_train(args)


if __name__ == "__main__":
    main()
