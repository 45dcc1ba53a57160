"""Diversity credit: hand values for each mode, identical -> zero, outlier -> most, grouping by key."""

from __future__ import annotations

import numpy as np
import pytest

from replyrl.rewards.base import RewardError
from replyrl.rewards.diversity import diversity_credit, with_diversity_credit
from replyrl.rewards.embeddings import EmbeddingCache

# Two identical replies and one orthogonal outlier: D12 = 0, D13 = D23 = 1 (cosine distance).
TABLE = {
    "same reply one": [1, 0],
    "same reply two": [1, 0],
    "the outlier reply": [0, 1],
    "other prompt reply": [1, 1],
}


class FakeEncoder:
    def encode(self, texts, **kw):
        return np.array([TABLE[t] for t in texts], dtype=np.float32)


TEXTS = ["same reply one", "same reply two", "the outlier reply"]


def credit(mode, rewards=(1.0, 1.0, 1.0), lam=1.0, keys=("a", "a", "a"), texts=TEXTS, **kw):
    kw.setdefault("floor", 0.0)
    kw.setdefault("min_chars", 0)
    return diversity_credit(
        list(keys), list(texts), list(rewards), mode, lam, EmbeddingCache(FakeEncoder()), **kw
    )


def test_additive_hand_values():
    np.testing.assert_allclose(credit("additive", lam=0.1), [0.05, 0.05, 0.1], atol=1e-7)


def test_multiplicative_hand_values():
    # norm(d) = d / max d = [0.5, 0.5, 1]; credit = lam * r * (norm - 1)
    np.testing.assert_allclose(
        credit("multiplicative", rewards=(2.0, 1.0, 1.0)), [-1.0, -0.5, 0.0], atol=1e-7
    )
    np.testing.assert_allclose(credit("multiplicative", lam=0.5), [-0.25, -0.25, 0.0], atol=1e-7)


def test_set_hand_values():
    # subsets of size 2: {1,2}: f=0, {1,3}: f=1, {2,3}: f=1; mean 2/3
    np.testing.assert_allclose(credit("set", subset_size=2), [-1 / 6, -1 / 6, 1 / 3], atol=1e-7)


@pytest.mark.parametrize("mode", ["additive", "multiplicative", "set"])
def test_identical_completions_get_zero_and_outlier_gets_most(mode):
    same = ["same reply one"] * 4
    np.testing.assert_allclose(
        credit(mode, rewards=(1, 2, 3, 4), keys="aaaa", texts=same), 0.0, atol=1e-12
    )
    c = credit(mode)
    assert c[2] == c.max() and c[2] > c[0]


def test_groups_by_key_not_position_and_singletons_get_zero():
    texts = ["same reply one", "other prompt reply", "the outlier reply", "same reply two"]
    c = credit("additive", rewards=(1, 1, 1, 1), keys=("a", "b", "a", "a"), texts=texts)
    np.testing.assert_allclose(c, [0.5, 0.0, 1.0, 0.5], atol=1e-7)


def test_floor_and_short_replies():
    # floor 0.5 turns distances of 1 into 0.5
    np.testing.assert_allclose(credit("additive", floor=0.5), [0.25, 0.25, 0.5], atol=1e-7)
    # every reply is shorter than min_chars: none earns (or lends) credit
    np.testing.assert_allclose(credit("additive", min_chars=18), [0.0, 0.0, 0.0], atol=1e-7)


def test_set_sampling_is_seeded():
    texts = [f"reply number {i}" for i in range(8)]
    rng = np.random.default_rng(0)
    for t in texts:
        TABLE[t] = rng.normal(size=4).tolist()
    kw = dict(rewards=np.arange(8.0), keys="a" * 8, texts=texts, subset_size=3, max_subsets=10)
    a, b = credit("set", seed=1, **kw), credit("set", seed=1, **kw)
    np.testing.assert_array_equal(a, b)


def test_wrapper_logs_and_adds_credit():
    def base(prompts, completions, **kw):
        return [1.0] * len(completions)

    fn = with_diversity_credit(
        base, "additive", lam=0.1, encoder=EmbeddingCache(FakeEncoder()), floor=0.0, min_chars=0
    )
    logged = {}
    out = fn(
        ["p", "p", "p"], TEXTS, log_metric=lambda k, v: logged.__setitem__(k, v), trainer_state=None
    )
    np.testing.assert_allclose(out, [1.05, 1.05, 1.1], atol=1e-7)
    assert logged["diversity/credit_mean"] == pytest.approx(0.2 / 3)
    assert logged["diversity/pairwise_distance"] == pytest.approx(2 / 3)
    assert logged["rewards/base/mean"] == 1.0
    assert fn.__name__ == "base_diversity"
    with pytest.raises(RewardError, match="unknown diversity mode"):
        with_diversity_credit(base, "bogus")
