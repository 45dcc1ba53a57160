"""Heuristic reward: exact values per component on hand-made examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replyrl.rewards.base import RewardError, check_rewards, completion_texts, tweets_from
from replyrl.rewards.embeddings import EmbeddingCache
from replyrl.rewards.heuristic import (
    HeuristicConfig,
    HeuristicReward,
    length_score,
    sentiment_match,
    uniqueness_score,
)


class FakeEncoder:
    """Maps known texts to fixed vectors so cosines are exact; counts what it encodes."""

    def __init__(self, table: dict[str, list[float]]):
        self.table, self.calls = table, []

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        return np.array([self.table[t] for t in texts], dtype=np.float32)

    def get_sentence_embedding_dimension(self):
        return len(next(iter(self.table.values())))


def test_length_score_exact_and_smooth():
    assert length_score([50, 100, 150]).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(
        length_score([25, 225, 0, 300]),
        [math.exp(-0.5), math.exp(-0.5), math.exp(-2.0), math.exp(-2.0)],
    )
    # smooth: no jump at the edges of the optimum
    assert abs(length_score([49.999])[0] - 1.0) < 1e-6
    assert abs(length_score([150.001])[0] - 1.0) < 1e-6


def test_uniqueness_exact():
    assert uniqueness_score("the cat the cat the cat") == pytest.approx(
        0.5 * (2 / 6) + 0.5 * (1 - 2 / 4)
    )
    assert uniqueness_score("all words differ here") == 1.0
    assert uniqueness_score("hi") == 1.0  # no trigram, one unique word
    assert uniqueness_score("!!!") == 0.0  # no words at all


def test_sentiment_match_exact():
    np.testing.assert_allclose(
        sentiment_match(np.array([0.0, 1.0, 0.5]), np.array([0.0, -1.0, 0.0])), [1.0, 0.0, 0.75]
    )


def test_vader_neutral_and_opposite():
    h = HeuristicReward(HeuristicConfig(relevance=0, length=0, uniqueness=0, safety=0))
    comps = h.components(
        ["The meeting is at noon.", "I love this so much!"],
        ["The room is on the second floor.", "I hate this, it is awful."],
    )
    assert comps["sentiment"][0] == 1.0  # both neutral: compound 0 and 0
    assert comps["sentiment"][1] < 0.3  # opposite tone


def test_safety_from_injected_classifier_and_real_model():
    h = HeuristicReward(
        HeuristicConfig(relevance=0, sentiment=0), profanity_fn=lambda ts: [0.25] * len(ts)
    )
    assert h.components(["t"], ["r"])["safety"].tolist() == [0.75]
    real = HeuristicReward(HeuristicConfig(relevance=0, sentiment=0))
    s = real.components(
        ["t", "t"], ["What a lovely idea, thanks for sharing", "fuck you, you stupid shit"]
    )["safety"]
    assert s[0] > 0.9 and s[1] < 0.1


def test_relevance_is_encoder_cosine_and_tweets_encoded_once():
    enc = FakeEncoder({"tw": [1, 0], "same": [1, 0], "orth": [0, 1], "half": [1, 1]})
    h = HeuristicReward(
        HeuristicConfig(),
        embeddings=EmbeddingCache(enc),
        sentiment_fn=lambda ts: [0.0] * len(ts),
        profanity_fn=lambda ts: [0.0] * len(ts),
    )
    comps = h.components(["tw", "tw", "tw"], ["same", "orth", "half"])
    np.testing.assert_allclose(comps["relevance"], [1.0, 0.0, 1 / math.sqrt(2)], atol=1e-6)
    h.components(["tw"], ["same"])
    assert sum(c.count("tw") for c in enc.calls) == 1  # the cache encoded the tweet once


def test_weighted_mean_exact():
    enc = FakeEncoder({"tw": [1, 0], "r": [1, 0]})
    cfg = HeuristicConfig()
    h = HeuristicReward(
        cfg,
        embeddings=EmbeddingCache(enc),
        sentiment_fn=lambda ts: [0.0] * len(ts),
        profanity_fn=lambda ts: [0.5] * len(ts),
    )
    # relevance 1, length exp(-0.5*(49/25)^2), sentiment 1, uniqueness 1 ("r" one word), safety 0.5
    ls = math.exp(-0.5 * (49 / 25) ** 2)
    want = (0.3 * 1 + 0.15 * ls + 0.15 * 1 + 0.1 * 1 + 0.1 * 0.5) / 0.8
    assert h(prompts=None, completions=["r"], tweet=["tw"]) == [pytest.approx(want)]


def test_call_chat_format_prompt_and_completion_and_log_metric():
    enc = FakeEncoder({"tweet text": [1, 0], "a reply": [0, 1]})
    h = HeuristicReward(
        embeddings=EmbeddingCache(enc),
        sentiment_fn=lambda ts: [0.0] * len(ts),
        profanity_fn=lambda ts: [0.0] * len(ts),
    )
    prompts = [
        [{"role": "system", "content": "be nice"}, {"role": "user", "content": "tweet text"}]
    ]
    completions = [[{"role": "assistant", "content": "a reply"}]]
    logged = {}
    out = h(
        prompts,
        completions,
        trainer_state=object(),
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert len(out) == 1 and math.isfinite(out[0])
    assert logged["rewards/relevance/mean"] == pytest.approx(0.0, abs=1e-6)
    assert set(logged) == {
        f"rewards/{c}/mean"
        for c in ("relevance", "echo", "length", "sentiment", "uniqueness", "safety")
    }


def test_base_helpers_and_errors():
    assert completion_texts(["x", [{"role": "assistant", "content": "y"}]]) == ["x", "y"]
    assert tweets_from(["p"], {"tweet": ["t"]}) == ["t"]
    with pytest.raises(RewardError, match="non-finite"):
        check_rewards([1.0, float("nan")], 2, "r")
    with pytest.raises(RewardError, match="one value per completion"):
        check_rewards([1.0], 2, "r")
    h = HeuristicReward(embeddings=EmbeddingCache(FakeEncoder({"a": [1, 0]})))
    with pytest.raises(RewardError, match="differ in length"):
        h(None, ["a", "a"], tweet=["a"])
    with pytest.raises(ValueError, match=">= 0"):
        HeuristicConfig(relevance=-1)
