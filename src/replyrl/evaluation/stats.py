"""Statistics over per-tweet scores: paired comparisons, seeds as the unit, Holm–Bonferroni.

Every model is scored on the *same* test tweets, so a comparison of two models is paired: the
per-tweet differences d_t = a_t − b_t carry the information, and tweets that are hard for both
models cancel. For one pair of runs (one seed each):

* mean difference with a bootstrap 95 % CI (scipy.stats.bootstrap on the differences, i.e. tweets
  resampled with their pairing kept; BCa where defined, percentile otherwise);
* Wilcoxon signed-rank test on the differences (scipy.stats.wilcoxon, zeros handled by Pratt);
* the paired effect size d_z = mean(d) / sd(d) (Cohen 1988, §2.3.5).

With several training seeds the *seed* is the unit: each seed gives one effect (its mean paired
difference), and the claim rests on those effects — mean ± sd over seeds and a one-sample t-test
across seeds (scipy.stats.ttest_1samp; with 3 seeds, df = 2). Pooling the tweets of all seeds into
one test treats seed × tweet as independent (pseudo-replication); it is computed only as a
labelled secondary number. A model without seeds (the base model) is paired with every seed of
the other. Holm's step-down correction (Holm 1979) controls the family-wise error over all
comparisons a report makes; raw and adjusted p are both kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np


def _finite(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap (1 − alpha) CI of the mean (scipy, BCa; percentile when BCa is undefined);
    (nan, nan) with no finite value, (x, x) for one value or a constant sample."""
    from scipy.stats import bootstrap

    a = _finite(values)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1 or np.ptp(a) == 0:
        return float(a[0]), float(a[0])
    for method in ("BCa", "percentile"):
        res = bootstrap(
            (a,),
            np.mean,
            n_resamples=n_boot,
            confidence_level=1 - alpha,
            method=method,
            rng=np.random.default_rng(seed),
            vectorized=True,
        )
        lo, hi = res.confidence_interval
        if math.isfinite(lo) and math.isfinite(hi):
            return float(lo), float(hi)
    return float("nan"), float("nan")


def paired_effect_size(diff: Sequence[float]) -> float:
    """d_z = mean(d) / sd(d) (ddof 1); 0 when every difference is 0, ±inf when all are equal."""
    d = _finite(diff)
    if d.size < 2:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    return float(d.mean() / sd)


