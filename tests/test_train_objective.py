"""Hand-computed values for the objective's pure math (objective.py)."""

import math

import numpy as np
import pytest
import torch

from replyrl.training.objective import (
    ObjectiveConfig,
    group_advantages,
    policy_reward,
    sft_nll,
    total_loss,
)


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])
    adv = group_advantages(r, k=4)
    std = torch.tensor([1.0, 2.0, 3.0, 4.0]).std().item()  # unbiased, as TRL
    expected = [
        (-1.5) / (std + 1e-4),
        (-0.5) / (std + 1e-4),
        0.5 / (std + 1e-4),
        1.5 / (std + 1e-4),
    ]
    assert adv[:4].tolist() == pytest.approx(expected, rel=1e-6)
    assert adv[4:].tolist() == [0.0, 0.0, 0.0, 0.0]  # zero-std group -> zero advantage


def test_group_advantages_unscaled_and_clipped():
    r = torch.tensor([0.0, 10.0])
    assert group_advantages(r, k=2, scale=False).tolist() == [-5.0, 5.0]
    assert group_advantages(r, k=2, scale=False, clip=2.0).tolist() == [-2.0, 2.0]


def test_policy_reward_is_beta_r_plus_credit():
    out = policy_reward(np.array([1.0, 0.5]), np.array([0.1, -0.2]), beta=0.5)
    assert out.tolist() == pytest.approx([0.6, 0.05])


def test_sft_nll_matches_hand_value():
    # Two positions predict; uniform logits over V=4 give NLL log(4) per predicted token.
    logits = torch.zeros(1, 3, 4)
    labels = torch.tensor([[-100, 2, 3]])
    assert sft_nll(logits, labels).item() == pytest.approx(math.log(4))
    logits[0, 0, 2] = 100.0  # position 0 predicts token 2 with certainty
    assert sft_nll(logits, labels).item() == pytest.approx(math.log(4) / 2, rel=1e-5)


def test_total_loss_weights():
    pg, sft = torch.tensor(2.0), torch.tensor(3.0)
    assert total_loss(pg, sft, 0.3, 0.5, 0.2).item() == pytest.approx(0.3 * 3 + 0.7 * 2)
    assert total_loss(None, sft, 1.0, 0.0, 0.0).item() == pytest.approx(3.0)  # plain SFT
    with pytest.raises(ValueError):
        total_loss(None, None, 1.0, 0.0, 0.0)


def test_recipe_weights_and_overrides():
    cfg = ObjectiveConfig()
    assert cfg.resolved("hybrid") == (0.3, 0.5, 0.2)
    assert cfg.resolved("grpo") == (0.0, 1.0, 0.0)
    assert ObjectiveConfig(diversity_weight=0.0).resolved("polychromic") == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="all 0"):
        ObjectiveConfig(sft_weight=0, pg_weight=0, diversity_weight=0).resolved("hybrid")
    with pytest.raises(ValueError, match="pg_weight"):
        ObjectiveConfig(pg_weight=-1)


def test_objective_reward_encodes_each_completion_once(encoder):
    """The diversity credit reuses the engagement reward's embedding cache (hybrid: β > 0, λ > 0)."""
    from pathlib import Path

    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig
    from replyrl.training.run import objective_reward

    cfg = load_config(TrainConfig, Path(__file__).parents[1] / "configs/train/hybrid.yaml")
    reward = objective_reward(cfg)
    assert reward.beta > 0 and reward.lam > 0
    assert reward.embeddings is reward.engagement.embeddings
    reward.embeddings._encoder = encoder
    tweet = "Is grad school worth it for a CS major?"
    replies = [
        "Depends on the job you want.",
        "Only if someone else pays.",
        "Yes, for research roles.",
        "Depends on the job you want.",
    ]
    out = reward([tweet] * 4, replies, tweet=[tweet] * 4, tweet_id=["t1"] * 4)
    assert len(out) == 4 and all(np.isfinite(out))
    assert reward.embeddings.misses == 4  # the tweet and 3 distinct replies, each encoded once
