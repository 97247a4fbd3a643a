#!/usr/bin/env python3
"""Writes the synthetic seeds of fuzz/corpus/ (python3 fuzz/make_corpus.py, from the
repository root; standard library only). Small, well-formed files of every format, and a few
with each optional feature, so that the fuzzers start deep inside the readers. Seeds taken
from tests/data and the .novaq seeds (written by `novaq local`) are copied by hand; see
fuzz/corpus/README.md."""
import collections
import io
import json
import os
import pickle
import struct
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def ramp(n, scale=0.01):
    return [((i * 37) % 23 - 11) * scale for i in range(n)]


# --- safetensors -----------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "f32_2x4", safetensors([("w", "F32", [2, 4], f32(ramp(8)))]))
put("safetensors", "mixed_dtypes", safetensors([
    ("a.weight", "F16", [4, 2], struct.pack("<8e", *ramp(8))),
    ("b.weight", "BF16", [3], b"\x80\x3f\x00\x40\x00\xc0"),
    ("c", "I8", [2, 2], bytes([1, 255, 3, 128])),
    ("d", "I32", [2], struct.pack("<2i", 7, -7)),
    ("e", "F64", [1], struct.pack("<d", 0.5)),
    ("f", "U8", [0], b""),
    ("g", "BOOL", [2], b"\x00\x01"),
], {"format": "pt"}))
put("safetensors", "scalar_and_empty", safetensors([("s", "F32", [], f32([1.0])), ("z", "F32", [4, 0], b"")]))
put("safetensors", "metadata_only", safetensors([], {"k": "v"}))

# --- GGUF --------------------------------------------------------------------------------
GG_U8, GG_I8, GG_U16, GG_I16, GG_U32, GG_I32, GG_F32, GG_BOOL, GG_STR, GG_ARR, GG_U64, GG_I64, GG_F64 = range(13)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


SCALAR = {GG_U8: "<B", GG_I8: "<b", GG_U16: "<H", GG_I16: "<h", GG_U32: "<I", GG_I32: "<i", GG_F32: "<f",
          GG_BOOL: "<?", GG_U64: "<Q", GG_I64: "<q", GG_F64: "<d"}


def gvalue(t, v):
    if t == GG_STR:
        return gstr(v)
    if t == GG_ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


# ggml type -> (block elements, block bytes)
GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84),
        11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 20: (32, 18), 30: (1, 2)}


def gguf(kvs, tensors, version=3, align=32):
    """kvs: [(key, type, value)]; tensors: [(name, ne (ggml order), ggml type)]"""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gstr(key) + struct.pack("<I", t) + gvalue(t, v)
    blobs, offset = [], 0
    for name, ne, gtype in tensors:
        n = 1
        for d in ne:
            n *= d
        be, bb = GGML[gtype]
        size = n // be * bb
        blob = bytes((i * 29 + 7) % 251 for i in range(size))
        if gtype == 0:
            blob = f32(ramp(n))
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", gtype, offset)
        blobs.append(blob)
        offset += size
        offset += (align - offset % align) % align
    out += b"\x00" * ((align - len(out) % align) % align)
    for blob in blobs:
        out += blob + b"\x00" * ((align - len(blob) % align) % align)
    return out


ARCH = [("general.architecture", GG_STR, "llama"), ("general.name", GG_STR, "seed"),
        ("llama.context_length", GG_U32, 64), ("llama.embedding_length", GG_U32, 8),
        ("llama.rope.freq_base", GG_F32, 10000.0), ("general.alignment", GG_U32, 32)]
put("gguf", "f32_f16", gguf(ARCH, [("token_embd.weight", [8, 4], 0), ("output_norm.weight", [8], 1)]))
put("gguf", "legacy_quants", gguf(ARCH, [("a", [32, 2], 2), ("b", [32], 3), ("c", [32], 6), ("d", [32], 7),
                                         ("e", [32, 2], 8), ("f", [32], 20), ("g", [4], 30)]))
put("gguf", "k_quants", gguf(ARCH, [("q2", [256], 10), ("q3", [256], 11), ("q4", [256], 12), ("q5", [256], 13),
                                    ("q6", [256], 14)]))