def wilcoxon_p(diff: Sequence[float], alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p of the differences (scipy, Pratt's zero handling); 1.0 when every
    difference is 0 (nothing to test), NaN with fewer than 2 differences."""
    from scipy.stats import wilcoxon

    d = _finite(diff)
    if d.size < 2:
        return float("nan")
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="pratt", alternative=alternative).pvalue)


def seed_t_test_p(effects: Sequence[float], alternative: str = "two-sided") -> float:
    """One-sample t-test of per-seed effects against 0 (scipy); NaN with fewer than 2 seeds."""
    from scipy.stats import ttest_1samp

    e = _finite(effects)
    if e.size < 2:
        return float("nan")
    if np.ptp(e) == 0:  # identical effects: t is ±inf (or undefined at 0)
        if e[0] == 0:
            return 1.0
        positive = e[0] > 0
        if alternative == "two-sided":
            return 0.0
        return 0.0 if (alternative == "greater") == positive else 1.0
    return float(ttest_1samp(e, 0.0, alternative=alternative).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN and is
    not counted in the family size.

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


@dataclass
class MeanCI:
    """A mean with its bootstrap CI and, over several seeds, the spread across seeds."""

    mean: float
    """Mean over all per-tweet values (pooled across seeds)."""
    ci_low: float
    """Lower end of the bootstrap 95 % CI (of the per-seed means when there are several seeds)."""
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
    """One metric of one model over its seeds: pooled mean, mean ± sd of the per-seed means, and a
    bootstrap CI over tweets (one seed) — with several seeds the CI is the t-interval of the
    per-seed means, since the seed is the unit of replication."""
    from scipy.stats import t as t_dist

    pooled = _finite([v for run in per_seed for v in run])
    seed_means = [float(np.mean(_finite(r))) for r in per_seed if _finite(r).size]
    if len(seed_means) > 1:
        m, sd, k = float(np.mean(seed_means)), float(np.std(seed_means, ddof=1)), len(seed_means)
        half = t_dist.ppf(0.975, k - 1) * sd / math.sqrt(k)
        lo, hi = m - half, m + half
    else:
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
class PairedComparison:
    """One metric compared between two models on the same tweets."""

    metric: str
    """Metric name."""
    a: str
    """First model."""
    b: str
    """Second model (the baseline)."""
    n_tweets: int
    """Tweets paired per seed."""
    n_seeds: int
    """Paired seeds (the unit of the primary test when > 1)."""
    mean_a: float
    """Mean of a over the paired tweets and seeds."""
    mean_b: float
    """Mean of b."""
    diff: float
    """Mean paired difference a − b (mean of the per-seed effects)."""
    ci_low: float
    """95 % CI of the difference: tweet bootstrap (one seed) or t-interval over seed effects."""
    ci_high: float
    """Upper end of that CI."""
    effect_size: float
    """Paired effect size d_z of the per-tweet differences (pooled over seeds)."""
    unit: str
    """`seed` (several seeds: t-test across seed effects) or `tweet` (one seed: Wilcoxon)."""
    p: float
    """Primary p-value (two-sided unless the comparison is a directional hypothesis)."""
    alternative: str = "two-sided"
    """two-sided, greater or less."""
    seed_effects: list[float] = field(default_factory=list)
    """Each seed's mean paired difference."""
    seed_sd: float = float("nan")
    """Standard deviation of the seed effects."""
    p_pooled_tweets: float = float("nan")
    """Secondary: Wilcoxon over all seed × tweet differences pooled (pseudo-replicated)."""
    p_holm: float = float("nan")
    """p adjusted by Holm over the report's family of comparisons."""


def pair_runs(
    a_runs: Mapping[int, Mapping[str, float]],
    b_runs: Mapping[int, Mapping[str, float]],
    a: str = "a",
    b: str = "b",
) -> list[tuple[int, list[str], np.ndarray, np.ndarray]]:
    """Pair the runs of two models: seed with seed when both have the seed, a single-run model with
    every seed of the other. Each run maps tweet id -> value.

    Returns [(seed, tweet ids, a values, b values)]; raises ValueError when the two models were
    scored on different tweet sets (a paired test is then impossible).
    """
    if len(b_runs) == 1 and len(a_runs) >= 1:
        (b_only,) = b_runs.values()
        pairs = [(s, a_runs[s], b_only) for s in a_runs]
    elif len(a_runs) == 1:
        (a_only,) = a_runs.values()
        pairs = [(s, a_only, b_runs[s]) for s in b_runs]
    else:
        common = sorted(set(a_runs) & set(b_runs))
        if not common:
            raise ValueError(
                f"cannot pair {a} (seeds {sorted(a_runs)}) with {b} (seeds {sorted(b_runs)}): "
                "no common seed"
            )
        pairs = [(s, a_runs[s], b_runs[s]) for s in common]
    out = []
    for s, x, y in pairs:
        if set(x) != set(y):
            only_a, only_b = len(set(x) - set(y)), len(set(y) - set(x))
            raise ValueError(
                f"{a} and {b} (seed {s}) were scored on different tweet sets ({len(x)} vs {len(y)} "
                f"tweets; {only_a} only in {a}, {only_b} only in {b}): paired comparisons need the "
                "same test tweets — re-run the evaluation of both on one --data file"
            )
        ids = sorted(x)
        out.append(
            (s, ids, np.array([x[t] for t in ids], float), np.array([y[t] for t in ids], float))
        )
    return out


def paired_compare(
    metric: str,
    a: str,
    b: str,
    a_runs: Mapping[int, Mapping[str, float]],
    b_runs: Mapping[int, Mapping[str, float]],
    alternative: str = "two-sided",
    n_boot: int = 1000,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of `a` against `b` on one metric (see the module docstring).

    Args:
        a_runs, b_runs: seed -> {tweet id: value} for each model.
        alternative: `two-sided`, or `greater`/`less` for a directional (pre-registered) claim.
    """
    from scipy.stats import t as t_dist

    pairs = pair_runs(a_runs, b_runs, a, b)
    effects, diffs, xs, ys = [], [], [], []
    for _, _, x, y in pairs:
        keep = np.isfinite(x) & np.isfinite(y)
        d = x[keep] - y[keep]
        if d.size:
            effects.append(float(d.mean()))
            diffs.append(d)
            xs.append(x[keep])
            ys.append(y[keep])
    if not effects:
        nan = float("nan")
        return PairedComparison(
            metric, a, b, 0, 0, nan, nan, nan, nan, nan, nan, "tweet", nan, alternative
        )
    pooled = np.concatenate(diffs)
    n_seeds = len(effects)
    if n_seeds > 1:
        sd = float(np.std(effects, ddof=1))
        half = t_dist.ppf(0.975, n_seeds - 1) * sd / math.sqrt(n_seeds)
        lo, hi = float(np.mean(effects)) - half, float(np.mean(effects)) + half
        p, unit = seed_t_test_p(effects, alternative), "seed"
    else:
        sd = float("nan")
        lo, hi = bootstrap_ci(diffs[0], n_boot=n_boot, seed=seed)
        p, unit = wilcoxon_p(diffs[0], alternative), "tweet"
    return PairedComparison(
        metric=metric,
        a=a,
        b=b,
        n_tweets=int(diffs[0].size),
        n_seeds=n_seeds,
        mean_a=float(np.mean(np.concatenate(xs))),
        mean_b=float(np.mean(np.concatenate(ys))),
        diff=float(np.mean(effects)),
        ci_low=lo,
        ci_high=hi,
        effect_size=paired_effect_size(pooled),
        unit=unit,
        p=p,
        alternative=alternative,
        seed_effects=effects,
        seed_sd=sd,
        p_pooled_tweets=wilcoxon_p(pooled, alternative) if n_seeds > 1 else p,
    )


def compare_to_baseline(
    values: Mapping[str, Mapping[int, Mapping[str, Mapping[str, float]]]],
    metrics: Sequence[str],
    baseline: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Every model against `baseline` on every metric, paired, Holm-adjusted over the whole family.

    Args:
        values: model -> seed -> metric -> {tweet id: value}.
    """
    rows = []
    for name in values:
        if name == baseline:
            continue
        for m in metrics:
            a_runs = {s: v[m] for s, v in values[name].items() if m in v}
            b_runs = {s: v[m] for s, v in values[baseline].items() if m in v}
            if not a_runs or not b_runs:
                continue
            rows.append(paired_compare(m, name, baseline, a_runs, b_runs, n_boot=n_boot, seed=seed))
    for row, adj in zip(rows, holm([r.p for r in rows])):
        row.p_holm = adj
    return [asdict(r) for r in rows]
