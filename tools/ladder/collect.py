#!/usr/bin/env python3
"""Builds ladder.csv from the measurement directory of quant.sh / evalq.sh / runq.sh.

Usage: python3 tools/ladder/collect.py MEASUREMENT_DIR > tools/ladder/ladder.csv
Rows: every ik-TYPE.gguf with an ev-john-ik-TYPE-f32.json (Q8_0, above the ladder's top, left
out), every nv-NAME.novaq with an ev-john-nv-NAME.json, plus fixed.csv (mainline llama.cpp's
files of resources/models/kjv-llama-7m/README.md, measured earlier; of these only Q4_K_M is on
this machine, ../shared/models/kjv-llama-7m, and has the second text's figures), copied as is. The second
text's columns (kl_tiny, top1_tiny: the first 8,192 tokens of tinystories_valid.txt by
paragraphs) are filled where an ev-tiny-... file exists.
NOVAQ names: cbB = --bits B --calibration, ctN = --target-size N --calibration, bB = --bits B,
tN = --target-size N.
"""
import csv
import glob
import json
import os
import sys

PARAMS = 6_819_072  # kjv-llama-7m
d = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["tool", "type", "bytes", "bpw", "kl_john", "top1_john", "ppl_john", "kl_tiny", "top1_tiny", "note"])
for r in csv.DictReader(open(os.path.join(here, "fixed.csv"))):
    w.writerow([r["tool"], r["type"], r["bytes"], f"{int(r['bytes']) * 8 / PARAMS:.3f}", r["kl_john"],
                r["top1_john"], r["ppl_john"], r["kl_tiny"], r["top1_tiny"], r["note"]])


def ev(path, with_ppl=True):
    if not os.path.exists(path) or os.path.getsize(path) == 0:  # not measured, or being written
        return ["", ""] + ([""] if with_ppl else [])
    e = json.load(open(path))
    out = [f"{e['kl']:.6f}", f"{e['top1']:.4f}"]
    return out + [f"{e['perplexity']:.3f}"] if with_ppl else out


def label(n):
    cal = " --calibration" if n.startswith("c") else ""
    core = n[1:] if cal else n
    if core.startswith("t"):
        return "--target-size " + core[1:] + cal
    return "--bits " + core[1:] + cal


for g in sorted(glob.glob(os.path.join(d, "ik-*.gguf"))):
    t = os.path.basename(g)[3:-5]
    if t.endswith("-f32") or t == "Q8_0":
        continue
    j = os.path.join(d, f"ev-john-ik-{t}-f32.json")
    if not os.path.exists(j):
        continue
    b = os.path.getsize(g)
    w.writerow(["ik_llama.cpp", t, b, f"{b * 8 / PARAMS:.3f}", *ev(j),
                *ev(os.path.join(d, f"ev-tiny-ik-{t}-f32.json"), False), "ik llama-quantize --imatrix"])
for g in sorted(glob.glob(os.path.join(d, "nv-*.novaq"))):
    n = os.path.basename(g)[3:-6]
    j = os.path.join(d, f"ev-john-nv-{n}.json")
    if not os.path.exists(j) or os.path.getsize(j) == 0:
        continue
    b = os.path.getsize(g)
    w.writerow(["NOVAQ", label(n), b, f"{b * 8 / PARAMS:.3f}", *ev(j),
                *ev(os.path.join(d, f"ev-tiny-nv-{n}.json"), False), "novaq local"])
