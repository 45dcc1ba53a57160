"""build_reward: the oracle (audience) kind, the length guard, the echo penalty in the heuristic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replyrl.config import ConfigError, from_dict
from replyrl.rewards.build import LengthGuard, RewardConfig, build_reward, overlong_penalty

TWEET = "Just finished my first marathon and I'm honestly proud of it."
ECHO = "Just finished my first marathon and I'm honestly proud of it!"
GENUINE = "Congrats! How did you pace the last few miles? I'm training for my first one."


def test_overlong_penalty_ramp_by_hand():
    assert overlong_penalty([0, 150, 160, 200, 201], 200, 50).tolist() == pytest.approx(
        [0.0, 0.0, -0.2, -1.0, -1.0]
    )


def test_length_guard_adds_the_penalty_and_logs_it(encoder):
    from replyrl.rewards.embeddings import EmbeddingCache

    guard = LengthGuard(max_chars=100, buffer_chars=50, weight=2.0)
    plain = build_reward(RewardConfig(kind="heuristic"), EmbeddingCache(encoder))
    guarded = build_reward(
        RewardConfig(kind="heuristic", length_guard=guard), EmbeddingCache(encoder)
    )
    long = "A long reply about the race. " * 6  # 174 chars: past max_chars -> full penalty
    replies = [GENUINE, long.strip()]
    diff = guarded.score([TWEET] * 2, replies) - plain.score([TWEET] * 2, replies)
    assert diff.tolist() == pytest.approx([2.0 * overlong_penalty(len(GENUINE), 100, 50), -2.0])
    assert guarded.last_components["overlong"].tolist()[1] == -1.0


@pytest.mark.parametrize(
    "guard, match",
    [
        ({"max_chars": -5}, "max_chars must be a finite number >= 0"),
        ({"max_chars": 200, "weight": math.inf}, "weight must be a finite"),
        ({"max_chars": 200, "weight": math.nan}, "weight must be a finite"),
        ({"max_chars": 100, "buffer_chars": 150}, "buffer_chars must be in"),
        ({"max_chars": 100, "buffer_chars": -1}, "buffer_chars must be a finite"),
    ],
)
def test_bad_length_guard_is_one_clear_error(guard, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(RewardConfig, {"kind": "heuristic", "length_guard": guard}, where="reward")


def test_audience_kind_is_the_simulated_audience(encoder):
    from replyrl.data.synth import audience_engagement
    from replyrl.rewards.embeddings import EmbeddingCache

    reward = build_reward(RewardConfig(kind="audience"), EmbeddingCache(encoder))
    out = reward(None, [ECHO, GENUINE], tweet=[TWEET] * 2)
    assert out == pytest.approx(audience_engagement([TWEET] * 2, [ECHO, GENUINE], encoder).tolist())
    assert out[1] > out[0]  # version 2: copying the tweet does not please the audience


def test_audience_on_real_data_is_one_clear_error():
    from replyrl.records import Record
    from replyrl.rewards.audience import check_oracle_data

    real = [Record("t1", "a tweet", "a reply", 3)]
    with pytest.raises(ConfigError, match="not synthetic.*real data has no known audience"):
        check_oracle_data(real, "train")


def test_heuristic_relevance_does_not_pay_for_an_echo(encoder):
    from replyrl.rewards.embeddings import EmbeddingCache

    h = build_reward(RewardConfig(kind="heuristic"), EmbeddingCache(encoder))
    h.score([TWEET] * 2, [ECHO, GENUINE])
    rel, echo = h.last_components["relevance"], h.last_components["echo"]
    assert echo.tolist() == pytest.approx([1.0, 0.0])
    assert rel[0] == pytest.approx(0.0) and rel[1] > 0.3
    assert np.isfinite(rel).all()


def test_debiased_rm_folder_missing_its_length_head_is_one_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel, load_reward_model

    RewardModel(RewardHead(HeadConfig(kind="odin", hidden=8))).save(tmp_path / "rm")
    head = tmp_path / "rm" / "head.safetensors"
    state = load_file(str(head))
    del state["length_values"]
    save_file(state, str(head))
    with pytest.raises(ValueError, match=r"lacks length_values \(the length head\).*'odin' head"):
        load_reward_model(tmp_path / "rm")


def test_an_ensemble_folder_missing_one_members_length_head_is_one_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from replyrl.rewards.learned import EnsembleHead, HeadConfig, RewardModel, load_reward_model

    RewardModel(EnsembleHead(HeadConfig(kind="odin", hidden=8, ensemble=3))).save(tmp_path / "rm")
    head = tmp_path / "rm" / "head.safetensors"
    state = load_file(str(head))
    del state["members.2.length_values"]
    save_file(state, str(head))
    with pytest.raises(
        ValueError, match=r"lacks members\.2\.length_values \(the length head\) that a 'odin'"
    ):
        load_reward_model(tmp_path / "rm")


def test_the_old_diversity_route_is_refused_before_any_model_loads():
    from replyrl.training.config import TrainConfig
    from replyrl.training.run import validate_reward

    cfg = from_dict(
        TrainConfig,
        {
            "recipe": "hybrid",
            "reward": {"kind": "heuristic", "diversity": {"mode": "additive", "lam": 0.2}},
        },
    )
    with pytest.raises(ConfigError, match="reward.diversity is no longer a reward setting"):
        validate_reward(cfg)
