#!/usr/bin/python3
"""Shows that each family feature a fixture claims changes llama.cpp's logits beyond 1e-3.

Usage: check_features.py IK_SOURCE DUMP_IK DUMP_UP OUT.json

For each check: the same weights with one config.json field changed (or another context size),
converted and evaluated exactly as the fixture, compared with the fixture's logits.
Writes OUT.json: per check the largest |difference| over the largest |logit| and whether the
greedy continuation changed. Run by regenerate.sh.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

here = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(here))
import make_tiny_models as m  # noqa: E402

BIG = 1.0e6
# (fixture, what is switched off, config.json patch, n_ctx override, evaluated by)
CHECKS = [
    ("llama3", "rope_scaling llama3 removed", {"rope_scaling": None}, None, "up"),
    ("qwen2", "rope_theta 1e6 -> 1e4", {"rope_theta": 10000.0}, None, "up"),
    ("gemma2", "attention soft-cap 5 -> 1e6", {"attn_logit_softcapping": BIG}, None, "up"),
    ("gemma2", "final soft-cap 8 -> 1e6", {"final_logit_softcapping": BIG}, None, "up"),
    ("gemma2", "sliding window 8 -> 4096", {"sliding_window": 4096}, None, "up"),
    ("gemma3", "sliding window 8 -> 4096", {"sliding_window": 4096}, None, "ik"),
    ("gemma3", "linear rope_scaling (global layer) removed", {"rope_scaling": None}, None, "ik"),
    ("gemma3", "rope_theta (global) 1e6 -> 1e4 = local base", {"rope_theta": 10000.0}, None, "ik"),
    ("phi4mini", "context 32 -> 64: long instead of short factors", {}, 64, "up"),
    ("phi3", "max_position_embeddings 128 -> 32: attention factor 1", {"max_position_embeddings": 32}, None, "up"),
]


def main():
    ik_src, dump_ik, dump_up, out = sys.argv[1:5]
    fixtures = here.parent.parent / "tests" / "data" / "architectures"
    tok = here.parent.parent / "tests" / "data" / "models" / "stories260K" / "tok512.model"
    ids = m.token_ids(tok)
    m.prepare()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for i, (name, what, patch, n_ctx, by) in enumerate(CHECKS):
            expected = json.load(open(fixtures / name / "expected.json"))
            n = len(expected["tokens"])
            ref = np.fromfile(fixtures / name / "logits.f32", dtype="<f4").reshape(n, -1)
            d = tmp / f"{i}"
            m.write_family(d, name, m.FAMILIES[name], tok, ids, patch)
            gguf = d / name / "model.gguf"
            subprocess.run(
                [sys.executable, str(here / "convert.py"), ik_src, str(d / name / "hf"), str(gguf)],
                check=True,
                capture_output=True,
            )
            ctx = n_ctx or expected["n_ctx"]
            tokens = ",".join(map(str, expected["tokens"]))
            dump = dump_up if by == "up" else dump_ik
            kv = "f32" if by == "up" else "f16"
            subprocess.run([dump, str(gguf), str(ctx), tokens, "16", str(d / "out"), kv], check=True)
            got = np.fromfile(d / "out.logits.f32", dtype="<f4").reshape(n, -1)
            cont = json.load(open(d / "out.json"))["continuation"]
            change = float(np.abs(got - ref).max() / np.abs(ref).max())
            results.append(
                {
                    "fixture": name,
                    "switched_off": what,
                    "max_abs_change_over_max_abs_logit": float(f"{change:.3g}"),
                    "greedy_continuation_changed": cont != expected["greedy"]["continuation"],
                }
            )
            print(f"{name:8s} {what:55s} change {change:.3g}")
            if change < 2e-3:
                sys.exit(f"{name}: '{what}' changes the logits by only {change:.3g}")
    with open(out, "w") as f:
        json.dump({"note": "each feature, switched off, changes llama.cpp's logits by this much", "checks": results}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
