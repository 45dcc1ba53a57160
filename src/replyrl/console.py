"""What a person sees while a long job runs: one progress line per stage, not library chatter.

Without `--verbose`:
- each training run shows one rich progress bar (`StageProgress`: stage name, step/total, the
  latest loss or reward, elapsed time and ETA) instead of transformers' tqdm bar and the raw
  `{'loss': ...}` dictionaries its ProgressCallback/PrinterCallback print at every logging step;
- the per-load "Loading weights" bars (transformers), "Map"/"Tokenizing" bars (datasets, via TRL)
  and hub download bars are off, and transformers logs only errors.

Nothing is lost: every logged metric still goes to the run's `log_history.jsonl` and TensorBoard
(`replyrl.training.callbacks.JsonlLogCallback`, `report_to`). `--verbose` (or REPLYRL_VERBOSE=1)
restores the libraries' own output. On a terminal the bar redraws in place; piped into a file or CI
log it prints once, when the stage ends, so a log holds one line per training stage.
"""

from __future__ import annotations

import functools
import math
import os
import sys

from rich.console import Console

VERBOSE_ENV = "REPLYRL_VERBOSE"
"""Environment variable that turns library output back on ("1"); set by `replyrl --verbose`."""
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # hub downloads and transformers' "Loading weights" bars
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' map/filter bars (TRL tokenizing)
    "TRANSFORMERS_VERBOSITY": "error",
}


def verbose() -> bool:
    """True when the user asked for the libraries' own output (`--verbose`, REPLYRL_VERBOSE=1)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false", "False")


def configure(verbose_output: bool) -> None:
    """Apply `--verbose` for this process and its children, then quiet the libraries unless set."""
    if verbose_output:
        os.environ[VERBOSE_ENV] = "1"
    quiet_libraries()


def quiet_libraries() -> None:
    """Turn off library progress bars and info logs, unless `verbose()`.

    Sets the libraries' own environment switches (read when they are imported; a value the user
    set wins) and calls their switches for the ones this process has imported already, so it is
    cheap to call before any heavy import.
    """
    if verbose():
        return
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def _metric_text(logs: dict) -> str:
    """`reward 0.61` for RL logs (TRL logs `reward`), else `loss 3.04`; '' when neither is there."""
    for key in ("reward", "loss"):
        v = logs.get(key)
        if isinstance(v, int | float) and math.isfinite(v):
            return f"{key} {v:.4g}"
    return ""


@functools.cache
def _stage_progress_class():
    # Defined on first use: importing transformers takes seconds, and `replyrl --help` must not.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers import TrainerCallback

    class StageProgress(TrainerCallback):
        """One rich progress bar for one training run (see the module docstring)."""

        def __init__(self, stage: str, console: Console | None = None) -> None:
            self.stage = stage
            self.console = console or Console(stderr=True)
            self.progress: Progress | None = None
            self.task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps"),
                TextColumn("{task.fields[metric]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                self.stage, total=state.max_steps or None, completed=state.global_step, metric=""
            )

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            text = _metric_text(logs or {})
            if self.progress is not None and text:
                self.progress.update(self.task, metric=text)

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)
                self.progress.stop()
                self.progress = None

    return StageProgress


def stage_progress(stage: str, console: Console | None = None):
    """A TrainerCallback drawing one rich progress bar for the training run `stage`."""
    return _stage_progress_class()(stage, console)


def attach_progress(trainer, stage: str) -> None:
    """Replace the trainer's tqdm bar and printed log dicts by a `StageProgress`, unless verbose."""
    if verbose():
        return
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(stage_progress(stage))
