"""Reply suggestions for one tweet: sample more candidates than asked, drop near-duplicates, rank.

The pipeline behind `replyrl suggest` and `replyrl serve`:

1. one batched sampling pass draws `ceil(oversample * k)` candidates (the prompt prefilled once);
2. empty replies, exact duplicates and echoes of the tweet itself are dropped;
3. every candidate is scored by a `Ranker` (the composite reward with `--reward RM_DIR`, the
   heuristic reward without), minus a penalty for copying the tweet or speaking as its author
   (`replyrl.serve.echoes`: whatever the reward, an echo must not outrank a genuine reply), and the
   best are kept greedily, skipping any reply whose encoder cosine to an already kept one (or to the
   tweet) is above `dedup_threshold` — so of a cluster of near-duplicates the best-scored one
   survives;
4. when fewer than k distinct replies survive, another round is sampled (bounded by `max_rounds`
   and `max_candidates`), so k distinct replies come back whenever the model can produce them.

The prompt's instruction comes from a `Style` (tone preset, voice examples; `replyrl.serve.style`)
over the suggester's base instruction. Generation, embedding and ranking are plain callables so the
web app and tests can swap in fakes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from replyrl.config import SEED_MAX
from replyrl.errors import UserError
from replyrl.models import DEFAULT_INSTRUCTION
from replyrl.serve.echoes import echo_checks, echo_penalties
from replyrl.serve.style import Style

Generate = Callable[[str, int, float, int, str], list[str]]
"""(tweet, n, temperature, seed, instruction) -> n sampled replies, in one batched generate call."""
Embed = Callable[[list[str]], np.ndarray]
"""texts -> (len(texts), dim) L2-normalized embeddings."""


class SuggestError(UserError, ValueError):
    """A suggestion request that cannot be answered (bad arguments, a broken reward)."""


@dataclass
class SuggestConfig:
    """How candidates are sampled, de-duplicated and bounded."""

    oversample: float = 3.0
    """Candidates sampled per requested reply in the first round (k=5 -> 15 candidates)."""
    dedup_threshold: float = 0.9
    """Encoder cosine above which two replies count as near-duplicates (and a reply as an echo of the tweet)."""
    max_rounds: int = 3
    """Sampling rounds at most; a later round runs only when dedup left fewer than k replies."""
    max_candidates: int = 96
    """Candidates sampled at most over all rounds, so a degenerate model cannot loop forever."""
    echo_weight: float = 1.0
    """Penalty of a full echo in reward units, on top of the candidates' score spread (0 = off)."""

    def __post_init__(self) -> None:
        if self.oversample < 1:
            raise SuggestError(
                f"oversample must be >= 1 (sample at least k candidates), got {self.oversample}"
            )
        if not 0 < self.dedup_threshold <= 1:
            raise SuggestError(f"dedup_threshold must be in (0, 1], got {self.dedup_threshold}")
        if self.max_rounds < 1 or self.max_candidates < 1:
            raise SuggestError("max_rounds and max_candidates must be >= 1")
        if not math.isfinite(self.echo_weight) or self.echo_weight < 0:
            raise SuggestError(f"echo_weight must be finite and >= 0, got {self.echo_weight}")


@dataclass
class Suggestion:
    """One ranked reply."""

    reply: str
    """The reply text."""
    score: float
    """Total the ranking used (higher is better): the reward's total minus the echo penalty."""
    components: dict[str, float] = field(default_factory=dict)
    """Per-component values behind `score` (e.g. relevance, length, learned; echo, as_author,
    penalty)."""


