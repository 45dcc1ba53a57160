"""Shipped pipeline configs validate (before anything loads), and so do the configs they point to;
the plan builds every run's training config up front."""

from pathlib import Path

import pytest

from replyrl.config import ConfigError, load_config
from replyrl.pipeline import PipelineConfig, _resolve, plan

ROOT = Path(__file__).resolve().parents[1]
PIPES = sorted((ROOT / "configs" / "pipeline").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPES, ids=lambda p: p.name)
def test_pipeline_configs_and_their_runs_validate(path, tmp_path):
    from replyrl.rewards.train import RewardTrainConfig

    cfg = load_config(PipelineConfig, path, [f"out={tmp_path}"])
    p = plan(cfg, path)
    assert set(p.train) == {(r.name, s) for r in cfg.all_runs() for s in cfg.seeds}
    for (name, seed), t in p.train.items():
        assert t.name == name and t.seed == seed and t.data.split == "all"
        phase = t.recipe_spec.phase
        assert t.data.path == str(p.split_files[phase])
        if (
            t.recipe != "sft"
            and cfg.init_of(next(r for r in cfg.all_runs() if r.name == name)) == "sft"
        ):
            assert t.model.init_adapter.endswith(f"sft/seed_{seed}/adapter")
            assert f"train_{cfg.sft_run().name}_seed{seed}" in p.deps[(name, seed)]
    load_config(
        RewardTrainConfig, _resolve(path.parent, cfg.reward.proxy_config), cfg.reward.proxy_set
    )
    assert max(p.eval_cfg.ks) <= p.eval_cfg.sampling.n


def test_sft_runs_come_first_and_rl_starts_from_sft(tmp_path):
    cfg = load_config(PipelineConfig, ROOT / "configs/pipeline/cpu-demo.yaml", [f"out={tmp_path}"])
    assert [r.name for r in cfg.all_runs()][0] == "sft"
    p = plan(cfg, ROOT / "configs/pipeline/cpu-demo.yaml")
    grpo = p.train[("grpo", 0)]
    assert grpo.model.init_adapter == str(tmp_path / "cpu-demo/experiments/sft/seed_0/adapter")
    assert p.deps[("grpo", 0)] == ["split", "reward_proxy", "train_sft_seed0"]
    assert p.deps[("polychromic", 0)] == ["split", "train_sft_seed0"]  # additive: no reward model
    base = load_config(
        PipelineConfig, ROOT / "configs/pipeline/cpu-demo.yaml", [f"out={tmp_path}", "rl_init=base"]
    )
    assert (
        plan(base, ROOT / "configs/pipeline/cpu-demo.yaml").train[("grpo", 0)].model.init_adapter
        == ""
    )


@pytest.mark.parametrize(
    "override, match",
    [
        ("recipes=[sft, ppo]", "recipes"),
        ("recipe_set={grpo: [optim.max_step=3]}", "run grpo .*did you mean 'max_steps'"),
        ("recipes=[grpo]", "no run has recipe sft"),
        ("runs=[{name: sft, recipe: sft}]", "appear twice"),
        ("runs=[{name: base, recipe: grpo}]", "other than 'base'"),
        ("hypotheses=[{id: H1, claim: x, a: nope, b: sft, metric: audience}]", "not trained"),
        ("seeds=[0, 0]", "distinct"),
        ("name=..", "plain folder name"),
    ],
)
def test_bad_pipeline_configs_fail_before_any_stage(tmp_path, override, match):
    path = ROOT / "configs/pipeline/cpu-demo.yaml"
    with pytest.raises(ConfigError, match=match):
        cfg = load_config(PipelineConfig, path, [f"out={tmp_path}", override])
        plan(cfg, path)
    assert not (tmp_path / "cpu-demo").exists()


def test_a_typo_in_a_reward_override_fails_before_any_stage(tmp_path):
    path = ROOT / "configs/pipeline/cpu-demo.yaml"
    with pytest.raises(ConfigError, match="did you mean 'pair_ratio'"):
        plan(
            load_config(
                PipelineConfig, path, [f"out={tmp_path}", "reward.proxy_set=[pair_rati=3]"]
            ),
            path,
        )
