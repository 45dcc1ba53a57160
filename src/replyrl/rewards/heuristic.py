"""Heuristic engagement reward (DESIGN §3): no training, five components each in a fixed range.

| component | value | why |
|---|---|---|
| relevance | cosine(tweet, reply) × (1 − echo penalty), in [-1, 1] | on-topic replies, not copies of the tweet (echo.py) |
| length | 1 inside [50, 150] chars, Gaussian falloff outside (C¹ at the edges) | the Twitter optimum; a smooth score gives RL a gradient a step would not |
| sentiment | 1 − |VADER(tweet) − VADER(reply)| / 2, in [0, 1] | tone that matches the post (VADER is tuned for social media: Hutto & Gilbert 2014) |
| uniqueness | ½·unique-word ratio + ½·(1 − repeated-trigram share), in [0, 1] | penalizes the degenerate loops RL finds |
| safety | 1 − P(profane) from alt-profanity-check, in [0, 1] | a penalty for abuse |

The score is the weighted mean `Σ w_c·c / Σ w_c` (seed weights 0.3/0.15/0.15/0.1/0.1), so it stays on
the components' scale whatever the weights add up to. VADER and profanity results are cached by text:
tweets repeat K times per GRPO step.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from replyrl.config import ConfigError
from replyrl.rewards.base import call_scorer, check_lengths
from replyrl.rewards.embeddings import EmbeddingCache, cosine_rows

COMPONENTS = ("relevance", "length", "sentiment", "uniqueness", "safety")
_WORD = re.compile(r"[\w']+", re.UNICODE)


@dataclass
class HeuristicConfig:
    """Weights and shape of the heuristic reward."""

    relevance: float = 0.3
    """Weight of cosine(tweet, reply)."""
    length: float = 0.15
    """Weight of the length score."""
    sentiment: float = 0.15
    """Weight of the VADER sentiment match."""
    uniqueness: float = 0.1
    """Weight of non-repetition."""
    safety: float = 0.1
    """Weight of 1 − P(profane)."""
    length_lo: int = 50
    """Shortest length (chars) with a full length score."""
    length_hi: int = 150
    """Longest length (chars) with a full length score."""
    length_sigma_lo: float = 25.0
    """Gaussian falloff width (chars) below `length_lo`."""
    length_sigma_hi: float = 75.0
    """Gaussian falloff width (chars) above `length_hi` (long replies are penalized more gently)."""
    ngram: int = 3
    """n of the repeated n-gram share in the uniqueness score."""

    def __post_init__(self) -> None:
        ws = self.weights()
        if any(w < 0 or not math.isfinite(w) for w in ws.values()):
            raise ConfigError(f"heuristic weights must be finite and >= 0, got {ws}")
        if sum(ws.values()) <= 0:
            raise ConfigError("at least one heuristic weight must be > 0")
        if not 0 <= self.length_lo <= self.length_hi:
            raise ConfigError(
                f"need 0 <= length_lo <= length_hi, got {self.length_lo}, {self.length_hi}"
            )
        if not (0 < self.length_sigma_lo < math.inf and 0 < self.length_sigma_hi < math.inf):
            raise ConfigError(
                "length_sigma_lo and length_sigma_hi must be finite numbers > 0, got "
                f"{self.length_sigma_lo}, {self.length_sigma_hi}"
            )
        if self.ngram < 1:
            raise ConfigError(f"ngram must be >= 1, got {self.ngram}")

    def weights(self) -> dict[str, float]:
        return {c: float(getattr(self, c)) for c in COMPONENTS}


def length_score(
    n_chars: np.ndarray | Sequence[int],
    lo: int = 50,
    hi: int = 150,
    sigma_lo: float = 25.0,
    sigma_hi: float = 75.0,
) -> np.ndarray:
    """1 on [lo, hi]; exp(−½((lo−n)/σ_lo)²) below, exp(−½((n−hi)/σ_hi)²) above.

    >>> length_score([100, 25, 225, 0]).round(4).tolist()
    [1.0, 0.6065, 0.6065, 0.1353]
    """
    n = np.asarray(n_chars, dtype=np.float64)
    below = np.clip(lo - n, 0, None) / sigma_lo
    above = np.clip(n - hi, 0, None) / sigma_hi
    return np.exp(-0.5 * (below**2 + above**2))


def uniqueness_score(text: str, ngram: int = 3) -> float:
    """½·(unique words / words) + ½·(1 − repeated n-gram share); 0 for a text without words.

    The repeated n-gram share is (n-grams − distinct n-grams) / n-grams, 0 when the text has fewer
    than `ngram` words.

    >>> round(uniqueness_score("the cat the cat the cat"), 4)
    0.4167
    """
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0
    unique_ratio = len(set(words)) / len(words)
    grams = [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
    repeated = (len(grams) - len(set(grams))) / len(grams) if grams else 0.0
    return 0.5 * unique_ratio + 0.5 * (1.0 - repeated)


def sentiment_match(tweet_compound: np.ndarray, reply_compound: np.ndarray) -> np.ndarray:
    """1 − |c_t − c_r| / 2 for VADER compound scores in [-1, 1]: 1 = same tone, 0 = opposite."""
    return 1.0 - np.abs(np.asarray(tweet_compound) - np.asarray(reply_compound)) / 2.0


class _TextMemo:
    """A bounded per-text memo for a batched text -> float function."""

    def __init__(self, fn: Callable[[list[str]], Sequence[float]], max_items: int = 200_000):
        self.fn, self.max_items = fn, max_items
        self.store: OrderedDict[str, float] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.store))
        if todo:
            for t, v in zip(todo, self.fn(todo)):
                self.store[t] = float(v)
            while len(self.store) > self.max_items:
                self.store.popitem(last=False)
        return np.array(
            [self.store[t] if t in self.store else float(self.fn([t])[0]) for t in texts]
        )


def vader_compound(texts: list[str]) -> list[float]:
    """VADER compound polarity in [-1, 1] of each text."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    global _VADER
    if _VADER is None:
        _VADER = SentimentIntensityAnalyzer()
    return [_VADER.polarity_scores(t)["compound"] for t in texts]


