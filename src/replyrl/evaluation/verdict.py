"""Pre-registered hypotheses and their verdicts (the evidence ladder, docs/evidence.md).

A hypothesis names two models, a metric and a direction ("grpo-oracle beats sft on the audience"),
optionally a range the first model's mean reply length must stay in. It is written in the config
*before* the run; the report opens with its verdict:

* held — the one-sided paired test in the stated direction has Holm-adjusted p < alpha (Holm over
  the hypotheses of the report) and every stated condition is met;
* not held — the effect goes the other way significantly (one-sided p < alpha), or a stated
  condition (the length range) is not met;
* inconclusive — neither: the data cannot tell.

With several seeds the paired test is the t-test across seed effects (the seed is the unit); with
one seed it is the Wilcoxon signed-rank test over tweets, and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from replyrl.evaluation.stats import holm, paired_compare


@dataclass
class Hypothesis:
    """A claim about two models, written down before the run."""

    id: str
    """Short id (H1, H2, ...)."""
    claim: str
    """The claim in words."""
    a: str
    """The model claimed better (or worse, with direction: less)."""
    b: str
    """The model it is compared with."""
    metric: str
    """Metric of the claim (audience, proxy, semantic_diversity, length, ...)."""
    direction: Literal["greater", "less"] = "greater"
    """Whether a's metric is claimed greater or less than b's."""
    alpha: float = 0.05
    """Significance level of the claim (after Holm's correction over the hypotheses)."""
    length_range: list[float] | None = None
    """[lo, hi]: a's mean reply length (chars) must lie inside, or the claim does not hold."""

    def __post_init__(self):
        if not self.id or not self.a or not self.b or self.a == self.b:
            raise ValueError(f"hypothesis {self.id!r}: needs an id and two different models a, b")
        if not 0 < self.alpha < 1:
            raise ValueError(f"hypothesis {self.id}: alpha must be in (0, 1), got {self.alpha}")
        if self.length_range is not None and (
            len(self.length_range) != 2 or not self.length_range[0] < self.length_range[1]
        ):
            raise ValueError(f"hypothesis {self.id}: length_range must be [lo, hi] with lo < hi")


@dataclass
class GainRatio:
    """(num_a − num_b) / (den_a − den_b) on one metric, e.g. the learned/oracle audience gain."""

    name: str
    """What the ratio means."""
    metric: str
    """Metric of both gains."""
    num: list[str]
    """[model, baseline] of the numerator gain."""
    den: list[str]
    """[model, baseline] of the denominator gain."""

    def __post_init__(self):
        if len(self.num) != 2 or len(self.den) != 2:
            raise ValueError(f"ratio {self.name!r}: num and den are [model, baseline] pairs")


def judge_verdicts(
    hypotheses: list[Hypothesis],
    values: Mapping[str, Mapping[int, Mapping[str, Mapping[str, float]]]],
    models: Mapping[str, dict],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """The verdict of each hypothesis (see the module docstring).

    Args:
        values: model -> seed -> metric -> {tweet id: value}.
        models: summary["models"] (for the mean reply length).
    """
    rows: list[dict] = []
    tested = []
    for h in hypotheses:
        row = {**asdict(h), "verdict": "not tested", "why": ""}
        missing = [m for m in (h.a, h.b) if m not in values]
        if missing:
            row["why"] = f"model(s) {missing} were not evaluated"
            rows.append(row)
            continue
        a_runs = {s: v[h.metric] for s, v in values[h.a].items() if h.metric in v}
        b_runs = {s: v[h.metric] for s, v in values[h.b].items() if h.metric in v}
        if not a_runs or not b_runs:
            row["why"] = f"metric {h.metric!r} was not computed"
            rows.append(row)
            continue
        c = paired_compare(h.metric, h.a, h.b, a_runs, b_runs, h.direction, n_boot, seed)
        opposite = "less" if h.direction == "greater" else "greater"
        c_opp = paired_compare(h.metric, h.a, h.b, a_runs, b_runs, opposite, n_boot, seed)
        row.update(comparison=asdict(c), p=c.p, p_opposite=c_opp.p)
        rows.append(row)
        tested.append(row)
    for row, adj in zip(tested, holm([r["p"] for r in tested])):
        row["p_holm"] = adj
        c = row["comparison"]
        unit = (
            f"{c['n_seeds']} seeds (t-test across seed effects)"
            if c["unit"] == "seed"
            else f"1 seed, {c['n_tweets']} tweets (Wilcoxon; seeds not replicated)"
        )
        length = models.get(row["a"], {}).get("metrics", {}).get("length", {}).get("mean")
        rng = row["length_range"]
        in_range = rng is None or (length is not None and rng[0] <= length <= rng[1])
        effect = f"{row['metric']} {c['mean_a']:.4f} vs {c['mean_b']:.4f} (diff {c['diff']:+.4f})"
        if not in_range:
            row["verdict"] = "not held"
            row["why"] = (
                f"{effect}, but {row['a']}'s mean length {length:.0f} chars is outside "
                f"{rng[0]:g}–{rng[1]:g}; {unit}"
            )
        elif adj < row["alpha"]:
            row["verdict"] = "held"
            row["why"] = f"{effect}, Holm-adjusted p {adj:.2g} < {row['alpha']}; {unit}"
        elif row["p_opposite"] < row["alpha"]:
            row["verdict"] = "not held"
            row["why"] = f"{effect}: the other direction, p {row['p_opposite']:.2g}; {unit}"
        else:
            row["verdict"] = "inconclusive"
            row["why"] = f"{effect}, Holm-adjusted p {adj:.2g} >= {row['alpha']}; {unit}"
    return rows


def gain_ratios(ratios: list[GainRatio], models: Mapping[str, dict]) -> list[dict]:
    """Each ratio of mean gains (seed means), with the two gains; NaN when a model is missing or
    the denominator gain is 0."""

    def gain(pair: list[str], metric: str) -> float:
        x, y = (models.get(m, {}).get("metrics", {}).get(metric) for m in pair)
        return (x["seed_mean"] - y["seed_mean"]) if x and y else float("nan")

    out = []
    for r in ratios:
        num, den = gain(r.num, r.metric), gain(r.den, r.metric)
        value = (
            num / den if math.isfinite(num) and math.isfinite(den) and den != 0 else float("nan")
        )
        out.append({**asdict(r), "num_gain": num, "den_gain": den, "ratio": value})
    return out
