#!/usr/bin/env python3
"""Make a random (nonzero) PEFT LoRA adapter for SmolLM2-135M-Instruct, for throughput baselines.

Reads the model's config from the GGUF file lorad serves (transformers' GGUF loader), writes it as
an HF config directory (--base-out, what llama.cpp's convert_lora_to_gguf.py takes as --base), and
saves a PEFT adapter (--adapter-out) with the benchmark's shape: rank 16, lora_alpha 32, on
q/k/v/o/gate/up/down_proj, every lora_A and lora_B filled with normal(0, --std) values, so that
applying it really changes the output. The base weights are not needed (only the config is), so the
model is built on the meta device and never materialized.

  make_random_peft_adapter.py --base-out /tmp/smol-hf --adapter-out /tmp/smol-lora-r16

Needs the venv of scripts/setup_peft_venv.sh (torch, transformers, peft, gguf).
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_GGUF = os.path.join(REPO, "data", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gguf", default=DEFAULT_GGUF, help="the base model GGUF (for its config)")
    ap.add_argument("--base-out", required=True, help="directory to write the HF config to")
    ap.add_argument("--adapter-out", required=True, help="directory to save the PEFT adapter to")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--std", type=float, default=0.02, help="std of the random A and B values")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    gguf = os.path.abspath(args.gguf)
    config = AutoConfig.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    if not getattr(config, "architectures", None):  # the GGUF loader leaves it unset
        config.architectures = ["LlamaForCausalLM"]  # convert_lora_to_gguf.py needs it
    os.makedirs(args.base_out, exist_ok=True)
    config.save_pretrained(args.base_out)

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                      target_modules=TARGETS, bias="none", task_type="CAUSAL_LM",
                      init_lora_weights=False)
    model = get_peft_model(model, lora)
    gen = torch.Generator().manual_seed(args.seed)
    n_tensors, n_params = 0, 0
    for name, p in model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            vals = torch.randn(p.shape, generator=gen, dtype=torch.float32) * args.std
            # replace the meta tensor by a real one holding the random values
            mod_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(mod_name), attr, torch.nn.Parameter(vals))
            n_tensors += 1
            n_params += vals.numel()
    model.peft_config["default"].base_model_name_or_path = os.path.abspath(args.base_out)
    model.save_pretrained(args.adapter_out)
    print(f"saved {n_tensors} LoRA tensors ({n_params} parameters, rank {args.rank}, alpha "
          f"{args.alpha}, std {args.std}) to {args.adapter_out}; base config in {args.base_out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
