"""Paired statistics against scipy and hand values; seeds as the unit; Holm; verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from replyrl.evaluation.stats import (
    bootstrap_ci,
    compare_to_baseline,
    holm,
    paired_compare,
    paired_effect_size,
    summarize,
    wilcoxon_p,
)
from replyrl.evaluation.verdict import GainRatio, Hypothesis, gain_ratios, judge_verdicts


def runs(*seeds: list[float]) -> dict[int, dict[str, float]]:
    """seed -> {tweet id: value} for tweets t0, t1, ..."""
    return {s: {f"t{i}": v for i, v in enumerate(vals)} for s, vals in enumerate(seeds)}


def test_wilcoxon_matches_scipy_and_an_exact_hand_value():
    d = [0.5, 1.2, -0.3, 0.8, 2.0, 0.1, 0.9]
    assert wilcoxon_p(d) == pytest.approx(st.wilcoxon(d, zero_method="pratt").pvalue)
    # all 5 differences positive: exact two-sided p = 2 / 2^5
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert wilcoxon_p([1, 2, 3, 4, 5], "greater") == pytest.approx(1 / 32)
    assert wilcoxon_p([0, 0, 0]) == 1.0


def test_paired_effect_size_hand_value():
    d = [1.0, 2.0, 3.0]  # mean 2, sd 1
    assert paired_effect_size(d) == pytest.approx(2.0)
    assert paired_effect_size([0.0, 0.0]) == 0.0


def test_holm_hand_values():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, float("nan"), 0.02])  # NaN is not part of the family
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_one_seed_comparison_is_paired_over_tweets():
    a = runs([0.5, 0.7, 0.9, 0.4, 0.8, 0.6])
    b = runs([0.4, 0.5, 0.8, 0.4, 0.5, 0.55])
    c = paired_compare("m", "a", "b", a, b)
    d = np.array([0.1, 0.2, 0.1, 0.0, 0.3, 0.05])
    assert c.unit == "tweet" and c.n_seeds == 1 and c.n_tweets == 6
    assert c.diff == pytest.approx(d.mean())
    assert c.p == pytest.approx(st.wilcoxon(d, zero_method="pratt").pvalue)
    assert c.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert c.ci_low <= c.diff <= c.ci_high


def test_paired_beats_unpaired_when_tweets_differ_in_difficulty():
    """Tweet difficulty varies a lot, the model gain is small but consistent: only a paired test
    sees it (Mann–Whitney on the pooled values does not)."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, size=40)
    a, b = runs(base + 0.1 + rng.normal(0, 0.02, 40)), runs(base)
    assert paired_compare("m", "a", "b", a, b).p < 1e-6
    assert st.mannwhitneyu(base + 0.1, base).pvalue > 0.3


def test_seed_is_the_unit_and_pooled_is_secondary():
    """Pooled over seeds, 3 × 30 tweets all favour a (pooled p tiny); across seeds, one seed goes
    the other way, so the seed-level test is not significant. The primary p is the seed test."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, size=30)
    shifts = [0.3, 0.25, -0.05]
    a = {
        s: {f"t{i}": base[i] + sh + rng.normal(0, 0.01) for i in range(30)}
        for s, sh in enumerate(shifts)
    }
    b = {s: {f"t{i}": base[i] for i in range(30)} for s in range(3)}
    c = paired_compare("m", "a", "b", a, b)
    assert c.unit == "seed" and c.n_seeds == 3
    assert c.seed_effects == pytest.approx(shifts, abs=0.01)
    assert c.p == pytest.approx(st.ttest_1samp(c.seed_effects, 0).pvalue)
    assert c.p > 0.05 and c.p_pooled_tweets < 1e-6


def test_single_run_baseline_pairs_with_every_seed():
    a = runs([1, 2, 3], [2, 3, 4])
    b = {7: {"t0": 0.0, "t1": 0.0, "t2": 0.0}}  # e.g. the base model: one run
    c = paired_compare("m", "a", "b", a, b)
    assert c.n_seeds == 2 and c.seed_effects == pytest.approx([2.0, 3.0])


def test_different_tweet_sets_fail_clearly():
    with pytest.raises(ValueError, match="different tweet sets"):
        paired_compare("m", "a", "b", runs([1, 2, 3]), runs([1, 2]))


def test_compare_to_baseline_holm_over_the_family():
    vals = {
        "sft": {
            0: {
                "x": {"t0": 0, "t1": 0, "t2": 0, "t3": 0, "t4": 0},
                "y": {"t0": 0, "t1": 0, "t2": 0, "t3": 0, "t4": 0},
            }
        },
        "grpo": {
            0: {
                "x": {"t0": 1, "t1": 2, "t2": 3, "t3": 4, "t4": 5},
                "y": {"t0": 1, "t1": -1, "t2": 2, "t3": -2, "t4": 0.5},
            }
        },
    }
    rows = compare_to_baseline(vals, ["x", "y"], "sft")
    assert [(r["a"], r["b"], r["metric"]) for r in rows] == [
        ("grpo", "sft", "x"),
        ("grpo", "sft", "y"),
    ]
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p"] for r in rows]))
    assert rows[0]["p"] == pytest.approx(2 / 32)


def test_verdict_uses_the_seed_level_test():
    """The same data as above: pooled tweets say 'held', the seeds say 'inconclusive' — the verdict
    follows the seeds."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, size=30)
    shifts = [0.3, 0.25, -0.05]
    values = {
        "grpo": {
            s: {"audience": {f"t{i}": base[i] + sh for i in range(30)}}
            for s, sh in enumerate(shifts)
        },
        "sft": {s: {"audience": {f"t{i}": base[i] for i in range(30)}} for s in range(3)},
    }
    h = Hypothesis("H1", "grpo beats sft", "grpo", "sft", "audience")
    (v,) = judge_verdicts([h], values, {})
    assert v["comparison"]["unit"] == "seed"
    assert v["comparison"]["p_pooled_tweets"] < 1e-6
    assert v["verdict"] == "inconclusive"


