"""Learned reward models on the synthetic audience: training is seeded, learns the text signal,
saves as JSON + safetensors and loads back to identical scores; validation reports baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from replyrl.config import ConfigError, load_config
from replyrl.rewards.learned import HeadConfig, RewardHead, load_reward_model
from replyrl.rewards.train import RewardTrainConfig, train_reward_model, within_tweet_pairs
from replyrl.rewards.validate import bootstrap_margin, held_out, pair_wins, validate_reward_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "reward"
FAST = ["cache_dir=off", "epochs=15", "patience=5", "head.hidden=32", "lr=0.003"]


@pytest.fixture(scope="module")
def synth():
    from replyrl.data.synth import synthesize

    return synthesize(n_tweets=150, seed=1)


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory, encoder):
    cfg = load_config(RewardTrainConfig, CONFIGS / "preference.yaml", FAST)
    model, summary, ids = train_reward_model(cfg, synth, log=lambda m: None)
    folder = tmp_path_factory.mktemp("rm")
    model.save(folder)
    (folder / "train_tweets.json").write_text(json.dumps(ids))
    return model, summary, folder


def test_saved_folder_is_json_and_safetensors_and_loads_identically(trained, synth):
    model, _, folder = trained
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "head.safetensors",
        "train_tweets.json",
    ]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["encoder"] == "all-MiniLM-L6-v2" and cfg["head"]["hidden"] == 32
    loaded = load_reward_model(folder)
    tw, rp = [r.tweet for r in synth[:20]], [r.reply for r in synth[:20]]
    np.testing.assert_allclose(loaded.score(tw, rp), model.score(tw, rp), rtol=1e-6, atol=1e-6)


def test_training_is_seeded(trained, synth):
    cfg = load_config(RewardTrainConfig, CONFIGS / "preference.yaml", FAST)
    again, summary, _ = train_reward_model(
        cfg, synth, embeddings=trained[0].embeddings, log=lambda m: None
    )
    tw, rp = [r.tweet for r in synth[:20]], [r.reply for r in synth[:20]]
    np.testing.assert_array_equal(again.score(tw, rp), trained[0].score(tw, rp))
    assert summary["best_epoch"] == trained[1]["best_epoch"]


def test_ensemble_scores_are_the_mean_of_its_members_and_load_back(trained, synth, tmp_path):
    from replyrl.rewards.learned import EnsembleHead

    cfg = load_config(RewardTrainConfig, CONFIGS / "debiased.yaml", [*FAST, "head.ensemble=3"])
    model, summary, _ = train_reward_model(
        cfg, synth, embeddings=trained[0].embeddings, log=lambda m: None
    )
    assert isinstance(model.head, EnsembleHead) and len(model.head.members) == 3
    assert len(summary["best_epoch"]) == 3 and len(summary["members"]) == 3
    w = [m.mlp[1].weight for m in model.head.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])  # seeds seed, seed+1, ...
    tw, rp = [r.tweet for r in synth[:30]], [r.reply for r in synth[:30]]
    et = torch.from_numpy(model.embeddings.encode(tw))
    er = torch.from_numpy(model.embeddings.encode(rp))
    from replyrl.rewards.learned import surface_features

    x = torch.from_numpy(surface_features(rp, cfg.head.extra_features)).float()
    with torch.no_grad():
        members = torch.stack([m(et, er, x) for m in model.head.members])
    np.testing.assert_allclose(model.score(tw, rp), members.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert members.std(0).mean() > 1e-3  # the members disagree somewhere: not one head three times
    model.save(tmp_path / "rm")
    assert json.loads((tmp_path / "rm" / "config.json").read_text())["head"]["ensemble"] == 3
    loaded = load_reward_model(tmp_path / "rm", embeddings=model.embeddings)
    np.testing.assert_allclose(loaded.score(tw, rp), model.score(tw, rp), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        loaded.score(tw, rp, heads="all"), model.score(tw, rp, heads="all"), rtol=1e-6, atol=1e-6
    )


def test_a_folder_written_before_ensembles_loads_as_one_head(trained, synth, tmp_path):
    model, _, folder = trained
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["head"]["ensemble"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "head.safetensors").write_bytes((folder / "head.safetensors").read_bytes())
    loaded = load_reward_model(tmp_path, embeddings=model.embeddings)
    assert isinstance(loaded.head, RewardHead) and loaded.cfg.ensemble == 1
    tw, rp = [r.tweet for r in synth[:10]], [r.reply for r in synth[:10]]
    np.testing.assert_allclose(loaded.score(tw, rp), model.score(tw, rp), rtol=1e-6, atol=1e-6)


def test_preference_rm_learns_the_audience(trained, synth):
    model, summary, folder = trained
    held, dropped = held_out(synth, folder)
    assert (
        dropped > 0
        and held
        and not {r.tweet_id for r in held}
        & set(json.loads((folder / "train_tweets.json").read_text()))
    )
    report = validate_reward_model(model, held, out_dir=folder.parent / "val", n_boot=200)
    rows = report["rows"]
    assert set(rows) >= {"reward model", "reply length", "heuristic", "context only"}
    appeal = np.array([r.extra["audience_appeal"] for r in held])
    rho = np.corrcoef(
        np.argsort(np.argsort(model.score([r.tweet for r in held], [r.reply for r in held]))),
        np.argsort(np.argsort(appeal)),
    )[0, 1]
    assert rho > 0.5  # the synthetic audience's taste is text-only and learnable
    assert (folder.parent / "val" / "calibration.png").stat().st_size > 1000


def test_regression_rm_trains(synth, trained):
    cfg = load_config(RewardTrainConfig, CONFIGS / "regression.yaml", FAST)
    model, summary, _ = train_reward_model(
        cfg, synth, embeddings=trained[0].embeddings, log=lambda m: None
    )
    assert summary["objective"] == "regression" and summary["val_metric"] > 0.2
    assert model.meta["labeler"]["kind"] == "residual"


def test_pairs_and_bootstrap_helpers():
    pairs = within_tweet_pairs(
        [10, 3, 0, 1], ["a", "a", "a", "b"], ratio=2.0, delays=[5, 1, 9, 0], later_only=True
    )
    assert pairs.tolist() == [[0, 1]]  # 10 vs 0 is ruled out: the winner came earlier
    assert within_tweet_pairs([10, 3, 0], ["a"] * 3, ratio=2.0).tolist() == [[0, 1], [0, 2], [1, 2]]
    w = pair_wins(np.array([1.0, 0.0, 0.0]), np.array([[0, 1], [1, 2]]))
    assert w.tolist() == [1.0, 0.5]
    lo, hi = bootstrap_margin(np.ones(10), np.zeros(10), np.arange(10), n_boot=50)
    assert lo == hi == 1.0


def test_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'weight_decay'"):
        load_config(RewardTrainConfig, CONFIGS / "preference.yaml", ["weight_decy=0.1"])
    with pytest.raises(ConfigError, match="val_frac"):
        load_config(RewardTrainConfig, None, ["val_frac=0.9"])


def test_a_surface_feature_constant_in_training_cannot_move_the_score():
    """A synthetic sample has no line breaks or links: their training std is 0, the head never
    learned their weights, and a policy that writes a line break must not get a huge random score
    (seen in an RL run: one completion scored -4245 against siblings near -4)."""
    torch.manual_seed(0)
    head = RewardHead(HeadConfig(emb_dim=8, hidden=4, kind="odin", dropout=0.0)).eval()
    n_extra = head.cfg.n_extra  # log chars, log words, question, exclaim, link, lines
    head.x_mean.copy_(torch.tensor([4.0, 3.0, 0.3, 0.2, 0.0, 0.0]))
    head.x_std.copy_(torch.tensor([0.5, 0.5, 0.45, 0.4, 1e-6, 1e-6]))  # link, lines: constant
    et = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    er = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    plain = torch.tensor([[4.0, 3.0, 0.0, 0.0, 0.0, 0.0]])
    with_lines = plain.clone()
    with_lines[0, 4:] = torch.tensor([1.0, math.log1p(3)])
    assert n_extra == 6
    with torch.no_grad():
        assert head(et, er, with_lines).item() == pytest.approx(head(et, er, plain).item())


def test_standardized_surface_features_are_clipped():
    head = RewardHead(HeadConfig(emb_dim=8, hidden=4, kind="mlp", dropout=0.0)).eval()
    head.x_mean.copy_(torch.zeros(head.cfg.n_extra))
    head.x_std.copy_(torch.full((head.cfg.n_extra,), 0.01))
    xs = head.standardize(torch.tensor([[1.0, -1.0, 0.02, 0.0, 0.0, 0.0]]))
    assert xs.tolist() == [[5.0, -5.0, 2.0, 0.0, 0.0, 0.0]]
    head.x_std[0] = 1e-6  # constant in training: ignored
    assert head.standardize(torch.tensor([[9.0, 0, 0, 0, 0, 0]]))[0, 0].item() == 0.0
