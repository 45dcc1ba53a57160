"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replyrl.evaluation import metrics as M


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (4, 0, 1, 0.0),
        (4, 1, 1, 0.25),  # c/n
        (4, 4, 4, 1.0),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4)
        (4, 3, 2, 1.0),  # n - c = 1 < k = 2
        (8, 6, 4, 1.0),  # n - c = 2 < k = 4
        (8, 1, 8, 1.0),  # n - c = 7 < k = 8
    ],
)
def test_pass_at_k_closed_form(n, c, k, expected):
    assert M.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    if n - c >= k:
        assert M.pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError, match="exceeds"):
        M.pass_at_k(4, 1, 8)
    with pytest.raises(ValueError):
        M.pass_at_k(4, 5, 1)


def test_self_bleu_identical_is_100_and_disjoint_near_0():
    assert M.self_bleu(["the cat sat on the mat today"] * 4) == pytest.approx(100.0)
    disjoint = ["alpha beta gamma delta", "epsilon zeta eta theta", "iota kappa lambda mu"]
    assert M.self_bleu(disjoint) < 1.0
    assert math.isnan(M.self_bleu(["only one"]))


def test_distinct_n_exact_counts():
    replies = ["a b a", "a b c"]
    # unigrams: a b a a b c -> 3 unique / 6; bigrams: ab ba ab bc -> 3 unique / 4
    assert M.distinct_n(replies, 1) == pytest.approx(3 / 6)
    assert M.distinct_n(replies, 2) == pytest.approx(3 / 4)
    assert M.distinct_n(["Nice!"] * 4, 1) == pytest.approx(2 / 8)  # "nice", "!"
    assert math.isnan(M.distinct_n(["one"], 2))


def test_duplicate_rate_normalises_case_and_punctuation():
    assert M.duplicate_rate(["Agreed!", "agreed", "AGREED.", "no way"]) == pytest.approx(0.5)
    assert M.duplicate_rate(["a", "b", "c"]) == 0.0


def test_rouge_l_takes_best_reference():
    scores = M.rouge_l(["the cat sat", "dogs bark"], ["a dog runs", "the cat sat"])
    assert scores[0] == pytest.approx(1.0)
    # stemming makes "dogs" match "dog": LCS 1, P = 1/2, R = 1/3, F = 0.4
    assert scores[1] == pytest.approx(0.4)
    assert M.rouge_l(["zebra"], ["the cat sat"])[0] == 0.0


def test_bertscore_greedy_matching_by_hand():
    cand = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[1.0, 0.0]])
    # P = mean(max sim per cand token) = (1 + 0)/2; R = 1; F = 2*0.5*1/1.5
    assert M.bertscore_f1(cand, ref) == pytest.approx(2 / 3)
    assert M.bertscore_f1(cand[:0], ref) == 0.0


def test_bertscore_and_semantic_diversity_with_encoder(encoder):
    texts = ["I love this sourdough recipe", "The crust looks perfect", "Stocks fell today"]
    tok = M.token_embeddings(encoder, texts)
    assert M.bertscore([texts[0]], [texts[0]], tok)[0] == pytest.approx(1.0)
    near = M.bertscore([texts[1]], [texts[0]], tok)[0]
    assert 0.0 < near < 1.0
    emb = M.embed(encoder, texts)
    assert M.semantic_diversity(emb[[0, 0, 0]]) == pytest.approx(0.0, abs=1e-6)
    assert M.semantic_diversity(emb) > 0.5
