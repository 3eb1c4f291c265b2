#!/usr/bin/env python3
"""Writes tests/data/tokenizer_reference_hf.json: token ids of the default model's tokenizer
computed by Hugging Face `tokenizers`, and chat prompts rendered by `jinja2` from the model's own
tokenizer.chat_template. Run it outside the repo's build (it needs network-free PyPI packages):

  python3 -m venv /tmp/tokref && /tmp/tokref/bin/pip install gguf tokenizers jinja2
  /tmp/tokref/bin/python tests/tokenizer/gen_reference_hf.py \
      /path/to/SmolLM2-135M-Instruct.Q4_1.gguf tests/data/tokenizer_reference_hf.json

The HF tokenizer is built from the GGUF vocabulary with SmolLM2's own tokenizer.json structure:
BPE(vocab, merges), pre-tokenizer Sequence[Digits(individual_digits), ByteLevel(no prefix
space)], control tokens (token_type 3) registered as special added tokens.
"""
import importlib.metadata
import json
import sys

import jinja2
from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

TEXTS = [
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space and trailing space ",
    "I'm sure they've said we'll see, isn't it? She'd, he's, you're",
    "numbers: 0 7 42 1234567890 3.14159 -12,345.67 1e-9",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1 << 10); return 0; }",
    "tabs\tand\t\tmany   spaces    here\n\n\nthree newlines\r\nCRLF",
    "     ",
    "\n",
    "a\n \n  b",
    "Москва — столица России. Привет, мир!",
    "東京は日本の首都です。中文测试：你好，世界！",
    "한국어 텍스트와 日本語のテキスト",
    "مرحبا بالعالم، هذا نص عربي.",
    "नमस्ते दुनिया, यह हिंदी है।",
    "Emoji: 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "Ünïcödé àccents: café naïve résumé Straße",
    "Math: ∑ x² ≤ ∞, α+β=γ, ½ ¾ ² ³ ①②",
    "URL https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#frag",
    "JSON {\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after end<|im_end|><|im_start|>",
    "Mixed: abc123def 4five6 ７８９ ٣٤٥",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( )))",
    "\u00a0non-breaking\u2003em-space\u3000ideographic",
    "",
]

CHATS = [
    {"messages": [{"role": "user", "content": "Hi there!"},
                  {"role": "assistant", "content": "Hello! How can I help?"},
                  {"role": "user", "content": "Tell me a joke."}],
     "add_generation_prompt": True},
    {"messages": [{"role": "system", "content": "You are terse."},
                  {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "4"}],
     "add_generation_prompt": False},
    {"messages": [{"role": "user", "content": "Only one turn\nwith a newline"}],
     "add_generation_prompt": False},
]


def field(reader, key):
    f = reader.fields[key]
    return f.contents()


def main(gguf_path, out_path):
    r = GGUFReader(gguf_path)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    template = field(r, "tokenizer.chat_template")
    assert field(r, "tokenizer.ggml.pre") == "smollm"

    vocab = {t: i for i, t in enumerate(tokens)}
    merge_pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merge_pairs, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])

    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text, text
        cases.append({"text": text, "ids": ids})

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    compiled = env.from_string(template)
    chats = []
    for chat in CHATS:
        rendered = compiled.render(messages=chat["messages"],
                                   add_generation_prompt=chat["add_generation_prompt"],
                                   bos_token="<|im_start|>", eos_token="<|im_end|>")
        chats.append(dict(chat, expected=rendered))

    versions = {p: importlib.metadata.version(p) for p in ("tokenizers", "jinja2", "gguf")}
    out = {
        "generator": "tests/tokenizer/gen_reference_hf.py",
        "model": gguf_path.rsplit("/", 1)[-1],
        "versions": versions,
        "parse_special": True,
        "add_special": False,
        "cases": cases,
        "chat_template": template,
        "chats": chats,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
