"""The replyrl training objective, in one screen.

    L = α·L_sft(reference reply) + (β + λ)·L_pg(R) + KL leash          (DESIGN §4)

    R_i = β·r_i + c_i          c_i = diversity credit of completion i among its K siblings
                               (additive: λ·d_i; multiplicative: DARLING; set: polychromic)

* `L_sft` is the token-mean NLL of the human reference reply given the prompt.
* `L_pg` is TRL's clipped policy-gradient loss on group-normalised advantages of R, with the k3
  KL estimate to the frozen reference weighted by TRL's `beta` (our `kl_coef`).
* The diversity term has a gradient because it enters through the policy gradient: each sampled
  reply is credited for what it adds to its group's diversity, and the credit joins its reward
  *before* group normalisation. A diversity number computed on sampled text and added to the loss
  would have no gradient at all.
* β and λ split the policy-gradient reward between engagement and diversity, and their sum weights
  the policy-gradient term against the SFT term (advantages are scale-free after normalisation,
  so the weight has to live outside R).

| recipe      | α   | β   | λ   |
|-------------|-----|-----|-----|
| sft         | 1   | 0   | 0   |  (TRL SFTTrainer; no generation)
| polychromic | 1   | 0   | >0  |
| grpo        | 0   | 1   | 0   |
| hybrid      | 0.3 | 0.5 | 0.2 |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from replyrl.config import ConfigError

DiversityMode = Literal["additive", "multiplicative", "set"]
RECIPE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "sft": (1.0, 0.0, 0.0),
    "polychromic": (1.0, 0.0, 0.5),
    "grpo": (0.0, 1.0, 0.0),
    "hybrid": (0.3, 0.5, 0.2),
}


@dataclass
class ObjectiveConfig:
    """Weights of the one objective; recipes are settings of these (see the table above)."""

    sft_weight: float | None = None
    """α: weight of the reference-reply NLL (None = the recipe's default)."""
    pg_weight: float | None = None
    """β: weight of the engagement reward in the policy gradient (None = the recipe's default)."""
    diversity_weight: float | None = None
    """λ: weight of the diversity credit in the policy gradient (None = the recipe's default)."""
    diversity_mode: DiversityMode = "additive"
    """How the credit is computed: additive (λ·d_i), multiplicative (DARLING) or set (polychromic)."""
    diversity_floor: float = 0.05
    """Pairwise embedding distances below this count as 0 (short replies make distance noisy)."""
    advantage_clip: float | None = None
    """Clip group-normalised advantages to [-c, c] (None = no clipping)."""

    def __post_init__(self):
        for name in ("sft_weight", "pg_weight", "diversity_weight"):
            v = getattr(self, name)
            if v is not None and not 0 <= v < float("inf"):
                raise ConfigError(f"objective.{name} must be a finite number >= 0, got {v}")
        if self.advantage_clip is not None and not 0 < self.advantage_clip < float("inf"):
            raise ConfigError(f"objective.advantage_clip must be > 0, got {self.advantage_clip}")
        if not 0 <= self.diversity_floor < 1:
            raise ConfigError(
                f"objective.diversity_floor must be in [0, 1), got {self.diversity_floor}"
            )

    def resolved(self, recipe: str) -> tuple[float, float, float]:
        """(α, β, λ) for `recipe`, with explicit values overriding the recipe's defaults."""
        a, b, lam = RECIPE_WEIGHTS.get(recipe, (0.0, 1.0, 0.0))
        a = a if self.sft_weight is None else self.sft_weight
        b = b if self.pg_weight is None else self.pg_weight
        lam = lam if self.diversity_weight is None else self.diversity_weight
        if a + b + lam == 0:
            raise ConfigError(
                "objective: sft_weight, pg_weight and diversity_weight are all 0: nothing to train"
            )
        return a, b, lam


def policy_reward(engagement: np.ndarray, credit: np.ndarray, beta: float) -> np.ndarray:
    """R_i = β·r_i + c_i: the reward TRL group-normalises into advantages."""
    return beta * np.asarray(engagement, dtype=np.float64) + np.asarray(credit, dtype=np.float64)


def group_advantages(
    rewards: torch.Tensor, k: int, scale: bool = True, clip: float | None = None
) -> torch.Tensor:
    """GRPO advantages: (r - group mean) / group std, per group of k consecutive completions.

    A group whose rewards are all equal gets zero advantage (its std is 0, so the numerator is 0).
    Mirrors TRL's computation (eps 1e-4) so our tests can check it by hand; `clip` is ours.
    """
    grouped = rewards.view(-1, k)  # (G, k)
    adv = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        adv = adv / (grouped.std(dim=1, keepdim=True) + 1e-4)
    adv = adv.view(-1)  # (G*k,)
    return adv.clamp(-clip, clip) if clip is not None else adv


def sft_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean NLL of the reference reply; labels are -100 on prompt and padding tokens.

    logits: (B, T, V) for positions 0..T-1; labels: (B, T), predicted from the previous position.
    """
    shift_logits = logits[:, :-1, :].float()  # (B, T-1, V)
    shift_labels = labels[:, 1:]  # (B, T-1)
    return torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100
    )


def total_loss(
    pg_loss: torch.Tensor | None,
    sft_loss: torch.Tensor | None,
    alpha: float,
    beta: float,
    lam: float,
) -> torch.Tensor:
    """L = α·L_sft + (β + λ)·L_pg; either term may be absent when its weight is 0."""
    terms = []
    if sft_loss is not None and alpha > 0:
        terms.append(alpha * sft_loss)
    if pg_loss is not None and beta + lam > 0:
        terms.append((beta + lam) * pg_loss)
    if not terms:
        raise ValueError("total_loss: no term has a positive weight")
    return torch.stack(terms).sum()
