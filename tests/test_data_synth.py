"""The synthetic sample and its simulated audience (a known gold reward)."""

from __future__ import annotations

import numpy as np
import pytest

from replyrl.data.synth import audience_engagement, is_generic, length_score, synthesize


def test_length_score_band_and_smooth_falloff():
    s = length_score([50, 100, 150, 25, 300, 1000])
    assert s[:3].tolist() == [1.0, 1.0, 1.0]
    # log(50/25) = log 2 = 0.693; exp(-0.5 * (0.693/0.6)^2) = 0.5131
    assert s[3] == pytest.approx(np.exp(-0.5 * (np.log(2) / 0.6) ** 2))
    assert s[4] == pytest.approx(s[3])  # symmetric in log-length
    assert s[5] < s[4]


def test_generic_detection():
    assert is_generic("Nice!") and is_generic("Love it") and is_generic("lol")
    assert not is_generic("Nice pacing on that last mile!")
    assert not is_generic("Parrots rule")


def test_audience_prefers_specific_over_generic_offtopic_and_snarky(encoder):
    tweet = "Just shipped my first open source library! The documentation took forever."
    replies = [
        "Congrats! How did you structure the documentation for the library's first release?",
        "Nice!",
        "Does anyone know a good place to buy running shoes?",
        "Honestly this is boring and terrible, nobody cares about your library.",
    ]
    a = audience_engagement([tweet] * 4, replies, encoder)
    assert a.shape == (4,) and np.all((a >= 0) & (a <= 1))
    assert a[0] == a.max()
    assert a[1] < 0.2  # the one-word reply is punished
    assert a[0] > a[2] and a[0] > a[3]
    again = audience_engagement([tweet] * 4, replies, encoder)
    assert np.array_equal(a, again)


def test_audience_checks_lengths(encoder):
    with pytest.raises(ValueError, match="one tweet per reply"):
        audience_engagement(["a", "b"], ["x"], encoder)
    assert audience_engagement([], [], encoder).shape == (0,)


def test_synthesize_is_seeded_and_well_formed(encoder):
    recs = synthesize(n_tweets=30, seed=3, encoder=encoder)
    assert recs == synthesize(n_tweets=30, seed=3, encoder=encoder)
    assert recs != synthesize(n_tweets=30, seed=4, encoder=encoder)
    by_tweet: dict[str, list] = {}
    for r in recs:
        by_tweet.setdefault(r.tweet_id, []).append(r)
        assert r.extra["source"] == "synthetic"
        assert r.reply_likes >= 0 and r.reply_retweets <= r.reply_likes
        assert r.reply_author_followers is not None and r.reply_time_diff_seconds >= 0
    assert len(by_tweet) == 30
    assert all(4 <= len(v) <= 6 for v in by_tweet.values())
    assert all(len({r.tweet for r in v}) == 1 for v in by_tweet.values())
    kinds = {r.extra["reply_kind"] for r in recs}
    assert kinds == {"specific", "question", "generic", "off_topic", "rambling", "snarky"}


def test_synthetic_likes_follow_the_audience(encoder):
    recs = synthesize(n_tweets=100, seed=0, encoder=encoder)
    likes = np.array([r.reply_likes for r in recs], dtype=float)
    appeal = np.array([r.extra["audience_appeal"] for r in recs])
    # the text appeal must show through context and noise, or the sample teaches nothing
    assert np.corrcoef(np.log1p(likes), appeal)[0, 1] > 0.3
    generic = [r.reply_likes for r in recs if r.extra["reply_kind"] == "generic"]
    question = [r.reply_likes for r in recs if r.extra["reply_kind"] == "question"]
    assert np.mean(generic) < np.mean(question)


def test_audience_v2_does_not_reward_an_echo_of_the_tweet(encoder):
    tweet = "Just finished my first marathon and I'm honestly proud of it."
    echo = "Just finished my first marathon and I'm honestly proud of it!"
    genuine = "Congrats! How did you pace the last few miles? I'm training for my first one."
    a = audience_engagement([tweet] * 2, [echo, genuine], encoder)
    assert a[1] > a[0]
    from replyrl.data.synth import AUDIENCE_VERSION

    recs = synthesize(n_tweets=2, seed=0, encoder=encoder)
    assert {r.extra["audience_version"] for r in recs} == {AUDIENCE_VERSION} == {2}
