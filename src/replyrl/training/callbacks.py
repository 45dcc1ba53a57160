"""Trainer callbacks: adaptive KL, a crash-safe JSONL log, and sample generations."""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import TrainerCallback

from replyrl.io import atomic_write_json
from replyrl.training.config import AdaptiveKLConfig


def append_line(path: Path, row: dict) -> None:
    """Append one JSON line and fsync, so a kill -9 loses at most the line being written."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_log(path: Path, last_step: int) -> int:
    """Keep only rows with step <= last_step (drops rows logged after the checkpoint we resume
    from, which would otherwise appear twice) and any torn last line. Returns rows kept."""
    if not path.exists():
        return 0
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if row.get("step", 0) <= last_step:
            kept.append(line + "\n")
    from replyrl.io import atomic_write_text

    atomic_write_text(path, "".join(kept))
    return len(kept)


class JsonlLogCallback(TrainerCallback):
    """Every log event as one JSON line in `log_history.jsonl` (namespaced keys, with `step`)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            append_line(self.path, {"step": state.global_step, **logs})


class AdaptiveKLCallback(TrainerCallback):
    """Raise the KL coefficient ×up when KL > target, lower it ×down when KL < target/2, bounded.

    TRL has no adaptive KL; it reads `trainer.beta` at every loss computation, so we adjust that.
    The coefficient is saved in each checkpoint (adaptive_kl.json) and restored on resume.
    """

    def __init__(self, cfg: AdaptiveKLConfig):
        self.cfg = cfg
        self.trainer = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.trainer is None or not logs or logs.get("kl") is None:
            return
        kl, coef = float(logs["kl"]), float(self.trainer.beta)
        if kl > self.cfg.target:
            coef *= self.cfg.up
        elif kl < self.cfg.target / 2:
            coef *= self.cfg.down
        self.trainer.beta = min(max(coef, self.cfg.min_coef), self.cfg.max_coef)
        logs["kl/coef"] = self.trainer.beta

    def on_save(self, args, state, control, **kwargs):
        if self.trainer is not None and state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.exists():
                atomic_write_json(ckpt / "adaptive_kl.json", {"coef": self.trainer.beta})

    def restore(self, checkpoint: str | None) -> None:
        if (
            self.trainer is not None
            and checkpoint
            and (Path(checkpoint) / "adaptive_kl.json").exists()
        ):
            self.trainer.beta = json.loads((Path(checkpoint) / "adaptive_kl.json").read_text())[
                "coef"
            ]


class SamplesCallback(TrainerCallback):
    """Every `every` steps, sample replies to a few fixed training tweets into samples.jsonl."""

    def __init__(
        self,
        path: Path,
        tweets: list[str],
        every: int,
        instruction: str,
        max_new_tokens: int = 32,
        n: int = 2,
        seed: int = 0,
    ):
        self.path, self.tweets, self.every = Path(path), tweets, every
        self.instruction, self.max_new_tokens, self.n, self.seed = (
            instruction,
            max_new_tokens,
            n,
            seed,
        )

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not self.every or state.global_step % self.every or not state.is_world_process_zero:
            return
        if model is None or processing_class is None:
            return
        from replyrl.generation import SamplingConfig, generate_replies

        was_training, side = model.training, processing_class.padding_side
        model.eval()
        cfg = SamplingConfig(
            n=self.n,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed + state.global_step,
            instruction=self.instruction,
        )
        replies = generate_replies(model, processing_class, self.tweets, cfg)
        if was_training:
            model.train()
        processing_class.padding_side = side
        for tweet, rs in zip(self.tweets, replies):
            append_line(self.path, {"step": state.global_step, "tweet": tweet, "replies": rs})
