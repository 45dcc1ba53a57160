"""Each recipe trains a few steps on the synthetic sample and writes every run artifact;
kill -9 mid-run then --resume ends at the same step with no gap or duplicate in the log."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replyrl.config import load_config
from replyrl.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "optim.max_steps=2",
    "optim.save_steps=1",
    "optim.sample_every=2",
    "optim.batch_size=2",
    "grpo.num_generations=2",
    "grpo.prompts_per_step=1",
    "grpo.max_completion_length=8",
    "data.max_tweets=6",
    "dpo.batch_size=2",
]


def _check_artifacts(run: Path, steps: int):
    assert (run / "config.yaml").exists() and (run / "run_info.json").exists()
    info = json.loads((run / "run_info.json").read_text())
    assert info["seed"] == 0 and info["versions"]["trl"] == "1.16.0" and info["git_commit"]
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    assert not (run / "adapter" / "training_args.bin").exists()
    assert list((run / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    rows = [json.loads(x) for x in (run / "log_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, steps + 1))
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert samples and all(s["step"] == 2 and len(s["replies"]) == 2 for s in samples)
    assert json.loads((run / "metrics.json").read_text())["global_step"] == steps
    return rows


def _train(tmp_path, recipe, extra=()):
    from replyrl.training.run import train

    cfg = load_config(
        TrainConfig,
        ROOT / "configs" / "train" / f"{recipe}.yaml",
        [*TINY, f"output_dir={tmp_path}", *extra],
    )
    return train(cfg)


def test_hybrid_trains_and_logs_every_term(tmp_path):
    rows = _check_artifacts(_train(tmp_path, "hybrid"), 2)
    first = rows[0]
    for key in (
        "losses/sft",
        "losses/policy",
        "kl",
        "entropy",
        "rewards/engagement/mean",
        "rewards/relevance/mean",
        "diversity/sibling_distance_mean",
        "diversity/pairwise_distance",
        "completions/mean_length",
        "objective/lambda",
    ):
        assert key in first, key
    assert first["objective/alpha"] == 0.3 and first["objective/beta"] == 0.5


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["sft", "polychromic", "grpo", "dpo"])
def test_recipe_trains_and_writes_artifacts(tmp_path, recipe):
    rows = _check_artifacts(_train(tmp_path, recipe), 2)
    assert rows[0]["loss"] == rows[0]["loss"]  # finite, not NaN


@pytest.mark.slow
def test_kill9_then_resume_has_no_gap_or_duplicate(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "replyrl",
        "train",
        "-c",
        str(ROOT / "configs/train/grpo.yaml"),
        "--set",
        f"output_dir={tmp_path}",
        *sum((["--set", s] for s in TINY), []),
        "--set",
        "optim.max_steps=5",
        "--set",
        "optim.sample_every=0",
    ]
    run = tmp_path / "grpo" / "seed_0"
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 600
    while (
        time.time() < deadline
        and not (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists()
    ):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "metrics.json").exists()
    subprocess.run(
        cmd + ["--resume"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=900,
    )
    rows = [json.loads(x) for x in (run / "log_history.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == [1, 2, 3, 4, 5]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 5
