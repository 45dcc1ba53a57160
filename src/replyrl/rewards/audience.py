"""The oracle reward of the synthetic sample: the simulated audience itself (`reward.kind:
audience`).

On synthetic data the audience that produced the likes is known exactly (data/synth.py), so RL can
optimise it directly. That run is the ceiling a learned reward model is measured against: the share
of the oracle's audience gain that a learned reward reaches. On real data there is no audience, and
asking for it is an error (`check_oracle_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from replyrl.rewards.base import call_scorer
from replyrl.rewards.embeddings import EmbeddingCache


class AudienceReward:
    """`audience_engagement` as a reward callable (TRL signature and `.score`)."""

    __name__ = "audience"

    def __init__(self, embeddings: EmbeddingCache | None = None):
        self.embeddings = embeddings if embeddings is not None else EmbeddingCache()
        self.last_components: dict[str, np.ndarray] = {}

    def score(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        from replyrl.data.synth import audience_engagement

        values = audience_engagement(list(tweets), list(replies), embeddings=self.embeddings)
        self.last_components = {"audience": values}
        return values

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        return call_scorer(self, prompts, completions, columns)


def check_oracle_data(records: Sequence, where: str) -> None:
    """Raise a clear error unless every record is synthetic (the only data with an audience)."""
    from replyrl.config import ConfigError

    real = [r for r in records if r.extra.get("source") != "synthetic"]
    if real:
        raise ConfigError(
            f"{where}: reward.kind=audience is the simulated audience of the synthetic sample, "
            f"but {len(real)} of {len(records)} training records are not synthetic (e.g. tweet "
            f"{real[0].tweet_id!r}); real data has no known audience — use kind learned, "
            "composite or heuristic"
        )
