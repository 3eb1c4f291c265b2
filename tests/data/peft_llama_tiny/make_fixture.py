#!/usr/bin/env python3
"""Makes the HF-PEFT Llama fixture of tests/adapters/peft_hf_fixture_test.cc (one-off script).

Writes, next to this file:
  base/config.json, base/model.safetensors   a tiny LlamaForCausalLM (transformers' own
                                             save_pretrained) with random weights
  adapter/adapter_config.json,
  adapter/adapter_model.safetensors          a LoRA adapter written by PEFT's save_pretrained
                                             (r=4, alpha=8, all seven projections, random A and B)
  reference.json                             fp32 logits of the base and of the PEFT model for a
                                             few token-id sequences, computed by transformers+PEFT

Every weight matrix is EXACTLY representable in NF4 (lorad's HF loader quantizes each matrix to
NF4 in blocks of 64 values along a row): each block is NF4_CODE[k] * absmax with absmax a power
of two and at least one |code| == 1 in the block, so quantization at load is lossless and lorad's
logits can be compared with PEFT's to float rounding. Attention projections and the (tied)
embedding use the whole code book and are stored as F32; the MLP projections use only the codes
0 and +-1 (values 0, +-absmax, exact in BF16) and are stored as BF16, which keeps the fixture
under 300 KB and also exercises lorad's BF16 reading. Norm weights are F32 (lorad keeps them in
fp32). rope_theta is not the default 10000, and transformers >= 5 writes it only inside
"rope_parameters", so the fixture also checks that lorad reads it from there.

Run with the venv of scripts/setup_peft_venv.sh:
  .cache/venv-peft/bin/python tests/data/peft_llama_tiny/make_fixture.py
The output is deterministic for a given torch/transformers/peft version (versions are recorded
in reference.json).
"""
import json
import os
import shutil
import sys

# PEFT writes target_modules from a set: fix the hash seed so adapter_config.json is stable.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np
import torch

import peft
import transformers
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240611
NF4_BLOCK = 64
# The NF4 code book of QLoRA / bitsandbytes (engine/quant/blocks.h kNF4Codebook), as fp32.
NF4_CODE = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=np.float32)

VOCAB, HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 64, 64, 128, 2, 4, 2, 16
ROPE_THETA = 50000.0
RANK, ALPHA = 4, 8
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SEQUENCES = [
    [1, 17, 42, 59, 5, 37],
    [63, 2, 2, 31],
    [9, 50, 55, 8, 13, 21, 34, 0],
]


def nf4_exact(rng, rows, cols, log2_absmax, ternary=False):
    """[rows, cols] fp32 matrix whose every 64-block is codes * absmax, one |code| == 1."""
    assert cols % NF4_BLOCK == 0
    nblocks = cols // NF4_BLOCK
    if ternary:
        codes = rng.choice(np.array([0, 7, 15]), size=(rows, nblocks, NF4_BLOCK))
    else:
        codes = rng.integers(0, 16, size=(rows, nblocks, NF4_BLOCK))
    # Force one +-1 code per block so the block's absmax is exactly `absmax`.
    pos = rng.integers(0, NF4_BLOCK, size=(rows, nblocks))
    sign = rng.choice(np.array([0, 15]), size=(rows, nblocks))
    np.put_along_axis(codes, pos[..., None], sign[..., None], axis=2)
    exps = rng.choice(np.array(log2_absmax), size=(rows, nblocks, 1))
    absmax = np.ldexp(np.float32(1.0), exps).astype(np.float32)
    vals = NF4_CODE[codes] * absmax  # exact: absmax is a power of two
    return vals.reshape(rows, cols).astype(np.float32)


