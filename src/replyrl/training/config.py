"""Typed training config: one dataclass per section, loaded from YAML with `_base_` inheritance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from replyrl.config import SEED_MAX, ConfigError
from replyrl.device import check_device_name
from replyrl.models import DEFAULT_INSTRUCTION
from replyrl.training.objective import RECIPES, ObjectiveConfig, get_recipe


@dataclass
class DataConfig:
    """Where the training records come from and which of them a recipe uses."""

    path: str = ""
    """Records file (JSONL/CSV); empty means the synthetic sample (`replyrl data synth`)."""
    split: Literal["auto", "all", "sft", "rl"] = "auto"
    """Which phase split to train on: auto = sft for sft/dpo, rl for RL recipes; all = every record."""
    split_seed: int = 0
    """Seed of the tweet-level split (must match the one used for reward models and evaluation)."""
    label: Literal["ratio", "log", "residual", "rank"] = "residual"
    """Engagement label used to pick reference replies and strata."""
    sft_replies: Literal["best", "top_half", "all"] = "top_half"
    """SFT targets: each tweet's best reply, its replies at or above the tweet's median label, or all."""
    quartiles: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    """Stratified GRPO: train only on tweets whose engagement quartile (1 = lowest) is listed."""
    max_tweets: int = 0
    """Cap on training tweets (0 = no cap), for quick runs."""
    instruction: str = DEFAULT_INSTRUCTION
    """System instruction of every prompt."""

    def __post_init__(self):
        if not self.quartiles or any(q not in (1, 2, 3, 4) for q in self.quartiles):
            raise ConfigError(
                f"data.quartiles must be a non-empty subset of [1, 2, 3, 4], got {self.quartiles}"
            )
        if self.max_tweets < 0:
            raise ConfigError(f"data.max_tweets must be >= 0, got {self.max_tweets}")


@dataclass
class ModelConfig:
    """The policy and its LoRA adapter."""

    name: str = "default"
    """HF id or local path; 'default' is the packaged SmolLM2-135M-Instruct."""
    init_adapter: str = ""
    """Start from this LoRA adapter folder (e.g. the SFT run's) instead of a fresh adapter."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator."""
    lora_dropout: float = 0.0
    """LoRA dropout (0 keeps CPU runs deterministic)."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    """Modules that get LoRA adapters."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weight dtype; auto = bfloat16 where the device supports it (CUDA, compute capability 8+),
    else float32."""

    def __post_init__(self):
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ConfigError("model.lora_r and model.lora_alpha must be >= 1")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"model.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.target_modules or not all(
            isinstance(m, str) and m.strip() for m in self.target_modules
        ):
            raise ConfigError(
                "model.target_modules must name at least one module (e.g. [q_proj, v_proj]), "
                f"got {self.target_modules}"
            )
        if not str(self.name).strip():
            raise ConfigError("model.name must not be empty (use 'default' for the packaged model)")


@dataclass
class AdaptiveKLConfig:
    """Adaptive KL: raise the KL coefficient when KL exceeds its target, lower it below half."""

    enabled: bool = False
    """Turn the controller on (needs grpo.kl_coef > 0)."""
    target: float = 0.05
    """Target KL per token."""
    up: float = 1.5
    """Multiplier when KL > target."""
    down: float = 0.8
    """Multiplier when KL < target / 2."""
    min_coef: float = 0.001
    """Lower bound of the coefficient."""
    max_coef: float = 1.0
    """Upper bound of the coefficient."""

    def __post_init__(self):
        if not (
            0 < self.target < float("inf")
            and 1 < self.up < float("inf")
            and 0 < self.down < 1
            and 0 < self.min_coef <= self.max_coef < float("inf")
        ):
            raise ConfigError(
                "grpo.adaptive_kl: need target > 0, up > 1, 0 < down < 1, 0 < min_coef <= max_coef"
            )


@dataclass
class GRPOSection:
    """Rollout and policy-gradient settings passed to TRL's GRPOConfig (all set explicitly)."""

    num_generations: int = 4
    """K completions per prompt."""
    prompts_per_step: int = 2
    """Prompts per optimizer step per device (batch = prompts_per_step × K completions)."""
    max_completion_length: int = 32
    """Token budget per completion."""
    temperature: float = 1.0
    """Sampling temperature of rollouts."""
    top_p: float = 1.0
    """Nucleus mass of rollouts."""
    kl_coef: float = 0.04
    """KL leash to the frozen reference (TRL's `beta`; k3 estimator)."""
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "grpo"
    """TRL loss aggregation; 'grpo' is the seed's (TRL's default is 'dapo')."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Advantage scaling: by the group's std (seed GRPO), the batch's, or none (Dr. GRPO)."""
    epsilon: float = 0.2
    """Lower clip range of the probability ratio."""
    epsilon_high: float = 0.2
    """Upper clip range (DAPO's clip-higher when larger than epsilon)."""
    num_iterations: int = 1
    """Policy updates per generation batch (μ in the GRPO paper)."""
    entropy_coef: float = 0.0
    """TRL's entropy bonus coefficient (0 = off)."""
    use_adaptive_entropy: bool = False
    """TRL's adaptive entropy controller."""
    adaptive_kl: AdaptiveKLConfig = field(default_factory=AdaptiveKLConfig)
    """Our adaptive KL controller (TRL has none)."""
    use_vllm: bool = False
    """Generate with vLLM (GPU only; needs the vllm package); overrides rollout_backend."""
    vllm_mode: Literal["colocate", "server"] = "colocate"
    """vLLM mode when use_vllm."""
    rollout_backend: Literal["trl", "fast"] = "trl"
    """Rollout sampler: trl (TRL's `generate`) or fast (replyrl's decode loop: each prompt prefilled
    once for its K completions, finished rows leave the batch). trl by default: on a CPU at K=4 ×
    2 prompts × 32 tokens the loop measured no faster per step (docs/architecture.md#rollouts)."""

    def __post_init__(self):
        if self.num_generations < 2:
            raise ConfigError(
                f"grpo.num_generations must be >= 2 (groups need siblings), got {self.num_generations}"
            )
        if self.prompts_per_step < 1 or self.max_completion_length < 1:
            raise ConfigError("grpo.prompts_per_step and grpo.max_completion_length must be >= 1")
        if not (self.kl_coef >= 0 and self.epsilon > 0 and self.epsilon_high > 0):
            raise ConfigError(
                "grpo.kl_coef must be >= 0 and grpo.epsilon(_high) > 0, got "
                f"{self.kl_coef}, {self.epsilon}, {self.epsilon_high}"
            )
        if not 0 < self.temperature < float("inf"):
            raise ConfigError(
                f"grpo.temperature must be > 0 (1.0 samples the model as it is), got {self.temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"grpo.top_p must be in (0, 1] (1.0 = off), got {self.top_p}")
        if self.num_iterations < 1:
            raise ConfigError(
                f"grpo.num_iterations must be >= 1 (updates per generation batch), got "
                f"{self.num_iterations}"
            )
        if not 0 <= self.entropy_coef < float("inf"):
            raise ConfigError(f"grpo.entropy_coef must be >= 0 (0 = off), got {self.entropy_coef}")
        if self.adaptive_kl.enabled and self.kl_coef == 0:
            raise ConfigError(
                "grpo.adaptive_kl.enabled needs grpo.kl_coef > 0 (with 0 TRL loads no reference model)"
            )


@dataclass
class DPOSection:
    """DPO on engagement preference pairs (TRL DPOTrainer)."""

    beta: float = 0.1
    """DPO temperature β."""
    pair_ratio: float = 2.0
    """A reply is preferred when its engagement is at least this multiple of the other's."""
    max_pairs_per_tweet: int = 8
    """Cap of pairs per tweet so a viral tweet does not dominate."""
    batch_size: int = 4
    """Pairs per optimizer step per device."""

    def __post_init__(self):
        if not (
            0 < self.beta < float("inf")
            and 1 <= self.pair_ratio < float("inf")
            and self.max_pairs_per_tweet >= 1
        ):
            raise ConfigError(
                "dpo: need a finite beta > 0, a finite pair_ratio >= 1 and max_pairs_per_tweet >= 1, "
                f"got beta={self.beta}, pair_ratio={self.pair_ratio}, "
                f"max_pairs_per_tweet={self.max_pairs_per_tweet}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"dpo.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class OptimConfig:
    """Optimizer, schedule, logging and checkpoints."""

    learning_rate: float = 1e-4
    """AdamW learning rate of the LoRA weights."""
    max_steps: int = 30
    """Optimizer steps."""
    batch_size: int = 4
    """SFT examples per optimizer step per device."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    logging_steps: int = 1
    """Log every N steps."""
    save_steps: int = 10
    """Checkpoint every N steps (resume restarts from the last one)."""
    save_total_limit: int = 2
    """Checkpoints kept (0 = all, e.g. to evaluate them along the run)."""
    sample_every: int = 10
    """Write the latest rollouts (or SFT samples) to samples.jsonl every N steps (0 = off)."""
    bf16: bool | None = None
    """bf16 mixed precision; None = on exactly when the weights are bfloat16 (model.dtype)."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (saves GPU memory; slows small CPU runs, TRL turns it on)."""
    use_cpu: bool = False
    """Deprecated: the top-level `device: cpu` says the same (true here still forces the CPU)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Loggers: tensorboard, and wandb only when asked."""

    def __post_init__(self):
        if not (
            self.max_steps >= 1 and 0 < self.learning_rate < float("inf") and self.batch_size >= 1
        ):
            raise ConfigError(
                "optim: need max_steps >= 1, a finite learning_rate > 0, batch_size >= 1, got "
                f"{self.max_steps}, {self.learning_rate}, {self.batch_size}"
            )
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.max_grad_norm < float("inf"):
            raise ConfigError(
                f"optim.max_grad_norm must be >= 0 (0 = no clipping), got {self.max_grad_norm}"
            )
        if self.save_total_limit < 1 or self.sample_every < 0:
            raise ConfigError(
                "optim: need save_total_limit >= 1 (resume needs a checkpoint) and sample_every "
                f">= 0, got {self.save_total_limit}, {self.sample_every}"
            )
        if self.save_steps < 1 or self.logging_steps < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError(
                "optim: save_steps, logging_steps and gradient_accumulation_steps must be >= 1"
            )
        check_report_to(self.report_to)


def check_report_to(names: list[str]) -> None:
    """`optim.report_to` names loggers transformers knows and that are installed (it would
    otherwise fail inside the trainer, after the policy has loaded)."""
    if set(names) <= {"tensorboard"} or names == ["none"]:
        return  # tensorboard is a dependency of replyrl; skip importing transformers' integrations
    from transformers.integrations import (
        get_available_reporting_integrations,
        get_reporting_integration_callbacks,
    )

    special = {"none", "all"}
    for name in names:
        if name in special:
            if len(names) > 1:
                raise ConfigError(
                    f"optim.report_to: {name!r} cannot be combined with other loggers"
                )
            continue
        try:
            get_reporting_integration_callbacks([name])
        except ValueError as e:
            raise ConfigError(f"optim.report_to: unknown logger {name!r} ({e})") from None
        if name not in get_available_reporting_integrations():
            raise ConfigError(
                f"optim.report_to: logger {name!r} is not installed: pip install it, or drop it"
            )


@dataclass
class TrainConfig:
    """One training run: recipe, data, model, objective, reward and trainer settings."""

    name: str = "run"
    """Experiment name; the run writes to <output_dir>/<name>/seed_<seed>/."""
    recipe: str = "grpo"
    """A registered recipe (training/objective.py RECIPES): sft | polychromic | grpo | hybrid | dpo."""
    seed: int = 0
    """Seed of weights init, sampling and data order."""
    output_dir: str = "output/experiments"
    """Root of experiment folders."""
    device: str = "auto"
    """Where the policy, its reference and the reward encoders run: auto (cuda → mps → cpu), cpu,
    cuda or mps (under `accelerate launch` each process takes its own GPU)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Policy and LoRA."""
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    """α, β, λ and the diversity credit."""
    reward: dict = field(default_factory=dict)
    """Reward config (replyrl.rewards.build.RewardConfig fields)."""
    grpo: GRPOSection = field(default_factory=GRPOSection)
    """Rollouts and policy gradient."""
    dpo: DPOSection = field(default_factory=DPOSection)
    """DPO settings."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and logging."""

    def __post_init__(self):
        if (
            not self.name.strip()
            or self.name in (".", "..")
            or any(c in self.name for c in "/\\\0")
        ):
            # the run folder is <output_dir>/<name>/seed_<seed>, and --overwrite deletes it
            raise ConfigError(
                f"name must be a plain folder name (no '/', '\\', '..' or absolute path), got "
                f"{self.name!r}"
            )
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed must be in 0..{SEED_MAX}, got {self.seed}")
        if not str(self.output_dir).strip():
            raise ConfigError("output_dir must not be empty (e.g. output/experiments)")
        get_recipe(self.recipe)
        self.weights()  # a meaningless weight/mode combination fails before any model loads
        check_device_name(self.device, "device")
        if self.optim.use_cpu:
            if self.device not in ("auto", "cpu"):
                raise ConfigError(
                    f"optim.use_cpu=true contradicts device={self.device}: drop optim.use_cpu "
                    "(deprecated) and set device"
                )
            self.device = "cpu"

    def weights(self):
        """The run's resolved objective weights (α, β, λ, mode)."""
        return self.objective.resolved(self.recipe, self.grpo.num_generations)

    @property
    def recipe_spec(self):
        """The registry entry of `recipe` (trainer, phase split, default weights)."""
        return RECIPES[self.recipe]
