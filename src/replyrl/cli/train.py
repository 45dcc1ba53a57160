"""CLI: `replyrl train` and `replyrl train-seeds`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from replyrl.cli.common import console, user_errors


def _load(config: Path, overrides: list[str] | None, seed: int | None):
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig

    extra = [f"seed={seed}"] if seed is not None else []
    return load_config(TrainConfig, config, list(overrides or []) + extra)


def train(
    config: Path = typer.Option(..., "--config", "-c", help="Training YAML (see configs/train/)."),
    set_: list[str] = typer.Option(
        None, "--set", help="Override a config value: key.sub=value (repeatable)."
    ),
    seed: int = typer.Option(None, help="Override the seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's last checkpoint."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete an existing run with the same name/seed."
    ),
) -> None:
    """Train one recipe (sft, polychromic, grpo, hybrid, dpo) as the config says."""
    from replyrl.training.run import train as run_train

    with user_errors():
        cfg = _load(config, set_, seed)
        try:
            out = run_train(cfg, resume=resume, overwrite=overwrite, argv=sys.argv)
        except FileExistsError as e:
            from replyrl.config import ConfigError

            raise ConfigError(str(e)) from None
    console.print(f"[green]done[/]: {cfg.recipe} run written to {out}")


def train_seeds(
    config: Path = typer.Option(..., "--config", "-c", help="Training YAML."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    set_: list[str] = typer.Option(None, "--set", help="Override a config value (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Resume runs that were interrupted."),
) -> None:
    """Run the same config over several seeds (for significance over seeds)."""
    from replyrl.training.run import latest_checkpoint, run_dir_of
    from replyrl.training.run import train as run_train

    with user_errors():
        seed_list = parse_seeds(seeds)
        for s in seed_list:
            cfg = _load(config, set_, s)
            out = run_dir_of(cfg)
            if (out / "metrics.json").exists():
                console.print(f"[dim]seed {s}: already trained ({out})")
                continue
            run_train(
                cfg,
                resume=resume and latest_checkpoint(out / "checkpoints") is not None,
                overwrite=not resume,
                argv=sys.argv,
            )
            console.print(f"[green]seed {s} done[/]: {out}")


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2` as a list of distinct seeds; anything else is one clear error."""
    from replyrl.config import SEED_MAX
    from replyrl.errors import InputError

    parts = [p.strip() for p in text.split(",")]
    bad = next((p for p in parts if not (p.isascii() and p.isdigit() and int(p) <= SEED_MAX)), None)
    if bad is not None or not parts:
        raise InputError(
            f"--seeds {text!r}: {bad!r} is not a seed (an integer in 0..{SEED_MAX}); "
            "give comma-separated seeds like 0,1,2"
        )
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {text!r}: a seed is repeated; each seed runs once")
    return seeds


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("train-seeds")(train_seeds)
