"""`reward validate` (DESIGN §3): is the learned reward better than trivial baselines on held-out tweets?

For the reward model and each baseline — reply length alone, the heuristic alone, a context-only
linear model (log post likes, log delay, log followers: what the text does not control), and the
composite (0.6 RM + 0.4 heuristic, fixed normalization) — on tweets the RM never trained on:
- Spearman and Pearson with the engagement label (the labeler fitted at training time);
- within-tweet pairwise accuracy on SHP-style pairs (later reply wins by `ratio`, DESIGN §2), the
  number the README's 64.4 % length bar refers to, with a tweet-level bootstrap 95 % CI on the
  RM's margin over length;
- the same accuracy on *length-matched* pairs only — the two replies' lengths within 15 % of the
  longer one (|len_a − len_b| ≤ 0.15·max(len_a, len_b)) — where length cannot pick the winner, so
  what is left is what the scorer knows beyond length;
- Spearman with the label after partialling out length (the rank partial correlation: Pearson of
  the residuals of rank(score) and rank(label) regressed on rank(length));
- on synthetic data, agreement with the simulated audience (the exact gold): within-tweet pairs
  of held-out replies ordered by the audience, all of them and the length-matched ones;
- a calibration plot (mean label per score decile).
Validation is a gate: a margin over length that is not positive produces a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from replyrl.errors import ArtifactError, InputError
from replyrl.io import atomic_write_json, read_json


def held_out(records: Sequence, model_dir: str | Path) -> tuple[list, int]:
    """Records whose tweets the model did not train on (by `train_tweets.json`), and how many were dropped."""
    path = Path(model_dir) / "train_tweets.json"
    if not path.exists():
        return list(records), 0
    ids = read_json(path, "the model's training tweet ids")
    if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids):
        raise ArtifactError(
            f"{path}: expected a JSON list of tweet ids (strings); the model folder is corrupt: "
            "train it again, or delete the file to validate on every tweet given"
        )
    seen = set(ids)
    kept = [r for r in records if r.tweet_id not in seen]
    return kept, len(records) - len(kept)


def shp_pair_index(records: Sequence, ratio: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """All SHP-style pairs (no per-tweet cap) as (m, 2) record indices, and each pair's tweet index."""
    from replyrl.data.pairs import preference_pairs

    index = {(r.tweet_id, r.reply): i for i, r in enumerate(records)}
    pairs = preference_pairs(records, ratio=ratio, max_pairs_per_tweet=10**9)
    idx = np.array(
        [(index[(p.tweet_id, p.chosen)], index[(p.tweet_id, p.rejected)]) for p in pairs],
        dtype=np.int64,
    ).reshape(-1, 2)
    tweet_of = {t: j for j, t in enumerate(sorted({r.tweet_id for r in records}))}
    groups = np.array([tweet_of[records[a].tweet_id] for a, _ in idx], dtype=np.int64)
    return idx, groups


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(fn(a, b).statistic)


LENGTH_MATCH = 0.15
"""Two replies are length-matched when |len_a − len_b| ≤ LENGTH_MATCH · max(len_a, len_b)."""


