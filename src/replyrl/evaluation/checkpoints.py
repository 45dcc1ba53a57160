"""Over-optimisation along a run: its saved checkpoints scored on a fixed set of test tweets.

Gao et al. 2023 ("Scaling Laws for Reward Model Overoptimization") show over-optimisation as a
curve: as the policy moves away from its start (KL), the proxy reward keeps rising while the true
reward peaks and falls. A final-checkpoint evaluation cannot show a peak, so this module samples
`n` replies to the same first `tweets` test tweets at every checkpoint of a run (and at its start),
scores them with the proxy RM, the gold RM and, on synthetic data, the simulated audience, and
reads each checkpoint's KL from the run's training log (the value logged at that step). The
report plots the three scores against KL and against step.

A checkpoint must belong to the run: `<run>/checkpoints/checkpoint-<step>/` with an adapter and a
trainer_state.json at that step. Anything else is an error that names the folder.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from replyrl.io import atomic_write_json

_CKPT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be evaluated as part of the given run."""


def run_checkpoints(
    run_dir: str | Path, only: list[str | Path] | None = None
) -> list[tuple[int, Path]]:
    """(step, folder) of the run's saved checkpoints, by step; `only` restricts (and checks) them."""
    run_dir = Path(run_dir).resolve()
    root = run_dir / "checkpoints"
    if not root.is_dir():
        raise CheckpointError(f"{run_dir} has no checkpoints/ folder: is it a training run folder?")
    if only:
        folders = [Path(p).resolve() for p in only]
    else:  # TRL also writes a README.md there
        folders = sorted(p for p in root.iterdir() if p.is_dir() and _CKPT.match(p.name))
    out = []
    for f in folders:
        m = _CKPT.match(f.name)
        if f.parent != root or not m:
            raise CheckpointError(
                f"{f} is not a checkpoint of the run {run_dir} (expected {root}/checkpoint-<step>)"
            )
        step = int(m.group(1))
        state = f / "trainer_state.json"
        if not (f / "adapter_config.json").exists() or not state.exists():
            raise CheckpointError(
                f"{f}: incomplete checkpoint (needs adapter_config.json and "
                "trainer_state.json); it may have been written when the run died"
            )
        saved = json.loads(state.read_text(encoding="utf-8")).get("global_step")
        if saved != step:
            raise CheckpointError(
                f"{state}: global_step {saved} does not match the folder's {step}"
            )
        out.append((step, f))
    return sorted(out)


def kl_at_steps(run_dir: str | Path, steps: list[int]) -> dict[int, float]:
    """KL to the reference logged at (or last before) each step; 0 at step 0, NaN when unlogged."""
    path = Path(run_dir) / "log_history.jsonl"
    logged: list[tuple[int, float]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row.get("kl"), (int, float)) and math.isfinite(row["kl"]):
                logged.append((int(row.get("step", 0)), float(row["kl"])))
    out = {}
    for s in steps:
        before = [v for st, v in logged if st <= s]
        out[s] = 0.0 if s == 0 else (before[-1] if before else float("nan"))
    return out


def evaluate_checkpoints(
    run_dir: str | Path,
    start_model: str | None,
    tweets,
    scorers,
    sampling,
    device: str = "auto",
    only: list[str | Path] | None = None,
    generate=None,
) -> list[dict]:
    """One point per checkpoint (and the start): {step, kl, proxy, gold?, audience?, length}.

    Args:
        run_dir: the training run folder.
        start_model: what the run started from (None: the base model; or the init adapter), the
            step-0 point.
        tweets: the fixed EvalTweets to sample for.
        scorers: evaluation Scorers (proxy, gold, audience).
        sampling: SamplingConfig (n replies per tweet, seed: the same draws at every checkpoint).
        generate: (model_path, tweets) -> replies override (tests).
    """
    from replyrl.evaluation.generate_cache import policy_generator

    ckpts = run_checkpoints(run_dir, only)
    points = [(0, start_model)] + [(s, str(f)) for s, f in ckpts]
    kls = kl_at_steps(run_dir, [s for s, _ in points])
    texts = [t.tweet for t in tweets]
    out = []
    for step, path in points:
        gen = generate or (lambda p, ts: policy_generator(p, sampling, device)(ts))
        replies = gen(path, texts)
        flat_t = [t for t, rs in zip(texts, replies) for _ in rs]
        flat_r = [r for rs in replies for r in rs]
        point = {
            "step": step,
            "kl": kls[step],
            "checkpoint": path,
            "length": float(np.mean([len(r.strip()) for r in flat_r])),
        }
        for name, fn in scorers.items():
            point[name] = float(np.mean(fn(flat_t, flat_r)))
        out.append(point)
    return out


def write_curves(path: str | Path, curves: dict) -> Path:
    """curves: {run name: {seed: [points]}} → JSON (read back by the report)."""
    return atomic_write_json(path, curves)
