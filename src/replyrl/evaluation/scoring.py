"""Turn one run's cached replies into per-tweet result rows: reward scores and every metric.

A row keeps the raw material (replies, references, each reply's scores) next to the per-tweet
metrics, so alarms, statistics and the report can be rebuilt from the rows alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from replyrl.config import ConfigError
from replyrl.evaluation import metrics as M

Scorer = Callable[[list[str], list[str]], np.ndarray]
"""Scores (tweets, replies) pairs, one float per pair (a reward model, the audience, ...)."""


@dataclass
class Scorers:
    """The reward scorers of an evaluation and what the report must say about them."""

    proxy: Scorer
    """The proxy reward (the RM the policy was trained against, or the heuristic)."""
    proxy_name: str
    """What the proxy is, for the report."""
    gold: Scorer | None = None
    """The independent gold RM (trained on the held-out split), when given."""
    gold_name: str | None = None
    """What the gold is, for the report."""
    audience: Scorer | None = None
    """The simulated audience's known engagement (synthetic data only)."""
    notes: list[str] = field(default_factory=list)
    """Caveats to print in the report (fallbacks taken)."""

    def items(self) -> list[tuple[str, Scorer]]:
        out = [("proxy", self.proxy)]
        if self.gold is not None:
            out.append(("gold", self.gold))
        if self.audience is not None:
            out.append(("audience", self.audience))
        return out


def _checked(name: str, scorer: Scorer, tweets: list[str], replies: list[str]) -> list[float]:
    if not replies:
        return []
    v = np.asarray(scorer(tweets, replies), dtype=float)
    if v.shape != (len(replies),):
        raise ValueError(f"{name} scorer returned shape {v.shape} for {len(replies)} replies")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} scorer returned non-finite values; check the reward model")
    return v.tolist()


def score_texts(
    scorers: Scorers, encoder, tweets: list[str], replies: list[str]
) -> dict[str, list[float]]:
    """Every scorer plus relevance (tweet–reply cosine under the encoder) for flat pairs."""
    out = {name: _checked(name, fn, tweets, replies) for name, fn in scorers.items()}
    if replies:
        emb_t, emb_r = M.embed(encoder, tweets), M.embed(encoder, replies)
        out["relevance"] = np.sum(emb_t * emb_r, axis=1).tolist()
    else:
        out["relevance"] = []
    return out


def _split(flat: dict[str, list[float]], sizes: Sequence[int]) -> list[dict[str, list[float]]]:
    bounds = np.cumsum([0, *sizes])
    return [{k: v[bounds[i] : bounds[i + 1]] for k, v in flat.items()} for i in range(len(sizes))]


def score_references(gens: list[dict], scorers: Scorers, encoder) -> list[dict[str, list[float]]]:
    """Scores of every human reply of every tweet (shared by all runs of an evaluation)."""
    tweets = [g["tweet"] for g in gens for _ in g["references"]]
    refs = [r for g in gens for r in g["references"]]
    return _split(score_texts(scorers, encoder, tweets, refs), [len(g["references"]) for g in gens])


def pass_thresholds(
    ref_scores: list[dict[str, list[float]]], key: str, criterion: str, quantile: float
) -> list[float]:
    """Per-tweet pass threshold under `key`: the best-engaged reference's score, or a quantile of
    the tweet's references, or a quantile of all references."""
    if criterion == "reference":
        return [s[key][0] for s in ref_scores]
    if criterion == "tweet_quantile":
        return [float(np.quantile(s[key], quantile)) for s in ref_scores]
    allv = np.concatenate([s[key] for s in ref_scores])
    return [float(np.quantile(allv, quantile))] * len(ref_scores)