def main():
    rng = np.random.default_rng(SEED)
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=ROPE_THETA,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    )
    config.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(config).to(torch.float32).eval()

    bf16_names = set()
    state = {"model.embed_tokens.weight": nf4_exact(rng, VOCAB, HIDDEN, [-1, 0])}
    state["model.norm.weight"] = (1.0 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        state[p + "input_layernorm.weight"] = (
            1.0 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        state[p + "post_attention_layernorm.weight"] = (
            1.0 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        shapes = {
            "self_attn.q_proj": (HEADS * HEAD_DIM, HIDDEN),
            "self_attn.k_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
            "self_attn.v_proj": (KV_HEADS * HEAD_DIM, HIDDEN),
            "self_attn.o_proj": (HIDDEN, HEADS * HEAD_DIM),
            "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
            "mlp.up_proj": (INTERMEDIATE, HIDDEN),
            "mlp.down_proj": (HIDDEN, INTERMEDIATE),
        }
        for name, (r, c) in shapes.items():
            mlp = name.startswith("mlp.")
            state[p + name + ".weight"] = nf4_exact(rng, r, c, [-3, -2], ternary=mlp)
            if mlp:
                bf16_names.add(p + name + ".weight")
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= {"lm_head.weight"}, missing  # tied to embed_tokens
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    base_dir = os.path.join(HERE, "base")
    adapter_dir = os.path.join(HERE, "adapter")
    for d in (base_dir, adapter_dir):
        shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(base_dir, safe_serialization=True)
    # Re-write model.safetensors with the MLP matrices in BF16 (their values are exact there);
    # transformers itself loads a mixed-dtype file and casts to the model dtype.
    from safetensors.torch import load_file, save_file
    st_path = os.path.join(base_dir, "model.safetensors")
    saved = load_file(st_path)
    for k in bf16_names:
        assert torch.equal(saved[k].to(torch.bfloat16).to(torch.float32), saved[k]), k
        saved[k] = saved[k].to(torch.bfloat16)
    save_file(saved, st_path, metadata={"format": "pt"})
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(base_dir, extra)):
            os.remove(os.path.join(base_dir, extra))
    base = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                            attn_implementation="eager").eval()
    for k, v in state.items():  # the reloaded model holds exactly the NF4-exact values
        assert np.array_equal(base.state_dict()[k].numpy(), v), k

    def logits_of(m):
        out = []
        with torch.no_grad():
            for seq in SEQUENCES:
                ids = torch.tensor([seq], dtype=torch.long)
                out.append(m(input_ids=ids).logits[0].to(torch.float32).numpy())
        return out

    base_logits = logits_of(base)

    lora = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                      bias="none", task_type="CAUSAL_LM", init_lora_weights=False)
    base.name_or_path = "peft_llama_tiny/base"  # recorded as base_model_name_or_path
    peft_model = get_peft_model(base, lora).eval()
    # Random A and B (PEFT's init_lora_weights=False already makes B non-zero; set both
    # explicitly for a controlled, clearly visible effect).
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, mod in peft_model.named_modules():
            if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
                a = mod.lora_A["default"].weight
                b = mod.lora_B["default"].weight
                a.copy_(0.1 * torch.randn(a.shape, generator=gen))
                b.copy_(0.03 * torch.randn(b.shape, generator=gen))
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    for extra in ("README.md",):
        if os.path.exists(os.path.join(adapter_dir, extra)):
            os.remove(os.path.join(adapter_dir, extra))
    adapted_logits = logits_of(peft_model)

    # Check the saved adapter reloads to the same logits through PEFT itself.
    base2 = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    reloaded = peft.PeftModel.from_pretrained(base2, adapter_dir).eval()
    for got, want in zip(logits_of(reloaded), adapted_logits):
        assert np.array_equal(got, want)

    effect = max(float(np.abs(a - b).max()) for a, b in zip(adapted_logits, base_logits))
    scale = max(float(np.abs(b).max()) for b in base_logits)
    print(f"max |base logit| = {scale:.3f}, max |adapted - base| = {effect:.3f}")

    def fmt(arr):
        return [float(f"{x:.6g}") for x in arr.reshape(-1)]

    ref = {
        "comment": "fp32 logits [len(tokens), vocab] row-major, from transformers + PEFT; "
                   "made by make_fixture.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
        "vocab_size": VOCAB,
        "rope_theta": ROPE_THETA,
        "lora_rank": RANK,
        "lora_alpha": ALPHA,
        "cases": [
            {"tokens": seq, "base_logits": fmt(b), "adapted_logits": fmt(a)}
            for seq, b, a in zip(SEQUENCES, base_logits, adapted_logits)
        ],
    }
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    total = 0
    for root, _, files in os.walk(HERE):
        for fn in files:
            if "__pycache__" not in root:
                total += os.path.getsize(os.path.join(root, fn))
    print(f"fixture size: {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
