"""Aggregate per-tweet rows of every run into the evaluation summary (what summary.json holds).

Runs with the same model name are seeds of one recipe: each metric gets the pooled mean with a
bootstrap 95 % CI and the mean ± std of the per-seed means; every pair of models is compared with
Mann–Whitney U and Cohen's d on the pooled per-tweet values. Alarms are recomputed from the rows,
so `replyrl report DIR` needs no model.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from replyrl.config import ConfigError
from replyrl.evaluation.alarms import AlarmConfig, run_alarms
from replyrl.evaluation.logs import training_curves
from replyrl.evaluation.stats import compare_models, summarize

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


def build_summary(
    meta: dict,
    runs: list[dict],
    rows_by_run: dict[str, list[dict]],
    alarm_cfg: AlarmConfig,
    n_boot: int = 1000,
    seed: int = 0,
    baseline: str | None = None,
) -> dict:
    """The summary dict.

    Args:
        meta: header facts (data file, synthetic flag, config, notes, scorer names, ...).
        runs: `[{"name", "path", "seed", "id"}]`, in command-line order.
        rows_by_run: run id -> per-tweet rows.
        alarm_cfg: alarm thresholds.
        baseline: model name the divergence alarm compares against (default: the first).
    """
    names = list(dict.fromkeys(r["name"] for r in runs))
    baseline = baseline or names[0]
    if baseline not in names:
        raise ConfigError(f"baseline '{baseline}' is not one of the models: {', '.join(names)}")
    all_rows = [row for rows in rows_by_run.values() for row in rows]
    metrics = metric_names(all_rows)
    models, pooled = {}, {}
    for name in names:
        ids = [r["id"] for r in runs if r["name"] == name]
        per_seed = {
            m: [[row["metrics"].get(m, np.nan) for row in rows_by_run[i]] for i in ids]
            for m in metrics
        }
        pooled[name] = {m: [v for run in per_seed[m] for v in run] for m in metrics}
        models[name] = {
            "runs": [r for r in runs if r["name"] == name],
            "metrics": {
                m: asdict(summarize(per_seed[m], n_boot=n_boot, seed=seed)) for m in metrics
            },
        }
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
        for a in run_alarms(
            run["name"],
            rows_by_run[run["id"]],
            alarm_cfg,
            base=baseline if run["name"] != baseline else None,
            base_rows=base_rows,
            gold_key=gold_key,
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
        "comparisons": compare_models(pooled, metrics),
        "alarms": alarms,
        "training": training,
    }


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