def score_run(
    gens: list[dict],
    ref_scores: list[dict[str, list[float]]],
    scorers: Scorers,
    encoder,
    ks: Sequence[int],
    pass_key: str = "proxy",
    criterion: str = "reference",
    quantile: float = 0.5,
    progress: bool = False,
) -> list[dict]:
    """Per-tweet rows for one run (one model at one seed).

    Args:
        gens: cached generation rows `{tweet_id, tweet, reference, references, replies}`.
        ref_scores: `score_references(gens, ...)`.
        scorers: proxy / gold / audience scorers.
        encoder: the sentence encoder (relevance, semantic diversity, BERTScore).
        ks: the k of pass@k (each <= n).
        pass_key: which score judges a pass ("proxy", "gold" or "audience").
        criterion: "reference", "tweet_quantile" or "global_quantile".
        quantile: q for the quantile criteria.
    """
    tweets = [g["tweet"] for g in gens for _ in g["replies"]]
    replies = [r for g in gens for r in g["replies"]]
    per = _split(score_texts(scorers, encoder, tweets, replies), [len(g["replies"]) for g in gens])
    if pass_key not in per[0]:
        raise ConfigError(
            f"pass judge '{pass_key}' is not available (have: {', '.join(per[0])}); "
            "set gold_reward, or use pass_judge=proxy"
        )
    thresholds = pass_thresholds(ref_scores, pass_key, criterion, quantile)
    tok_emb = M.token_embeddings(encoder, replies + [r for g in gens for r in g["references"]])
    rows = []
    it = range(len(gens))
    if progress:
        from rich.progress import track

        it = track(it, description="Scoring replies")
    for i in it:
        g, s = gens[i], per[i]
        reps, refs = g["replies"], g["references"]
        c = int(sum(v >= thresholds[i] for v in s[pass_key]))
        s = dict(s)
        s["rouge_l"] = M.rouge_l(reps, refs)
        s["bertscore_f1"] = M.bertscore(reps, refs, tok_emb)
        s["length"] = [float(len(r.strip())) for r in reps]
        m = {f"pass@{k}": M.pass_at_k(len(reps), c, k) for k in ks}
        m.update(
            {
                "self_bleu": M.self_bleu(reps),
                "distinct_1": M.distinct_n(reps, 1),
                "distinct_2": M.distinct_n(reps, 2),
                "semantic_diversity": M.semantic_diversity(M.embed(encoder, reps)),
                "duplicate_rate": M.duplicate_rate(reps),
            }
        )
        for key in ("rouge_l", "bertscore_f1", "relevance", "length", "proxy", "gold", "audience"):
            if key in s:
                m[key] = M.mean_finite(s[key])
        rows.append(
            {
                **g,
                "n_pass": c,
                "threshold": thresholds[i],
                "reply_scores": s,
                "ref_scores": ref_scores[i],
                "metrics": m,
            }
        )
    return rows


def add_judge(
    rows: list[dict], judge, replies_per_tweet: int = 1, max_tweets: int | None = None
) -> None:
    """Add `judge_win` (P(candidate beats the reference), swap-averaged) to the first rows."""
    chosen = rows[:max_tweets] if max_tweets else rows
    triples, owners = [], []
    for j, row in enumerate(chosen):
        for r in row["replies"][:replies_per_tweet]:
            triples.append((row["tweet"], r, row["reference"]))
            owners.append(j)
    probs = judge.prob_better(triples) if triples else []
    for j, row in enumerate(chosen):
        mine = [p for o, p in zip(owners, probs) if o == j]
        row["reply_scores"]["judge"] = mine
        row["metrics"]["judge_win"] = float(np.mean(mine))


def add_scorer_judge(
    rows: list[dict], key: str, replies_per_tweet: int = 1, max_tweets: int | None = None
) -> None:
    """`judge_win` from a scorer instead of an LLM: 1 when the candidate's `key` score beats the
    best-engaged reference's, 0.5 on a tie, 0 otherwise (the first `replies_per_tweet` replies)."""
    chosen = rows[:max_tweets] if max_tweets else rows
    for row in chosen:
        ref = row["ref_scores"][key][0]
        wins = [
            1.0 if s > ref else 0.5 if s == ref else 0.0
            for s in row["reply_scores"][key][:replies_per_tweet]
        ]
        row["reply_scores"]["judge"] = wins
        row["metrics"]["judge_win"] = float(np.mean(wins))
