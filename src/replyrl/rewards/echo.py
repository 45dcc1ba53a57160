"""Echo detection: a reply that mostly copies the tweet back is not a relevant reply.

Cosine relevance under a sentence encoder is highest for the tweet itself, so a reward (or a ranker,
or the simulated audience) that pays for relevance pays most for parroting: "Just shipped your first
open source library!" scored 0.89 relevance against "Just shipped my first open source library!".

    echo(tweet, reply)    = ROUGE-L recall of the tweet's tokens in the reply
                            (longest common subsequence / tweet tokens; rouge-score, no stemming)
                            × min(1, tweet tokens / 5)
    echo_penalty          = clip((echo − 0.6) / 0.3, 0, 1)

ROUGE-L recall measures how much of the tweet the reply reproduces *in order*: a reply that quotes a
noun phrase of the tweet ("congrats on your first open source library") keeps about half of it and
gets no penalty; a restatement of the whole sentence keeps 85–100 % and gets most or all of it.
Short tweets are scaled down because answering "Good morning!" with "Good morning to you too!" is
a reply, not an echo. The penalty multiplies relevance (1 − penalty), so a genuine on-topic reply
outranks an echo however similar the echo's embedding is.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

ECHO_START = 0.6
"""Echo score at which the penalty starts (below it, quoting part of the tweet is normal)."""
ECHO_FULL = 0.9
"""Echo score at which the penalty is complete."""
MIN_TWEET_TOKENS = 5
"""Tweets shorter than this scale the echo score down (copying a greeting is a reply)."""


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer, tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=False)
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer), tokenizer


def echo_score(tweet: str, reply: str) -> float:
    """Share of the tweet's tokens the reply reproduces in order, in [0, 1].

    >>> echo_score("Just shipped my first open source library!", "Just shipped my first open source library!")
    1.0
    >>> round(echo_score("Just shipped my first open source library!", "Congrats! What does it do?"), 3)
    0.0
    """
    scorer, tokenizer = _rouge()
    n_tweet = len(tokenizer.tokenize(tweet))
    if n_tweet == 0:
        return 0.0
    recall = scorer.score(tweet, reply)["rougeL"].recall
    return float(recall * min(1.0, n_tweet / MIN_TWEET_TOKENS))


def echo_penalty(echo: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """clip((echo − 0.6) / 0.3, 0, 1): 0 for partial quoting, 1 for a near-verbatim copy."""
    e = np.asarray(echo, dtype=np.float64)
    return np.clip((e - ECHO_START) / (ECHO_FULL - ECHO_START), 0.0, 1.0)


def echo_scores(tweets: Sequence[str], replies: Sequence[str]) -> np.ndarray:
    """`echo_score` of each (tweet, reply) pair, shape (n,)."""
    if len(tweets) != len(replies):
        raise ValueError(f"echo_scores: {len(tweets)} tweets but {len(replies)} replies")
    return np.array([echo_score(t, r) for t, r in zip(tweets, replies)], dtype=np.float64)
