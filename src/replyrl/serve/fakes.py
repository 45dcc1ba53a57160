"""Fast, deterministic stand-ins for the policy, encoder and reward, so the serving layer (queue,
validation, feedback, dedup rounds) is tested in milliseconds and benchmarked without a model."""

from __future__ import annotations

import hashlib
import random
import re
import threading

import numpy as np

from replyrl.serve.suggest import SuggestConfig, Suggester

_WORDS = (
    "great",
    "congrats",
    "love",
    "this",
    "library",
    "open",
    "source",
    "ship",
    "docs",
    "tests",
    "users",
    "release",
    "nice",
    "work",
    "star",
    "fork",
    "issue",
    "welcome",
    "proud",
    "next",
)


class FakeGenerator:
    """Seeded random word salads; `gate`, when set, blocks each call until released (queue tests)."""

    def __init__(self, words_per_reply: int = 8, delay_s: float = 0.0) -> None:
        self.words_per_reply = words_per_reply
        self.delay_s = delay_s
        self.gate: threading.Event | None = None
        self.calls: list[tuple[str, int, float, int]] = []
        self.instructions: list[str] = []
        """The instruction (system prompt) of each call, in call order."""

    def __call__(
        self, tweet: str, n: int, temperature: float, seed: int, instruction: str = ""
    ) -> list[str]:
        self.calls.append((tweet, n, temperature, seed))
        self.instructions.append(instruction)
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        rng = random.Random(seed)
        return [" ".join(rng.choice(_WORDS) for _ in range(self.words_per_reply)) for _ in range(n)]


def fake_embed(texts: list[str], dim: int = 64) -> np.ndarray:
    """Bag-of-words embedding through a stable hash, L2-normalized: same words -> cosine 1."""
    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        for w in re.findall(r"\w+", t.lower()):
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


class FakeRanker:
    """Ranks by distinct-word count (total in [0, 1]) with two components, like a real reward."""

    name = "fake"

    def score(self, tweet: str, replies: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        unique = np.array([len(set(r.split())) / max(len(r.split()), 1) for r in replies])
        length = np.array([min(len(r) / 100.0, 1.0) for r in replies])
        return 0.5 * unique + 0.5 * length, {"uniqueness": unique, "length": length}


def fake_suggester(cfg: SuggestConfig | None = None, delay_s: float = 0.0) -> Suggester:
    """A Suggester over the fakes above (its generator is `.generate`)."""
    return Suggester(
        FakeGenerator(delay_s=delay_s), fake_embed, FakeRanker(), cfg, model_name="fake"
    )
