"""`RewardConfig` and `build_reward(cfg)`: the one way training, evaluation and serving get a reward.

    kind: heuristic   -> HeuristicReward (no training)
    kind: learned     -> the reward model folder `model`, z-scored by its training statistics
    kind: composite   -> learned_weight·z(learned) + heuristic_weight·z(heuristic) (composite.py);
                         with no `model` it falls back to the heuristic alone, and says so
    kind: audience    -> the simulated audience itself (synthetic data only: the oracle)

`length_guard` adds DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", §3.4) to any of them:
0 up to `max_chars − buffer_chars`, falling linearly to −1 at `max_chars`, −1 beyond, times
`weight` (in the reward's units: 1.0 is one standard deviation of the learned and composite
rewards, which are z-scored against the reward model's training replies).

A config is a YAML file (`configs/reward/*.yaml`, loaded with `replyrl.config.load_config`) or the
`reward:` section of a training config. Diversity is not a reward setting: λ and the mode live in the
training objective (`objective.diversity_weight`, `objective.diversity_mode`), the one route.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from replyrl.config import ConfigError
from replyrl.errors import missing_path_error
from replyrl.rewards.heuristic import HeuristicConfig

log = logging.getLogger(__name__)


@dataclass
class LengthGuard:
    """DAPO-style soft overlong punishment added to the reward (off when max_chars is 0)."""

    max_chars: int = 0
    """Replies longer than this get the full penalty (0 = no guard)."""
    buffer_chars: int = 50
    """The penalty ramps from 0 to full over the last `buffer_chars` before `max_chars`."""
    weight: float = 1.0
    """Size of the full penalty in the reward's units."""

    def __post_init__(self) -> None:
        for k in ("max_chars", "buffer_chars", "weight"):
            v = getattr(self, k)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"length_guard.{k} must be a finite number >= 0, got {v}")
        if self.max_chars and not 0 < self.buffer_chars <= self.max_chars:
            raise ValueError(
                f"length_guard.buffer_chars must be in (0, max_chars={self.max_chars}], "
                f"got {self.buffer_chars}"
            )


def overlong_penalty(n_chars, max_chars: int, buffer_chars: int) -> np.ndarray:
    """0 for n ≤ max − buffer, (max − buffer − n) / buffer up to max, −1 beyond (DAPO eq. 13).

    >>> overlong_penalty([100, 175, 200, 300], 200, 50).tolist()
    [0.0, -0.5, -1.0, -1.0]
    """
    n = np.asarray(n_chars, dtype=np.float64)
    start = max_chars - buffer_chars
    return np.clip((start - n) / buffer_chars, -1.0, 0.0)


class GuardedReward:
    """A reward plus `weight · overlong_penalty(len(reply))`; the penalty is logged as `overlong`."""

    def __init__(self, inner: Any, guard: LengthGuard):
        self.inner, self.guard = inner, guard
        self.__name__ = getattr(inner, "__name__", "reward")
        self.embeddings = getattr(inner, "embeddings", None)
        self.last_components: dict[str, np.ndarray] = {}

    def score(self, tweets, replies) -> np.ndarray:
        base = np.asarray(self.inner.score(tweets, replies), dtype=np.float64)
        g = self.guard
        penalty = overlong_penalty([len(r.strip()) for r in replies], g.max_chars, g.buffer_chars)
        self.last_components = {**(getattr(self.inner, "last_components", None) or {})}
        self.last_components[self.__name__] = base
        self.last_components["overlong"] = penalty
        return base + g.weight * penalty

    def __call__(self, prompts=None, completions=(), **columns) -> list[float]:
        from replyrl.rewards.base import call_scorer

        return call_scorer(self, prompts, completions, columns)


def check_weights(**weights: float) -> None:
    """The rule of every reward mixing weight (here and in the pipeline's `reward:` section):
    finite and >= 0, since a negative weight would reward the opposite of what its part measures."""
    for name, v in weights.items():
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"{name} must be finite and >= 0 (0 turns the part off), got {v}")


