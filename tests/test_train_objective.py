"""Hand-computed values for the objective's pure math (training/objective.py): the recipe registry,
the three reward transforms (also at β = 0), positional grouping, and the SFT NLL."""

import math

import numpy as np
import pytest
import torch

from replyrl.training.objective import (
    RECIPES,
    ObjectiveConfig,
    Weights,
    get_recipe,
    group_reward,
    objective_rewards,
    sft_nll_per_row,
)

# Two identical replies and an orthogonal outlier: D01 = 0, D02 = D12 = 1, so d = [0.5, 0.5, 1].
D3 = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def R(mode, r, beta, lam, dist=D3, **kw):
    return group_reward(np.asarray(r, float), dist, Weights(0.0, beta, lam, mode), **kw)


def test_registry_has_the_five_recipes_and_rejects_unknown_ones():
    assert list(RECIPES) == ["sft", "polychromic", "grpo", "hybrid", "dpo"]
    assert [RECIPES[r].trainer for r in RECIPES] == ["sft", "grpo", "grpo", "grpo", "dpo"]
    assert [RECIPES[r].phase for r in RECIPES] == ["sft", "rl", "rl", "rl", "sft"]
    with pytest.raises(ValueError, match="unknown recipe 'grpoo'; choose from sft, polychromic"):
        get_recipe("grpoo")


def test_resolved_weights_and_overrides():
    cfg = ObjectiveConfig()
    assert cfg.resolved("hybrid") == Weights(0.3, 0.5, 0.2, "additive")
    assert cfg.resolved("grpo").pg_weight == 1.0
    assert ObjectiveConfig(diversity_weight=0.3).resolved("hybrid").pg_weight == pytest.approx(0.8)


@pytest.mark.parametrize(
    "cfg, recipe, k, match",
    [
        (dict(sft_weight=0, pg_weight=0, diversity_weight=0), "hybrid", 4, "all 0"),
        (dict(diversity_weight=0.0), "polychromic", 4, "use recipe sft"),
        (dict(diversity_weight=0.5), "sft", 4, "do not apply"),
        (dict(pg_weight=1.0), "dpo", 4, "do not apply"),
        (dict(diversity_mode="set", diversity_weight=0.5), "grpo", 2, "subsets smaller"),
        (dict(diversity_mode="set", diversity_weight=0.5, set_subset_size=4), "grpo", 4, "subset"),
    ],
)
def test_meaningless_combinations_fail(cfg, recipe, k, match):
    with pytest.raises(ValueError, match=match):
        ObjectiveConfig(**cfg).resolved(recipe, num_generations=k)


@pytest.mark.parametrize(
    "field, value",
    [("diversity_weight", -0.1), ("pg_weight", math.nan), ("diversity_floor", 1.0)],
)
def test_bad_values_fail_at_construction(field, value):
    with pytest.raises(ValueError, match=field):
        ObjectiveConfig(**{field: value})


def test_needs_engagement_is_decided_in_one_place():
    assert not Weights(1, 0, 0.5, "additive").needs_engagement  # polychromic, additive: d only
    assert Weights(1, 0, 0.5, "multiplicative").needs_engagement
    assert Weights(1, 0, 0.5, "set").needs_engagement
    assert Weights(0, 1, 0, "additive").needs_engagement


def test_additive_hand_values():
    assert R("additive", [1, 1, 1], beta=1, lam=1).tolist() == pytest.approx([0.75, 0.75, 1.0])
    assert R("additive", [3, 2, 1], beta=0, lam=0.7).tolist() == pytest.approx([0.5, 0.5, 1.0])


def test_multiplicative_hand_values():
    # n = d / max d = [0.5, 0.5, 1]; β = 0 is exactly DARLING's r·n
    assert R("multiplicative", [2, 1, 1], beta=0, lam=1).tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert R("multiplicative", [2, 1, 1], beta=1, lam=1).tolist() == pytest.approx([1.5, 0.75, 1.0])
    # negative rewards are shifted to >= 0 first: r' = [2, 0, 1]
    assert R("multiplicative", [1, -1, 0], beta=0, lam=1).tolist() == pytest.approx([1.0, 0, 1.0])


def test_multiplicative_beta_zero_keeps_the_engagement_order():
    # the counter-example: equally diverse siblings must keep r's order (old code reversed it)
    eq = np.ones((3, 3)) - np.eye(3)
    out = R("multiplicative", [1.0, 0.2, 0.5], beta=0, lam=0.5, dist=eq)
    assert out.tolist() == pytest.approx([1.0, 0.2, 0.5])