def profanity_prob(texts: list[str]) -> list[float]:
    """P(profane) of each text from alt-profanity-check's shipped linear model (vectorized)."""
    from profanity_check import predict_prob

    return predict_prob(list(texts)).tolist()


_VADER = None


class HeuristicReward:
    """The heuristic reward as a TRL reward callable; `.components()` gives each part.

    Args:
        cfg: weights and length shape.
        embeddings: the embedding cache for relevance (shared with other rewards when given).
        sentiment_fn / profanity_fn: batched text -> score functions (injectable for tests).
    """

    __name__ = "heuristic"

    def __init__(
        self,
        cfg: HeuristicConfig | None = None,
        embeddings: EmbeddingCache | None = None,
        sentiment_fn: Callable[[list[str]], Sequence[float]] | None = None,
        profanity_fn: Callable[[list[str]], Sequence[float]] | None = None,
    ):
        self.cfg = cfg or HeuristicConfig()
        self.embeddings = embeddings if embeddings is not None else EmbeddingCache()
        self._sentiment = _TextMemo(sentiment_fn or vader_compound)
        self._profanity = _TextMemo(profanity_fn or profanity_prob)
        self.last_components: dict[str, np.ndarray] = {}

    def components(self, tweets: Sequence[str], replies: Sequence[str]) -> dict[str, np.ndarray]:
        """Each component's value per (tweet, reply), before weighting."""
        check_lengths(self.__name__, tweets=tweets, replies=replies)
        cfg = self.cfg
        ws = cfg.weights()
        n = len(replies)
        out: dict[str, np.ndarray] = {}
        # Skip the expensive parts that carry zero weight (relevance needs the encoder).
        if ws["relevance"] > 0:
            from replyrl.rewards.echo import echo_penalty, echo_scores

            et = self.embeddings.encode(tweets)
            er = self.embeddings.encode(replies)
            out["echo"] = echo_penalty(echo_scores(tweets, replies))
            out["relevance"] = cosine_rows(et, er) * (1.0 - out["echo"])
        else:
            out["relevance"] = np.zeros(n)
            out["echo"] = np.zeros(n)
        out["length"] = length_score(
            [len(r.strip()) for r in replies],
            cfg.length_lo,
            cfg.length_hi,
            cfg.length_sigma_lo,
            cfg.length_sigma_hi,
        )
        if ws["sentiment"] > 0:
            out["sentiment"] = sentiment_match(self._sentiment(tweets), self._sentiment(replies))
        else:
            out["sentiment"] = np.zeros(n)
        out["uniqueness"] = np.array(
            [uniqueness_score(r, cfg.ngram) for r in replies], dtype=np.float64
        )
        out["safety"] = 1.0 - self._profanity(replies) if ws["safety"] > 0 else np.zeros(n)
        return out

    def combine(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        """Weighted mean of the components."""
        ws = self.cfg.weights()
        total = sum(ws.values())
        return sum(ws[c] * comps[c] for c in COMPONENTS) / total

    def score(self, tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        """Heuristic score per (tweet, reply); also stores `.last_components`."""
        comps = self.components(tweets, replies)
        self.last_components = comps
        return self.combine(comps)

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        return call_scorer(self, prompts, completions, columns)
