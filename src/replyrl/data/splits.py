"""Tweet-level splits (DESIGN §2): sft / rl / gold / test, stratified by engagement quartile.

Every reply of a tweet lands in the same split, so nothing learned from a tweet's replies leaks
into another split. Tweets are put in quartiles of their mean log engagement (ranked, ties broken
by tweet_id, so quartiles have equal size), and each quartile is divided by the split fractions,
so every split sees the same mix of quiet and viral tweets (and of reply counts). The proxy
reward model trains on `sft ∪ rl`, the gold reward model on `gold`, evaluation uses `test`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replyrl.config import ConfigError
from replyrl.data.labels import engagement_raw
from replyrl.io import atomic_write_json
from replyrl.records import Record, write_records

SPLITS = ("sft", "rl", "gold", "test")
N_QUARTILES = 4


@dataclass
class SplitConfig:
    """How to divide tweets among the four splits."""

    seed: int = 0
    """Shuffling seed; the same seed and data give byte-identical splits."""
    sft: float = 0.4
    """Fraction of tweets for supervised fine-tuning."""
    rl: float = 0.3
    """Fraction of tweets for RL (disjoint from sft)."""
    gold: float = 0.15
    """Fraction of tweets for the gold reward model (never seen by the proxy RM or the policy)."""
    test: float = 0.15
    """Fraction of tweets for evaluation."""

    def __post_init__(self) -> None:
        for name in SPLITS:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0 or math.isnan(v):
                raise ConfigError(f"SplitConfig.{name} must be a fraction in [0, 1], got {v!r}")
        total = sum(self.fractions().values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"SplitConfig fractions must sum to 1, got {total:.6g} "
                f"(sft={self.sft}, rl={self.rl}, gold={self.gold}, test={self.test})"
            )

    def fractions(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in SPLITS}


def tweet_quartiles(records: Sequence[Record]) -> dict[str, int]:
    """Engagement quartile (0 = quietest .. 3) of each tweet, by mean log1p engagement."""
    logs: dict[str, list[float]] = defaultdict(list)
    for r in records:
        logs[r.tweet_id].append(math.log1p(engagement_raw(r)))
    # rank by (mean, tweet_id): a stable order that ignores input order, with equal-size bins
    order = sorted(logs, key=lambda t: (float(np.mean(logs[t])), t))
    n = len(order)
    return {t: min(N_QUARTILES - 1, i * N_QUARTILES // n) for i, t in enumerate(order)}


def split_records(
    records: Sequence[Record], cfg: SplitConfig | None = None
) -> dict[str, list[Record]]:
    """Split records by tweet_id into sft/rl/gold/test, stratified by engagement quartile.

    Returns:
        {split: records}, each list in input order; every tweet_id is in exactly one split.
    """
    cfg = cfg or SplitConfig()
    quart = tweet_quartiles(records)
    n_replies: dict[str, int] = defaultdict(int)
    for r in records:
        n_replies[r.tweet_id] += 1
    rng = np.random.default_rng(cfg.seed)
    tweets = sorted(quart)  # sort before shuffling so input order cannot change the result
    tweets = [tweets[i] for i in rng.permutation(len(tweets))]
    # Lay tweets out by quartile, then by reply count (stable sort: ties stay in seeded random
    # order), and deal them out so that every split stays as close as it can to its quota at
    # every step. Any run of consecutive tweets is then divided by the fractions to within a
    # tweet or two, so each split gets its share of every quartile (by tweets) and of every
    # reply count (so record-level proportions match too: viral tweets have more replies).
    tweets.sort(key=lambda t: (quart[t], n_replies[t]))
    fr = np.array([cfg.fractions()[s] for s in SPLITS])
    counts = np.zeros(len(SPLITS))
    assign: dict[str, str] = {}
    for i, t in enumerate(tweets):
        k = int(np.argmax(fr * (i + 1) - counts))  # the split furthest behind its quota
        counts[k] += 1
        assign[t] = SPLITS[k]
    out: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r in records:
        out[assign[r.tweet_id]].append(r)
    return out


def split_stats(splits: dict[str, list[Record]]) -> dict[str, dict]:
    """Per split: records, tweets, and the share of its tweets (and of its records) in each
    engagement quartile."""
    quart = tweet_quartiles([r for recs in splits.values() for r in recs])
    stats = {}
    for name, recs in splits.items():
        tweets = sorted({r.tweet_id for r in recs})
        counts = np.bincount([quart[t] for t in tweets], minlength=N_QUARTILES)
        rcounts = np.bincount([quart[r.tweet_id] for r in recs], minlength=N_QUARTILES)
        stats[name] = {
            "records": len(recs),
            "tweets": len(tweets),
            "quartile_proportions": (counts / max(len(tweets), 1)).round(4).tolist(),
            "record_quartile_proportions": (rcounts / max(len(recs), 1)).round(4).tolist(),
        }
    return stats


def write_splits(
    out_dir: str | Path, splits: dict[str, list[Record]], cfg: SplitConfig | None = None
) -> Path:
    """Write `<split>.jsonl` for each split and `manifest.json`, atomically and reproducibly.

    The manifest holds counts, quartile proportions, seed and fractions (no timestamps, so the
    same seed gives byte-identical files). Returns the output folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, recs in splits.items():
        write_records(out / f"{name}.jsonl", recs)
    manifest = {
        "seed": cfg.seed if cfg else None,
        "fractions": cfg.fractions() if cfg else None,
        "splits": split_stats(splits),
        "files": {name: f"{name}.jsonl" for name in splits},
    }
    atomic_write_json(out / "manifest.json", manifest)
    return out
