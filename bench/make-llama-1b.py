#!/usr/bin/python3
"""A 1B-class Llama-shaped model with random weights, for speed benchmarks only.

Shapes of TinyLlama-1.1B (hidden 2048, 22 layers, 32 query / 4 key-value heads, ffn 5632,
vocab 32000): 1,100,048,384 parameters. Writes

  OUT/hf/config.json, OUT/hf/model.safetensors   F16 (norms F32), Hugging Face layout
  OUT/hf/tokenizer.model                         the demo model's SentencePiece tokenizer
                                                 (resources/models/kjv-llama-7m; its ids are
                                                 below 32000), so that `--calibration TEXT` runs
  OUT/model-f16.gguf                             the same weights for llama.cpp / ik_llama.cpp
                                                 (GGUF v3, F16, q/k rows in GGUF's RoPE order,
                                                 no vocabulary: tokenizer.ggml.model = "none")

The values are Gaussian (std 0.02, norms 1), seeded per tensor, so both files hold the same
model; only times and memory mean anything on it. Both formats are written here from their
specifications (safetensors: a JSON header and raw little-endian data; GGUF v3: see
llama.cpp's docs/gguf.md), with numpy only (Debian's python3-numpy).

Usage: /usr/bin/python3 bench/make-llama-1b.py OUT [--layers N]
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

HIDDEN, FFN, HEADS, KV_HEADS, VOCAB, CTX = 2048, 5632, 32, 4, 32000, 2048
HEAD = HIDDEN // HEADS


def tensors(layers):
    """(HF name, GGUF name, shape [rows, cols] or [n], kind) in file order."""
    out = [("model.embed_tokens.weight", "token_embd.weight", [VOCAB, HIDDEN], "w")]
    for i in range(layers):
        hf, gg = f"model.layers.{i}.", f"blk.{i}."
        out += [
            (hf + "input_layernorm.weight", gg + "attn_norm.weight", [HIDDEN], "norm"),
            (hf + "self_attn.q_proj.weight", gg + "attn_q.weight", [HEADS * HEAD, HIDDEN], "q"),
            (hf + "self_attn.k_proj.weight", gg + "attn_k.weight", [KV_HEADS * HEAD, HIDDEN], "k"),
            (hf + "self_attn.v_proj.weight", gg + "attn_v.weight", [KV_HEADS * HEAD, HIDDEN], "w"),
            (hf + "self_attn.o_proj.weight", gg + "attn_output.weight", [HIDDEN, HEADS * HEAD], "w"),
            (hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", [HIDDEN], "norm"),
            (hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", [FFN, HIDDEN], "w"),
            (hf + "mlp.up_proj.weight", gg + "ffn_up.weight", [FFN, HIDDEN], "w"),
            (hf + "mlp.down_proj.weight", gg + "ffn_down.weight", [HIDDEN, FFN], "w"),
        ]
    out += [
        ("model.norm.weight", "output_norm.weight", [HIDDEN], "norm"),
        ("lm_head.weight", "output.weight", [VOCAB, HIDDEN], "w"),
    ]
    return out


def values(index, shape, kind):
    if kind == "norm":
        return np.ones(shape, dtype=np.float32)
    rng = np.random.default_rng(20261206 + index)
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)


def to_gguf_rope_order(w, heads):
    # Hugging Face keeps each head's rotary pairs as (first half, second half); GGUF's llama
    # keeps them adjacent: row h*D + 2j + s of GGUF is row h*D + s*D/2 + j of HF.
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_safetensors(path, specs):
    header, offset = {}, 0
    for _, (name, _, shape, kind) in enumerate(specs):
        dtype, size = ("F32", 4) if kind == "norm" else ("F16", 2)
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for index, (name, _, shape, kind) in enumerate(specs):
            f.write(values(index, shape, kind).tobytes())


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, specs, layers):
    U32, F32, STR = 4, 6, 8
    kv = [
        ("general.architecture", STR, "llama"),
        ("general.name", STR, "random llama 1B (TinyLlama shapes)"),
        ("general.file_type", U32, 1),
        ("llama.context_length", U32, CTX),
        ("llama.embedding_length", U32, HIDDEN),
        ("llama.block_count", U32, layers),
        ("llama.feed_forward_length", U32, FFN),
        ("llama.attention.head_count", U32, HEADS),
        ("llama.attention.head_count_kv", U32, KV_HEADS),
        ("llama.rope.dimension_count", U32, HEAD),
        ("llama.rope.freq_base", F32, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        ("llama.vocab_size", U32, VOCAB),
        ("tokenizer.ggml.model", STR, "none"),
    ]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(specs), len(kv))
    for key, vtype, value in kv:
        head += gguf_string(key) + struct.pack("<I", vtype)
        head += gguf_string(value) if vtype == STR else struct.pack("<I" if vtype == U32 else "<f", value)
    offset = 0
    for _, gname, shape, kind in specs:
        ggml_type, size = (0, 4) if kind == "norm" else (1, 2)
        head += gguf_string(gname) + struct.pack("<I", len(shape))
        head += b"".join(struct.pack("<Q", d) for d in reversed(shape))  # ne[0] = the innermost
        head += struct.pack("<IQ", ggml_type, offset)
        offset += int(np.prod(shape)) * size
        offset += -offset % 32
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head)
        for index, (_, _, shape, kind) in enumerate(specs):
            w = values(index, shape, kind)
            if kind == "q":
                w = to_gguf_rope_order(w, HEADS)
            elif kind == "k":
                w = to_gguf_rope_order(w, KV_HEADS)
            data = w.tobytes()
            f.write(data + b"\0" * (-len(data) % 32))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 22
    specs = tensors(layers)
    (out / "hf").mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": FFN, "num_hidden_layers": layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "max_position_embeddings": CTX,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16",
    }
    (out / "hf" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(out / "hf" / "model.safetensors", specs)
    demo = Path(__file__).resolve().parent.parent / "resources" / "models" / "kjv-llama-7m"
    shutil.copyfile(demo / "tokenizer.model", out / "hf" / "tokenizer.model")
    write_gguf(out / "model-f16.gguf", specs, layers)
    params = sum(int(np.prod(s)) for _, _, s, _ in specs)
    print(f"{out}: {params:,} parameters, {layers} layers")


if __name__ == "__main__":
    main()