def test_verdicts_held_not_held_and_length_condition():
    t = [f"t{i}" for i in range(12)]
    values = {
        "sft": {0: {"audience": dict.fromkeys(t, 0.5)}},
        "up": {0: {"audience": {x: 0.6 + 0.01 * i for i, x in enumerate(t)}}},
        "down": {0: {"audience": {x: 0.4 - 0.01 * i for i, x in enumerate(t)}}},
    }
    models = {"up": {"metrics": {"length": {"mean": 200.0}}}, "down": {"metrics": {}}}
    hs = [
        Hypothesis("H1", "up beats sft", "up", "sft", "audience", alpha=0.01),
        Hypothesis("H2", "down beats sft", "down", "sft", "audience"),
        Hypothesis(
            "H3",
            "up beats sft within 50-150 chars",
            "up",
            "sft",
            "audience",
            length_range=[50, 150],
        ),
        Hypothesis("H4", "missing beats sft", "missing", "sft", "audience"),
    ]
    v = {x["id"]: x for x in judge_verdicts(hs, values, models)}
    assert v["H1"]["verdict"] == "held"
    assert v["H1"]["p"] == pytest.approx(1 / 2**12)  # one-sided exact Wilcoxon, 12 positives
    assert v["H1"]["p_holm"] == pytest.approx(3 / 2**12)  # three tested hypotheses
    assert v["H2"]["verdict"] == "not held"
    assert v["H3"]["verdict"] == "not held" and "outside 50–150" in v["H3"]["why"]
    assert v["H4"]["verdict"] == "not tested"


def test_gain_ratio():
    models = {
        m: {"metrics": {"audience": {"seed_mean": v}}}
        for m, v in {"sft": 0.5, "learned": 0.52, "oracle": 0.58}.items()
    }
    (r,) = gain_ratios(
        [GainRatio("learned/oracle", "audience", ["learned", "sft"], ["oracle", "sft"])], models
    )
    assert r["ratio"] == pytest.approx(0.25)


def test_bootstrap_ci_covers_true_mean_in_at_least_90_percent_of_100_trials():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        x = rng.exponential(scale=2.0, size=60)  # skewed, true mean 2.0
        lo, hi = bootstrap_ci(x, n_boot=500, seed=trial)
        covered += lo <= 2.0 <= hi
    assert covered >= 90, covered


def test_summarize_one_seed_and_several():
    one = summarize([[1.0, 2.0, 3.0, 4.0]], n_boot=200)
    assert one.mean == pytest.approx(2.5) and one.n_seeds == 1 and one.seed_std == 0.0
    s = summarize([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [2.0, 3.0, 4.0]], n_boot=200)
    assert s.seed_mean == pytest.approx(3.0) and s.seed_std == pytest.approx(1.0)
    half = st.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # t-interval over the seed means
    assert (s.ci_low, s.ci_high) == pytest.approx((3.0 - half, 3.0 + half))


def test_summary_refuses_runs_scored_on_different_tweets():
    from replyrl.evaluation.summary import check_same_tweets

    runs = [{"id": "a", "name": "sft", "seed": 0}, {"id": "b", "name": "grpo", "seed": 0}]
    rows = {"a": [{"tweet_id": "t1"}, {"tweet_id": "t2"}], "b": [{"tweet_id": "t1"}]}
    with pytest.raises(ValueError, match="scored on different tweet sets"):
        check_same_tweets(runs, rows)