put("gguf", "v2_all_kv_types", gguf([("u8", GG_U8, 1), ("i8", GG_I8, -1), ("u16", GG_U16, 2), ("i16", GG_I16, -2),
                                     ("u32", GG_U32, 3), ("i32", GG_I32, -3), ("f32", GG_F32, 1.5),
                                     ("b", GG_BOOL, True), ("s", GG_STR, "x\u00e9"), ("u64", GG_U64, 4),
                                     ("i64", GG_I64, -4), ("f64", GG_F64, 2.5),
                                     ("arr", GG_ARR, (GG_I32, [1, 2, 3])),
                                     ("nested", GG_ARR, (GG_ARR, [(GG_U8, [1]), (GG_STR, ["a"])]))],
                                    [("t", [2, 2], 0)], version=2))

# --- GGUF vocabularies --------------------------------------------------------------------
spm_tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + \
    ["\u2581", "\u2581t", "he", "\u2581the", "\u2581a", "in", "\u2581in", "o", "r", "d", "w", "l", "\u2581w",
     "or", "ld", "\u2581world", "H", "e", "\u2581H", "ll", "\u2581He", "\u2581Hello", "c", "a", "f", "\u00e9"]
spm_types = [2, 3, 3] + [6] * 256 + [1] * (len(spm_tokens) - 259)
spm_scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(spm_tokens) - 259)]
put("gguf_tokenizer", "llama_spm", gguf([
    ("general.architecture", GG_STR, "llama"),
    ("tokenizer.ggml.model", GG_STR, "llama"),
    ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, spm_tokens)),
    ("tokenizer.ggml.scores", GG_ARR, (GG_F32, spm_scores)),
    ("tokenizer.ggml.token_type", GG_ARR, (GG_I32, spm_types)),
    ("tokenizer.ggml.bos_token_id", GG_U32, 1), ("tokenizer.ggml.eos_token_id", GG_U32, 2),
    ("tokenizer.ggml.unknown_token_id", GG_U32, 0), ("tokenizer.ggml.add_space_prefix", GG_BOOL, True)], []))


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
bl_tokens = [B2U[b] for b in range(256)] + ["\u0120t", "he", "\u0120the", "\u0120w", "or", "ld", "\u0120wor",
                                            "\u0120world", "ll", "He", "Hell", "Hello", "<|endoftext|>"]
bl_merges = ["\u0120 t", "h e", "\u0120t he", "\u0120 w", "o r", "l d", "\u0120w or", "\u0120wor ld", "l l", "H e",
             "He ll", "Hell o"]
put("gguf_tokenizer", "gpt2_bpe", gguf([
    ("general.architecture", GG_STR, "gpt2"),
    ("tokenizer.ggml.model", GG_STR, "gpt2"), ("tokenizer.ggml.pre", GG_STR, "gpt-2"),
    ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, bl_tokens)),
    ("tokenizer.ggml.token_type", GG_ARR, (GG_I32, [1] * (len(bl_tokens) - 1) + [3])),
    ("tokenizer.ggml.merges", GG_ARR, (GG_STR, bl_merges)),
    ("tokenizer.ggml.bos_token_id", GG_U32, len(bl_tokens) - 1),
    ("tokenizer.ggml.eos_token_id", GG_U32, len(bl_tokens) - 1)], []))

# --- llama2.c -----------------------------------------------------------------------------
def llama2c(dim, hidden, layers, heads, kv, vocab, seq, shared=True):
    hs = dim // heads
    n = vocab * dim + layers * (dim + dim * dim + 2 * kv * hs * dim + dim * dim + dim + 3 * hidden * dim) + dim
    n += seq * hs  # freq_cis_real + freq_cis_imag (seq * hs / 2 each)
    if not shared:
        n += vocab * dim
    return struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq) + f32(ramp(n))


put("llama2c", "tiny_shared", llama2c(8, 16, 1, 2, 2, 16, 4))
put("llama2c", "gqa_separate_classifier", llama2c(8, 12, 2, 4, 2, 10, 2, shared=False))

# llama2.c tokenizer (tok*.bin): int32 max_token_length, then per token f32 score, int32 len, bytes
def llama2c_tok(pieces):
    out = struct.pack("<i", max(len(p) for _, p in pieces))
    for score, p in pieces:
        out += struct.pack("<fi", score, len(p)) + p
    return out


l2_pieces = [(0.0, b"<unk>"), (0.0, b"\n<s>\n"), (0.0, b"\n</s>\n")] + \
    [(0.0, bytes([b])) for b in range(256)] + \
    [(-1.0, b" t"), (-2.0, b"he"), (-3.0, b" the"), (-4.0, b" w"), (-5.0, b"or"), (-6.0, b" wor"),
     (-7.0, b"ld"), (-8.0, b" world"), (-9.0, b"ll"), (-10.0, b"He"), (-11.0, b" Hello"), (-12.0, b" ")]
