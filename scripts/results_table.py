"""Print a pipeline's comparison table and reward-model validation as Markdown.

    python scripts/results_table.py output/pipeline/<name>
Used to write docs/results-*.md from measured runs (nothing here is typed by hand).
"""

import json
import sys
from pathlib import Path

COLS = [
    "pass@1",
    "pass@4",
    "proxy",
    "gold",
    "audience",
    "judge_win",
    "relevance",
    "rouge_l",
    "bertscore_f1",
    "self_bleu",
    "distinct_2",
    "semantic_diversity",
    "length",
]


def main(root: Path) -> None:
    s = json.loads((root / "eval" / "summary.json").read_text())
    cols = [c for c in COLS if c in s["metrics"]]
    print(
        f"Test tweets: {s['n_tweets']}; proxy: {s['proxy']}; gold: {s['gold']}; "
        f"synthetic: {s['synthetic']}\n"
    )
    print("| model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, m in s["models"].items():
        cells = []
        for c in cols:
            v = m["metrics"][c]
            cells.append(
                "–"
                if v["mean"] is None
                else f"{v['mean']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    fired = [a for a in s["alarms"] if a["triggered"]]
    print(f"\nAlarms fired: {len(fired)}")
    for a in fired:
        print(f"- {a['model']}: {a['name']} — {a['message']}")
    for v in s.get("verdicts") or []:
        print(f"- {v['id']} {v['verdict'].upper()}: {v['claim']} — {v['why']}")
    sig = [c for c in s["comparisons"] if c.get("p_holm") is not None and c["p_holm"] < 0.05]
    print(f"\nPaired comparisons against {s['baseline']} with Holm-adjusted p < 0.05: {len(sig)}")
    for c in sig:
        print(
            f"- {c['metric']}: {c['a']} {c['mean_a']:.3f} vs {c['b']} {c['mean_b']:.3f} "
            f"(diff {c['diff']:+.3f}, p = {c['p']:.3g}, Holm {c['p_holm']:.3g}, d_z = "
            f"{c['effect_size'] if c['effect_size'] is None else round(c['effect_size'], 2)})"
        )
    for kind in ("proxy", "gold"):
        v = json.loads((root / "rewards" / kind / "validation" / "validation.json").read_text())
        print(
            f"\nReward model `{kind}` on held-out test tweets ({v['n_tweets']} tweets, {v['n_pairs']} SHP pairs):\n"
        )
        print("| scorer | pairwise accuracy | Spearman | Pearson |\n|---|---|---|---|")
        for name, r in v["rows"].items():
            print(
                f"| {name} | {100 * r['pairwise_accuracy']:.1f} % | {r['spearman']:.3f} | {r['pearson']:.3f} |"
            )
        lo, hi = v["margin_ci95"]
        print(
            f"\nMargin over reply length: {100 * v['margin_over_length']:+.1f} points "
            f"(95 % CI {100 * lo:+.1f} to {100 * hi:+.1f})."
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
