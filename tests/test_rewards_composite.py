"""Composite reward (fixed normalization, exact values), build_reward from YAML, and the reward CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from replyrl.config import ConfigError, load_config
from replyrl.rewards.base import RewardError
from replyrl.rewards.build import RewardConfig, build_reward
from replyrl.rewards.composite import Component, CompositeReward, ScoreFn
from replyrl.rewards.heuristic import HeuristicReward
from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reward"


def test_composite_exact_and_batch_independent():
    a = ScoreFn(lambda t, r: np.array([len(x) for x in r], float))
    b = ScoreFn(lambda t, r: np.ones(len(r)))
    comp = CompositeReward(
        [Component("a", a, 0.6, mean=2.0, std=2.0), Component("b", b, 0.4, mean=0.5, std=0.25)]
    )
    logged = {}
    out = comp(
        None, ["xxxx", "xx"], tweet=["t", "t"], log_metric=lambda k, v: logged.__setitem__(k, v)
    )
    # a: (4-2)/2 = 1, (2-2)/2 = 0; b: (1-0.5)/0.25 = 2
    np.testing.assert_allclose(out, [0.6 * 1 + 0.4 * 2, 0.6 * 0 + 0.4 * 2])
    assert logged == {"rewards/a/mean": 3.0, "rewards/b/mean": 1.0}
    # fixed statistics: a reply's reward does not depend on its batch neighbours
    assert comp(None, ["xx"], tweet=["t"]) == [out[1]]
    with pytest.raises(RewardError, match="std > 0"):
        Component("c", a, 1.0, std=0.0)


def test_build_heuristic_from_yaml_and_composite_fallback(caplog):
    cfg = load_config(RewardConfig, CONFIGS / "heuristic.yaml")
    assert isinstance(build_reward(cfg), HeuristicReward)
    comp = build_reward(load_config(RewardConfig, CONFIGS / "composite.yaml"))
    assert isinstance(comp, CompositeReward) and comp.weights == {"heuristic": 1.0}
    with pytest.raises(ConfigError, match="did you mean 'learned_weight'"):
        load_config(RewardConfig, CONFIGS / "composite.yaml", ["learned_weigth=1"])
    with pytest.raises(ConfigError, match="needs `model`"):
        load_config(RewardConfig, None, ["kind=learned"])


def test_composite_with_learned_model(tmp_path, encoder):
    torch.manual_seed(0)
    meta = {"score_mean": 0.1, "score_std": 0.5, "heuristic_mean": 0.4, "heuristic_std": 0.2}
    RewardModel(RewardHead(HeadConfig(hidden=8)), meta=meta).save(tmp_path / "rm")
    reward = build_reward(RewardConfig(kind="composite", model=str(tmp_path / "rm")))
    tweets, replies = (
        ["My tomatoes finally turned red!"] * 2,
        ["Congrats, what variety are they?", "ok"],
    )
    out = reward(
        [[{"role": "user", "content": tweets[0]}]] * 2,
        [[{"role": "assistant", "content": r}] for r in replies],
    )
    c = reward.last_components
    want = 0.6 * (c["learned"] - 0.1) / 0.5 + 0.4 * (c["heuristic"] - 0.4) / 0.2
    np.testing.assert_allclose(out, want)
    assert {"learned", "heuristic", "relevance", "length"} <= set(c)


def test_cli_train_validate_score(tmp_path, encoder):
    from replyrl.cli import app
    from replyrl.data.pairs import Pair, write_pairs
    from replyrl.data.synth import synthesize
    from replyrl.records import write_records

    write_records(tmp_path / "d.jsonl", synthesize(n_tweets=40, seed=2))
    write_pairs(
        tmp_path / "ui.jsonl",
        [Pair("x", "A tweet about bread", "Lovely crust, what flour?", "ok", None, None, 0.0)],
    )
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "reward",
            "train",
            "--config",
            str(CONFIGS / "preference.yaml"),
            "--set",
            "epochs=3",
            "--set",
            "cache_dir=off",
            "--set",
            "head.hidden=16",
            "--data",
            str(tmp_path / "d.jsonl"),
            "--pairs",
            str(tmp_path / "ui.jsonl"),
            "--out",
            str(tmp_path / "rm"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "rm" / "train_summary.json").read_text())
    assert summary["n_extra_pairs"] == 1
    res = runner.invoke(
        app,
        [
            "reward",
            "validate",
            "--model",
            str(tmp_path / "rm"),
            "--data",
            str(tmp_path / "d.jsonl"),
            "--cache-dir",
            "off",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "reply length" in res.output and "margin over reply length" in res.output
    report = json.loads((tmp_path / "rm" / "validation" / "validation.json").read_text())
    assert report["n_tweets"] < 40 and set(report["rows"]) >= {
        "reward model",
        "reply length",
        "heuristic",
        "context only",
    }
    res = runner.invoke(
        app,
        [
            "reward",
            "score",
            "--model",
            str(tmp_path / "rm"),
            "I baked bread today",
            "What flour did you use?",
            "nice",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "learned" in res.output and "relevance" in res.output
    res = runner.invoke(
        app,
        [
            "reward",
            "validate",
            "--model",
            str(tmp_path / "nope"),
            "--data",
            str(tmp_path / "d.jsonl"),
        ],
    )
    assert res.exit_code == 2 and "not a reward model folder" in res.output
