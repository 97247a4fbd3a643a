#!/usr/bin/python3
"""A plain numpy (float64) forward pass of the fixtures' Hugging Face folders, written from the
families' HF semantics, checked against llama.cpp's logits in tests/data/architectures.

Usage: hf_reference.py [FIXTURE...]

This is the executable statement of what each config.json field means on the HF side (the
runtime's HF-layout path must do the same), and it shows that the HF folders and llama.cpp's
GGUF conversions of them describe the same function: it prints, per fixture, the largest
|difference| over the largest |logit| and whether the 16-token greedy continuation agrees.
No transformers needed (Debian 12 has none); numpy only.
"""

import json
import math
import pathlib
import struct
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent / "tests" / "data" / "architectures"


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32"
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).astype(np.float64)
    return out


def rms_norm(x, w, eps, gemma):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * ((1.0 + w) if gemma else w)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def inv_freq_for(cfg, rot, layer_is_local):
    """HF's rotary frequencies and attention factor for one layer."""
    mt = cfg["model_type"]
    base = cfg.get("rope_theta", 10000.0)
    rs = cfg.get("rope_scaling")
    if mt == "gemma3_text" and layer_is_local:
        base, rs = cfg["rope_local_base_freq"], None
    inv = 1.0 / base ** (np.arange(0, rot, 2, dtype=np.float64) / rot)
    attn_factor = 1.0
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            orig = rs["original_max_position_embeddings"]
            wavelen = 2 * math.pi / inv
            smooth = (orig / wavelen - low) / (high - low)
            scaled = np.where(wavelen > orig / low, inv / factor, inv)
            mid = (wavelen <= orig / low) & (wavelen >= orig / high)
            inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
        elif kind in ("longrope", "su"):
            orig = cfg["original_max_position_embeddings"]
            factor = cfg["max_position_embeddings"] / orig
            attn_factor = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
            # transformers: long factors when the sequence is longer than the original context
            ext = rs["long_factor"] if cfg["_seq_len"] > orig else rs["short_factor"]
            inv = inv / np.asarray(ext, dtype=np.float64)
        else:
            raise NotImplementedError(kind)
    return inv, attn_factor


def rope(x, positions, inv, attn_factor, rot):
    # x: [T, H, D]; rotate_half on the first `rot` dims (NEOX layout, as in every HF model)
    ang = positions[:, None] * inv[None, :]  # [T, rot/2]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], axis=-1)[:, None, :] * attn_factor
    sin = np.concatenate([np.sin(ang), np.sin(ang)], axis=-1)[:, None, :] * attn_factor
    xr, xp = x[..., :rot], x[..., rot:]
    half = rot // 2
    rotated = np.concatenate([-xr[..., half:], xr[..., :half]], axis=-1)
    return np.concatenate([xr * cos + rotated * sin, xp], axis=-1)


def forward(cfg, w, tokens):
    mt = cfg["model_type"]
    gemma = mt.startswith("gemma")
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    head_dim = cfg.get("head_dim") or hidden // heads
    eps = cfg["rms_norm_eps"]
    T = len(tokens)
    cfg["_seq_len"] = T
    rot = int(head_dim * cfg.get("partial_rotary_factor", 1.0))
    x = w["model.embed_tokens.weight"][tokens]
    if gemma:
        x = x * np.float32(math.sqrt(hidden))
    pos = np.arange(T, dtype=np.float64)
    causal = pos[None, :] <= pos[:, None]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        if mt == "gemma2":
            local = i % 2 == 0
        elif mt == "gemma3_text":
            local = (i + 1) % cfg.get("sliding_window_pattern", 6) != 0
        else:
            local = mt in ("mistral", "phi3") and cfg.get("sliding_window") is not None
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps, gemma)
        if mt == "phi3":
            qkv = h @ w[p + "self_attn.qkv_proj.weight"].T
            q, k, v = np.split(qkv, [heads * head_dim, (heads + kv_heads) * head_dim], axis=-1)
        else:
            q = h @ w[p + "self_attn.q_proj.weight"].T
            k = h @ w[p + "self_attn.k_proj.weight"].T
            v = h @ w[p + "self_attn.v_proj.weight"].T
            if p + "self_attn.q_proj.bias" in w:
                q, k, v = q + w[p + "self_attn.q_proj.bias"], k + w[p + "self_attn.k_proj.bias"], v + w[p + "self_attn.v_proj.bias"]
        q = q.reshape(T, heads, head_dim)
        k = k.reshape(T, kv_heads, head_dim)
        v = v.reshape(T, kv_heads, head_dim)
        if p + "self_attn.q_norm.weight" in w:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps, gemma)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps, gemma)
        inv, af = inv_freq_for(cfg, rot, local)
        q, k = rope(q, pos, inv, af, rot), rope(k, pos, inv, af, rot)
        scale = cfg.get("query_pre_attn_scalar", head_dim) ** -0.5 if gemma and mt != "gemma" else head_dim**-0.5
        mask = causal.copy()
        if local:
            mask &= (pos[:, None] - pos[None, :]) < cfg["sliding_window"]
        out = np.zeros((T, heads, head_dim))
        group = heads // kv_heads
        for hd in range(heads):
            s = (q[:, hd, :] @ k[:, hd // group, :].T) * scale
            if cfg.get("attn_logit_softcapping"):
                c = cfg["attn_logit_softcapping"]
                s = np.tanh(s / c) * c
            s = np.where(mask, s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            out[:, hd, :] = s @ v[:, hd // group, :]
        a = out.reshape(T, heads * head_dim) @ w[p + "self_attn.o_proj.weight"].T
        if mt in ("gemma2", "gemma3_text"):
            x = x + rms_norm(a, w[p + "post_attention_layernorm.weight"], eps, True)
            h = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps, True)
        else:
            x = x + a
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, gemma)
        if mt == "phi3":
            gate, up = np.split(h @ w[p + "mlp.gate_up_proj.weight"].T, 2, axis=-1)
        else:
            gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        m = ((gelu_tanh(gate) if gemma else silu(gate)) * up) @ w[p + "mlp.down_proj.weight"].T
        if mt in ("gemma2", "gemma3_text"):
            m = rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps, True)
        x = x + m
    x = rms_norm(x, w["model.norm.weight"], eps, gemma)
    out_w = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = x @ out_w.T
    if cfg.get("final_logit_softcapping"):
        c = cfg["final_logit_softcapping"]
        logits = np.tanh(logits / c) * c
    return logits


def main():
    names = sys.argv[1:] or sorted(p.name for p in ROOT.iterdir() if (p / "expected.json").exists())
    worst = 0.0
    for name in names:
        d = ROOT / name
        cfg = json.load(open(d / "hf" / "config.json"))
        w = load_safetensors(d / "hf" / "model.safetensors")
        e = json.load(open(d / "expected.json"))
        tokens = e["tokens"]
        ref = np.fromfile(d / "logits.f32", dtype="<f4").reshape(len(tokens), -1)
        got = forward(cfg, w, tokens)
        diff = np.abs(got - ref).max() / np.abs(ref).max()
        seq = list(tokens)
        for _ in range(len(e["greedy"]["continuation"])):
            seq.append(int(np.argmax(forward(cfg, w, seq)[-1])))
        same = seq[len(tokens) :] == e["greedy"]["continuation"]
        print(f"{name:9s} max |HF numpy - llama.cpp| / max |logit| = {diff:.2e}   greedy continuation {'same' if same else 'DIFFERENT'}")
        worst = max(worst, diff)
    print(f"worst {worst:.2e}")


if __name__ == "__main__":
    main()
