"""Interrupt `replyrl pipeline` (SIGINT, then kill -9) and rerun: completed stages are not
recomputed, and the final report equals an uninterrupted run's."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(tmp: Path) -> Path:
    p = tmp / "tiny.yaml"
    p.write_text(f"""
_base_: {ROOT / "configs/pipeline/cpu-demo.yaml"}
name: tiny
synth_tweets: 40
recipes: [sft, grpo]
train_configs: {ROOT / "configs/train"}
eval_config: {ROOT / "configs/eval/default.yaml"}
reward: {{proxy_config: {ROOT / "configs/reward/preference.yaml"}, gold_config: {ROOT / "configs/reward/preference.yaml"}}}
train_set: [optim.save_steps=1, optim.sample_every=0, grpo.num_generations=2, grpo.prompts_per_step=1,
            grpo.max_completion_length=8, optim.batch_size=2]
recipe_set: {{sft: [optim.max_steps=1], grpo: [optim.max_steps=1]}}
eval_set: [sampling.n=2, sampling.max_new_tokens=8, "ks=[1,2]", max_tweets=2, judge.enabled=false, bootstrap=200]
""")
    return p


def _cmd(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "replyrl", "pipeline", "-c", str(cfg), "--out", str(out)]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"pipeline ended before {path.name} appeared"
        assert time.time() < deadline, f"timed out waiting for {path}"
        time.sleep(0.5)


def _means(out: Path) -> dict:
    s = json.loads((out / "tiny" / "eval" / "summary.json").read_text())
    return {m: {k: v["mean"] for k, v in d["metrics"].items()} for m, d in s["models"].items()}


@pytest.mark.slow
def test_interrupted_pipeline_resumes_without_recomputing(tmp_path):
    cfg = tiny_config(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = tmp_path / "uninterrupted"
    subprocess.run(_cmd(cfg, ref), check=True, env=env, timeout=1800, capture_output=True)

    out = tmp_path / "interrupted"
    stages = out / "tiny" / "stages"
    proc = subprocess.Popen(
        _cmd(cfg, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for(stages / "reward_proxy.json", proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0
    done_first = {p.name: p.stat().st_mtime_ns for p in stages.glob("*.json")}
    assert "reward_proxy.json" in done_first and "evaluate.json" not in done_first

    proc = subprocess.Popen(
        _cmd(cfg, out),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for(stages / "train_sft_seed0.json", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_second = {p.name: p.stat().st_mtime_ns for p in stages.glob("*.json")}
    assert all(done_second[k] == v for k, v in done_first.items()), (
        "a completed stage was recomputed"
    )

    res = subprocess.run(
        _cmd(cfg, out), check=True, env=env, timeout=1800, capture_output=True, text=True
    )
    for name, mtime in done_second.items():
        assert (stages / name).stat().st_mtime_ns == mtime, f"{name} was recomputed"
    assert "Ran: train_grpo_seed0, evaluate" in " ".join(res.stdout.split()), res.stdout[-2000:]
    assert _means(out) == _means(ref)