def test_set_hand_values():
    # subsets of 2: f{0,1} = 1·0, f{0,2} = 1·1, f{1,2} = 1·1 -> R = [0.5, 0.5, 1]
    assert R("set", [1, 1, 1], beta=0, lam=1).tolist() == pytest.approx([0.5, 0.5, 1.0])
    # β = λ = 1: f = (1 + D̄)/2 -> f = 0.5, 1, 1 -> R = [0.75, 0.75, 1]
    assert R("set", [1, 1, 1], beta=1, lam=1).tolist() == pytest.approx([0.75, 0.75, 1.0])


@pytest.mark.parametrize("mode", ["additive", "multiplicative", "set"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_more_engaging_never_lower_than_equally_diverse_sibling(mode, beta):
    """Completions 0 and 1 have identical distance rows (equally diverse); r0 > r1 -> R0 >= R1."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(3, 8))
        emb = rng.normal(size=(k, 5))
        emb[1] = emb[0]  # same position in embedding space -> same distances to everyone else
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        dist = np.clip(1 - emb @ emb.T, 0, 2)
        np.fill_diagonal(dist, 0)
        r = rng.normal(size=k)
        r[0] = r[1] + abs(rng.normal()) + 1e-3
        out = R(mode, r, beta=beta, lam=float(rng.uniform(0.1, 2)), dist=dist, max_subsets=10**6)
        assert out[0] >= out[1] - 1e-12, (mode, beta, r, out)


@pytest.mark.parametrize("mode", ["additive", "multiplicative", "set"])
def test_lambda_zero_is_plain_engagement(mode):
    r = np.array([0.3, -1.0, 2.0])
    assert R(mode, r, beta=1, lam=0).tolist() == r.tolist()


def test_additive_unscaled_advantages_count_beta_and_lambda_once():
    """With scale_rewards=none, w·(R − mean R) = β(r − r̄) + λ(d − d̄): no weight counts twice."""
    r, beta, lam = np.array([0.2, 1.0, -0.4]), 0.5, 0.2
    out = (beta + lam) * R("additive", r, beta, lam)
    d = np.array([0.5, 0.5, 1.0])
    expected = beta * (r - r.mean()) + lam * (d - d.mean())
    assert (out - out.mean()).tolist() == pytest.approx(expected.tolist())


def test_set_sampling_is_seeded_by_group_key():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(8, 4))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    dist = np.clip(1 - emb @ emb.T, 0, 2)
    np.fill_diagonal(dist, 0)
    kw = dict(dist=dist, subset_size=3, max_subsets=10)
    a = R("set", np.arange(8.0), 1, 1, group_key="t1", **kw)
    assert a.tolist() == R("set", np.arange(8.0), 1, 1, group_key="t1", **kw).tolist()
    assert a.tolist() != R("set", np.arange(8.0), 1, 1, group_key="t2", **kw).tolist()


def test_objective_rewards_groups_by_position_and_checks_keys():
    emb = np.array([[1, 0], [1, 0], [0, 1], [1, 0], [0, 1], [0, 1]], dtype=float)
    texts = ["a reply long enough"] * 6
    w = Weights(0.0, 1.0, 1.0, "additive")
    cfg = ObjectiveConfig(diversity_floor=0.0, diversity_min_chars=0)
    out, stats = objective_rewards(np.zeros(6), emb, texts, ["a"] * 3 + ["b"] * 3, 3, w, cfg)
    assert out.tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.25, 0.25])
    assert stats["pairwise_distance"] == pytest.approx(4 / 6)
    with pytest.raises(RuntimeError, match="belong to prompts"):
        objective_rewards(np.zeros(6), emb, texts, ["a", "a", "b", "b", "b", "b"], 3, w, cfg)


def test_floor_and_short_completions_remove_distance():
    emb = np.array([[1, 0], [0, 1], [0, 1]], dtype=float)
    w = Weights(0.0, 0.0, 1.0, "additive")
    cfg = ObjectiveConfig(diversity_floor=0.5, diversity_min_chars=5)
    out, stats = objective_rewards(
        np.zeros(3), emb, ["long reply", "long reply two", "ok"], "kkk", 3, w, cfg
    )
    # D01 = 1 - 0.5 floor = 0.5; "ok" is short: its distances are 0
    assert out.tolist() == pytest.approx([0.25, 0.25, 0.0])
    assert stats["short_frac"] == pytest.approx(1 / 3)


def test_sft_nll_per_row_hand_values():
    logits = torch.zeros(2, 3, 4)
    labels = torch.tensor([[-100, 2, 3], [-100, -100, 1]])
    logits[0, 0, 2] = 100.0  # row 0, position 0 predicts token 2 with certainty
    out = sft_nll_per_row(logits, labels)
    assert out.tolist() == pytest.approx([math.log(4) / 2, math.log(4)], rel=1e-5)
