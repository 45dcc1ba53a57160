"""Statistics against scipy and hand values; bootstrap coverage on a seeded simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from replyrl.evaluation.stats import bootstrap_ci, cohens_d, compare_models, mann_whitney, summarize


def test_mann_whitney_matches_scipy_and_hand_value():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    b = [6.0, 7.0, 8.0, 9.0, 10.0]
    u, p = mann_whitney(a, b)
    ref = st.mannwhitneyu(a, b, alternative="two-sided")
    assert u == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert u == 0.0  # no a beats any b
    assert p == pytest.approx(2 / 252)  # exact: 2 of C(10,5) = 252 arrangements as extreme
    x = [0.3, 1.2, 2.2, 0.1, 4.0, 2.5, 1.1]
    y = [2.0, 3.1, 0.9, 5.5, 3.3, 2.8]
    u, p = mann_whitney(x, y)
    ref = st.mannwhitneyu(x, y, alternative="two-sided")
    assert (u, p) == pytest.approx((ref.statistic, ref.pvalue))


def test_cohens_d_hand_value():
    a, b = [2.0, 4.0, 6.0], [1.0, 2.0, 3.0]
    # means 4 and 2; variances 4 and 1; pooled sd = sqrt((2*4 + 2*1)/4) = sqrt(2.5)
    assert cohens_d(a, b) == pytest.approx(2 / np.sqrt(2.5))
    assert cohens_d(b, a) == pytest.approx(-2 / np.sqrt(2.5))
    assert cohens_d([1, 1], [1, 1]) == 0.0


def test_bootstrap_ci_covers_true_mean_in_at_least_90_percent_of_200_trials():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        x = rng.exponential(scale=2.0, size=60)  # skewed, true mean 2.0
        lo, hi = bootstrap_ci(x, n_boot=1000, seed=trial)
        covered += lo <= 2.0 <= hi
    assert covered >= 180, covered


def test_summarize_pools_seeds_and_reports_spread():
    s = summarize([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], n_boot=200)
    assert s.mean == pytest.approx(3.0)
    assert s.seed_mean == pytest.approx(3.0)
    assert s.seed_std == pytest.approx(np.std([2.0, 4.0], ddof=1))
    assert s.n == 6 and s.n_seeds == 2
    assert s.ci_low <= s.mean <= s.ci_high


def test_compare_models_every_pair():
    vals = {"a": {"m": [1, 2, 3]}, "b": {"m": [4, 5, 6]}, "c": {"m": [1, 2, 9]}}
    rows = compare_models(vals, ["m"])
    assert [(r["a"], r["b"]) for r in rows] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert rows[0]["d"] == pytest.approx(-3.0)
