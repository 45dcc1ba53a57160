"""One training run: folder layout, artifacts, trainer construction per recipe, and resume.

<output_dir>/<name>/seed_<seed>/
    config.yaml          merged, validated config
    run_info.json        seed, package versions, git commit, command line
    adapter/             final LoRA adapter (safetensors) + tokenizer
    checkpoints/         trainer state for --resume (checkpoint-N/)
    tb/                  TensorBoard logs
    log_history.jsonl    every logged metric, one line per logging step
    samples.jsonl        sample generations every `optim.sample_every` steps
    metrics.json         final summary
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from replyrl.config import from_dict
from replyrl.io import atomic_write_json, atomic_write_text
from replyrl.training.config import TrainConfig

PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "sentence-transformers",
)


def run_dir_of(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir) / cfg.name / f"seed_{cfg.seed}"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("replyrl", *PACKAGES):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def latest_checkpoint(ckpt_root: Path) -> str | None:
    """The newest complete checkpoint (one whose trainer_state.json was written), or None."""
    if not ckpt_root.exists():
        return None
    done = [p for p in ckpt_root.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    done.sort(key=lambda p: int(p.name.split("-")[-1]))
    return str(done[-1]) if done else None


CHECKPOINT_STATE = {
    "optimizer.pt": "the optimizer state (AdamW moments)",
    "scheduler.pt": "the learning-rate schedule",
    "trainer_state.json": "the step count and log history",
}


def check_checkpoint(ckpt: Path) -> None:
    """A checkpoint to resume from holds the optimizer, schedule and RNG state; transformers would
    otherwise resume silently with a fresh optimizer and unseeded sampling.

    Raises:
        ArtifactError: naming the missing file and what to do.
    """
    from replyrl.errors import ArtifactError

    if any(ckpt.glob("global_step*")):
        return  # DeepSpeed keeps the optimizer and RNG state in its own global_step folder
    missing = [
        f"{name} ({what})" for name, what in CHECKPOINT_STATE.items() if not (ckpt / name).is_file()
    ]
    if not any(ckpt.glob("rng_state*.pth")):
        missing.append("rng_state.pth (the random number generators' state)")
    if missing:
        raise ArtifactError(
            f"{ckpt}: cannot resume exactly, the checkpoint lacks {', '.join(missing)}; restore "
            "the file, delete this checkpoint folder to resume from the one before, or start "
            "again with --overwrite"
        )


def _check_inside(run_dir: Path, root: Path) -> None:
    """Refuse to delete a run folder that resolves outside the output root (through a link)."""
    from replyrl.config import ConfigError

    real, real_root = run_dir.resolve(), root.resolve()
    if run_dir.is_symlink() or real == real_root or not real.is_relative_to(real_root):
        raise ConfigError(
            f"refusing to delete {run_dir}: it resolves to {real}, not a folder inside "
            f"output_dir {real_root}; remove it by hand if it is really the old run"
        )


def runtime(cfg: TrainConfig) -> tuple[str, str, bool]:
    """(device, weight dtype, bf16 mixed precision) for `cfg` on this machine.

    Raises DeviceError (a UserError) before any model loads when the config asks for what the
    machine has not: a missing GPU, bf16 without bf16 support, vLLM without the vllm package.
    """
    from replyrl.device import DeviceError, resolve_device, resolve_dtype, supports_bf16

    device = resolve_device(cfg.device)
    if ":" in device:
        raise DeviceError(
            f"device={cfg.device}: training picks its GPU per process; use device=cuda and "
            "CUDA_VISIBLE_DEVICES to choose (accelerate launch gives each process its own)"
        )
    dtype = resolve_dtype(cfg.model.dtype, device, where="model.dtype")
    bf16 = cfg.optim.bf16 if cfg.optim.bf16 is not None else dtype == "bfloat16"
    if bf16 and not supports_bf16(device):
        raise DeviceError(
            f"optim.bf16=true needs a CUDA GPU with bf16 support; device '{device}' has none: "
            "set optim.bf16=false (or leave it unset)"
        )
    if cfg.grpo.use_vllm and cfg.recipe_spec.uses_objective:
        from replyrl.generation import require_vllm

        require_vllm("grpo.use_vllm=true")
        if device != "cuda":
            raise DeviceError(f"grpo.use_vllm=true needs a CUDA GPU; the device is '{device}'")
    return device, dtype, bf16


def validate_reward(cfg: TrainConfig):
    """The run's reward config, built now so a bad value fails before any model loads; None when
    the objective does not read an engagement reward (it then needs no `reward:` section)."""
    from replyrl.config import ConfigError
    from replyrl.rewards.build import RewardConfig

    if "diversity" in cfg.reward:
        raise ConfigError(
            "reward.diversity is no longer a reward setting: set objective.diversity_weight (λ) and "
            "objective.diversity_mode instead (one route, so diversity is never credited twice)"
        )
    if not cfg.weights().needs_engagement:
        return None
    return from_dict(RewardConfig, cfg.reward, where="reward")


def _lora(cfg: TrainConfig):
    from peft import LoraConfig

    if cfg.model.init_adapter:
        return None  # the adapter we continue from carries its own LoRA config
    m = cfg.model
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=m.lora_r,
        lora_alpha=m.lora_alpha,
        lora_dropout=m.lora_dropout,
        target_modules=list(m.target_modules),
    )


def _policy(cfg: TrainConfig, dtype_name: str = "float32"):
    """(model, tokenizer) on the CPU in `dtype_name`; the trainer moves the model to its device."""
    import torch
    from transformers import AutoModelForCausalLM

    from replyrl.models import load_tokenizer, resolve_policy

    dtype = getattr(torch, dtype_name)
    if cfg.model.init_adapter:
        from replyrl.models import adapter_base, load_adapter

        base = AutoModelForCausalLM.from_pretrained(
            resolve_policy(adapter_base(cfg.model.init_adapter)), dtype=dtype
        )
        # checked: an adapter whose config does not match its weights is an error, not the base
        model = load_adapter(base, cfg.model.init_adapter, is_trainable=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(resolve_policy(cfg.model.name), dtype=dtype)
    tok = load_tokenizer(cfg.model.name if not cfg.model.init_adapter else cfg.model.init_adapter)
    return model, tok


def _common_args(cfg: TrainConfig, out: Path, device: str = "cpu", bf16: bool = False) -> dict:
    o = cfg.optim
    return dict(
        output_dir=str(out / "checkpoints"),
        max_steps=o.max_steps,
        learning_rate=o.learning_rate,
        gradient_accumulation_steps=o.gradient_accumulation_steps,
        warmup_steps=o.warmup_steps,
        max_grad_norm=o.max_grad_norm,
        logging_steps=o.logging_steps,
        save_steps=o.save_steps,
        save_total_limit=o.save_total_limit or None,  # 0: keep every checkpoint
        bf16=bf16,
        use_cpu=device == "cpu",
        report_to=list(o.report_to),
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        disable_tqdm=False,
        activation_checkpointing=o.gradient_checkpointing,
    )


def build_trainer(cfg: TrainConfig, out: Path):
    """The TRL trainer for `cfg.recipe`, with its dataset and our callbacks attached."""
    from datasets import Dataset

    from replyrl.training import datasets as ds

    device, dtype, bf16 = runtime(cfg)
    records = ds.load_phase_records(cfg.data, cfg.recipe_spec, cfg.seed)
    if cfg.recipe_spec.uses_objective and cfg.weights().needs_engagement:
        if cfg.reward.get("kind") == "audience":
            from replyrl.rewards.audience import check_oracle_data

            check_oracle_data(records, f"training data {cfg.data.path or '(synthetic sample)'}")
    labels = ds.record_labels(records, cfg.data.label)
    model, tok = _policy(cfg, dtype)
    common = _common_args(cfg, out, device, bf16)
    trainer_kind = cfg.recipe_spec.trainer
    if trainer_kind == "sft":
        from trl import SFTConfig, SFTTrainer

        rows = ds.sft_rows(records, labels, cfg.data)
        args = SFTConfig(**common, per_device_train_batch_size=cfg.optim.batch_size, max_length=384)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=_lora(cfg),
        )
    elif trainer_kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        d = cfg.dpo
        rows = ds.dpo_rows(records, cfg.data, d.pair_ratio, d.max_pairs_per_tweet, cfg.seed)
        args = DPOConfig(
            **common, per_device_train_batch_size=d.batch_size, beta=d.beta, max_length=384
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=_lora(cfg),
        )
    else:
        rows = ds.rl_rows(records, labels, cfg.data)
        trainer = _grpo_trainer(cfg, out, model, tok, rows, common, device)
    trainer.replyrl_sample_tweets = sorted({r.tweet for r in records})[:2]
    return trainer


def objective_reward(cfg: TrainConfig, device: str | None = None):
    """The run's ObjectiveReward, its encoders on `device` (None: auto). The diversity term shares
    the engagement reward's embedding cache when both use the default encoder, so each completion
    is encoded once per step."""
    from replyrl.models import DEFAULT_ENCODER
    from replyrl.rewards.build import build_reward
    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.training.grpo import ObjectiveReward

    reward_cfg = validate_reward(cfg)
    engagement = build_reward(reward_cfg, device=device) if reward_cfg is not None else None
    shared = getattr(engagement, "embeddings", None)
    if shared is not None and (shared.encoder_name or DEFAULT_ENCODER) != DEFAULT_ENCODER:
        shared = None  # another encoder: the diversity term keeps the default one
    if shared is None:
        shared = EmbeddingCache(device=device)
    return ObjectiveReward(engagement, cfg.weights(), embeddings=shared)


def _grpo_trainer(
    cfg: TrainConfig, out: Path, model, tok, rows: list[dict], common: dict, device: str = "cpu"
):
    from datasets import Dataset
    from trl import GRPOConfig

    from replyrl.training.callbacks import AdaptiveKLCallback
    from replyrl.training.grpo import ObjectiveGRPOTrainer

    g = cfg.grpo
    reward = objective_reward(cfg, device)
    args = GRPOConfig(
        **common,
        per_device_train_batch_size=g.prompts_per_step * g.num_generations,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        beta=g.kl_coef,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        num_iterations=g.num_iterations,
        entropy_coef=g.entropy_coef,
        use_adaptive_entropy=g.use_adaptive_entropy,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        reward_weights=[1.0],
        log_completions=False,
        remove_unused_columns=False,
        shuffle_dataset=True,
    )
    callbacks = []
    if g.adaptive_kl.enabled:
        callbacks.append(AdaptiveKLCallback(g.adaptive_kl))
    trainer = ObjectiveGRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=_lora(cfg),
        callbacks=callbacks,
        weights=cfg.weights(),
        objective=cfg.objective,
        rollout_backend=g.rollout_backend,
    )
    for cb in callbacks:
        cb.trainer = trainer
    return trainer


def train(
    cfg: TrainConfig, resume: bool = False, overwrite: bool = False, argv: list[str] | None = None
) -> Path:
    """Run one training job; returns its run folder. See the module docstring for what it writes."""
    from transformers import set_seed

    from replyrl.training.callbacks import (
        AdaptiveKLCallback,
        JsonlLogCallback,
        SamplesCallback,
        truncate_log,
    )

    reward_cfg = validate_reward(cfg)
    if reward_cfg is not None and reward_cfg.model and not Path(reward_cfg.model).exists():
        from replyrl.errors import missing_path_error

        raise missing_path_error(
            reward_cfg.model,
            "reward.model: reward model folder",
            "train one with `replyrl reward train`",
        )
    runtime(cfg)  # a missing GPU, bf16 or vLLM fails here, before anything is written
    out = run_dir_of(cfg)
    ckpt = latest_checkpoint(out / "checkpoints") if resume else None
    if ckpt:
        check_checkpoint(Path(ckpt))  # before anything is written or loaded
    if out.exists() and not resume:
        if not overwrite and (out / "checkpoints").exists():
            raise FileExistsError(
                f"{out} already holds a run: pass --resume to continue it or --overwrite"
            )
        _check_inside(out, Path(cfg.output_dir))
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(asdict(cfg), sort_keys=False))
    atomic_write_json(
        out / "run_info.json",
        {
            "seed": cfg.seed,
            "recipe": cfg.recipe,
            "versions": package_versions(),
            "git_commit": git_commit(),
            "argv": argv or sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resume": resume,
        },
    )
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out / "tb")
    set_seed(cfg.seed)
    trainer = build_trainer(cfg, out)
    last_step = int(ckpt.rsplit("-", 1)[-1]) if ckpt else 0
    truncate_log(out / "log_history.jsonl", last_step)
    truncate_log(out / "samples.jsonl", last_step)
    trainer.add_callback(JsonlLogCallback(out / "log_history.jsonl"))
    if cfg.optim.sample_every:
        trainer.add_callback(
            SamplesCallback(
                out / "samples.jsonl",
                trainer.replyrl_sample_tweets,
                cfg.optim.sample_every,
                cfg.data.instruction,
                max_new_tokens=cfg.grpo.max_completion_length,
                seed=cfg.seed,
            )
        )
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, AdaptiveKLCallback):
            cb.restore(ckpt)
    from replyrl.console import attach_progress

    attach_progress(trainer, f"{cfg.name} seed {cfg.seed}")  # one bar, not tqdm + log dicts
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    trainer.save_model(str(out / "adapter"))
    trainer.processing_class.save_pretrained(str(out / "adapter"))
    (out / "adapter" / "training_args.bin").unlink(
        missing_ok=True
    )  # a pickle; config.yaml says the same
    atomic_write_json(
        out / "metrics.json",
        {
            "global_step": trainer.state.global_step,
            "train_loss": result.training_loss,
            "seconds": round(time.time() - t0, 1),
            "recipe": cfg.recipe,
            "seed": cfg.seed,
            "weights": asdict(cfg.weights()) if cfg.recipe_spec.uses_objective else None,
        },
    )
    return out
