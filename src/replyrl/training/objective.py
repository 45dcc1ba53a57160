"""The replyrl training objective, in one screen (DESIGN §4).

    L = α·L_sft(reference reply) + L_pg(w·A(R)) + kl_coef·KL(π ‖ π_ref) − entropy_coef·H

    R_i = f_mode(r, D; β, λ)_i      one reward per completion, computed over its prompt's K siblings
    A   = TRL's group-normalised advantages of R        w = β + λ   (the policy-gradient weight)

* `L_sft` is the token-mean NLL of the human reference reply, averaged over the prompts of an
  optimizer step (so gradient accumulation does not change its weight).
* `L_pg` is TRL's clipped surrogate. It is linear in the advantages, so scaling them by w weights the
  policy-gradient term and nothing else: the KL leash keeps exactly `kl_coef` and the entropy bonus
  exactly `entropy_coef`, whatever β and λ are.
* β and λ split the reward between engagement r and diversity; w = β + λ weighs it against the SFT
  term. Each mode below is a convex mix of the two, so with `scale_rewards: none` (advantages are
  R − mean R) w·A = β·A(r) + λ·A(d) exactly in additive mode: β and λ each count once.
* D is the floored cosine-distance matrix of the group's completions (rewards/diversity.py). The
  diversity term has a gradient because it enters the reward *before* group normalisation.

Modes (r' = r − min(0, min_j r_j) ≥ 0 within the group; d_i = mean_j≠i D_ij):

    additive        R_i = (β·r_i + λ·d_i) / (β + λ)
    multiplicative  R_i = r'_i · (β + λ·n_i) / (β + λ),   n_i = d_i / max_j d_j   (1 when all d = 0)
                    at β = 0 this is exactly DARLING's r·norm(d) (Li et al. 2025, "Jointly
                    Reinforcing Diversity and Quality in Language Model Generations")
    set             R_i = mean_{S∋i} f(S),  f(S) = mean_{j∈S} r'_j · (β + λ·D̄(S)) / (β + λ)
                    over subsets S of size m < K; at β = 0, f is the polychromic set score
                    mean reward × diversity (Hamid et al. 2025, "Polychromic Objectives for RL")

In every mode a more engaging completion never gets a lower R than an equally diverse, less engaging
sibling (also at β = 0), and λ = 0 gives advantages equal to plain GRPO's on r.

| recipe      | α   | β   | λ   | trainer                      | trains on |
|-------------|-----|-----|-----|------------------------------|-----------|
| sft         | 1   | 0   | 0   | TRL SFTTrainer               | sft split |
| polychromic | 1   | 0   | 0.5 | ObjectiveGRPOTrainer (ours)  | rl split  |
| grpo        | 0   | 1   | 0   | ObjectiveGRPOTrainer (ours)  | rl split  |
| hybrid      | 0.3 | 0.5 | 0.2 | ObjectiveGRPOTrainer (ours)  | rl split  |
| dpo         | –   | –   | –   | TRL DPOTrainer               | sft split |
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from replyrl.config import ConfigError

DiversityMode = Literal["additive", "multiplicative", "set"]
MODES: tuple[str, ...] = ("additive", "multiplicative", "set")


@dataclass(frozen=True)
class Recipe:
    """One row of the recipe table: default weights, which trainer runs it, which split it uses."""

    name: str
    """Recipe name (config `recipe:`)."""
    alpha: float
    """Default α (weight of the reference-reply NLL)."""
    beta: float
    """Default β (engagement weight in the policy gradient)."""
    lam: float
    """Default λ (diversity weight in the policy gradient)."""
    trainer: Literal["sft", "grpo", "dpo"]
    """`sft`: TRL SFTTrainer; `grpo`: our ObjectiveGRPOTrainer; `dpo`: TRL DPOTrainer."""
    phase: Literal["sft", "rl"]
    """The phase split it trains on by default (DESIGN §2: SFT and RL tweets do not overlap)."""
    summary: str
    """One line: when to use it."""

    @property
    def uses_objective(self) -> bool:
        """True when α, β, λ and the diversity mode apply (the policy-gradient recipes)."""
        return self.trainer == "grpo"


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("sft", 1.0, 0.0, 0.0, "sft", "sft", "the baseline: imitate well-engaged replies"),
        Recipe("polychromic", 1.0, 0.0, 0.5, "grpo", "rl", "SFT plus diversity through the PG"),
        Recipe("grpo", 0.0, 1.0, 0.0, "grpo", "rl", "GRPO on the engagement reward, KL leash"),
        Recipe("hybrid", 0.3, 0.5, 0.2, "grpo", "rl", "engagement and diversity, anchored to SFT"),
        Recipe("dpo", 0.0, 0.0, 0.0, "dpo", "sft", "offline DPO on engagement preference pairs"),
    )
}


def get_recipe(name: str) -> Recipe:
    """The registered recipe `name`, or a ValueError listing the valid names."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}") from None


