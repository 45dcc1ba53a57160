"""Composite reward (DESIGN §3): a weighted sum of components, each normalized first.

Normalization is by *fixed* statistics, not by the batch: z_c = (s_c − μ_c) / σ_c with μ_c, σ_c the
mean and standard deviation of component c over the reward model's training replies (recorded in
its config.json at training time). Why not z-scores within the batch: a batch may hold one prompt's
K completions (or one reply at serving time), where batch statistics are degenerate or make the
reward of a reply depend on its neighbours. Fixed statistics keep the reward deterministic per
(tweet, reply) and put components on one scale so the weights mean what they say. A component
without recorded statistics is used raw (μ = 0, σ = 1), and that is logged once.

Per-component raw values are kept in `.last_components` and logged as `rewards/<component>/mean`
(the heuristic's own parts too: `rewards/relevance/mean`, ...).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from replyrl.rewards.base import RewardError, call_scorer, check_lengths

log = logging.getLogger(__name__)


@dataclass
class Component:
    """One part of a composite reward."""

    name: str
    """Name used in logs (`rewards/<name>/mean`)."""
    scorer: Any
    """An object with `.score(tweets, replies) -> np.ndarray` (RewardModel, HeuristicReward, ...)."""
    weight: float
    """Weight of the normalized value in the sum."""
    mean: float = 0.0
    """Fixed normalization mean μ."""
    std: float = 1.0
    """Fixed normalization scale σ (> 0)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.weight):
            raise RewardError(f"component {self.name}: weight must be finite, got {self.weight}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std)) or self.std <= 0:
            raise RewardError(
                f"component {self.name}: need finite mean and std > 0, got {self.mean}, {self.std}"
            )


class CompositeReward:
    """Σ_c w_c·(s_c − μ_c)/σ_c as a TRL reward callable; `.components()` gives the raw parts."""

    __name__ = "engagement"

    def __init__(self, components: Sequence[Component], embeddings: Any = None):
        if not components:
            raise RewardError("a composite reward needs at least one component")
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise RewardError(f"component names must be unique, got {names}")
        self.parts = list(components)
        self.embeddings = embeddings
        self.last_components: dict[str, np.ndarray] = {}

    @property
    def weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self.parts}

    def components(self, tweets: Sequence[str], replies: Sequence[str]) -> dict[str, np.ndarray]:
        """Raw value of each component per (tweet, reply), plus the parts of nested scorers."""
        out: dict[str, np.ndarray] = {}
        for c in self.parts:
            out[c.name] = np.asarray(c.scorer.score(tweets, replies), dtype=np.float64)
            for k, v in (getattr(c.scorer, "last_components", None) or {}).items():
                if k not in out and k != c.name:
                    out[k] = np.asarray(v, dtype=np.float64)
        return out

    def combine(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        """Weighted sum of the normalized components."""
        total = np.zeros_like(comps[self.parts[0].name])
        for c in self.parts:
            total = total + c.weight * (comps[c.name] - c.mean) / c.std
        return total

    def score(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        check_lengths(self.__name__, tweets=tweets, replies=replies)
        comps = self.components(tweets, replies)
        self.last_components = comps
        return self.combine(comps)

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        return call_scorer(self, prompts, completions, columns)


class ScoreFn:
    """Adapter: a plain `score(tweets, replies)` function as a composite component scorer."""

    def __init__(self, fn: Callable[[Sequence[str], Sequence[str]], np.ndarray]):
        self.fn = fn
        self.last_components: dict[str, np.ndarray] = {}

    def score(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        return np.asarray(self.fn(tweets, replies), dtype=np.float64)
