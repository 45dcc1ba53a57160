"""Genuine-reply checks for the suggestion ranker: copying the tweet, and speaking as its author.

Every reward we rank by pays for relevance, and nothing is more "relevant" to a tweet than the tweet
itself: the heuristic reward preferred the echo to the genuine reply in all 24 committed cases
(tests/data/echo_cases.jsonl). So the ranker subtracts a penalty, whatever the reward:

    echo        = max(echo_score(tweet, reply),                     replyrl.rewards.echo (ROUGE-L recall)
                      sqrt(recall × containment))                   copy: see `copy_score`
    as_author   = 1 when the reply announces the tweet's subject in the first person, else 0
    p           = max(echo_penalty(echo), as_author)                in [0, 1]
    penalty     = p × (echo_weight + spread of the candidates' reward totals)
    ranked      = reward total − penalty

With the spread term a full echo (p = 1) lands below every candidate without a penalty, on any
reward scale (the heuristic's [0, 1] or a composite's z-units); `echo_weight` (1.0, in reward units)
keeps that true when the pool is small and its spread tiny.

Why the copy score besides `echo_score`: `echo_score` deliberately scales short tweets down
("Good morning to you too!" replies to "Good morning!"), so "It's snowing! It's snowing!" or
"Happy Friday friends" passed as replies. `copy_score` needs both directions: the reply covers the
tweet (ROUGE-L recall) *and* is made of the tweet's words (containment), so a greeting that adds
words keeps a low score while a pure restatement of any length gets a high one.

Why the author check is this narrow: a pronoun swap ("your" → "my", then `echo_score`) also caught
"Congrats on your first open source library!" (0.71 after the swap), the most typical genuine
reply there is. What does mark a post rather than a reply is an announcement in the replier's own
voice ("excited to share", "proud to announce", ...) about the tweet's subject: the base model
writes "I'm thrilled to share that we've launched a new open source library!" in reply to "Just
shipped my first open source library!". The phrase plus at least 30 % of the tweet (ROUGE-L
recall) flagged 0 of the 15,194 real replies in reddit-college/pool.jsonl (2 contain the phrase,
with recall 0.05 and 0.2), 0 of 984 synthetic replies and 0 of the 24 genuine replies in the
cases. Restated claims in the author's voice ("Just shipped your first ...", "You just ran your
first marathon ...") are caught by the echo score already. A first-person claim pattern ("we've
just launched ...") was tried and left out: it flagged genuine "I did it too" replies
(docs/serving.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from replyrl.rewards.echo import echo_penalty, echo_score

ANNOUNCE = re.compile(
    r"\b(?:excited|thrilled|happy|proud|pleased|delighted|glad)\s+to\s+"
    r"(?:share|announce|introduce|present|unveil|report)\b",
    re.IGNORECASE,
)
"""An announcement in the replier's own voice: what the tweet's author says, not a replier."""
AUTHOR_MIN_RECALL = 0.3
"""The announcement must repeat at least this share of the tweet (ROUGE-L recall) to count."""


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer, tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=False)
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer), tokenizer


def _recall_and_containment(tweet: str, reply: str) -> tuple[float, float]:
    scorer, tokenizer = _rouge()
    tweet_tokens, reply_tokens = tokenizer.tokenize(tweet), tokenizer.tokenize(reply)
    if not tweet_tokens or not reply_tokens:
        return 0.0, 0.0
    vocab = set(tweet_tokens)
    containment = sum(t in vocab for t in reply_tokens) / len(reply_tokens)
    return float(scorer.score(tweet, reply)["rougeL"].recall), containment


def copy_score(tweet: str, reply: str) -> float:
    """sqrt(ROUGE-L recall of the tweet in the reply × share of reply tokens found in the tweet).

    >>> copy_score("It's snowing!", "It's snowing! It's snowing!")
    1.0
    >>> round(copy_score("Good morning!", "Good morning to you too!"), 2)
    0.63
    """
    recall, containment = _recall_and_containment(tweet, reply)
    return math.sqrt(recall * containment)


def speaks_as_author(tweet: str, reply: str) -> bool:
    """True when the reply announces the tweet's content in the first person.

    >>> speaks_as_author("Just shipped my first open source library!",
    ...                  "I'm excited to share that your first open source library just shipped")
    True
    >>> speaks_as_author("Just shipped my first open source library!", "So excited to try it!")
    False
    """
    if not ANNOUNCE.search(reply):
        return False
    return _recall_and_containment(tweet, reply)[0] >= AUTHOR_MIN_RECALL


def echo_checks(tweet: str, replies: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(echo in [0, 1], as_author in {0, 1}) per reply, each shape (n,)."""
    echo = [max(echo_score(tweet, r), copy_score(tweet, r)) for r in replies]
    author = [float(speaks_as_author(tweet, r)) for r in replies]
    return np.asarray(echo, dtype=np.float64), np.asarray(author, dtype=np.float64)


def echo_penalties(
    totals: np.ndarray, echo: np.ndarray, as_author: np.ndarray, weight: float
) -> np.ndarray:
    """The amount subtracted from each reward total (see the module docstring), shape (n,).

    >>> echo_penalties(np.array([0.9, 0.6]), np.array([1.0, 0.0]), np.zeros(2), 1.0).tolist()
    [1.3, 0.0]
    """
    totals = np.asarray(totals, dtype=np.float64)
    if totals.size == 0 or weight == 0:
        return np.zeros_like(totals)
    spread = float(totals.max() - totals.min())
    share = np.maximum(echo_penalty(echo), np.asarray(as_author, dtype=np.float64))
    return share * (weight + spread)