@dataclass
class RewardConfig:
    """Which engagement reward to build and how to weigh its parts."""

    kind: Literal["heuristic", "learned", "composite", "audience"] = "composite"
    """heuristic | learned | composite | audience (the simulated audience: synthetic data only)."""
    model: str | None = None
    """Reward model folder (from `replyrl reward train`); needed by `learned`, optional for `composite`."""
    learned_weight: float = 0.6
    """Composite: weight of the normalized learned score (check `reward validate` before trusting it)."""
    heuristic_weight: float = 0.4
    """Composite: weight of the normalized heuristic score."""
    heuristic: HeuristicConfig = field(default_factory=HeuristicConfig)
    """Heuristic component weights and length shape."""
    encoder: str | None = None
    """Sentence encoder for the heuristic's relevance (None: the packaged all-MiniLM-L6-v2)."""
    cache: bool = True
    """Cache embeddings by text (each distinct text encoded once per run)."""
    length_guard: LengthGuard = field(default_factory=LengthGuard)
    """Optional soft overlong punishment (off by default)."""

    def __post_init__(self) -> None:
        check_weights(learned_weight=self.learned_weight, heuristic_weight=self.heuristic_weight)
        if self.kind == "learned" and not self.model:
            raise ConfigError(
                "kind=learned needs `model`: a folder written by `replyrl reward train`"
            )
        if self.kind == "composite" and self.learned_weight + self.heuristic_weight <= 0:
            raise ConfigError("composite reward: learned_weight + heuristic_weight must be > 0")


def build_reward(
    cfg: RewardConfig | None = None, embeddings: Any = None, device: str | None = None
) -> Any:
    """The reward callable described by `cfg` (TRL reward signature; `.score(tweets, replies)` too).

    Args:
        cfg: the reward config (default: composite, heuristic alone when no model is given).
        embeddings: an EmbeddingCache to share (e.g. with evaluation metrics); default a new one.
        device: where the encoders this builds run (None: `auto`, see replyrl.device).
    """
    from pathlib import Path

    from replyrl.rewards.composite import Component, CompositeReward
    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.rewards.heuristic import HeuristicReward
    from replyrl.rewards.learned import load_reward_model

    cfg = cfg or RewardConfig()
    if cfg.model and not Path(cfg.model).exists():
        raise missing_path_error(
            cfg.model, "reward model folder", "train one with `replyrl reward train`"
        )
    model = None
    if cfg.model and cfg.kind != "heuristic":
        model = load_reward_model(cfg.model, device=device)
    enc_name = cfg.encoder if cfg.encoder else (model.encoder_name if model is not None else None)
    if embeddings is None:
        embeddings = EmbeddingCache(encoder_name=enc_name, enabled=cfg.cache, device=device)
    if model is not None:
        if (model.encoder_name or None) != (enc_name or None):
            model.embeddings = EmbeddingCache(
                encoder_name=model.encoder_name, enabled=cfg.cache, device=device
            )
        else:
            model.embeddings = embeddings
    heuristic = HeuristicReward(cfg.heuristic, embeddings=embeddings)

    if cfg.kind == "heuristic":
        reward: Any = heuristic
    elif cfg.kind == "audience":
        from replyrl.rewards.audience import AudienceReward

        reward = AudienceReward(embeddings)
    elif cfg.kind == "learned":
        meta = model.meta
        reward = CompositeReward(
            [
                Component(
                    "learned",
                    model,
                    1.0,
                    float(meta.get("score_mean", 0.0)),
                    float(meta.get("score_std", 1.0)) or 1.0,
                )
            ],
            embeddings=embeddings,
        )
    elif model is None or cfg.learned_weight == 0:
        if cfg.kind == "composite" and model is None:
            log.warning("composite reward without a reward model: using the heuristic alone")
        reward = CompositeReward([Component("heuristic", heuristic, 1.0)], embeddings=embeddings)
    else:
        meta = model.meta
        parts = [
            Component(
                "learned",
                model,
                cfg.learned_weight,
                float(meta.get("score_mean", 0.0)),
                float(meta.get("score_std", 1.0)) or 1.0,
            )
        ]
        if cfg.heuristic_weight > 0:
            parts.append(
                Component(
                    "heuristic",
                    heuristic,
                    cfg.heuristic_weight,
                    float(meta.get("heuristic_mean", 0.0)),
                    float(meta.get("heuristic_std", 1.0)) or 1.0,
                )
            )
        missing = [k for k in ("score_mean", "heuristic_mean") if k not in meta]
        if missing:
            log.warning(
                "reward model %s lacks %s: those components are used without normalization",
                cfg.model,
                missing,
            )
        log.info("composite reward: %s", ", ".join(f"{p.name}={p.weight}" for p in parts))
        reward = CompositeReward(parts, embeddings=embeddings)

    if cfg.length_guard.max_chars:
        reward = GuardedReward(reward, cfg.length_guard)
    return reward
