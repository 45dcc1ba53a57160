"""CLI: `replyrl evaluate` (generate, score, judge, report) and `replyrl report` (rebuild)."""

from __future__ import annotations

from pathlib import Path

import typer

from replyrl.cli.common import console, user_errors


def evaluate(
    model: list[str] = typer.Option(
        ...,
        "--model",
        help="NAME=PATH (repeatable; the same NAME "
        "several times = seeds of one recipe; PATH 'base' = default policy).",
    ),
    data: Path = typer.Option(..., "--data", help="Test records (JSONL or CSV)."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder for caches, results and the report."
    ),
    config: Path = typer.Option(
        None, "--config", help="Evaluation config YAML (e.g. configs/eval/default.yaml)."
    ),
    set_: list[str] = typer.Option(
        None, "--set", help="Override a config key, e.g. --set sampling.n=4."
    ),
) -> None:
    """Evaluate models on test tweets and write summary.json, report.md and report.html."""
    from replyrl.config import load_config
    from replyrl.evaluation.evaluate import EvalConfig, parse_models
    from replyrl.evaluation.evaluate import evaluate as run

    with user_errors():
        cfg = load_config(EvalConfig, config, set_)  # bad config fails before any model loads
        summary = run(parse_models(model), data, out, cfg)
    _print(summary, out)


def report(
    out: Path = typer.Argument(..., help="An evaluation folder written by `replyrl evaluate`."),
) -> None:
    """Rebuild summary.json, report.md and report.html from an evaluation folder's cached results."""
    from replyrl.evaluation.evaluate import rebuild

    with user_errors():
        summary = rebuild(out)
    _print(summary, out)


def _print(summary: dict, out: Path) -> None:
    from rich.table import Table

    table = Table(
        title="evaluation summary" + (" (SYNTHETIC data)" if summary["synthetic"] else "")
    )
    cols = [
        m
        for m in summary["metrics"]
        if m
        in ("pass@1", "proxy", "gold", "audience", "self_bleu", "semantic_diversity", "judge_win")
    ]
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for name, m in summary["models"].items():
        table.add_row(name, *(f"{m['metrics'][c]['mean']:.3f}" for c in cols))
    console.print(table)
    fired = [a for a in summary["alarms"] if a["triggered"]]
    for a in fired:
        console.print(
            f"[yellow]alarm[/] {a['model']}: {a['name']} — {a['message']}", highlight=False
        )
    console.print(f"report: {out / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("evaluate")(evaluate)
    app.command("report")(report)
