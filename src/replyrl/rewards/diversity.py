"""Diversity credit for the K completions of one prompt (DESIGN §4: "D must have a gradient").

Diversity measured on sampled text has no gradient, so it enters through the policy gradient: each
completion i of a group gets a credit that joins its reward *before* GRPO's group normalization.

Distances: `D_ij = 1 − cos(e_i, e_j)` under the sentence encoder, then floored — `max(D_ij − floor,
0)` — and zeroed for completions shorter than `min_chars`. Reddit/Twitter-style short replies make
embedding distance noisy ("lol" vs "nice" sit far apart); without the floor the policy is paid for
noise. Both are logged (`diversity/floor`, `diversity/floored_frac`, `diversity/short_frac`).

Modes (λ = `lam`; final reward = r_i + credit_i):
- `additive`: credit_i = λ·d_i, d_i = mean_j≠i D_ij.
- `multiplicative` (DARLING: Li et al., "Jointly Reinforcing Diversity and Quality in Language
  Model Generations", Meta 2025): r'_i·((1 − λ) + λ·d_i / max_j d_j) − r'_i, i.e. the reward times the
  group-normalized diversity at λ = 1. DARLING assumes r ≥ 0, so rewards are shifted within the group
  (r' = r − min(0, min_j r_j)). A group with no diversity at all (max d = 0) is left unchanged.
- `set` (Polychromic objectives: Hamid et al., "Polychromic Objectives for Reinforcement Learning",
  2025): the set score f(S) = mean_{i∈S} r_i × mean_{i<j∈S} D_ij over subsets S of size m; credit_i =
  λ·(mean_{S∋i} f(S) − mean_S f(S)). All subsets when there are at most `max_subsets`, else a seeded
  sample (seed + the group key, so the draw does not depend on batch order).

Groups are found by prompt identity (`tweet_id` column, else the prompt text), not by position. A
group of size 1 — e.g. when a group's completions are split across processes, which TRL avoids by
gathering whole groups but a custom sampler may not — gets zero credit: diversity needs siblings.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from replyrl.rewards.base import (
    RewardError,
    check_rewards,
    completion_texts,
    group_keys,
    log_components,
)
from replyrl.rewards.embeddings import EmbeddingCache

Mode = Literal["additive", "multiplicative", "set"]
MODES = ("additive", "multiplicative", "set")
log = logging.getLogger(__name__)


def pairwise_distance(emb: np.ndarray) -> np.ndarray:
    """(K, d) unit embeddings -> (K, K) cosine distances with a zero diagonal."""
    d = 1.0 - emb.astype(np.float64) @ emb.astype(np.float64).T  # (K, K)
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, 2.0)


def floor_distances(d: np.ndarray, floor: float, short: np.ndarray | None = None) -> np.ndarray:
    """max(D − floor, 0); rows and columns of `short` completions set to 0."""
    out = np.clip(d - floor, 0.0, None)
    if short is not None and short.any():
        out[short, :] = 0.0
        out[:, short] = 0.0
    np.fill_diagonal(out, 0.0)
    return out


def additive_credit(d: np.ndarray, lam: float) -> np.ndarray:
    """λ·(mean distance of each completion to its siblings)."""
    k = d.shape[0]
    if k < 2:
        return np.zeros(k)
    return lam * d.sum(axis=1) / (k - 1)


def multiplicative_credit(d: np.ndarray, rewards: np.ndarray, lam: float) -> np.ndarray:
    """DARLING-style: r'·((1−λ) + λ·norm(d_i)) − r' with norm(d_i) = d_i / max d (Li et al. 2025)."""
    k = d.shape[0]
    if k < 2:
        return np.zeros(k)
    div = d.sum(axis=1) / (k - 1)
    top = div.max()
    if top <= 0:
        return np.zeros(k)  # nothing distinguishes the completions: leave the rewards alone
    shifted = rewards - min(0.0, float(rewards.min()))
    return lam * shifted * (div / top - 1.0)


def set_credit(
    d: np.ndarray,
    rewards: np.ndarray,
    lam: float,
    subset_size: int | None = None,
    max_subsets: int = 64,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Polychromic set credit (Hamid et al. 2025): mean f(S) over subsets containing i minus the mean
    over all subsets, f(S) = mean reward in S × mean pairwise distance in S."""
    k = d.shape[0]
    if k < 2:
        return np.zeros(k)
    m = min(k, subset_size if subset_size else max(2, k // 2))
    m = max(m, 2)
    if math.comb(k, m) <= max_subsets:
        subsets = [list(s) for s in itertools.combinations(range(k), m)]
    else:
        rng = rng or np.random.default_rng(0)
        subsets = [
            sorted(rng.choice(k, size=m, replace=False).tolist()) for _ in range(max_subsets)
        ]
    members = np.zeros((len(subsets), k), dtype=bool)  # (S, K)
    scores = np.empty(len(subsets))
    for s, idx in enumerate(subsets):
        members[s, idx] = True
        sub = d[np.ix_(idx, idx)]
        div = sub.sum() / (m * (m - 1))  # mean over ordered pairs = mean over unordered pairs
        scores[s] = rewards[idx].mean() * div
    baseline = scores.mean()
    counts = members.sum(axis=0)
    per_item = (members * scores[:, None]).sum(axis=0) / np.maximum(counts, 1)
    return np.where(counts > 0, lam * (per_item - baseline), 0.0)


def _as_cache(encoder: Any) -> EmbeddingCache:
    if isinstance(encoder, EmbeddingCache):
        return encoder
    return EmbeddingCache(encoder)


def diversity_credit(
    group_keys: Sequence[str],
    completions: Sequence[Any],
    rewards: Sequence[float],
    mode: Mode,
    lam: float,
    encoder: Any = None,
    floor: float = 0.05,
    min_chars: int = 10,
    subset_size: int | None = None,
    max_subsets: int = 64,
    seed: int = 0,
    stats: dict[str, float] | None = None,
) -> np.ndarray:
    """Credit per completion, to add to its reward before group normalization.

    Args:
        group_keys: one key per completion naming its prompt (completions sharing a key are siblings).
        completions: the completions (strings or chat format).
        rewards: the base reward per completion (used by `multiplicative` and `set`).
        mode: `additive`, `multiplicative` or `set`.
        lam: the diversity weight λ (0 gives zero credit).
        encoder: an EmbeddingCache or a sentence encoder (None: the packaged MiniLM).
        floor: distances below this count as 0 (embedding noise on short replies).
        min_chars: completions shorter than this get no diversity credit.
        subset_size / max_subsets / seed: subset sampling of the `set` mode.
        stats: when given, filled with `pairwise_distance`, `floored_frac`, `short_frac`, `singleton_frac`.

    Returns:
        (n,) credits; identical completions get 0, a group of one gets 0.
    """
    if mode not in MODES:
        raise RewardError(f"unknown diversity mode {mode!r}; choose from {list(MODES)}")
    if not math.isfinite(lam) or lam < 0:
        raise RewardError(f"diversity weight lam must be finite and >= 0, got {lam}")
    texts = completion_texts(completions)
    r = np.asarray(rewards, dtype=np.float64)
    n = len(texts)
    if len(group_keys) != n or r.shape[0] != n:
        raise RewardError(
            f"diversity credit: {len(group_keys)} group keys, {n} completions and "
            f"{r.shape[0]} rewards; they must match one to one"
        )
    credit = np.zeros(n)
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(group_keys):
        groups.setdefault(str(key), []).append(i)
    cache = _as_cache(encoder) if lam > 0 or stats is not None else None
    emb = cache.encode(texts) if cache is not None and n else None
    dist_sum = dist_n = floored = pairs = 0.0
    short_n = singletons = 0
    for key, idx in groups.items():
        if len(idx) < 2:
            singletons += len(idx)
            continue
        raw = pairwise_distance(emb[idx])
        short = np.array([len(texts[i].strip()) < min_chars for i in idx])
        d = floor_distances(raw, floor, short)
        iu = np.triu_indices(len(idx), 1)
        dist_sum += raw[iu].sum()
        dist_n += len(iu[0])
        floored += float((d[iu] == 0).sum())
        pairs += len(iu[0])
        short_n += int(short.sum())
        if lam == 0:
            continue
        if mode == "additive":
            c = additive_credit(d, lam)
        elif mode == "multiplicative":
            c = multiplicative_credit(d, r[idx], lam)
        else:
            h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "little")
            c = set_credit(
                d, r[idx], lam, subset_size, max_subsets, np.random.default_rng([seed, h])
            )
        credit[idx] = c
    if stats is not None:
        stats.update(
            pairwise_distance=dist_sum / dist_n if dist_n else 0.0,
            floored_frac=floored / pairs if pairs else 0.0,
            short_frac=short_n / n if n else 0.0,
            singleton_frac=singletons / n if n else 0.0,
        )
    return credit


class DiversityCredit:
    """A TRL reward callable: the base reward plus the group diversity credit (see module doc)."""

    def __init__(
        self,
        reward_fn: Any,
        mode: Mode = "additive",
        lam: float = 0.2,
        encoder: Any = None,
        floor: float = 0.05,
        min_chars: int = 10,
        subset_size: int | None = None,
        max_subsets: int = 64,
        seed: int = 0,
    ):
        if mode not in MODES:
            raise RewardError(f"unknown diversity mode {mode!r}; choose from {list(MODES)}")
        self.reward_fn, self.mode, self.lam = reward_fn, mode, float(lam)
        self.floor, self.min_chars = floor, min_chars
        self.subset_size, self.max_subsets, self.seed = subset_size, max_subsets, seed
        if encoder is None:  # share the base reward's cache: completions are then encoded once
            encoder = getattr(reward_fn, "embeddings", None)
        self.embeddings = _as_cache(encoder)
        self.base_name = getattr(reward_fn, "__name__", type(reward_fn).__name__)
        self.__name__ = f"{self.base_name}_diversity"
        self.last_components: dict[str, np.ndarray] = {}
        log.info(
            "diversity credit (%s, lambda=%s): cosine distances below floor=%s count as 0 and "
            "replies under %d chars get none, because embedding distance of short replies is noise",
            mode,
            lam,
            floor,
            min_chars,
        )

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        base = np.asarray(
            check_rewards(
                self.reward_fn(prompts, completions, **columns), len(completions), self.base_name
            )
        )
        keys = group_keys(prompts, columns, len(completions))
        stats: dict[str, float] = {}
        credit = diversity_credit(
            keys,
            completions,
            base,
            self.mode,
            self.lam,
            self.embeddings,
            self.floor,
            self.min_chars,
            self.subset_size,
            self.max_subsets,
            self.seed,
            stats,
        )
        self.last_components = dict(getattr(self.reward_fn, "last_components", {}) or {})
        self.last_components[self.base_name] = base
        self.last_components["diversity_credit"] = credit
        log_metric = columns.get("log_metric")
        if log_metric is not None:
            log_components(log_metric, {self.base_name: base})
            log_metric("diversity/credit_mean", float(credit.mean()) if len(credit) else 0.0)
            log_metric("diversity/pairwise_distance", stats["pairwise_distance"])
            log_metric("diversity/floor", float(self.floor))
            log_metric("diversity/floored_frac", stats["floored_frac"])
            log_metric("diversity/short_frac", stats["short_frac"])
            log_metric("diversity/singleton_frac", stats["singleton_frac"])
        return check_rewards(base + credit, len(completions), self.__name__)


def with_diversity_credit(
    reward_fn: Any, mode: Mode = "additive", lam: float = 0.2, encoder: Any = None, **kwargs: Any
) -> DiversityCredit:
    """Wrap `reward_fn` so each completion's reward gains its group diversity credit.

    >>> fn = with_diversity_credit(my_reward, mode="additive", lam=0.2)  # doctest: +SKIP
    >>> GRPOTrainer(..., reward_funcs=[fn])                               # doctest: +SKIP
    """
    return DiversityCredit(reward_fn, mode, lam, encoder, **kwargs)
