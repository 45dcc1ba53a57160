"""The diversity sweep's table from a finished sweep pipeline (configs/pipeline/sweep-*.yaml).

For each mode and λ: semantic diversity, Self-BLEU, Distinct-2 and the simulated audience, each as
the mean, the paired difference against λ = 0 (Wilcoxon over tweets for one seed, t-test across
seeds otherwise) and against SFT; then, per mode, the Spearman correlation of λ with mean semantic
diversity over {0, 0.2, 0.5, 1.0}, and whether any setting keeps semantic diversity ≥ SFT's while
the audience stays within 0.01 of λ = 0.

    python scripts/sweep_table.py output/pipeline/sweep-cpu [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict
from pathlib import Path

from scipy.stats import spearmanr

from replyrl.evaluation.stats import paired_compare
from replyrl.evaluation.summary import per_tweet_values
from replyrl.io import read_jsonl

METRICS = ("semantic_diversity", "self_bleu", "distinct_2", "audience")
RUN = re.compile(r"^(add|mul|set)-([0-9.]+)$")
MODES = {"add": "additive", "mul": "multiplicative", "set": "set"}


def load(root: Path):
    ev = root / "eval"
    meta = json.loads((ev / "runs.json").read_text())
    rows = {r["id"]: list(read_jsonl(ev / "results" / f"{r['id']}.jsonl")) for r in meta["runs"]}
    values = per_tweet_values(meta["runs"], rows, list(METRICS))
    return values


def compare(values, a: str, b: str, metric: str) -> dict:
    runs = lambda m: {s: v[metric] for s, v in values[m].items()}  # noqa: E731
    return asdict(paired_compare(metric, a, b, runs(a), runs(b)))


def table(root: Path) -> dict:
    values = load(root)
    lam0, sft = "lambda-0", "sft"
    rows = []
    for name in values:
        m = RUN.match(name)
        if name == lam0:
            mode, lam = "all", 0.0
        elif m:
            mode, lam = MODES[m.group(1)], float(m.group(2))
        else:
            continue
        row = {"run": name, "mode": mode, "lambda": lam}
        for metric in METRICS:
            vs0 = compare(values, name, lam0, metric) if name != lam0 else None
            vs_sft = compare(values, name, sft, metric)
            row[metric] = {
                "mean": vs_sft["mean_a"],
                "sft": vs_sft["mean_b"],
                "vs_lambda0": vs0,
                "vs_sft": vs_sft,
            }
        rows.append(row)
    out = {"rows": rows, "modes": {}}
    base = next(r for r in rows if r["run"] == lam0)
    for mode in MODES.values():
        ms = sorted([base] + [r for r in rows if r["mode"] == mode], key=lambda r: r["lambda"])
        lams = [r["lambda"] for r in ms]
        div = [r["semantic_diversity"]["mean"] for r in ms]
        rho = spearmanr(lams, div).statistic if len(ms) > 2 else math.nan
        top = next((r for r in ms if r["lambda"] == 1.0), None)
        keeps = [
            r["run"]
            for r in ms
            if r["semantic_diversity"]["mean"] >= r["semantic_diversity"]["sft"]
            and abs(r["audience"]["mean"] - base["audience"]["mean"]) <= 0.01
        ]
        out["modes"][mode] = {
            "spearman_lambda_diversity": float(rho),
            "lambda1_vs_lambda0_p": top["semantic_diversity"]["vs_lambda0"]["p"] if top else None,
            "keeps_sft_diversity_and_audience": keeps,
        }
    return out


def fmt(x, d=3):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the sweep pipeline's output folder")
    ap.add_argument("--json", type=Path, help="also write the table as JSON")
    args = ap.parse_args()
    t = table(args.root)
    head = ["run", "mode", "λ"] + [f"{m} (Δ vs λ=0, p; Δ vs SFT, p)" for m in METRICS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in sorted(t["rows"], key=lambda r: (r["mode"], r["lambda"])):
        cells = [r["run"], r["mode"], f"{r['lambda']:g}"]
        for m in METRICS:
            c = r[m]
            v0 = c["vs_lambda0"]
            d0 = "–" if v0 is None else f"{v0['diff']:+.3f}, p {fmt(v0['p'], 3)}"
            cells.append(
                f"{fmt(c['mean'])} ({d0}; {c['vs_sft']['diff']:+.3f}, p {fmt(c['vs_sft']['p'], 3)})"
            )
        print("| " + " | ".join(cells) + " |")
    print()
    for mode, s in t["modes"].items():
        print(
            f"- {mode}: Spearman(λ, semantic diversity) = {fmt(s['spearman_lambda_diversity'], 2)}; "
            f"λ = 1.0 vs λ = 0 paired p = {fmt(s['lambda1_vs_lambda0_p'], 3)}; settings keeping "
            f"diversity ≥ SFT with audience within 0.01 of λ = 0: "
            f"{', '.join(s['keeps_sft_diversity_and_audience']) or 'none'}"
        )
    if args.json:
        args.json.write_text(json.dumps(t, indent=2))


if __name__ == "__main__":
    main()
