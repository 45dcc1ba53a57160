"""The suggestion ranker prefers genuine replies: the committed (tweet, echo, genuine) cases under the
default heuristic ranker with the real encoder, hand-computed echo signals, and the author check's
false-positive rate on real replies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from replyrl.serve.echoes import copy_score, echo_checks, echo_penalties, speaks_as_author
from replyrl.serve.suggest import SuggestConfig, Suggester, encoder_embedder

CASES_FILE = Path(__file__).parent / "data" / "echo_cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()]


def test_the_case_set_is_varied_and_its_premise_holds(encoder):
    kinds = {c["kind"] for c in CASES}
    assert len(CASES) >= 20 and kinds == {"restatement", "perspective", "partial_quote", "short"}
    assert all(sum(c["kind"] == k for c in CASES) >= 5 for k in kinds)
    # The premise: under the encoder every echo is closer to its tweet than the genuine reply,
    # so any reward paying for relevance pays more for the echo.
    emb = lambda texts: encoder.encode(texts, normalize_embeddings=True)  # noqa: E731
    t, e, g = (emb([c[key] for c in CASES]) for key in ("tweet", "echo", "genuine"))
    assert np.all((t * e).sum(1) > (t * g).sum(1))


@pytest.fixture(scope="module")
def heuristic_suggester(encoder):
    from replyrl.serve.loading import build_ranker

    class Script:
        replies: list[str] = []

        def __call__(self, tweet, n, temperature, seed, instruction):
            return list(self.replies)

    # dedup_threshold=1: the encoder's echo filter is off, so the ranking alone is tested.
    cfg = SuggestConfig(oversample=1.0, max_rounds=1, dedup_threshold=1.0)
    return Suggester(Script(), encoder_embedder(encoder), build_ranker(None), cfg)


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['kind']}" for i, c in enumerate(CASES)])
def test_genuine_reply_outranks_the_echo(heuristic_suggester, case):
    heuristic_suggester.generate.replies = [case["echo"], case["genuine"]]
    result = heuristic_suggester.suggest(case["tweet"], k=2, seed=0)
    ranked = [s.reply for s in result.suggestions]
    assert ranked == [case["genuine"], case["echo"]], [
        (s.reply, round(s.score, 3), s.components) for s in result.suggestions
    ]
    genuine, echo = result.suggestions
    assert genuine.components["penalty"] == 0.0  # no genuine reply pays anything
    assert echo.components["penalty"] > 0.0


def test_copy_score_hand_computed():
    # recall 1 (the whole tweet in order), containment 1 (every reply token is the tweet's)
    assert copy_score("It's snowing!", "It's snowing! It's snowing!") == 1.0
    # "good morning" covers the tweet (recall 1) but is 2 of the reply's 5 tokens: sqrt(0.4)
    assert copy_score("Good morning!", "Good morning to you too!") == pytest.approx(0.4**0.5)
    # LCS "first open source library" = 4 of 7 tweet tokens; 4 of 7 reply tokens from the tweet
    assert copy_score(
        "Just shipped my first open source library!", "Congrats on your first open source library!"
    ) == pytest.approx(4 / 7)
    assert copy_score("", "anything") == 0.0 and copy_score("tweet", "!!!") == 0.0


def test_author_check():
    tweet = "Just shipped my first open source library!"
    assert speaks_as_author(
        tweet, "Thrilled to announce that your first open source library shipped"
    )
    # An announcement on the tweet's subject is a post, not a reply (the base model writes these).
    assert speaks_as_author(
        tweet, "I'm thrilled to share that we've launched a new open source library!"
    )
    # The phrase alone is not enough: it must be about the tweet (>= 30 % of it, ROUGE-L recall).
    assert not speaks_as_author(tweet, "Happy to report that the weather is great here")
    assert not speaks_as_author(tweet, "So excited to try it!")
    assert not speaks_as_author(tweet, "Congrats on your first open source library!")
    _, author = echo_checks(
        tweet, ["I'm excited to share that your first open source library shipped"]
    )
    assert author.tolist() == [1.0]


def test_penalties_hand_computed():
    totals = np.array([0.9, 0.7, 0.5])
    echo = np.array([0.75, 0.0, 0.3])  # echo_penalty: (0.75 - 0.6) / 0.3 = 0.5, 0, 0
    author = np.array([0.0, 1.0, 0.0])
    # spread 0.4: penalty = share x (1 + 0.4)
    assert echo_penalties(totals, echo, author, 1.0).tolist() == pytest.approx([0.7, 1.4, 0.0])
    assert echo_penalties(totals, echo, author, 0.0).tolist() == [0.0, 0.0, 0.0]
    assert echo_penalties(np.zeros(0), np.zeros(0), np.zeros(0), 1.0).size == 0


def test_real_replies_are_rarely_penalized_and_never_flagged_as_author():
    from conftest import shared_file

    rows = [json.loads(x) for x in shared_file("seed5k.jsonl").read_text().splitlines()]
    checks = [echo_checks(r["tweet"], [r["reply"]]) for r in rows]
    assert sum(float(author[0]) for _, author in checks) == 0
    # Replies that pay any echo penalty: mostly Reddit's ">quoted question" answers.
    penalized = sum(echo_penalties(np.zeros(1), e, a, 1.0)[0] > 0 for e, a in checks)
    assert penalized / len(rows) < 0.005, penalized
