#!/usr/bin/python3
"""Write tiny random-weight Hugging Face checkpoints, one per architecture family.

Usage: make_tiny_models.py OUT_DIR TOKENIZER_MODEL

For every family variant in FAMILIES this writes OUT_DIR/<variant>/hf/ with
  config.json            the real field names, model_type and architectures of the family
  model.safetensors      F32, written by hand (8-byte header length, JSON header, raw bytes)
  tokenizer.model        the SentencePiece model given (tok512, vocab 512)
  tokenizer_config.json  minimal, so that llama.cpp's converter finds bos/eos
and OUT_DIR/<variant>/spec.json (tokens to evaluate, context size, features) for the
conversion and dump steps. Deterministic: numpy's PCG64 with a seed per variant.
"""

import hashlib
import json
import math
import os
import pathlib
import shutil
import struct
import sys

import numpy as np
import sentencepiece as spm

VOCAB = 512
BOS, EOS = 1, 2

# A fixed text; the evaluated sequence is BOS + the first tokens of its tok512 encoding.
TEXT = (
    "Once upon a time, in a big forest, there lived a rhinoceros named Roxy. Roxy loved to climb. "
    "She climbed trees, rocks, and hills. One day, Roxy found an icy hill. She had never seen "
    "anything like it before. It was shiny and cold, and she wanted to climb it."
)


def seed_of(name):
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


class Writer:
    def __init__(self, rng):
        self.rng = rng
        self.tensors = {}

    def mat(self, name, rows, cols, gain=1.0):
        # std gain/sqrt(fan_in): activations keep their scale through the layers
        self.tensors[name] = self.rng.standard_normal((rows, cols)) * (gain / math.sqrt(cols))

    def vec(self, name, n, mean, std):
        self.tensors[name] = mean + std * self.rng.standard_normal(n)

    def emb(self, name, std=1.0):
        self.tensors[name] = self.rng.standard_normal((VOCAB, self.hidden)) * std


