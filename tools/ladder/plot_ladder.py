#!/usr/bin/env python3
"""Draws docs/ladder.svg (KL on John against file bytes, log KL axis) from ladder.csv.

No plotting library is installed on the build machine, so the SVG is written by hand with
the standard library only: axes, grid, NOVAQ's best settings joined by a line (no smaller file
with a lower KL), a marker set per tool, labels per point.
Usage: python3 tools/ladder/plot_ladder.py [tools/ladder/ladder.csv] [docs/ladder.svg]
"""
import csv
import math
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "ladder.csv")
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "..", "docs", "ladder.svg")

STYLE = {  # tool -> (colour, marker)
    "NOVAQ": ("#1b7f3b", "circle"),
    "llama.cpp": ("#1f5fbf", "square"),
    "ik_llama.cpp": ("#c0392b", "triangle"),
}

rows = [r for r in csv.DictReader(open(SRC)) if r["kl_john"]]


def short(setting):
    """A NOVAQ setting as a label: "--target-size 2729312 --calibration" -> "fit 2.73 MB, cal"."""
    parts = setting.split()
    cal = ", cal" if "--calibration" in parts else ""
    if parts[0] == "--target-size":
        return f"fit {int(parts[1]) / 1e6:.2f} MB{cal}"
    return f"{parts[1]} bits{cal}"

W, H = 900, 560
L, R, T, B = 80, 30, 40, 60  # margins
bytes_ = [float(r["bytes"]) for r in rows]
kl = [float(r["kl_john"]) for r in rows]
x0, x1 = math.floor(min(bytes_) / 5e5) * 5e5, math.ceil(max(bytes_) / 5e5) * 5e5
y0, y1 = math.floor(math.log10(min(kl))), math.ceil(math.log10(max(kl)))


def px(b):
    return L + (b - x0) / (x1 - x0) * (W - L - R)


def py(k):
    return T + (y1 - math.log10(k)) / (y1 - y0) * (H - T - B)


out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
       'font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">kjv-llama-7m: KL on John '
       '(held out) against file size; lower left is better</text>']
for e in range(y0, y1 + 1):
    for m in (1, 2, 5):
        v = m * 10.0**e
        if v < 10.0**y0 or v > 10.0**y1:
            continue
        y = py(v)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
b = x0
while b <= x1 + 1:
    x = px(b)
    out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#ddd"/>')
    out.append(f'<text x="{x:.1f}" y="{H - B + 16}" text-anchor="middle">{b / 1e6:.1f}</text>')
    b += 5e5
out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#333"/>')
out.append(f'<text x="{(L + W - R) / 2}" y="{H - 18}" text-anchor="middle">file size, MB (10^6 bytes)</text>')
out.append(f'<text transform="translate(18,{(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
           'mean KL divergence from the original (nats, log scale)</text>')

for i, (tool, (colour, marker)) in enumerate(STYLE.items()):
    pts = sorted((float(r["bytes"]), float(r["kl_john"]), r["type"]) for r in rows if r["tool"] == tool)
    if not pts:
        continue
    if tool == "NOVAQ":  # NOVAQ's best points joined along the size axis; rivals as separate types
        # The lower envelope: a point is joined when no smaller file has a lower KL.
        front = []
        for p in pts:
            if not front or p[1] < front[-1][1]:
                front.append(p)
        path = " ".join(f"{px(b):.1f},{py(k):.1f}" for b, k, _ in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    for b, k, name in pts:
        x, y = px(b), py(k)
        if marker == "circle":
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        elif marker == "square":
            out.append(f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>')
        else:
            out.append(f'<polygon points="{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}" '
                       f'fill="{colour}"/>')
        label, size = (short(name), 10) if tool == "NOVAQ" else (name, 8)
        # Right of the point, or left of it near the right edge.
        anchor, lx = ("end", x - 6) if x > W - R - 110 else ("start", x + 6)
        out.append(f'<text x="{lx:.1f}" y="{y - 5:.1f}" fill="{colour}" font-size="{size}" '
                   f'text-anchor="{anchor}">{label}</text>')
    ly = T + 16 + 16 * i
    out.append(f'<text x="{W - R - 10}" y="{ly}" text-anchor="end" fill="{colour}" font-size="12">{tool}</text>')
out.append("</svg>")
os.makedirs(os.path.dirname(os.path.abspath(DST)), exist_ok=True)
open(DST, "w").write("\n".join(out) + "\n")
print(f"wrote {DST} ({len(rows)} points)")
