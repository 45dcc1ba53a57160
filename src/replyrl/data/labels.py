"""Engagement labels (DESIGN §2): what a reward model is trained to predict.

The reward must credit the *text*, not who wrote it or when. Kinds:
  - `ratio`: min(reply_likes / max(tweet_likes, 1), 1) — the seed's label.
  - `log`: log1p(reply_likes + 2·reply_retweets).
  - `residual` (default): the `log` label minus a least-squares linear model of the context
    features log1p(tweet_likes), log1p(reply_author_followers), log1p(reply_time_diff_seconds),
    fitted on the training split only, then scaled to [0, 1] by the training split's 1%/99%
    quantiles and clipped.
  - `rank`: percentile of the reply among the replies to the same tweet (ties share the mean
    rank; a tweet with one reply gets 0.5).

Context features, decided on the training split:
  - a feature that is constant there (e.g. tweet_likes absent → default 0 everywhere, or
    followers never known) is dropped: it cannot be fitted and the intercept covers it;
  - a feature known for some rows only is used with missing values set to 0 plus a 0/1
    "missing" indicator column, so a missing value does not pretend to be a real zero;
  - a feature known for every training row but missing at transform time is filled with its
    training mean (its effect is then the average effect, not an extrapolation).
For every kind the labeler also fits this context model to the kind's own base values, so
`summary()["context_r2"]` says how much of the label's variance context explains (on the
training split) and `text_share` how much is left for the text.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from replyrl.errors import InputError
from replyrl.records import Record

KINDS = ("ratio", "log", "residual", "rank")
CONTEXT_FEATURES = ("tweet_likes", "reply_author_followers", "reply_time_diff_seconds")


def engagement_raw(rec: Record) -> int:
    """The engagement score: reply_likes + 2·reply_retweets (a retweet spreads the reply)."""
    return rec.reply_likes + 2 * rec.reply_retweets


def base_label(records: Sequence[Record], kind: str) -> np.ndarray:
    """The label before any fitted step: ratio, log, or rank; `residual` starts from `log`."""
    _check_kind(kind)
    if kind == "ratio":
        return np.array([min(r.reply_likes / max(r.tweet_likes, 1), 1.0) for r in records])
    if kind == "rank":
        return rank_within_tweet(records)
    return np.array([math.log1p(engagement_raw(r)) for r in records])


def rank_within_tweet(records: Sequence[Record]) -> np.ndarray:
    """Percentile (0 = least, 1 = most engaged) of each reply among its tweet's replies."""
    out = np.full(len(records), 0.5)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[r.tweet_id].append(i)
    for idx in groups.values():
        if len(idx) > 1:
            ranks = rankdata([engagement_raw(records[i]) for i in idx], method="average")
            out[idx] = (ranks - 1.0) / (len(idx) - 1.0)
    return out


@dataclass
class ContextFeature:
    """One context feature as fitted on the training split."""

    name: str
    """Record field; the model sees log1p of it."""
    indicator: bool
    """True when some training rows lacked it: missing → 0 plus a 0/1 missing column."""
    fill: float
    """log1p value used when it is missing at transform time and `indicator` is False."""


