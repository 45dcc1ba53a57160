"""Length-controlled validation: the length-matched rule, the partial Spearman, audience pairs."""

import numpy as np
from scipy.stats import spearmanr

from replyrl.records import Record
from replyrl.rewards.validate import audience_pairs, length_matched, partial_spearman


def test_length_matched_rule_by_hand():
    lengths = np.array([100.0, 115.0, 116.0, 40.0])
    pairs = np.array([[0, 1], [0, 2], [3, 0]])
    # |100-115| = 15 <= 0.15*115 = 17.25; |100-116| = 16 <= 17.4; |40-100| = 60 > 15
    assert length_matched(lengths, pairs).tolist() == [True, True, False]


def test_partial_spearman_removes_what_length_explains():
    rng = np.random.default_rng(0)
    length = rng.uniform(10, 300, 400)
    quality = rng.normal(size=400)
    label = np.log(length) + quality
    length_only = np.log(length) + 0.01 * rng.normal(size=400)
    assert spearmanr(length_only, label).statistic > 0.5
    assert abs(partial_spearman(length_only, label, length)) < 0.15
    assert partial_spearman(quality, label, length) > 0.6
    assert np.isnan(partial_spearman(length, label, length))  # the control itself


def test_audience_pairs_order_within_tweets_and_skip_ties():
    def rec(t, reply, appeal):
        return Record(
            t, "tweet " + t, reply, 1, extra={"source": "synthetic", "audience_appeal": appeal}
        )

    recs = [rec("a", "x", 0.5), rec("a", "y", 0.7), rec("a", "z", 0.5), rec("b", "w", 0.1)]
    assert sorted(map(tuple, audience_pairs(recs).tolist())) == [(1, 0), (1, 2)]
