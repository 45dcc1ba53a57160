"""Candidate sampling, de-duplication and ranking behind `replyrl suggest` (fast fakes, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from replyrl.models import DEFAULT_INSTRUCTION
from replyrl.serve.fakes import FakeRanker, fake_embed, fake_suggester
from replyrl.serve.style import TONES, Style
from replyrl.serve.suggest import (
    RewardRanker,
    SuggestConfig,
    Suggester,
    SuggestError,
    normalize_text,
    select_distinct,
)


def test_select_distinct_hand_computed():
    # cos(0,1) = 0.99 > 0.9: 1 is a near-duplicate of 0; 2 is orthogonal to both.
    e = np.array([[1.0, 0.0], [0.99, np.sqrt(1 - 0.99**2)], [0.0, 1.0]])
    assert select_distinct([0, 1, 2], e, k=3, threshold=0.9) == [0, 2]
    # Order decides which of a cluster survives: the best-ranked one.
    assert select_distinct([1, 0, 2], e, k=3, threshold=0.9) == [1, 2]
    assert select_distinct([0, 1, 2], e, k=1, threshold=0.9) == [0]
    # A threshold above their cosine keeps both.
    assert select_distinct([0, 1, 2], e, k=3, threshold=0.995) == [0, 1, 2]
    # A reply too close to the tweet is an echo, not a reply.
    assert select_distinct([0, 1, 2], e, k=3, threshold=0.9, tweet_emb=np.array([0.0, 1.0])) == [0]


def test_normalize_text():
    assert normalize_text("  Hello   World \n") == "hello world"


def test_k_distinct_replies_ranked_best_first():
    s = fake_suggester()
    r = s.suggest("Just shipped my first open source library!", k=5, temperature=0.9, seed=3)
    replies = [x.reply for x in r.suggestions]
    assert len(replies) == 5 and len(set(replies)) == 5
    scores = [x.score for x in r.suggestions]
    assert scores == sorted(scores, reverse=True)
    assert set(r.suggestions[0].components) == {
        "uniqueness",
        "length",
        "echo",
        "as_author",
        "penalty",
    }
    assert r.n_sampled == 15 and r.rounds == 1  # 3 x k in one generate call
    assert s.generate.calls == [("Just shipped my first open source library!", 15, 0.9, 3)]
    emb = fake_embed(replies)
    cos = emb @ emb.T
    assert np.all(cos[~np.eye(5, dtype=bool)] <= 0.9)


def test_same_seed_same_replies():
    a = fake_suggester().suggest("hello there", k=4, seed=11)
    b = fake_suggester().suggest("hello there", k=4, seed=11)
    c = fake_suggester().suggest("hello there", k=4, seed=12)
    assert [x.reply for x in a.suggestions] == [x.reply for x in b.suggestions]
    assert [x.reply for x in a.suggestions] != [x.reply for x in c.suggestions]


class _Scripted:
    """Returns scripted batches per round, recording the requested n."""

    def __init__(self, batches):
        self.batches, self.asked = list(batches), []

    def __call__(self, tweet, n, temperature, seed, instruction):
        self.asked.append((n, seed))
        self.instruction = instruction
        batch = self.batches.pop(0) if self.batches else ["same reply again"] * n
        return (batch * n)[:n]


def test_samples_again_when_dedup_leaves_fewer_than_k():
    # Round 1: 6 samples but only 2 distinct texts (one near-duplicate by words, one exact copy).
    gen = _Scripted(
        [
            ["alpha beta", "beta alpha", "ALPHA  beta", "gamma delta", "alpha beta", "gamma delta"],
            ["epsilon zeta", "eta theta", "iota kappa"],
        ]
    )
    s = Suggester(gen, fake_embed, FakeRanker(), SuggestConfig(oversample=2.0))
    r = s.suggest("a tweet", k=3, seed=5)
    assert len(r.suggestions) == 3
    assert r.rounds == 2
    # Second round asks for oversample x the missing one reply, with a different seed.
    assert gen.asked == [(6, 5), (2, 5 + 7919)]
    assert r.n_sampled == 8
    words = [frozenset(x.reply.lower().split()) for x in r.suggestions]
    assert len(set(words)) == 3


def test_rounds_and_candidates_are_bounded():
    gen = _Scripted([])  # always the same reply
    s = Suggester(
        gen,
        fake_embed,
        FakeRanker(),
        SuggestConfig(oversample=3.0, max_rounds=3, max_candidates=20),
    )
    r = s.suggest("a tweet", k=5, seed=0)
    assert [x.reply for x in r.suggestions] == ["same reply again"]
    # Round 1 asks 3 x 5 = 15; round 2 would ask 3 x 4 = 12 but only 5 are left under the cap.
    assert [n for n, _ in gen.asked] == [15, 5]
    assert r.rounds == 2 and r.n_sampled == 20


def test_echo_of_tweet_and_empty_replies_dropped():
    gen = _Scripted(
        [["Big news today", "big   NEWS today", "", "   ", "news big today", "fresh take here"]]
    )
    s = Suggester(gen, fake_embed, FakeRanker(), SuggestConfig(oversample=6.0, max_rounds=1))
    r = s.suggest("Big news today", k=1, seed=0)
    assert [x.reply for x in r.suggestions] == ["fresh take here"]
    assert r.n_distinct == 1


def test_bad_arguments():
    s = fake_suggester()
    with pytest.raises(SuggestError, match="empty"):
        s.suggest("   ", k=2)
    with pytest.raises(SuggestError, match="k must be"):
        s.suggest("hi", k=0)
    with pytest.raises(SuggestError, match="temperature"):
        s.suggest("hi", k=2, temperature=0)
    with pytest.raises(SuggestError, match="oversample"):
        SuggestConfig(oversample=0.5)
    with pytest.raises(SuggestError, match="dedup_threshold"):
        SuggestConfig(dedup_threshold=0)


def test_reward_ranker_reads_components_and_rejects_bad_values():
    class Fn:
        last_components: dict = {}

        def __call__(self, prompts, completions, **cols):
            assert cols["tweet"] == prompts
            self.last_components = {
                "len": np.array([float(len(c)) for c in completions]),
                "other_batch": np.zeros(1),
            }
            return [float(len(c)) / 10 for c in completions]

    totals, comps = RewardRanker(Fn(), "f").score("t", ["ab", "abcd"])
    assert totals.tolist() == [0.2, 0.4]
    assert list(comps) == ["len"] and comps["len"].tolist() == [2.0, 4.0]
    with pytest.raises(SuggestError, match="non-finite"):
        RewardRanker(lambda p, c, **k: [float("nan")] * len(c), "nan").score("t", ["a"])


class _PrefersLong:
    """A reward that pays for length, like relevance pays for copying: an echo that adds words
    to the tweet beats a short genuine reply unless the penalty steps in."""

    name = "long"

    def score(self, tweet, replies):
        total = np.array([len(r) / 100.0 for r in replies])
        return total, {"length": total}


def test_echo_penalty_ranks_a_genuine_reply_above_an_echo():
    tweet = "Finally finished my PhD thesis after five long years."
    echo = "Finally finished my PhD thesis after five long years!! So proud."
    genuine = "Huge congrats, what is next?"
    gen = _Scripted([[echo, genuine]])
    # dedup_threshold=1: the encoder's echo filter is off, so the ranking alone must handle it.
    cfg = SuggestConfig(oversample=1.0, max_rounds=1, dedup_threshold=1.0)
    r = Suggester(gen, fake_embed, _PrefersLong(), cfg).suggest(tweet, k=2, seed=0)
    assert [x.reply for x in r.suggestions] == [genuine, echo]
    top, low = r.suggestions
    assert top.components["echo"] < 0.3 and top.components["penalty"] == 0.0
    # echo 1.0 -> full penalty: weight 1 + spread of the totals (0.66 - 0.29)
    assert low.components["echo"] == 1.0 and low.components["as_author"] == 0.0
    assert low.components["penalty"] == pytest.approx(1.0 + (len(echo) - len(genuine)) / 100)
    assert low.score == pytest.approx(len(echo) / 100 - low.components["penalty"])
    # Off switch: the reward alone ranks, and no echo components are shown.
    off = Suggester(
        _Scripted([[echo, genuine]]),
        fake_embed,
        _PrefersLong(),
        SuggestConfig(oversample=1.0, max_rounds=1, dedup_threshold=1.0, echo_weight=0),
    ).suggest(tweet, k=2, seed=0)
    assert [x.reply for x in off.suggestions] == [echo, genuine]
    assert set(off.suggestions[0].components) == {"length"}


def test_echo_terms_follow_the_pool_across_rounds():
    # Round 2 adds an echo; its echo value must line up with its own reply after re-scoring.
    tweet = "Launch day for our new coffee app!"
    gen = _Scripted(
        [["alpha beta", "alpha beta"], ["Launch day for our new coffee app!!!", "gamma"]]
    )
    cfg = SuggestConfig(oversample=1.0, max_rounds=2, dedup_threshold=1.0)
    r = Suggester(gen, fake_embed, FakeRanker(), cfg).suggest(tweet, k=3, seed=0)
    by_reply = {x.reply: x.components for x in r.suggestions}
    assert by_reply["Launch day for our new coffee app!!!"]["echo"] == 1.0
    assert by_reply["alpha beta"]["echo"] == 0.0 and by_reply["gamma"]["echo"] == 0.0
    assert r.suggestions[-1].reply == "Launch day for our new coffee app!!!"


def test_echo_weight_is_validated():
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(SuggestError, match="echo_weight"):
            SuggestConfig(echo_weight=bad)


def test_style_sets_the_instruction_of_every_round():
    s = fake_suggester()
    s.suggest("hello there", k=2, seed=1)
    assert s.generate.instructions == [DEFAULT_INSTRUCTION]
    r = s.suggest("hello there", k=2, seed=1, style=Style("witty", ("lol same", "big if true")))
    instruction = s.generate.instructions[-1]
    assert instruction.startswith(TONES["witty"])
    assert '- "lol same"\n- "big if true"' in instruction
    assert r.style.tone == "witty" and r.to_dict()["voice"] == ["lol same", "big if true"]
    # A suggester's own default style and base instruction (e.g. from --run) apply without one.
    s2 = Suggester(
        s.generate, fake_embed, FakeRanker(), instruction="Reply kindly.", style=Style("curious")
    )
    assert s2.suggest("hi", k=1).to_dict()["tone"] == "curious"
    assert s.generate.instructions[-1] == TONES["curious"]
    assert s2.suggest("hi", k=1, style=Style()).style.tone is None
    assert s.generate.instructions[-1] == "Reply kindly."
