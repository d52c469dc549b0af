#!/usr/bin/env python3
"""Medians of repeated zkbench/kbench result lines.

Reads files (or stdin) holding the tools' last lines, e.g.
  zkbench mode=create ops=... ops_per_s=... p50_us=... p99_us=...
groups them by the --by fields (default: tool, label, mode) and prints, for each group,
the number of runs, the median of each numeric field, and how many runs did not verify.
The runner scripts put "label=NAME " in front of a line to tell configurations apart.
"""
import argparse
import statistics
import sys
from collections import OrderedDict

FIELDS = {
    "zkbench": ["ops_per_s", "p50_us", "p99_us", "p999_us", "errors"],
    "kbench": [
        "msgs_per_s",
        "mb_per_s",
        "secs",
        "p50_ms",
        "p99_ms",
        "startup_ms",
        "broker_cpu_ms_per_M",
    ],
}


def parse(line):
    words = line.split()
    label = None
    if words and words[0].startswith("label="):
        label = words.pop(0).split("=", 1)[1]
    if not words or words[0] not in FIELDS:
        return None
    rec = {"tool": words[0], "label": label or ""}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            rec[k] = v
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--by", default="tool,label,mode")
    args = ap.parse_args()
    lines = []
    for f in args.files or ["-"]:
        lines += (sys.stdin if f == "-" else open(f)).read().splitlines()
    groups = OrderedDict()
    for line in lines:
        rec = parse(line.strip())
        if rec:
            key = tuple(rec.get(k, "") for k in args.by.split(","))
            groups.setdefault(key, []).append(rec)
    for key, recs in groups.items():
        out = [f"{k}={v}" for k, v in zip(args.by.split(","), key) if v]
        out.append(f"runs={len(recs)}")
        bad = sum(r.get("verify", "ok") != "ok" for r in recs)
        for field in FIELDS[recs[0]["tool"]]:
            vals = [float(r[field]) for r in recs if field in r]
            if vals:
                out.append(f"{field}={statistics.median(vals):g}")
        out.append(f"verify_fail={bad}")
        print(" ".join(out))


if __name__ == "__main__":
    main()