@dataclass
class SuggestResult:
    """The answer to one suggestion request."""

    tweet: str
    """The tweet replied to."""
    suggestions: list[Suggestion]
    """Up to k distinct replies, best first."""
    n_sampled: int
    """Candidates sampled over all rounds."""
    n_distinct: int
    """Candidates left after dropping empties, duplicates, near-duplicates and echoes."""
    rounds: int
    """Sampling rounds used."""
    seconds: float
    """Wall time of the request."""
    seed: int
    """Seed of the first sampling round (later rounds derive theirs from it)."""
    style: Style = field(default_factory=Style)
    """The tone and voice the replies were asked for."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tweet": self.tweet,
            "suggestions": [
                {"reply": s.reply, "score": s.score, "components": dict(s.components)}
                for s in self.suggestions
            ],
            "n_sampled": self.n_sampled,
            "n_distinct": self.n_distinct,
            "rounds": self.rounds,
            "seconds": round(self.seconds, 3),
            "seed": self.seed,
            **self.style.to_record(),
        }


class Ranker(Protocol):
    """Scores replies to one tweet: totals (n,) and per-component arrays (each (n,))."""

    name: str

    def score(self, tweet: str, replies: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


class RewardRanker:
    """A Ranker over any DESIGN §3 reward callable `fn(prompts, completions, **columns)`.

    Components are read from the callable's `.last_components` (set by the heuristic and composite
    rewards after each call); a reward without them ranks by its total alone.
    """

    def __init__(self, fn: Callable[..., Sequence[float]], name: str) -> None:
        self.fn = fn
        self.name = name

    def score(self, tweet: str, replies: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = len(replies)
        if n == 0:
            return np.zeros(0), {}
        tweets = [tweet] * n
        totals = np.asarray(self.fn(tweets, list(replies), tweet=tweets), dtype=np.float64).reshape(
            -1
        )
        if totals.shape[0] != n or not np.all(np.isfinite(totals)):
            raise SuggestError(
                f"reward '{self.name}' returned {totals.shape[0]} values (or non-finite ones) for {n} replies"
            )
        comps: dict[str, np.ndarray] = {}
        for key, vals in (getattr(self.fn, "last_components", None) or {}).items():
            arr = np.asarray(vals, dtype=np.float64).reshape(-1)
            # A component logged for another batch shape is not ours; a non-finite one cannot be shown.
            if arr.shape[0] == n and np.all(np.isfinite(arr)):
                comps[str(key)] = arr
        return totals, comps


def normalize_text(text: str) -> str:
    """Key for exact-duplicate detection: case and whitespace do not make a reply different."""
    return " ".join(text.lower().split())


def select_distinct(
    order: Sequence[int],
    emb: np.ndarray,
    k: int,
    threshold: float,
    tweet_emb: np.ndarray | None = None,
) -> list[int]:
    """Greedily keep up to k indices from `order` (best first) whose embedding cosine to every kept
    one, and to the tweet, is at most `threshold`. Embeddings must be L2-normalized.

    >>> e = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    >>> select_distinct([0, 1, 2], e, k=3, threshold=0.9)
    [0, 2]
    """
    kept: list[int] = []
    for i in order:
        if tweet_emb is not None and float(emb[i] @ tweet_emb) > threshold:
            continue  # the model parroting the tweet back is not a reply
        if kept and float(np.max(emb[kept] @ emb[i])) > threshold:
            continue
        kept.append(i)
        if len(kept) == k:
            break
    return kept


class Suggester:
    """Samples, de-duplicates and ranks replies; holds the loaded model behind `generate`."""

    def __init__(
        self,
        generate: Generate,
        embed: Embed,
        ranker: Ranker,
        cfg: SuggestConfig | None = None,
        model_name: str = "default",
        instruction: str = DEFAULT_INSTRUCTION,
        style: Style | None = None,
    ) -> None:
        self.generate = generate
        self.embed = embed
        self.ranker = ranker
        self.cfg = cfg or SuggestConfig()
        self.model_name = model_name
        self.instruction = instruction
        """The instruction the policy was trained with; a tone replaces it."""
        self.style = style or Style()
        """The default style (`--tone`, `--voice`) of requests that do not choose one."""

    def suggest(
        self,
        tweet: str,
        k: int = 5,
        temperature: float = 0.9,
        seed: int = 0,
        style: Style | None = None,
    ) -> SuggestResult:
        """Return up to k distinct replies to `tweet`, best first (k when the model can produce them).

        `style` (tone, voice) defaults to the suggester's own.
        """
        tweet = tweet.strip()
        if not tweet:
            raise SuggestError("tweet must not be empty")
        if k < 1:
            raise SuggestError(f"k must be >= 1, got {k}")
        if not 0 < temperature <= 2:
            raise SuggestError(f"temperature must be in (0, 2], got {temperature}")
        if not 0 <= seed <= SEED_MAX:
            raise SuggestError(f"seed must be in 0..{SEED_MAX} (the sampler's range), got {seed}")
        cfg, t0 = self.cfg, time.perf_counter()
        style = style if style is not None else self.style
        instruction = style.instruction(self.instruction)
        pool: list[str] = []
        seen: set[str] = {normalize_text(tweet)}  # an exact echo of the tweet is never a candidate
        n_sampled, rounds = 0, 0
        kept: list[int] = []
        totals, comps = np.zeros(0), {}
        echo, as_author = np.zeros(0), np.zeros(0)
        emb = np.zeros((0, 0))
        tweet_emb = self.embed([tweet])[0]
        while rounds < cfg.max_rounds and n_sampled < cfg.max_candidates:
            missing = k - len(kept)
            n = min(math.ceil(cfg.oversample * missing), cfg.max_candidates - n_sampled)
            # A fixed, distinct seed per round: the same request gives the same replies.
            round_seed = (seed + 7919 * rounds) % (SEED_MAX + 1)  # stays in the sampler's range
            texts = self.generate(tweet, n, temperature, round_seed, instruction)
            n_sampled, rounds = n_sampled + n, rounds + 1
            fresh = []
            for t in texts:
                key = normalize_text(t)
                if key and key not in seen:
                    seen.add(key)
                    fresh.append(t.strip())
            if fresh:
                new_emb = np.asarray(self.embed(fresh), dtype=np.float64)
                emb = new_emb if not pool else np.vstack([emb, new_emb])
                pool.extend(fresh)
                # Re-score the whole pool: a composite reward may normalize its components per batch,
                # so scores from different rounds are only comparable when computed together.
                totals, comps = self.ranker.score(tweet, pool)
                if cfg.echo_weight > 0:
                    e, a = echo_checks(tweet, fresh)  # per (tweet, reply): computed once
                    echo, as_author = np.concatenate([echo, e]), np.concatenate([as_author, a])
                    penalty = echo_penalties(totals, echo, as_author, cfg.echo_weight)
                    totals = totals - penalty
                    comps = {**comps, "echo": echo, "as_author": as_author, "penalty": penalty}
                order = np.argsort(-totals, kind="stable")
                kept = select_distinct(
                    order.tolist(), emb, len(pool), cfg.dedup_threshold, tweet_emb
                )
            if len(kept) >= k:
                break
        suggestions = [
            Suggestion(pool[i], float(totals[i]), {c: float(v[i]) for c, v in comps.items()})
            for i in kept[:k]
        ]
        return SuggestResult(
            tweet, suggestions, n_sampled, len(kept), rounds, time.perf_counter() - t0, seed, style
        )


def policy_generator(
    model: Any, tokenizer: Any, max_new_tokens: int = 48, top_p: float = 0.95
) -> Generate:
    """A `Generate` over a loaded policy: one batched sampling pass of n rows for the tweet."""
    from replyrl.generation import SamplingConfig, generate_replies

    def generate(tweet: str, n: int, temperature: float, seed: int, instruction: str) -> list[str]:
        cfg = SamplingConfig(
            n=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_prompts=1,
            seed=seed,
            instruction=instruction,
        )
        return generate_replies(model, tokenizer, [tweet], cfg)[0]

    return generate


def encoder_embedder(encoder: Any) -> Embed:
    """An `Embed` over a SentenceTransformer (normalized, so a dot product is the cosine)."""

    def embed(texts: list[str]) -> np.ndarray:
        return encoder.encode(
            list(texts),
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    return embed
