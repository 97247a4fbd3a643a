#!/usr/bin/python3
"""A uniform importance matrix (every weight equally important) for bench/make-llama-1b.py's model.

ik_llama.cpp and llama.cpp refuse to make IQ2_XXS, IQ2_XS and IQ1_S files without an importance
matrix, and a model without a vocabulary (make-llama-1b.py's GGUF twin) cannot compute one from a
text. For a speed benchmark the matrix's values do not matter (they only steer which grid points
the quantizer picks), so this writes ones for every matrix of the blocks and the output, in the
legacy .dat layout llama-quantize --imatrix reads: int32 entry count; per entry int32 name length,
the name, int32 calls, int32 values, float32 values; then int32 chunks and the dataset name.

Usage: /usr/bin/python3 bench/uniform-imatrix.py OUT.dat [--layers N]
"""
import struct
import sys

HIDDEN, FFN = 2048, 5632


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 22
    entries = [("output.weight", HIDDEN)]
    for i in range(layers):
        for name, cols in (("attn_q", HIDDEN), ("attn_k", HIDDEN), ("attn_v", HIDDEN), ("attn_output", HIDDEN),
                           ("ffn_gate", HIDDEN), ("ffn_up", HIDDEN), ("ffn_down", FFN)):
            entries.append((f"blk.{i}.{name}.weight", cols))
    with open(sys.argv[1], "wb") as out:
        out.write(struct.pack("<i", len(entries)))
        for name, cols in entries:
            raw = name.encode()
            out.write(struct.pack("<i", len(raw)) + raw + struct.pack("<ii", 1, cols))
            out.write(struct.pack(f"<{cols}f", *([1.0] * cols)))
        dataset = b"uniform (bench/uniform-imatrix.py)"
        out.write(struct.pack("<ii", 1, len(dataset)) + dataset)
    print(f"{sys.argv[1]}: {len(entries)} entries of ones")


if __name__ == "__main__":
    main()
