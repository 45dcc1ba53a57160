"""The console: one progress line per training stage, library bars and trainer dicts only when
verbose, and a real `replyrl train` whose output a person can read (slow)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from replyrl import console as rc

ROOT = Path(__file__).resolve().parents[1]


def test_quiet_libraries_sets_switches_unless_verbose(monkeypatch):
    for key in (
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "HF_DATASETS_DISABLE_PROGRESS_BARS",
        rc.VERBOSE_ENV,
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # a user's own choice wins
    rc.configure(verbose_output=True)
    assert rc.verbose() and "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.setenv(rc.VERBOSE_ENV, "0")
    rc.configure(verbose_output=False)
    assert not rc.verbose()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"


def test_stage_progress_prints_one_line_with_step_metric_and_time():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    out = io.StringIO()
    cb = rc.stage_progress("sft seed 0", Console(file=out, width=120, force_terminal=False))
    args = TrainingArguments(output_dir="unused", report_to=[])
    state, control = TrainerState(), TrainerControl()
    state.max_steps = 6
    cb.on_train_begin(args, state, control)
    for step in range(1, 7):
        state.global_step = step
        cb.on_step_end(args, state, control)
        cb.on_log(args, state, control, logs={"loss": 3.0 + step / 100, "grad_norm": 0.5})
    cb.on_log(args, state, control, logs={"train_runtime": 12.0})  # no loss: keep the last one
    cb.on_train_end(args, state, control)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines  # not a terminal: the final state, once
    assert "sft seed 0" in lines[0] and "6/6 steps" in lines[0] and "loss 3.06" in lines[0]
    assert "{'loss'" not in out.getvalue() and "grad_norm" not in out.getvalue()


def test_metric_text_prefers_reward():
    assert rc._metric_text({"loss": 0.5, "reward": 0.25}) == "reward 0.25"
    assert rc._metric_text({"loss": float("nan")}) == ""
    assert rc._metric_text({}) == ""


def test_attach_progress_replaces_the_trainer_printers(monkeypatch):
    from transformers.trainer_callback import (
        CallbackHandler,
        DefaultFlowCallback,
        PrinterCallback,
        ProgressCallback,
    )

    class FakeTrainer:
        def __init__(self):
            cbs = [DefaultFlowCallback, ProgressCallback, PrinterCallback]
            self.callback_handler = CallbackHandler(cbs, None, None, None, None)

        def add_callback(self, cb):
            self.callback_handler.add_callback(cb)

        def remove_callback(self, cb):
            self.callback_handler.remove_callback(cb)

    names = lambda t: [type(c).__name__ for c in t.callback_handler.callbacks]  # noqa: E731
    monkeypatch.delenv(rc.VERBOSE_ENV, raising=False)
    quiet = FakeTrainer()
    rc.attach_progress(quiet, "grpo seed 1")
    assert names(quiet) == ["DefaultFlowCallback", "StageProgress"]
    monkeypatch.setenv(rc.VERBOSE_ENV, "1")
    loud = FakeTrainer()
    rc.attach_progress(loud, "grpo seed 1")
    assert names(loud) == ["DefaultFlowCallback", "ProgressCallback", "PrinterCallback"]


@pytest.mark.slow
def test_replyrl_train_output_is_one_progress_line_and_the_log_keeps_every_metric(tmp_path):
    exe = Path(sys.executable).with_name("replyrl")
    sets = [
        "optim.max_steps=3",
        "optim.logging_steps=1",
        "optim.save_steps=3",
        "optim.sample_every=0",
        "optim.batch_size=2",
        "data.max_tweets=6",
        f"output_dir={tmp_path}",
    ]
    cmd = [str(exe), "train", "-c", str(ROOT / "configs" / "train" / "sft.yaml")]
    for s in sets:
        cmd += ["--set", s]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_V", "REPLYRL_V"))
    }
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "{'loss'" not in text and "Loading weights" not in text and "Tokenizing" not in text
    bars = [line for line in text.splitlines() if "3/3 steps" in line]
    assert len(bars) == 1 and "sft seed 0" in bars[0] and "loss" in bars[0]
    assert len(text.strip().splitlines()) <= 5, text
    run = tmp_path / "sft" / "seed_0"
    rows = [json.loads(x) for x in (run / "log_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]  # every metric still logged
    assert list((run / "tb").rglob("events.out.tfevents.*"))
