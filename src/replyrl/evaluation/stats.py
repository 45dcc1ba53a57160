"""Statistics over per-tweet scores: bootstrap CIs, Mann–Whitney U, Cohen's d, seed aggregation.

Tests are two-sided. Mann–Whitney U comes from scipy.stats; Cohen's d uses the pooled standard
deviation (Cohen 1988, eq. 2.5.2); the bootstrap CI is the percentile interval (Efron & Tibshirani
1993, ch. 13) with a seeded generator so reports are reproducible.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def _finite(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) CI of the mean; (nan, nan) with no finite value."""
    a = _finite(values)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))  # (n_boot, n) resample indices
    means = a[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean(a) - mean(b)) / pooled sd; 0 when both samples are constant and equal, NaN if n < 2."""
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return float("nan")
    pooled = np.sqrt(
        ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2)
    )
    diff = x.mean() - y.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / pooled)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann–Whitney U statistic and p-value (scipy); (nan, nan) for empty input or
    when every value is identical (the test is undefined)."""
    from scipy.stats import mannwhitneyu

    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0 or np.ptp(np.concatenate([x, y])) == 0:
        return float("nan"), float("nan")
    res = mannwhitneyu(x, y, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


@dataclass
class MeanCI:
    """A mean with its bootstrap CI and, over several seeds, the spread across seeds."""

    mean: float
    """Mean over all per-tweet values (pooled across seeds)."""
    ci_low: float
    """Lower end of the bootstrap 95 % CI."""
    ci_high: float
    """Upper end of the bootstrap 95 % CI."""
    n: int
    """Number of finite per-tweet values."""
    seed_mean: float
    """Mean of the per-seed means."""
    seed_std: float
    """Standard deviation of the per-seed means (0 for a single seed)."""
    n_seeds: int
    """How many seeds (runs) were aggregated."""


def summarize(per_seed: Sequence[Sequence[float]], n_boot: int = 1000, seed: int = 0) -> MeanCI:
    """Aggregate one metric of one model over its seeds: pooled mean + CI, mean ± std of seeds."""
    pooled = _finite([v for run in per_seed for v in run])
    seed_means = [
        m
        for m in (np.mean(_finite(r)) if _finite(r).size else np.nan for r in per_seed)
        if np.isfinite(m)
    ]
    lo, hi = bootstrap_ci(pooled, n_boot=n_boot, seed=seed)
    return MeanCI(
        mean=float(pooled.mean()) if pooled.size else float("nan"),
        ci_low=lo,
        ci_high=hi,
        n=int(pooled.size),
        seed_mean=float(np.mean(seed_means)) if seed_means else float("nan"),
        seed_std=float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else 0.0,
        n_seeds=len(per_seed),
    )


@dataclass
class Comparison:
    """One metric compared between two models on their pooled per-tweet values."""

    metric: str
    """Metric name."""
    a: str
    """First model."""
    b: str
    """Second model."""
    mean_a: float
    """Mean of a."""
    mean_b: float
    """Mean of b."""
    u: float
    """Mann–Whitney U statistic of a vs b."""
    p: float
    """Two-sided p-value."""
    d: float
    """Cohen's d of a minus b."""


def compare_models(values: dict[str, dict[str, list[float]]], metrics: Sequence[str]) -> list[dict]:
    """Mann–Whitney U and Cohen's d for every pair of models and every metric.

    Args:
        values: model -> metric -> pooled per-tweet values (all seeds).
        metrics: which metrics to compare.
    """
    rows = []
    for a, b in itertools.combinations(list(values), 2):
        for m in metrics:
            x, y = values[a].get(m, []), values[b].get(m, [])
            if not _finite(x).size or not _finite(y).size:
                continue
            u, p = mann_whitney(x, y)
            rows.append(
                asdict(
                    Comparison(
                        m,
                        a,
                        b,
                        float(np.mean(_finite(x))),
                        float(np.mean(_finite(y))),
                        u,
                        p,
                        cohens_d(x, y),
                    )
                )
            )
    return rows
