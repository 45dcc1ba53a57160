"""Configs: `_base_` inheritance, overrides, strict keys, and every shipped file validates."""

from pathlib import Path

import pytest

from replyrl.config import ConfigError, load_config, load_yaml
from replyrl.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TRAIN = sorted((ROOT / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", TRAIN, ids=lambda p: p.name)
def test_shipped_train_configs_validate(path):
    cfg = load_config(TrainConfig, path)
    assert (
        cfg.grpo.loss_type == "grpo" and cfg.grpo.scale_rewards == "group"
    )  # set explicitly, not TRL's
    assert cfg.grpo.kl_coef > 0
    from replyrl.training.run import validate_reward

    validate_reward(cfg)


def test_recipes_resolve_to_the_table():
    w = {p.stem: load_config(TrainConfig, p) for p in TRAIN}

    def abl(name):
        x = w[name].weights()
        return x.alpha, x.beta, x.lam

    assert w["sft"].recipe == "sft" and w["sft"].recipe_spec.trainer == "sft"
    assert abl("polychromic") == (1.0, 0.0, 0.5)
    assert abl("grpo") == (0.0, 1.0, 0.0)
    assert abl("hybrid") == (0.3, 0.5, 0.2)
    assert w["gpu-qwen3"].model.dtype == "bfloat16" and w["gpu-qwen3"].grpo.use_vllm
    assert abl("gpu-qwen3") == (0.3, 0.5, 0.2)  # inherited through hybrid.yaml


def test_base_inheritance_is_deep_and_relative(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(
        "grpo: {num_generations: 6, kl_coef: 0.1}\noptim: {max_steps: 7}\n"
    )
    (tmp_path / "sub" / "b.yaml").write_text("_base_: ../a.yaml\ngrpo: {kl_coef: 0.2}\n")
    cfg = load_config(
        TrainConfig, tmp_path / "sub" / "b.yaml", ["optim.learning_rate=0.001", "recipe=hybrid"]
    )
    assert (cfg.grpo.num_generations, cfg.grpo.kl_coef, cfg.optim.max_steps) == (6, 0.2, 7)
    assert cfg.optim.learning_rate == 0.001 and cfg.recipe == "hybrid"


def test_unknown_key_suggests(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("grpo: {num_generation: 4}\n")
    with pytest.raises(ConfigError, match="did you mean 'num_generations'"):
        load_config(TrainConfig, p)


@pytest.mark.parametrize(
    "override,match",
    [
        ("grpo.num_generations=1", "num_generations must be >= 2"),
        ("recipe=ppo", "unknown recipe 'ppo'"),
        ("optim.learning_rate=fast", "expected a number"),
        ("grpo.adaptive_kl.enabled=true", None),
        ("device=gpu", "unknown device 'gpu'"),
        ("data.quartiles=[5]", "quartiles"),
    ],
)
def test_bad_values_fail_before_any_model_loads(override, match):
    if match is None:
        assert load_config(
            TrainConfig, ROOT / "configs/train/grpo.yaml", [override]
        ).grpo.adaptive_kl.enabled
        return
    with pytest.raises(ConfigError, match=match):
        load_config(TrainConfig, ROOT / "configs/train/grpo.yaml", [override])


def test_base_cycle_is_an_error(tmp_path):
    (tmp_path / "x.yaml").write_text("_base_: y.yaml\n")
    (tmp_path / "y.yaml").write_text("_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_yaml(tmp_path / "x.yaml")


@pytest.mark.parametrize("name", ["ddp.yaml", "zero2.yaml", "zero3.yaml"])
def test_accelerate_configs_parse(name):
    from accelerate.commands.config.config_args import ClusterConfig

    path = ROOT / "configs" / "accelerate" / name
    cfg = ClusterConfig.from_yaml_file(str(path))  # accelerate's own loader: unknown keys raise
    assert cfg.mixed_precision == "bf16" and cfg.num_processes >= 2
    if name.startswith("zero"):
        assert cfg.distributed_type == "DEEPSPEED"
        assert cfg.deepspeed_config["zero_stage"] == int(name[4])


@pytest.mark.parametrize("name", ["ddp.yaml", "zero2.yaml", "zero3.yaml"])
def test_accelerate_config_keys_are_ones_accelerate_launch_reads(name):
    """They cannot run here (no GPU): check that `accelerate launch` knows every key, that
    DeepSpeed's sub-keys map to its launch options, and that the precision matches the GPU
    training profile's bf16 weights."""
    import yaml
    from accelerate.commands.launch import launch_command_parser

    options = {o for a in launch_command_parser()._actions for o in a.option_strings}
    data = yaml.safe_load((ROOT / "configs" / "accelerate" / name).read_text())
    for key in data.get("deepspeed_config", {}):
        assert f"--{key}" in options, f"{name}: deepspeed_config.{key} is not a launch option"
    gpu = load_config(TrainConfig, ROOT / "configs/train/gpu-qwen3.yaml")
    assert data["mixed_precision"] == "bf16" and gpu.model.dtype == "bfloat16"
    assert data["use_cpu"] is False and gpu.device == "cuda"
    assert data["distributed_type"] in ("MULTI_GPU", "DEEPSPEED")


def test_the_two_gpu_profiles_agree():
    """configs/train/gpu-qwen3.yaml and the pipeline's GPU profile train the same way."""
    from dataclasses import asdict

    from replyrl.pipeline import PipelineConfig, RunSpec, _train_config

    path = ROOT / "configs/pipeline/gpu-qwen3.yaml"
    pipe = load_config(PipelineConfig, path)
    splits = {s: Path(f"{s}.jsonl") for s in ("sft", "rl", "gold", "test")}
    run = RunSpec("hybrid", "hybrid")
    via_pipeline = _train_config(pipe, path.parent, run, 0, splits, Path("p"), Path("r"))
    direct = load_config(TrainConfig, ROOT / "configs/train/gpu-qwen3.yaml")
    assert via_pipeline.device == direct.device == "cuda"
    for section in ("model", "grpo", "optim", "objective"):
        assert asdict(getattr(via_pipeline, section)) == asdict(getattr(direct, section)), section


def test_scientific_notation_without_a_dot_is_a_number():
    """YAML 1.1 reads 1e-4 as a string; the config loader reads it as the number people meant."""
    cfg = load_config(TrainConfig, None, ["optim.learning_rate=1e-4", "grpo.kl_coef=4E-2"])
    assert cfg.optim.learning_rate == 1e-4 and cfg.grpo.kl_coef == 0.04
