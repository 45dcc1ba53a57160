"""Turn records into the datasets TRL's trainers take (conversational prompts)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from replyrl.errors import InputError
from replyrl.models import prompt_messages
from replyrl.records import Record, load_records
from replyrl.training.config import DataConfig
from replyrl.training.objective import Recipe


def load_phase_records(data: DataConfig, recipe: Recipe, seed: int = 0) -> list[Record]:
    """Load the records a recipe trains on: its phase split (`Recipe.phase`) unless `data.split`
    names another."""
    if data.path:
        records = load_records(data.path).records
    else:
        from replyrl.data.synth import synthesize

        records = synthesize(n_tweets=100, seed=0)
    split = data.split
    if split == "auto":
        split = recipe.phase
    if split != "all":
        from replyrl.data.splits import SplitConfig, split_records

        records = split_records(records, SplitConfig(seed=data.split_seed))[split]
    if data.max_tweets:
        keep = sorted({r.tweet_id for r in records})[: data.max_tweets]
        keep_set = set(keep)
        records = [r for r in records if r.tweet_id in keep_set]
    if not records:
        raise InputError(
            f"no training records for recipe {recipe.name!r} (split {split!r} of {data.path or 'synthetic'})"
        )
    return records


def record_labels(records: list[Record], kind: str) -> np.ndarray:
    """Engagement labels fitted on these (training) records only."""
    from replyrl.data.labels import fit_labeler

    return np.asarray(fit_labeler(records, kind).transform(records), dtype=np.float64)


def by_tweet(records: list[Record], labels: np.ndarray) -> dict[str, list[tuple[Record, float]]]:
    """Group (record, label) by tweet_id, best label first; ties broken by reply text."""
    groups: dict[str, list[tuple[Record, float]]] = defaultdict(list)
    for r, y in zip(records, labels):
        groups[r.tweet_id].append((r, float(y)))
    for g in groups.values():
        g.sort(key=lambda ry: (-ry[1], ry[0].reply))
    return dict(sorted(groups.items()))


def tweet_quartiles(groups: dict[str, list[tuple[Record, float]]]) -> dict[str, int]:
    """Engagement quartile (1 = lowest) of each tweet by the mean label of its replies."""
    ids = list(groups)
    means = np.array([np.mean([y for _, y in groups[t]]) for t in ids])
    ranks = means.argsort(kind="stable").argsort(kind="stable")
    return {t: int(1 + 4 * rk // max(len(ids), 1)) for t, rk in zip(ids, ranks)}


def rl_rows(records: list[Record], labels: np.ndarray, data: DataConfig) -> list[dict]:
    """One row per tweet: prompt, tweet, its best-engaged reply as the SFT reference, tweet_id."""
    groups = by_tweet(records, labels)
    quart = tweet_quartiles(groups)
    rows = []
    for tid, g in groups.items():
        if quart[tid] not in data.quartiles:
            continue
        best = g[0][0]
        rows.append(
            {
                "prompt": prompt_messages(best.tweet, data.instruction),
                "tweet": best.tweet,
                "reply": best.reply,
                "tweet_id": tid,
            }
        )
    if not rows:
        raise InputError(f"no tweets left after keeping engagement quartiles {data.quartiles}")
    return rows


def sft_rows(records: list[Record], labels: np.ndarray, data: DataConfig) -> list[dict]:
    """Prompt-completion rows for SFT: best reply, replies at/above the tweet median, or all."""
    rows = []
    for tid, g in by_tweet(records, labels).items():
        if data.sft_replies == "best":
            chosen = g[:1]
        elif data.sft_replies == "top_half":
            median = float(np.median([y for _, y in g]))
            chosen = [ry for ry in g if ry[1] >= median]
        else:
            chosen = g
        for r, _ in chosen:
            rows.append(
                {
                    "prompt": prompt_messages(r.tweet, data.instruction),
                    "completion": [{"role": "assistant", "content": r.reply}],
                    "tweet_id": tid,
                }
            )
    return rows


def dpo_rows(
    records: list[Record], data: DataConfig, ratio: float, max_pairs_per_tweet: int, seed: int
) -> list[dict]:
    """Preference rows (prompt, chosen, rejected) from engagement-ranked reply pairs (DESIGN §2)."""
    from replyrl.data.pairs import preference_pairs

    pairs = preference_pairs(
        records, ratio=ratio, max_pairs_per_tweet=max_pairs_per_tweet, seed=seed
    )
    if not pairs:
        raise InputError(
            "no preference pairs in the training records: lower dpo.pair_ratio or add data"
        )
    return [
        {
            "prompt": prompt_messages(p.tweet, data.instruction),
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]
