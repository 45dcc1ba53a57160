"""Distances among the K completions of one prompt: the D of the diversity term (DESIGN §4).

`D_ij = 1 − cos(e_i, e_j)` under the sentence encoder, then floored — `max(D_ij − floor, 0)` — and
zeroed for completions shorter than `min_chars`. Reddit/Twitter-style short replies make embedding
distance noisy ("lol" vs "nice" sit far apart); without the floor the policy is paid for noise. How
much the floor removes is logged (`diversity/floored_frac`, `diversity/short_frac`).

How D becomes a reward (additive, multiplicative/DARLING, set/polychromic) is the objective's
business: `replyrl.training.objective.group_reward`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pairwise_distance(emb: np.ndarray) -> np.ndarray:
    """(K, d) unit embeddings -> (K, K) cosine distances in [0, 2] with a zero diagonal."""
    e = np.asarray(emb, dtype=np.float64)
    d = 1.0 - e @ e.T  # (K, K)
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


def group_distances(
    emb: np.ndarray, texts: Sequence[str], floor: float = 0.05, min_chars: int = 10
) -> tuple[np.ndarray, dict[str, float]]:
    """Floored distance matrix of one group and its statistics.

    Returns:
        (D (K, K), {"pairwise_distance": mean raw distance, "floored": pairs floored to 0,
        "pairs": number of pairs, "short": completions under `min_chars`}).
    """
    raw = pairwise_distance(emb)
    short = np.array([len(t.strip()) < min_chars for t in texts], dtype=bool)
    dist = floor_distances(raw, floor, short)
    iu = np.triu_indices(len(texts), 1)
    stats = {
        "pairwise_distance": float(raw[iu].mean()) if len(iu[0]) else 0.0,
        "floored": float((dist[iu] == 0).sum()),
        "pairs": float(len(iu[0])),
        "short": float(short.sum()),
    }
    return dist, stats