def write_safetensors(path, tensors):
    # The safetensors layout: u64 little-endian header size, a JSON header naming dtype, shape
    # and [begin, end) byte offsets per tensor, then the raw little-endian data. Written by hand
    # because Debian 12 packages no safetensors library.
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = data.tobytes()
        header[name] = {"dtype": "F32", "shape": list(data.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def attention(w, p, i, hidden, heads, kv_heads, head_dim, bias=False, qk_norm=False, gemma_norm=False, fused=False, gain=1.5):
    q, kv = heads * head_dim, kv_heads * head_dim
    a = f"model.layers.{i}.self_attn."
    if fused:  # Phi-3: rows of q, then k, then v
        w.mat(a + "qkv_proj.weight", q + 2 * kv, hidden, gain)
    else:
        w.mat(a + "q_proj.weight", q, hidden, gain)
        w.mat(a + "k_proj.weight", kv, hidden, gain)
        w.mat(a + "v_proj.weight", kv, hidden)
    if bias:
        w.vec(a + "q_proj.bias", q, 0, 0.5)
        w.vec(a + "k_proj.bias", kv, 0, 0.5)
        w.vec(a + "v_proj.bias", kv, 0, 0.5)
    if qk_norm:  # per head_dim, shared by all heads
        m = 0.0 if gemma_norm else 1.0
        w.vec(a + "q_norm.weight", head_dim, m, 0.3)
        w.vec(a + "k_norm.weight", head_dim, m, 0.3)
    w.mat(a + "o_proj.weight", hidden, q)


def mlp(w, i, hidden, ffn, fused=False, gain=1.5):
    m = f"model.layers.{i}.mlp."
    if fused:  # Phi-3: rows of gate, then up
        w.mat(m + "gate_up_proj.weight", 2 * ffn, hidden, gain)
    else:
        w.mat(m + "gate_proj.weight", ffn, hidden, gain)
        w.mat(m + "up_proj.weight", ffn, hidden, gain)
    w.mat(m + "down_proj.weight", hidden, ffn)


def base_config(c):
    cfg = {
        "vocab_size": VOCAB,
        "hidden_size": c["hidden"],
        "intermediate_size": c["ffn"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "num_key_value_heads": c["kv_heads"],
        "max_position_embeddings": c.get("max_pos", 256),
        "rms_norm_eps": 1e-5,
        "rope_theta": c.get("theta", 10000.0),
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "tie_word_embeddings": c["tied"],
        "torch_dtype": "float32",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
    }
    return cfg


def build(name, c):
    # "salt" (chosen so that no greedy step is a near-tie) varies the seed; ARCH_FIXTURE_SALT
    # overrides it, to search for one.
    salt = os.environ.get("ARCH_FIXTURE_SALT", c.get("salt", ""))
    if "ARCH_FIXTURE_GAIN" in os.environ:
        c = dict(c, gain=float(os.environ["ARCH_FIXTURE_GAIN"]))
    rng = np.random.Generator(np.random.PCG64(seed_of(name + salt)))
    w = Writer(rng)
    hidden, heads, kv_heads, ffn, layers = c["hidden"], c["heads"], c["kv_heads"], c["ffn"], c["layers"]
    w.hidden = hidden
    head_dim = c.get("head_dim", hidden // heads)
    fam = c["family"]
    gemma = fam.startswith("gemma")
    # Gemma stores w with the norm computing x * (1 + w); the others x * w.
    nm, ns = (0.0, 0.2) if gemma else (1.0, 0.2)
    cfg = base_config(c)
    w.emb("model.embed_tokens.weight", c.get("emb_std", 1.0 if not gemma else 0.25))
    for i in range(layers):
        lp = f"model.layers.{i}."
        w.vec(lp + "input_layernorm.weight", hidden, nm, ns)
        w.vec(lp + "post_attention_layernorm.weight", hidden, nm, ns)
        if fam in ("gemma2", "gemma3"):
            w.vec(lp + "pre_feedforward_layernorm.weight", hidden, nm, ns)
            w.vec(lp + "post_feedforward_layernorm.weight", hidden, nm, ns)
        attention(
            w,
            None,
            i,
            hidden,
            heads,
            kv_heads,
            head_dim,
            bias=(fam == "qwen2"),
            qk_norm=fam in ("qwen3", "gemma3"),
            gemma_norm=gemma,
            fused=(fam == "phi3"),
            gain=c.get("gain", 1.5),
        )
        mlp(w, i, hidden, ffn, fused=(fam == "phi3"), gain=c.get("gain", 1.5))
    w.vec("model.norm.weight", hidden, nm, ns)
    if not c["tied"]:
        w.mat("lm_head.weight", VOCAB, hidden, 8.0)

    if fam in ("llama", "mistral"):
        cfg.update(model_type=fam, architectures=["LlamaForCausalLM" if fam == "llama" else "MistralForCausalLM"])
        cfg.update(hidden_act="silu", mlp_bias=False, pretraining_tp=1, head_dim=head_dim)
        cfg.update({k: v for k, v in c.get("extra", {}).items()})
        if fam == "mistral":
            cfg.pop("mlp_bias")
            cfg.pop("pretraining_tp")
    elif fam in ("qwen2", "qwen3"):
        arch = "Qwen2ForCausalLM" if fam == "qwen2" else "Qwen3ForCausalLM"
        cfg.update(model_type=fam, architectures=[arch], hidden_act="silu")
        cfg.update(use_sliding_window=False, sliding_window=None, max_window_layers=layers)
        if fam == "qwen3":
            cfg.update(head_dim=head_dim, attention_bias=False)
        cfg.pop("attention_bias") if fam == "qwen2" else None
    elif fam == "gemma":
        cfg.update(model_type="gemma", architectures=["GemmaForCausalLM"], head_dim=head_dim)
        cfg.update(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6)
        cfg["pad_token_id"] = 0
    elif fam == "gemma2":
        cfg.update(model_type="gemma2", architectures=["Gemma2ForCausalLM"], head_dim=head_dim)
        cfg.update(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6)
        cfg.update(
            query_pre_attn_scalar=head_dim,
            sliding_window=c["window"],
            attn_logit_softcapping=c["attn_softcap"],
            final_logit_softcapping=c["final_softcap"],
            cache_implementation="hybrid",
            pad_token_id=0,
        )
    elif fam == "gemma3":
        cfg.update(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"], head_dim=head_dim)
        cfg.update(hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6)
        cfg.update(
            query_pre_attn_scalar=head_dim,
            sliding_window=c["window"],
            sliding_window_pattern=6,
            rope_local_base_freq=10000.0,
            rope_theta=c["theta"],
            attn_logit_softcapping=None,
            final_logit_softcapping=None,
            rope_scaling=c.get("rope_scaling"),
            cache_implementation="hybrid",
            pad_token_id=0,
        )
    elif fam == "phi3":
        cfg.update(model_type="phi3", architectures=["Phi3ForCausalLM"], hidden_act="silu")
        cfg.update(c["extra"])
        cfg.update(embd_pdrop=0.0, resid_pdrop=0.0, pad_token_id=0)
        cfg.pop("attention_bias")
    cfg["_novaq_fixture"] = "random weights, see tools/arch-fixtures/README.md"
    return cfg, w.tensors


# hidden 48 / 3 heads of 16 / 1 KV head unless said otherwise; vocab 512 (tok512). head_dim is
# 16 everywhere: ik_llama.cpp's CPU path gives wrong logits for head_dim 8 or 12 (see NOTES.md).
COMMON = dict(hidden=48, heads=3, kv_heads=1, ffn=64, layers=2)
FAMILIES = {
    "llama2": dict(
        COMMON,
        family="llama",
        salt="a",
        tied=False,
        n_tokens=40,
        features=["llama arch, Llama 2 style", "GQA 3:1", "untied lm_head", "q/k rows permuted by the converter"],
    ),
    "llama3": dict(
        COMMON,
        salt="c",
        family="llama",
        tied=True,
        theta=10000.0,
        max_pos=256,
        n_tokens=48,
        extra={
            # llama.cpp's converter reads original_max_position_embeddings from the top level
            # (default 8192, right for real Llama 3.1/3.2), HF from rope_scaling: both given
            "original_max_position_embeddings": 32,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            }
        },
        features=[
            "rope_scaling llama3 (factor 8, original_max_position_embeddings 32, sequence 48: all three "
            "bands, unscaled / smoothed / divided by 8)",
            "tied embeddings (no lm_head, like Llama 3.2)",
            "GQA 3:1",
        ],
    ),
    "mistral": dict(
        COMMON,
        family="mistral",
        tied=False,
        n_tokens=24,
        window=64,
        features=[
            "MistralForCausalLM -> GGUF arch llama",
            "sliding_window 64 NOT exercised: llama.cpp drops it, sequence+continuation (40) stays inside",
        ],
    ),
    "qwen2": dict(
        COMMON,
        salt="b",
        family="qwen2",
        tied=True,
        theta=1000000.0,
        n_tokens=40,
        features=["q/k/v biases", "NEOX (half-split) RoPE", "rope_theta 1e6", "tied embeddings"],
    ),
    "qwen3": dict(
        COMMON,
        salt="d",
        family="qwen3",
        heads=4,
        kv_heads=2,
        tied=True,
        head_dim=16,
        theta=1000000.0,
        n_tokens=40,
        features=["q/k RMSNorm per head before RoPE", "head_dim 16 != hidden/heads 12, GQA 4:2", "NEOX RoPE", "tied"],
    ),
    "gemma": dict(
        COMMON,
        family="gemma",
        tied=True,
        head_dim=16,
        heads=4,
        kv_heads=1,
        n_tokens=40,
        features=[
            "embedding scaled by sqrt(hidden)",
            "RMSNorm 1+w (the converter adds the 1)",
            "GeGLU with tanh GELU",
            "head_dim 16 != 12, MQA 4:1",
            "tied",
        ],
    ),
    "gemma2": dict(
        COMMON,
        family="gemma2",
        # llama.cpp picks gemma2's query scale from the layer count (26/42/46 = 2B/9B/27B) and
        # aborts on any other: 26 thin layers
        layers=26,
        hidden=32,
        heads=2,
        kv_heads=1,
        ffn=32,
        tied=True,
        head_dim=16,
        window=8,
        attn_softcap=5.0,
        final_softcap=8.0,
        salt="n",
        emb_std=0.6,
        n_tokens=32,
        features=[
            "attention soft-cap 5 and final-logit soft-cap 8 (both bite)",
            "26 layers (llama.cpp requires 26/42/46), hidden 32, 2 heads of 16, MQA",
            "sliding window 8 on even layers, global on odd layers, sequence 32",
            "pre/post attention and feed-forward norms",
            "query_pre_attn_scalar = head_dim 16",
            "embedding scale, norm 1+w, GeGLU tanh, tied",
        ],
    ),
    "gemma3": dict(
        COMMON,
        family="gemma3",
        salt="g",
        layers=6,
        heads=4,
        kv_heads=2,
        tied=True,
        head_dim=16,
        window=8,
        theta=1000000.0,
        rope_scaling={"rope_type": "linear", "factor": 8.0},
        n_tokens=32,
        features=[
            "gemma3_text, 6 layers: 0-4 local (window 8, rope_local_base_freq 1e4), 5 global (rope_theta 1e6)",
            "linear rope_scaling factor 8 on the global layer only",
            "q/k RMSNorm 1+w",
            "pre/post attention and feed-forward norms, embedding scale, GeGLU tanh, tied",
        ],
    ),
    "phi3": dict(
        COMMON,
        salt="c",
        family="phi3",
        heads=3,
        kv_heads=3,
        tied=False,
        max_pos=128,
        n_tokens=40,
        n_ctx=64,
        extra={
            "original_max_position_embeddings": 32,
            "max_position_embeddings": 128,
            "sliding_window": 128,
            "rope_scaling": None,  # filled in below (needs the rotary size)
        },
        features=[
            "fused qkv_proj and gate_up_proj, MHA 3 heads of 16",
            "longrope (Phi-3.5-mini style, full rotary): long factors used (llama.cpp context 64 > original 32; "
            "HF sequence 40..55 > 32), attention factor sqrt(1+ln4/ln32)",
            "untied",
        ],
    ),
    "phi4mini": dict(
        COMMON,
        family="phi3",
        heads=3,
        kv_heads=1,
        tied=False,  # Phi-4-mini ties; ik_llama.cpp's phi3 loader requires output.weight
        max_pos=128,
        n_tokens=16,
        n_ctx=32,
        extra={
            "original_max_position_embeddings": 32,
            "max_position_embeddings": 128,
            "sliding_window": 128,
            "partial_rotary_factor": 0.75,
            "rope_scaling": None,
        },
        features=[
            "Phi-4-mini style: partial_rotary_factor 0.75 (12 of 16 dims rotated), GQA 3:1 (untied: see NOTES.md)",
            "longrope SHORT factors (llama.cpp context 32 = original 32; HF sequence <= 32 until the "
            "continuation), attention factor sqrt(1+ln4/ln32)",
            "fused qkv_proj and gate_up_proj",
        ],
    ),
}


def phi3_rope_scaling(name, c):
    head_dim = c["hidden"] // c["heads"]
    half = int(head_dim * c["extra"].get("partial_rotary_factor", 1.0)) // 2
    rng = np.random.Generator(np.random.PCG64(seed_of(name + "-factors")))
    short = [round(float(x), 4) for x in 1.0 + 0.1 * rng.random(half)]
    long = [round(float(x), 4) for x in np.linspace(1.0, 6.0, half) + 0.5 * rng.random(half)]
    return {"type": "longrope", "short_factor": short, "long_factor": long}


def prepare():
    for name in [n for n in ("phi3", "phi4mini") if n in FAMILIES]:
        FAMILIES[name]["extra"]["rope_scaling"] = phi3_rope_scaling(name, FAMILIES[name])


def write_family(out, name, c, tok, ids, patch=None):
    """Writes out/name/hf and out/name/spec.json; `patch` updates config.json (same weights)."""
    d = out / name
    hf = d / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    cfg, tensors = build(name, c)
    if patch:
        cfg.update(patch)
    with open(hf / "config.json", "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(hf / "model.safetensors", tensors)
    shutil.copyfile(tok, hf / "tokenizer.model")
    tc = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": cfg["max_position_embeddings"],
        "tokenizer_class": "LlamaTokenizer",
    }
    with open(hf / "tokenizer_config.json", "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")
    n = c["n_tokens"]
    assert len(ids) >= n
    spec = {
        "family": c["family"],
        "tokens": ids[:n],
        "n_ctx": c.get("n_ctx", n + 16 + 8),
        "n_predict": 16,
        "features": c["features"],
    }
    with open(d / "spec.json", "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    return sum(t.size for t in tensors.values())


def token_ids(tok):
    sp = spm.SentencePieceProcessor(model_file=str(tok))
    assert sp.vocab_size() == VOCAB
    return [BOS] + sp.encode(TEXT)


def main():
    out = pathlib.Path(sys.argv[1])
    tok = pathlib.Path(sys.argv[2])
    ids = token_ids(tok)
    prepare()
    only = set(sys.argv[3:])
    for name, c in FAMILIES.items():
        if only and name not in only:
            continue
        print(f"{name}: {write_family(out, name, c, tok, ids)} parameters")


if __name__ == "__main__":
    main()