@dataclass(frozen=True)
class Weights:
    """The resolved weights of one run."""

    alpha: float
    """α: weight of the SFT term."""
    beta: float
    """β: engagement share of the policy-gradient reward."""
    lam: float
    """λ: diversity share of the policy-gradient reward."""
    mode: str
    """Diversity mode (additive, multiplicative, set)."""

    @property
    def pg_weight(self) -> float:
        """w = β + λ, the weight of the policy-gradient term (applied to the advantages)."""
        return self.beta + self.lam

    @property
    def needs_engagement(self) -> bool:
        """Whether the reward R reads the engagement reward r (the one place this is decided)."""
        return self.beta > 0 or (self.lam > 0 and self.mode != "additive")

    @property
    def needs_diversity(self) -> bool:
        return self.lam > 0


@dataclass
class ObjectiveConfig:
    """Weights of the one objective and the diversity term; recipes are settings of these."""

    sft_weight: float | None = None
    """α: weight of the reference-reply NLL (None = the recipe's default)."""
    pg_weight: float | None = None
    """β: weight of the engagement reward in the policy gradient (None = the recipe's default)."""
    diversity_weight: float | None = None
    """λ: weight of the diversity term in the policy gradient (None = the recipe's default)."""
    diversity_mode: DiversityMode = "additive"
    """How engagement and diversity combine into R: additive, multiplicative (DARLING), set."""
    diversity_floor: float = 0.05
    """Cosine distances are lowered by this and clipped at 0 (short replies make distance noisy)."""
    diversity_min_chars: int = 10
    """Completions shorter than this have zero distance to their siblings (no diversity to earn)."""
    set_subset_size: int | None = None
    """`set` mode: subset size m (None = max(2, K // 2)); must be < K."""
    set_max_subsets: int = 64
    """`set` mode: enumerate every subset up to this many, else draw this many (seeded per group)."""
    advantage_clip: float | None = None
    """Clip group-normalised advantages to [-c, c] before the PG weight (None = no clipping)."""

    def __post_init__(self):
        for name in ("sft_weight", "pg_weight", "diversity_weight"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ConfigError(f"objective.{name} must be a finite number >= 0, got {v}")
        if self.diversity_mode not in MODES:
            raise ConfigError(f"objective.diversity_mode must be one of {list(MODES)}")
        if self.advantage_clip is not None and not (
            math.isfinite(self.advantage_clip) and self.advantage_clip > 0
        ):
            raise ConfigError(f"objective.advantage_clip must be > 0, got {self.advantage_clip}")
        if not (math.isfinite(self.diversity_floor) and 0 <= self.diversity_floor < 1):
            raise ConfigError(
                f"objective.diversity_floor must be in [0, 1) (a cosine-distance offset), "
                f"got {self.diversity_floor}"
            )
        if self.diversity_min_chars < 0 or self.set_max_subsets < 1:
            raise ConfigError("objective.diversity_min_chars must be >= 0, set_max_subsets >= 1")
        if self.set_subset_size is not None and self.set_subset_size < 2:
            raise ConfigError(f"objective.set_subset_size must be >= 2, got {self.set_subset_size}")

    def resolved(self, recipe: str, num_generations: int | None = None) -> Weights:
        """(α, β, λ, mode) for `recipe`, explicit values overriding its defaults; meaningless
        combinations fail here, before any model loads."""
        rec = get_recipe(recipe)
        if not rec.uses_objective:
            names = ("sft_weight", "pg_weight", "diversity_weight")
            explicit = [n for n in names if getattr(self, n) is not None]
            if explicit:
                raise ConfigError(
                    f"recipe {rec.name} trains with TRL's {rec.trainer.upper()}Trainer: objective "
                    f"weights {explicit} do not apply to it (use polychromic, grpo or hybrid)"
                )
            return Weights(rec.alpha, rec.beta, rec.lam, self.diversity_mode)
        w = Weights(
            rec.alpha if self.sft_weight is None else self.sft_weight,
            rec.beta if self.pg_weight is None else self.pg_weight,
            rec.lam if self.diversity_weight is None else self.diversity_weight,
            self.diversity_mode,
        )
        if w.alpha + w.pg_weight == 0:
            raise ConfigError(
                "objective: sft_weight, pg_weight and diversity_weight are all 0: nothing to train"
            )
        if w.pg_weight == 0:
            raise ConfigError(
                f"recipe {rec.name} with pg_weight = diversity_weight = 0 is plain SFT that still "
                "samples K completions per prompt: use recipe sft instead"
            )
        if num_generations is not None and w.lam > 0 and w.mode == "set":
            m = self.set_subset_size or max(2, num_generations // 2)
            if m >= num_generations:
                raise ConfigError(
                    f"objective.diversity_mode=set needs subsets smaller than the group: subset size "
                    f"{m} with grpo.num_generations={num_generations} gives every completion the same "
                    "reward (use num_generations >= 3 or a smaller set_subset_size)"
                )
        return w


def shifted(r: np.ndarray) -> np.ndarray:
    """r − min(0, min r): the group's rewards made non-negative (DARLING and the set score assume
    r ≥ 0; a negative reward times a diversity factor would reward *less* diversity)."""
    return r - min(0.0, float(r.min()))


def mean_sibling_distance(dist: np.ndarray) -> np.ndarray:
    """d_i = mean_{j≠i} D_ij for a (K, K) distance matrix with a zero diagonal."""
    k = dist.shape[0]
    return dist.sum(axis=1) / max(k - 1, 1)


def additive_reward(r: np.ndarray, dist: np.ndarray, beta: float, lam: float) -> np.ndarray:
    """R_i = (β·r_i + λ·d_i) / (β + λ)."""
    return (beta * r + lam * mean_sibling_distance(dist)) / (beta + lam)


def multiplicative_reward(r: np.ndarray, dist: np.ndarray, beta: float, lam: float) -> np.ndarray:
    """R_i = r'_i·(β + λ·n_i)/(β + λ), n_i = d_i / max d (DARLING's r·norm(d) at β = 0)."""
    d = mean_sibling_distance(dist)
    top = d.max()
    n = d / top if top > 0 else np.ones_like(d)  # no completion is less diverse than another
    return shifted(r) * (beta + lam * n) / (beta + lam)


def set_reward(
    r: np.ndarray,
    dist: np.ndarray,
    beta: float,
    lam: float,
    subset_size: int | None = None,
    max_subsets: int = 64,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """R_i = mean over subsets S ∋ i of f(S) = mean r'(S)·(β + λ·D̄(S))/(β + λ) (Hamid et al. 2025)."""
    k = dist.shape[0]
    m = subset_size or max(2, k // 2)
    if not 2 <= m < k:
        raise ValueError(f"set reward: subset size {m} must be in [2, K) for a group of K={k}")
    if math.comb(k, m) <= max_subsets:
        subsets = [list(s) for s in itertools.combinations(range(k), m)]
    else:
        rng = rng or np.random.default_rng(0)
        subsets = [
            sorted(rng.choice(k, size=m, replace=False).tolist()) for _ in range(max_subsets)
        ]
    rp = shifted(r)
    members = np.zeros((len(subsets), k), dtype=bool)  # (S, K)
    scores = np.empty(len(subsets))  # (S,)
    for s, idx in enumerate(subsets):
        members[s, idx] = True
        div = dist[np.ix_(idx, idx)].sum() / (m * (m - 1))  # mean over pairs in S
        scores[s] = rp[idx].mean() * (beta + lam * div) / (beta + lam)
    counts = members.sum(axis=0)  # (K,) sampled subsets may miss a completion
    per_item = (members * scores[:, None]).sum(axis=0) / np.maximum(counts, 1)
    return np.where(counts > 0, per_item, scores.mean())


def group_reward(
    r: np.ndarray,
    dist: np.ndarray,
    weights: Weights,
    subset_size: int | None = None,
    max_subsets: int = 64,
    group_key: str = "",
    seed: int = 0,
) -> np.ndarray:
    """R for one prompt's group: engagement `r` (K,) and floored distances `dist` (K, K).

    With λ = 0 (or a group of one) R is r itself; the `set` mode's subset draw is seeded by
    (seed, group_key), so it does not depend on batch order.
    """
    r = np.asarray(r, dtype=np.float64)
    k = r.shape[0]
    if weights.lam == 0 or k < 2:
        return r.copy()
    if weights.mode == "additive":
        return additive_reward(r, dist, weights.beta, weights.lam)
    if weights.mode == "multiplicative":
        return multiplicative_reward(r, dist, weights.beta, weights.lam)
    if weights.mode == "set":
        h = int.from_bytes(hashlib.sha1(group_key.encode("utf-8")).digest()[:4], "little")
        rng = np.random.default_rng([seed, h])
        return set_reward(r, dist, weights.beta, weights.lam, subset_size, max_subsets, rng)
    raise ValueError(f"unknown diversity mode {weights.mode!r}; choose from {list(MODES)}")


def sft_nll_per_row(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean NLL of each row's reference reply; labels are -100 on prompt and padding.

    logits: (B, T, V) for positions 0..T-1; labels: (B, T), predicted from the previous position.
    Returns (B,); a row without any label token gets 0.
    """
    shift_logits = logits[:, :-1, :].float()  # (B, T-1, V)
    shift_labels = labels[:, 1:]  # (B, T-1)
    nll = torch.nn.functional.cross_entropy(
        shift_logits.transpose(1, 2), shift_labels, ignore_index=-100, reduction="none"
    )  # (B, T-1)
    n_tokens = (shift_labels != -100).sum(dim=1)  # (B,)
    return nll.sum(dim=1) / n_tokens.clamp(min=1)


def objective_rewards(
    engagement: np.ndarray,
    emb: np.ndarray | None,
    texts: Sequence[str],
    keys: Sequence[str],
    k: int,
    weights: Weights,
    cfg: ObjectiveConfig,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """R for a whole (gathered) generation batch: consecutive blocks of `k` completions are the
    groups, exactly as TRL groups them for its advantages.

    Args:
        engagement: (N,) engagement reward r of every completion (zeros when R does not read it).
        emb: (N, d) unit embeddings of the completions (None when λ = 0).
        texts / keys: each completion's text and its prompt's key (tweet id), to check the groups.
        k: completions per prompt.

    Returns:
        (R (N,), statistics to log: mean raw pairwise distance, floored and short shares, mean d).
    """
    from replyrl.rewards.diversity import group_distances

    r = np.asarray(engagement, dtype=np.float64)
    n = r.shape[0]
    if n % k:
        raise ValueError(f"objective: {n} completions do not form groups of {k}")
    out = np.empty(n)
    dist_sum = floored = pairs = short = d_sum = 0.0
    for start in range(0, n, k):
        sl = slice(start, start + k)
        group_keys = set(keys[sl])
        if len(group_keys) != 1:
            raise RuntimeError(
                f"objective: completions {start}..{start + k - 1} of the gathered batch belong to "
                f"prompts {sorted(group_keys)}; TRL groups completions by position, so a group must "
                "share one prompt (a sampler or gather order changed)"
            )
        if weights.lam == 0 or emb is None:
            out[sl] = r[sl]
            continue
        dist, st = group_distances(emb[sl], texts[sl], cfg.diversity_floor, cfg.diversity_min_chars)
        out[sl] = group_reward(
            r[sl], dist, weights, cfg.set_subset_size, cfg.set_max_subsets, keys[start], seed
        )
        dist_sum += st["pairwise_distance"] * st["pairs"]
        floored, pairs, short = floored + st["floored"], pairs + st["pairs"], short + st["short"]
        d_sum += float(mean_sibling_distance(dist).sum())
    if not np.all(np.isfinite(out)):
        raise ValueError(f"objective reward produced non-finite values: {out.tolist()}")
    stats = {}
    if pairs:
        stats = {
            "pairwise_distance": dist_sum / pairs,
            "floored_frac": floored / pairs,
            "short_frac": short / n,
            "sibling_distance_mean": d_sum / n,
        }
    return out, stats
