"""CLI: reward commands — `replyrl reward train | validate | score`."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from replyrl.cli.common import console, err_console, user_errors


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    reward_app = typer.Typer(
        help="Train, validate and apply engagement reward models.", no_args_is_help=True
    )
    reward_app.command("train")(train)
    reward_app.command("validate")(validate)
    reward_app.command("score")(score)
    app.add_typer(reward_app, name="reward")


def train(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Reward training YAML (configs/reward/)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config value: key.sub=value (repeatable)."
    ),
    data: Path = typer.Option(
        Path("data/records.jsonl"), "--data", help="Records (JSONL/CSV); split by tweet inside."
    ),
    pairs: list[Path] = typer.Option(
        [], "--pairs", help="Extra preference-pair JSONL files (e.g. UI feedback)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write the reward model to."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad data rows instead of stopping."
    ),
) -> None:
    """Train a reward model head (regression or Bradley-Terry) on a frozen sentence encoder."""
    import time

    from replyrl.config import load_config, to_dict
    from replyrl.data.pairs import read_pairs
    from replyrl.io import atomic_write_json
    from replyrl.records import load_records
    from replyrl.rewards.train import RewardTrainConfig, train_reward_model

    with user_errors():
        cfg = load_config(
            RewardTrainConfig, config, overrides
        )  # bad values fail before any model loads
        loaded = load_records(data, skip_invalid=skip_invalid)
        if loaded.errors:
            err_console.print(f"[yellow]skipped {len(loaded.errors)} invalid row(s)[/]")
        extra = [p for f in pairs for p in read_pairs(f)]
        t0 = time.time()
        model, summary, train_ids = train_reward_model(
            cfg, loaded.records, extra, log=lambda m: err_console.print(f"[dim]{m}[/]")
        )
        model.meta["config"] = to_dict(cfg)
        model.meta["data"] = str(data)
        model.meta["extra_pairs_files"] = [str(p) for p in pairs]
        model.save(out)
        atomic_write_json(out / "train_tweets.json", train_ids, indent=0)
        summary["seconds"] = round(time.time() - t0, 1)
        atomic_write_json(out / "train_summary.json", summary)
        console.print(
            f"reward model written to [bold]{out}[/] ({summary['seconds']} s); "
            f"validation {model.meta['val']['metric']} {model.meta['val']['value']:.4f}. "
            f"Next: replyrl reward validate --model {out} --data {data}"
        )


def validate(
    model: Path = typer.Option(..., "--model", help="Reward model folder."),
    data: Path = typer.Option(
        ..., "--data", help="Records to validate on; the model's training tweets are dropped."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write validation.json and calibration.png (default: <model>/validation).",
    ),
    ratio: float = typer.Option(
        2.0, "--ratio", help="SHP pair rule: the later reply wins by this factor."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad data rows instead of stopping."
    ),
    cache_dir: str | None = typer.Option(
        None,
        "--cache-dir",
        help="Embedding cache folder to reuse "
        "(default $REPLYRL_CACHE/embeddings/<encoder>; 'off': none).",
    ),
) -> None:
    """Held-out Spearman/Pearson and pairwise accuracy of the RM next to length, heuristic and context baselines."""
    from rich.table import Table

    from replyrl.records import load_records
    from replyrl.rewards.embeddings import default_cache_dir
    from replyrl.rewards.learned import load_reward_model
    from replyrl.rewards.validate import held_out, validate_reward_model

    with user_errors():
        rm = load_reward_model(model)
        disk = None if cache_dir == "off" else Path(cache_dir or default_cache_dir(rm.encoder_name))
        if disk is not None:
            rm.embeddings.load(disk)
        loaded = load_records(data, skip_invalid=skip_invalid)
        records, dropped = held_out(loaded.records, model)
        if dropped:
            err_console.print(f"[dim]dropped {dropped} record(s) of tweets the model trained on[/]")
        report = validate_reward_model(
            rm, records, ratio=ratio, out_dir=out or model / "validation"
        )
        if disk is not None:
            rm.embeddings.save(disk)
    table = Table(
        title=f"Reward validation: {report['n_tweets']} held-out tweets, {report['n_records']} replies, "
        f"{report['n_pairs']} SHP-style pairs, {report['n_length_matched_pairs']} of them "
        f"length-matched (label: {report['label']})",
        caption=f"length-matched: {report['length_match_rule']}; Spearman | len: rank partial "
        "correlation with the label, length partialled out"
        + (
            f"; audience: {report['n_audience_pairs']} within-tweet pairs ordered by the simulated "
            f"audience ({report['n_audience_length_matched_pairs']} length-matched)"
            if report["n_audience_pairs"]
            else ""
        ),
    )
    cols = ["model", "pairwise acc", "length-matched acc", "Spearman", "Spearman | len", "Pearson"]
    if report["n_audience_pairs"]:
        cols += ["audience acc", "audience acc, length-matched"]
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, row in report["rows"].items():
        cells = [
            name,
            _pct(row["pairwise_accuracy"]),
            _pct(row["length_matched_accuracy"]),
            _num(row["spearman"]),
            _num(row["spearman_given_length"]),
            _num(row["pearson"]),
        ]
        if report["n_audience_pairs"]:
            cells += [_pct(row["audience_accuracy"]), _pct(row["audience_length_matched_accuracy"])]
        table.add_row(*cells)
    console.print(table)
    lo, hi = report["margin_ci95"]
    console.print(
        f"margin over reply length: [bold]{100 * report['margin_over_length']:+.1f}[/] points "
        f"(95% CI {100 * lo:+.1f} to {100 * hi:+.1f}, tweet bootstrap); "
        f"over the heuristic: {100 * report['margin_over_heuristic']:+.1f} points"
    )
    if report.get("context_r2_log_likes") is not None:
        console.print(
            f"context (post likes, timing, followers) explains {100 * report['context_r2_log_likes']:.0f}% "
            "of the variance of log likes on the training tweets; the rest is left for the text"
        )
    for w in report["warnings"]:
        err_console.print(f"[bold yellow]warning:[/] {w}")
    console.print(f"[dim]written: {report.get('calibration_png')} and validation.json beside it[/]")


def score(
    texts: list[str] = typer.Argument(..., help="TWEET REPLY [REPLY ...]: replies to one tweet."),
    model: Path | None = typer.Option(
        None, "--model", help="Reward model folder (default: heuristic only)."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Reward config YAML (RewardConfig)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a reward config value: key=value."
    ),
) -> None:
    """Score replies to one tweet with the composite reward; prints each component."""
    from rich.table import Table

    from replyrl.config import load_config
    from replyrl.rewards.build import RewardConfig, build_reward

    if len(texts) < 2:
        err_console.print(
            '[bold red]error:[/] give the tweet and at least one reply: replyrl reward score "TWEET" "REPLY"'
        )
        raise typer.Exit(2)
    with user_errors():
        data = {"model": str(model)} if model else None
        cfg = load_config(RewardConfig, config, overrides, data=data)
        reward = build_reward(cfg)
        tweet, replies = texts[0], texts[1:]
        values = reward(None, replies, tweet=[tweet] * len(replies))
    comps = getattr(reward, "last_components", {}) or {}
    for i, r in enumerate(replies, start=1):
        console.print(f"[bold]#{i}[/] {r}", highlight=False)
    # One column per reply, one row per component: stays readable in a narrow terminal.
    table = Table(title=f"{getattr(reward, '__name__', 'reward')} reward ({cfg.kind})")
    table.add_column("component")
    for i in range(len(replies)):
        table.add_column(f"#{i + 1}", justify="right")
    table.add_row("[bold]reward[/]", *[f"{v:.4f}" for v in values])
    for k, v in comps.items():
        table.add_row(k, *[f"{float(x):.4f}" for x in v])
    console.print(table)


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"
