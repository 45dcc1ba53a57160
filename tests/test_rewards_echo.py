"""Echo detection: hand-computed ROUGE-L recall values and the penalty ramp."""

import numpy as np
import pytest

from replyrl.rewards.echo import echo_penalty, echo_score, echo_scores

TWEET = "Just shipped my first open source library!"  # 7 tokens


def test_verbatim_echo_scores_one():
    assert echo_score(TWEET, TWEET) == 1.0


def test_restatement_keeps_six_of_seven_tokens():
    reply = "Just shipped your first open source library! Your entire list of items is: 1. docs"
    assert echo_score(TWEET, reply) == pytest.approx(6 / 7)


def test_quoting_a_noun_phrase_is_not_penalized():
    reply = "Congrats on your first open source library, what does it do?"
    assert echo_score(TWEET, reply) == pytest.approx(4 / 7)
    assert echo_penalty(echo_score(TWEET, reply)) == 0.0


def test_short_tweets_scale_the_score_down():
    # 2 tokens copied completely: recall 1 × 2/5
    assert echo_score("Good morning!", "Good morning to you too!") == pytest.approx(0.4)


def test_penalty_ramp_values():
    assert echo_penalty([0.0, 0.6, 0.75, 0.9, 1.0]).tolist() == pytest.approx([0, 0, 0.5, 1, 1])


def test_vectorized_and_mismatch():
    assert echo_scores([TWEET, TWEET], [TWEET, "no"]).tolist() == pytest.approx([1.0, 0.0])
    assert np.isclose(echo_score("", "anything"), 0.0)
    with pytest.raises(ValueError, match="2 tweets but 1 replies"):
        echo_scores([TWEET, TWEET], [TWEET])
