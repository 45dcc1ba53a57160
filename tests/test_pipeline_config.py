"""Shipped pipeline configs validate (before anything loads), and so do the configs they point to."""

from pathlib import Path

import pytest

from replyrl.config import ConfigError, load_config
from replyrl.pipeline import PipelineConfig, _resolve, _train_config

ROOT = Path(__file__).resolve().parents[1]
PIPES = sorted((ROOT / "configs" / "pipeline").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPES, ids=lambda p: p.name)
def test_pipeline_configs_and_their_recipes_validate(path, tmp_path):
    from replyrl.evaluation.evaluate import EvalConfig
    from replyrl.rewards.train import RewardTrainConfig

    cfg = load_config(PipelineConfig, path)
    base = path.parent
    assert set(cfg.recipes) == {"sft", "polychromic", "grpo", "hybrid", "dpo"}
    splits = {s: tmp_path / f"{s}.jsonl" for s in ("sft", "rl", "gold", "test")}
    for recipe in cfg.recipes:
        t = _train_config(cfg, base, recipe, 0, splits, tmp_path / "proxy", tmp_path)
        assert t.recipe == recipe and t.data.split == "all"
        assert t.data.path == str(splits["sft" if recipe in ("sft", "dpo") else "rl"])
    load_config(RewardTrainConfig, _resolve(base, cfg.reward.proxy_config), cfg.reward.proxy_set)
    ecfg = load_config(EvalConfig, _resolve(base, cfg.eval_config), cfg.eval_set)
    assert max(ecfg.ks) <= ecfg.sampling.n


def test_unknown_recipe_is_an_error():
    with pytest.raises(ConfigError, match="recipes"):
        load_config(PipelineConfig, ROOT / "configs/pipeline/cpu-demo.yaml", ["recipes=[sft, ppo]"])
