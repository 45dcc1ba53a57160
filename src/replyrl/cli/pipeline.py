"""CLI: `replyrl pipeline` runs (or resumes) data → rewards → recipes → evaluation → report."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from replyrl.cli.common import console, user_errors


def pipeline(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline YAML (configs/pipeline/)."),
    data: Path = typer.Option(
        None, "--data", help="Your records file (JSONL/CSV); default: the config's data."
    ),
    out: Path = typer.Option(None, "--out", help="Output root (default: the config's `out`)."),
    set_: list[str] = typer.Option(
        None, "--set", help="Override a config value: key.sub=value (repeatable)."
    ),
    force: list[str] = typer.Option(
        None, "--force", help="Rerun this stage even if up to date (repeatable)."
    ),
) -> None:
    """Validate → split → reward models (proxy, gold) → SFT, polychromic, GRPO, hybrid, DPO → evaluate → report.

    Stages whose inputs have not changed are skipped, so an interrupted pipeline resumes.
    """
    from replyrl.cli.evaluate import _print
    from replyrl.config import load_config
    from replyrl.pipeline import PipelineConfig, run_pipeline

    t0 = time.time()
    with user_errors():
        extra = {}
        if data is not None:
            extra["data"] = str(data.resolve())
        if out is not None:
            extra["out"] = str(out)
        cfg = load_config(PipelineConfig, config, set_, data=extra)
        result = run_pipeline(cfg, config, force=list(force or []))
    _print(result["summary"], result["report"].parent)
    minutes = (time.time() - t0) / 60
    ran = ", ".join(result["ran"]) or "nothing (all stages up to date)"
    console.print(
        f"\nRan: {ran}\nWall time: {minutes:.1f} min\nReport: [bold]{result['report']}[/]"
    )


def register(app: typer.Typer) -> None:
    app.command("pipeline")(pipeline)