def length_matched(lengths: np.ndarray, pairs: np.ndarray, tol: float = LENGTH_MATCH) -> np.ndarray:
    """Boolean mask of the (m, 2) index pairs whose two lengths are within `tol` of the longer."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    la, lb = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
    return np.abs(la - lb) <= tol * np.maximum(la, lb)


def partial_spearman(score: np.ndarray, label: np.ndarray, control: np.ndarray) -> float:
    """Spearman of score and label with `control` partialled out (ranks, then residuals)."""
    from scipy.stats import rankdata

    if len(score) < 4 or np.std(score) == 0 or np.std(label) == 0:
        return float("nan")
    rs, rl, rc = (rankdata(x) for x in (score, label, control))
    design = np.column_stack([np.ones_like(rc), rc])

    def resid(y):
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        return y - design @ beta

    a, b = resid(rs), resid(rl)
    # a score that is the control itself leaves only rounding noise: no partial correlation
    if np.std(a) <= 1e-9 * np.std(rs) or np.std(b) <= 1e-9 * np.std(rl):
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def audience_pairs(records: Sequence) -> np.ndarray:
    """(m, 2) within-tweet index pairs (better, worse) ordered by the simulated audience's appeal
    (`audience_appeal` of synthetic records); ties are left out."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if "audience_appeal" in r.extra:
            groups.setdefault(r.tweet_id, []).append(i)
    out = []
    for idx in groups.values():
        for x in idx:
            for y in idx:
                ax, ay = records[x].extra["audience_appeal"], records[y].extra["audience_appeal"]
                if ax > ay:
                    out.append((x, y))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def pair_wins(scores: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """1 where the chosen reply scores higher, 0.5 on ties, 0 otherwise."""
    a, b = scores[pairs[:, 0]], scores[pairs[:, 1]]
    return (a > b) + 0.5 * (a == b)


def bootstrap_margin(
    w_model: np.ndarray, w_base: np.ndarray, groups: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % CI of mean(w_model − w_base), resampling whole tweets (pairs of one tweet are correlated)."""
    if len(groups) == 0:
        return float("nan"), float("nan")
    diff = np.asarray(w_model, float) - np.asarray(w_base, float)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=diff, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))  # (B, T)
    means = sums[draws].sum(1) / counts[draws].sum(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def validate_reward_model(
    model: Any,
    records: Sequence,
    ratio: float = 2.0,
    out_dir: str | Path | None = None,
    heuristic: Any = None,
    n_boot: int = 1000,
) -> dict:
    """Metrics of `model` and the baselines on `records` (already restricted to held-out tweets).

    Returns:
        {"n_records", "n_tweets", "n_pairs", "rows": {name: {spearman, pearson, pairwise_accuracy}},
         "margin_over_length", "margin_ci95", "margin_over_heuristic", "warnings", ...}
    """
    from replyrl.data.labels import Labeler
    from replyrl.rewards.heuristic import HeuristicReward

    if not records:
        raise InputError(
            "no held-out records to validate on: every tweet in the data was used for training "
            "(pass the gold/test split, or the full data file with the model's train_tweets.json)"
        )
    meta = model.meta
    labeler = Labeler.from_dict(meta["labeler"]) if meta.get("labeler") else None
    if labeler is None:
        from replyrl.data.labels import fit_labeler

        labeler = fit_labeler(records, "rank")  # rank needs no training statistics
    y = labeler.transform(records)
    tweets, replies = [r.tweet for r in records], [r.reply for r in records]
    heuristic = heuristic or HeuristicReward(embeddings=model.embeddings)
    rm = model.score(tweets, replies)
    heur = heuristic.score(tweets, replies)
    scores = {
        "reward model": rm,
        "reply length": np.array([len(r.strip()) for r in replies], dtype=float),
        "heuristic": heur,
    }
    if getattr(getattr(model, "cfg", None), "kind", "mlp") == "odin":
        # what RL optimises is the quality head ("reward model"); this row adds the length head
        scores["reward model (all heads)"] = model.score(tweets, replies, heads="all")
    if "heuristic_mean" in meta and "score_mean" in meta:
        scores["composite 0.6/0.4"] = (
            0.6 * (rm - meta["score_mean"]) / meta["score_std"]
            + 0.4 * (heur - meta["heuristic_mean"]) / meta["heuristic_std"]
        )
    if meta.get("context_labeler"):
        scores["context only"] = Labeler.from_dict(meta["context_labeler"]).context_prediction(
            records
        )
    pairs, groups = shp_pair_index(records, ratio)
    lengths = scores["reply length"]
    matched = length_matched(lengths, pairs)
    aud = audience_pairs(records)
    aud_matched = length_matched(lengths, aud)
    rows, wins = {}, {}
    for name, s in scores.items():
        wins[name] = pair_wins(s, pairs) if len(pairs) else np.zeros(0)
        rows[name] = {
            "spearman": _corr(spearmanr, s, y),
            "pearson": _corr(pearsonr, s, y),
            "spearman_given_length": partial_spearman(s, y, lengths),
            "pairwise_accuracy": float(wins[name].mean()) if len(pairs) else float("nan"),
            "length_matched_accuracy": float(wins[name][matched].mean())
            if matched.any()
            else float("nan"),
        }
        if len(aud):
            w = pair_wins(s, aud)
            rows[name]["audience_accuracy"] = float(w.mean())
            rows[name]["audience_length_matched_accuracy"] = (
                float(w[aud_matched].mean()) if aud_matched.any() else float("nan")
            )
    acc = {k: v["pairwise_accuracy"] for k, v in rows.items()}
    margin = acc["reward model"] - acc["reply length"]
    ci = (
        bootstrap_margin(wins["reward model"], wins["reply length"], groups, n_boot)
        if len(pairs)
        else (float("nan"),) * 2
    )
    warnings = []
    if not margin > 0:
        warnings.append(
            f"the reward model does not beat reply length on held-out pairs "
            f"(margin {100 * margin:+.1f} points): it has learned nothing beyond length; "
            "lower its weight in the composite reward"
        )
    elif ci[0] <= 0:
        warnings.append(
            f"the margin over reply length ({100 * margin:+.1f} points) is within noise "
            f"(95 % CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f})"
        )
    if not acc["reward model"] - acc["heuristic"] > 0:
        warnings.append("the reward model does not beat the heuristic on held-out pairs")
    ctx_r2 = (
        Labeler.from_dict(meta["context_labeler"]).context_r2
        if meta.get("context_labeler")
        else None
    )
    report = {
        "context_r2_log_likes": ctx_r2,
        "n_records": len(records),
        "n_tweets": len({r.tweet_id for r in records}),
        "n_pairs": len(pairs),
        "n_length_matched_pairs": int(matched.sum()),
        "n_audience_pairs": int(len(aud)),
        "n_audience_length_matched_pairs": int(aud_matched.sum()),
        "length_match_rule": f"|len_a - len_b| <= {LENGTH_MATCH} * max(len_a, len_b)",
        "label": labeler.kind,
        "objective": meta.get("objective"),
        "pair_ratio": ratio,
        "rows": rows,
        "margin_over_length": margin,
        "margin_ci95": list(ci),
        "margin_over_heuristic": acc["reward model"] - acc["heuristic"],
        "warnings": warnings,
    }
    if out_dir is not None:
        out = Path(out_dir)
        report["calibration_png"] = str(
            calibration_plot(rm, y, out / "calibration.png", labeler.kind)
        )
        atomic_write_json(out / "validation.json", report)
    return report


def calibration_plot(
    scores: np.ndarray, y: np.ndarray, path: Path, label: str, bins: int = 10
) -> Path:
    """Mean label (± s.e.) per reward-score decile, written as a PNG (matplotlib Agg)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replyrl.io import atomic_write_bytes

    order = np.argsort(scores, kind="stable")
    chunks = [c for c in np.array_split(order, min(bins, max(1, len(order)))) if len(c)]
    xs = [float(np.mean(scores[c])) for c in chunks]
    ms = [float(np.mean(y[c])) for c in chunks]
    se = [float(np.std(y[c]) / np.sqrt(len(c))) for c in chunks]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.errorbar(xs, ms, yerr=se, marker="o", capsize=3)
    ax.set_xlabel("reward model score (decile mean)")
    ax.set_ylabel(f"mean {label} label")
    ax.set_title("Reward calibration on held-out tweets")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
