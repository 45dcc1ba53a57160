"""Two reward-model configs compared with training seeds as the unit, on one data file.

Each config is trained once per seed (`--set seed=S`; the split seed stays fixed, so every model
trains on the same sft ∪ rl tweets and is validated on the same held-out gold ∪ test tweets). For
every trained model: pairwise accuracy on the held-out SHP-style pairs, on the length-matched ones
(docs/rewards.md#validation) and, on synthetic data, agreement with the simulated audience (all
pairs and length-matched). Printed per config: each seed's value and the mean ± SD over seeds; then
the difference of means with Welch's t-test over seeds (the seeds are the unit; the held-out pairs
are shared, so the test is about training-seed variation, not about new data).

    python scripts/reward_seeds.py --data pool.jsonl \\
        --a configs/reward/debiased.yaml --a-seeds 0,10,20,30,40 \\
        --b configs/reward/preference.yaml --b-seeds 0,1,2,3,4,5,6,7,8,9 [--json out.json]

An ensemble config uses seeds seed..seed+N-1 for its members, so ensemble seeds should be N apart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import ttest_ind

from replyrl.config import load_config
from replyrl.records import load_records
from replyrl.rewards.embeddings import EmbeddingCache, default_cache_dir
from replyrl.rewards.train import RewardTrainConfig, train_reward_model
from replyrl.rewards.validate import audience_pairs, length_matched, pair_wins, shp_pair_index

COLUMNS = ("pairwise", "pairwise_length_matched", "audience", "audience_length_matched")


def seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def metrics(scores: np.ndarray, held: list) -> dict[str, float]:
    """The validation accuracies of `scores` on the held-out records (nan where a set is empty)."""
    lengths = np.array([len(r.reply.strip()) for r in held], dtype=float)
    pairs, _ = shp_pair_index(held)
    aud = audience_pairs(held)
    out = {}
    for name, p in (("pairwise", pairs), ("audience", aud)):
        wins = pair_wins(scores, p) if len(p) else np.zeros(0)
        matched = length_matched(lengths, p)
        out[name] = float(wins.mean()) if len(wins) else float("nan")
        out[f"{name}_length_matched"] = float(wins[matched].mean()) if matched.any() else np.nan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    for side in "ab":
        ap.add_argument(f"--{side}", required=True, type=Path, help="reward training YAML")
        ap.add_argument(f"--{side}-seeds", required=True, type=seeds, help="e.g. 0,1,2")
    ap.add_argument("--json", type=Path, help="write every seed's numbers here")
    args = ap.parse_args()
    records = load_records(args.data).records
    cache = EmbeddingCache()
    cache.load(default_cache_dir(None))
    results: dict[str, list[dict]] = {}
    for side in "ab":
        config = getattr(args, side)
        for seed in getattr(args, f"{side}_seeds"):
            cfg = load_config(RewardTrainConfig, config, [f"seed={seed}"])
            model, _, ids = train_reward_model(cfg, records, embeddings=cache, log=lambda m: None)
            seen = set(ids)
            held = [r for r in records if r.tweet_id not in seen]
            m = metrics(model.score([r.tweet for r in held], [r.reply for r in held]), held)
            results.setdefault(str(config), []).append({"seed": seed, **m})
            print(
                f"{config.name} seed {seed}: "
                + "  ".join(f"{k} {100 * v:.1f}" for k, v in m.items())
            )
    lengths_only = metrics(np.array([len(r.reply.strip()) for r in held], dtype=float), held)
    print(
        f"\n{args.data}: reply length alone "
        + "  ".join(f"{k} {100 * v:.1f}" for k, v in lengths_only.items())
    )
    a, b = (results[str(getattr(args, s))] for s in "ab")
    print(f"{'':14s}" + "".join(f"{c:>26s}" for c in COLUMNS))
    for name, rows in ((args.a.name, a), (args.b.name, b)):
        cells = []
        for c in COLUMNS:
            v = 100 * np.array([r[c] for r in rows])
            cells.append(f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f} (n={len(v)})")
        print(f"{name:14s}" + "".join(f"{x:>26s}" for x in cells))
    diffs = []
    for c in COLUMNS:
        va, vb = (100 * np.array([r[c] for r in rows]) for rows in (a, b))
        if np.isnan(va).any() or np.isnan(vb).any():
            diffs.append("–")
            continue
        spread = min(len(va), len(vb)) > 1 and (va.std() > 0 or vb.std() > 0)
        p = ttest_ind(va, vb, equal_var=False).pvalue if spread else np.nan
        diffs.append(f"{va.mean() - vb.mean():+.1f} (Welch p {p:.2g})")
    print(f"{'a − b':14s}" + "".join(f"{x:>26s}" for x in diffs))
    if args.json:
        args.json.write_text(
            json.dumps({"data": str(args.data), "length": lengths_only, **results})
        )


if __name__ == "__main__":
    main()