put("llama2c_tokenizer", "tiny", llama2c_tok(l2_pieces))

# --- pickle (the unpickler alone) and PyTorch zip ---------------------------------------
def torch_like_pickle(protocol, n_tensors=2):
    # Written by hand with the opcodes torch.save uses, since torch is not needed here.
    p = bytearray(b"\x80" + bytes([protocol]))
    p += b"ccollections\nOrderedDict\n)R"  # OrderedDict()
    for i in range(n_tensors):
        p += b"X" + struct.pack("<I", len("w%d" % i)) + ("w%d" % i).encode()
        p += b"ctorch._utils\n_rebuild_tensor_v2\n("
        p += b"(X" + struct.pack("<I", 7) + b"storage" + b"ctorch\nFloatStorage\n"
        p += b"X" + struct.pack("<I", 1) + str(i).encode() + b"X" + struct.pack("<I", 3) + b"cpu" + b"K\x06tQ"
        p += b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89ccollections\nOrderedDict\n)Rtq\x00R"
        p += b"s"
    p += b"."
    return bytes(p)


put("pickle", "state_dict_p2", torch_like_pickle(2))
put("pickle", "state_dict_p4", torch_like_pickle(4, 3))
put("pickle", "plain_values_p2", pickle.dumps({"a": [1, 2.5, None, True, "s", b"b", (1, 2), 10 ** 30, -5]}, 2))
put("pickle", "plain_values_p5", pickle.dumps(collections.OrderedDict(x=[1, {"y": (3,)}], z=2 ** 70), 5))


def torch_zip(pkl, storages, prefix="archive"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pkl)
        z.writestr(prefix + "/byteorder", "little")
        for key, data in storages.items():
            z.writestr(prefix + "/data/" + key, data)
        z.writestr(prefix + "/version", "3\n")
    return buf.getvalue()


put("pytorch", "zip_two_tensors", torch_zip(torch_like_pickle(2), {"0": f32(ramp(6)), "1": f32(ramp(6))}))


# --- ONNX (protobuf written by hand) ------------------------------------------------------
def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 2:
        return key + varint(len(payload)) + payload
    raise ValueError(wire)


def onnx_tensor(name, dtype, dims, raw=None, floats=None, ints32=None, ints64=None, doubles=None, packed=True):
    t = b"".join(field(1, 0, d) for d in dims) + field(2, 0, dtype) + field(8, 2, name.encode())
    if raw is not None:
        t += field(9, 2, raw)
    if floats is not None:
        t += field(4, 2, f32(floats)) if packed else b"".join(varint(4 << 3 | 5) + f32([x]) for x in floats)
    if ints32 is not None:
        t += field(5, 2, b"".join(varint(x & 0xFFFFFFFFFFFFFFFF) for x in ints32))
    if ints64 is not None:
        t += field(7, 2, b"".join(varint(x & 0xFFFFFFFFFFFFFFFF) for x in ints64))
    if doubles is not None:
        t += field(10, 2, struct.pack("<%dd" % len(doubles), *doubles))
    return t


def onnx_model(initializers):
    graph = field(2, 2, b"g") + b"".join(field(5, 2, t) for t in initializers)
    return field(1, 0, 8) + field(2, 2, b"seed") + field(7, 2, graph) + field(8, 2, field(2, 0, 17))


put("onnx", "raw_f32", onnx_model([onnx_tensor("w", 1, [2, 3], raw=f32(ramp(6)))]))
put("onnx", "typed_fields", onnx_model([
    onnx_tensor("f", 1, [3], floats=[1.0, -2.0, 0.5]),
    onnx_tensor("f_unpacked", 1, [2], floats=[3.0, 4.0], packed=False),
    onnx_tensor("i32", 6, [2], ints32=[5, -6]),
    onnx_tensor("f16", 10, [2], ints32=[0x3C00, 0xC000]),
    onnx_tensor("i64", 7, [2], ints64=[7, -8]),
    onnx_tensor("d", 11, [1], doubles=[0.25]),
    onnx_tensor("bf16_raw", 16, [2], raw=b"\x80\x3f\x00\x40"),
    onnx_tensor("u8_raw", 2, [2, 2], raw=bytes([1, 2, 3, 4])),
]))
