"""Aggregate per-tweet rows of every run into the evaluation summary (what summary.json holds).

Runs with the same model name are seeds of one recipe: each metric gets its mean, the mean ± sd of
the per-seed means and a 95 % CI (tweet bootstrap for one seed, t-interval over seeds otherwise).
Every model is compared with the baseline on every metric by paired tests on the same tweets, the
seed as the unit when there are several, Holm-adjusted over the whole family (evaluation/stats.py);
pre-registered hypotheses get a verdict (evaluation/verdict.py). Alarms are recomputed from the rows,
so `replyrl report DIR` needs no model.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from replyrl.config import ConfigError
from replyrl.errors import InputError
from replyrl.evaluation.alarms import AlarmConfig, run_alarms
from replyrl.evaluation.logs import training_curves
from replyrl.evaluation.stats import compare_to_baseline, summarize

# Metric order in tables; direction says which way is better ("+" higher, "-" lower, "" neither).
METRICS: dict[str, tuple[str, str]] = {
    "proxy": ("proxy RM", "+"),
    "gold": ("gold RM", "+"),
    "audience": ("audience (synthetic gold)", "+"),
    "judge_win": ("judge win rate", "+"),
    "relevance": ("relevance", "+"),
    "rouge_l": ("ROUGE-L F1", "+"),
    "bertscore_f1": ("BERTScore F1", "+"),
    "self_bleu": ("Self-BLEU", "-"),
    "distinct_1": ("Distinct-1", "+"),
    "distinct_2": ("Distinct-2", "+"),
    "semantic_diversity": ("semantic diversity", "+"),
    "length": ("length (chars)", ""),
    "duplicate_rate": ("duplicate rate", "-"),
}


def metric_names(rows: list[dict]) -> list[str]:
    """Metrics present in the rows, pass@k first (by k), then METRICS order."""
    have = set().union(*(r["metrics"] for r in rows)) if rows else set()
    passk = sorted((m for m in have if m.startswith("pass@")), key=lambda m: int(m[5:]))
    return passk + [m for m in METRICS if m in have]


def check_same_tweets(runs: list[dict], rows_by_run: dict[str, list[dict]]) -> None:
    """Every run must be scored on the same test tweets, or no comparison is paired."""
    sets = {r["id"]: {row["tweet_id"] for row in rows_by_run[r["id"]]} for r in runs}
    first = runs[0]
    for r in runs[1:]:
        if sets[r["id"]] != sets[first["id"]]:
            a, b = sets[first["id"]], sets[r["id"]]
            raise InputError(
                f"{first['name']} (seed {first['seed']}) and {r['name']} (seed {r['seed']}) were "
                f"scored on different tweet sets ({len(a)} vs {len(b)} tweets, {len(a ^ b)} not in "
                "both): paired comparisons need every model scored on the same test tweets"
            )


def per_tweet_values(runs: list[dict], rows_by_run: dict[str, list[dict]], metrics: list[str]):
    """model -> seed -> metric -> {tweet id: value}."""
    out: dict = {}
    for run in runs:
        rows = rows_by_run[run["id"]]
        out.setdefault(run["name"], {})[run["seed"]] = {
            m: {row["tweet_id"]: row["metrics"].get(m, np.nan) for row in rows} for m in metrics
        }
    return out


def build_summary(
    meta: dict,
    runs: list[dict],
    rows_by_run: dict[str, list[dict]],
    alarm_cfg: AlarmConfig,
    n_boot: int = 1000,
    seed: int = 0,
    baseline: str | None = None,
    hypotheses: list | None = None,
    ratios: list | None = None,
) -> dict:
    """The summary dict.

    Args:
        meta: header facts (data file, synthetic flag, config, notes, scorer names, ...);
            `meta["train_reply_length"]`, when present, is the mean length of the training split's
            engaged human replies (the length-drift alarm's reference).
        runs: `[{"name", "path", "seed", "id"}]`, in command-line order.
        rows_by_run: run id -> per-tweet rows.
        alarm_cfg: alarm thresholds.
        baseline: the model every other is compared with (default: the first).
        hypotheses / ratios: pre-registered claims (evaluation/verdict.py).
    """
    from replyrl.evaluation.verdict import gain_ratios, judge_verdicts

    names = list(dict.fromkeys(r["name"] for r in runs))
    baseline = baseline or names[0]
    if baseline not in names:
        raise ConfigError(f"baseline '{baseline}' is not one of the models: {', '.join(names)}")
    check_same_tweets(runs, rows_by_run)
    all_rows = [row for rows in rows_by_run.values() for row in rows]
    metrics = metric_names(all_rows)
    models = {}
    for name in names:
        ids = [r["id"] for r in runs if r["name"] == name]
        per_seed = {
            m: [[row["metrics"].get(m, np.nan) for row in rows_by_run[i]] for i in ids]
            for m in metrics
        }
        models[name] = {
            "runs": [r for r in runs if r["name"] == name],
            "metrics": {
                m: asdict(summarize(per_seed[m], n_boot=n_boot, seed=seed)) for m in metrics
            },
        }
    values = per_tweet_values(runs, rows_by_run, metrics)
    comparisons = compare_to_baseline(values, metrics, baseline, n_boot=n_boot, seed=seed)
    refs = _reference_summary(rows_by_run[runs[0]["id"]], n_boot, seed)
    gold_key = "gold" if "gold" in metrics else ("audience" if "audience" in metrics else None)
    alarms = []
    base_rows = rows_by_run[next(r["id"] for r in runs if r["name"] == baseline)]
    for run in runs:
        label = (
            run["name"]
            if len([r for r in runs if r["name"] == run["name"]]) == 1
            else f"{run['name']} (seed {run['seed']})"
        )
        comps = {c["metric"]: c for c in comparisons if c["a"] == run["name"]}
        for a in run_alarms(
            run["name"],
            rows_by_run[run["id"]],
            alarm_cfg,
            base=baseline if run["name"] != baseline else None,
            base_rows=base_rows,
            comps=comps,
            train_length=meta.get("train_reply_length"),
        ):
            a["model"] = label
            alarms.append(a)
    training = {}
    for run in runs:
        curves = training_curves(run["path"])
        if curves:
            training[run["id"]] = {"name": run["name"], "seed": run["seed"], **curves}
    return {
        **meta,
        "baseline": baseline,
        "gold_key": gold_key,
        "metrics": metrics,
        "models": models,
        "references": refs,
        "comparisons": comparisons,
        "verdicts": judge_verdicts(hypotheses or [], values, models, n_boot, seed),
        "ratios": gain_ratios(ratios or [], models),
        "judge_informative": _judge_informative(models),
        "alarms": alarms,
        "training": training,
    }


def _judge_informative(models: dict) -> bool | None:
    """False when every model's judge win rate has a CI containing 0.5 (the judge cannot tell
    replies from the human reference apart), None without a judge."""
    cis = [m["metrics"]["judge_win"] for m in models.values() if "judge_win" in m["metrics"]]
    if not cis:
        return None
    return any(not (c["ci_low"] <= 0.5 <= c["ci_high"]) for c in cis)


def _reference_summary(rows: list[dict], n_boot: int, seed: int) -> dict:
    """Mean scores of the human reference (best-engaged reply) per tweet, for context."""
    out = {}
    for key in ("proxy", "gold", "audience", "relevance"):
        if rows and key in rows[0]["ref_scores"]:
            out[key] = asdict(
                summarize([[r["ref_scores"][key][0] for r in rows]], n_boot=n_boot, seed=seed)
            )
    if rows:
        out["length"] = asdict(
            summarize(
                [[float(len(r["reference"].strip())) for r in rows]], n_boot=n_boot, seed=seed
            )
        )
    return out