@dataclass
class Labeler:
    """A fitted engagement label: `transform(records)` gives one float per record."""

    kind: str
    """One of ratio, log, residual, rank."""
    features: list[ContextFeature] = field(default_factory=list)
    """Context features used by the linear model (dropped ones are not listed)."""
    coef: list[float] = field(default_factory=list)
    """Linear weights, intercept first, then per feature (value, then indicator if any)."""
    context_r2: float = 0.0
    """Share of the base label's training variance the context model explains."""
    scale: tuple[float, float] = (0.0, 1.0)
    """(low, high) training quantiles of the residual mapped to 0 and 1 (residual only)."""
    quantiles: tuple[float, float] = (0.01, 0.99)
    """Which training quantiles define `scale`."""
    n_train: int = 0
    """Training records the labeler was fitted on."""
    dropped: list[str] = field(default_factory=list)
    """Context features left out because they were constant on the training split."""

    def context_prediction(self, records: Sequence[Record]) -> np.ndarray:
        """What the context model predicts for the base label of each record."""
        return _design(records, self.features) @ np.asarray(self.coef)

    def transform(self, records: Sequence[Record]) -> np.ndarray:
        """The label of each record (float64, finite; in [0, 1] except for `log`)."""
        base = base_label(records, self.kind)
        if self.kind != "residual":
            return base
        resid = base - self.context_prediction(records)
        lo, hi = self.scale
        if hi - lo < 1e-12:  # a constant residual carries no ranking; put everything mid-scale
            return np.full(len(records), 0.5)
        return np.clip((resid - lo) / (hi - lo), 0.0, 1.0)

    def summary(self) -> dict[str, Any]:
        """Kind, n, features used/dropped, and the variance explained by context vs text."""
        return {
            "kind": self.kind,
            "n_train": self.n_train,
            "features": [
                f.name + (" (+missing indicator)" if f.indicator else "") for f in self.features
            ],
            "dropped_features": list(self.dropped),
            "context_r2": round(self.context_r2, 6),
            "text_share": round(1.0 - self.context_r2, 6),
            "coef": dict(zip(_coef_names(self.features), [round(c, 6) for c in self.coef])),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Labeler:
        d = dict(d)
        d["features"] = [ContextFeature(**f) for f in d.get("features", [])]
        d["scale"] = tuple(d.get("scale", (0.0, 1.0)))
        d["quantiles"] = tuple(d.get("quantiles", (0.01, 0.99)))
        _check_kind(d.get("kind", ""))
        return cls(**d)


def fit_labeler(
    train: Sequence[Record], kind: str = "residual", quantiles: tuple[float, float] = (0.01, 0.99)
) -> Labeler:
    """Fit a label on the training split only (context model and residual scale).

    Args:
        train: training records (never the gold or test split: that would leak).
        kind: ratio, log, residual or rank.
        quantiles: training quantiles mapped to 0 and 1 for `residual`.

    Example:
        >>> lab = fit_labeler(split["sft"] + split["rl"])  # doctest: +SKIP
        >>> y = lab.transform(split["test"])               # doctest: +SKIP
    """
    _check_kind(kind)
    if not train:
        raise InputError("fit_labeler: the training split is empty")
    lo_q, hi_q = quantiles
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ValueError(
            f"fit_labeler: quantiles must satisfy 0 <= low < high <= 1, got {quantiles}"
        )
    features, dropped = _choose_features(train)
    x = _design(train, features)
    y = base_label(train, kind)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ coef
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - fitted) ** 2)) / ss_tot if ss_tot > 0 else 0.0
    scale = (0.0, 1.0)
    if kind == "residual":
        resid = y - fitted
        scale = (float(np.quantile(resid, lo_q)), float(np.quantile(resid, hi_q)))
    return Labeler(
        kind=kind,
        features=features,
        coef=[float(c) for c in coef],
        context_r2=max(r2, 0.0),
        scale=scale,
        quantiles=(lo_q, hi_q),
        n_train=len(train),
        dropped=dropped,
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown label kind {kind!r}; choose one of {', '.join(KINDS)}")


def _raw_feature(records: Sequence[Record], name: str) -> np.ndarray:
    """log1p of a context field, NaN where it is missing."""
    vals = [getattr(r, name) for r in records]
    return np.array([math.log1p(v) if v is not None else np.nan for v in vals], dtype=float)


def _choose_features(train: Sequence[Record]) -> tuple[list[ContextFeature], list[str]]:
    features, dropped = [], []
    for name in CONTEXT_FEATURES:
        v = _raw_feature(train, name)
        known = ~np.isnan(v)
        partial = bool(known.any() and not known.all())
        # constant (or never known) on train -> cannot be fitted; a partially known feature
        # still carries information through its missing indicator
        if not known.any() or (np.ptp(v[known]) == 0 and not partial):
            dropped.append(name)
            continue
        fill = float(v[known].mean())
        features.append(ContextFeature(name=name, indicator=partial, fill=fill))
    return features, dropped


def _design(records: Sequence[Record], features: Sequence[ContextFeature]) -> np.ndarray:
    cols = [np.ones(len(records))]
    for f in features:
        v = _raw_feature(records, f.name)
        missing = np.isnan(v)
        if f.indicator:
            cols += [np.where(missing, 0.0, v), missing.astype(float)]
        else:
            cols.append(np.where(missing, f.fill, v))
    return np.column_stack(cols)


def _coef_names(features: Sequence[ContextFeature]) -> list[str]:
    names = ["intercept"]
    for f in features:
        names.append(f"log1p({f.name})")
        if f.indicator:
            names.append(f"{f.name} missing")
    return names
