"""Fast GRPO rollouts: TRL's generation hook served by replyrl's own decode loop.

TRL 1.16 samples a batch's completions in `GRPOTrainer._generate_single_turn` with
`model.generate` over one row per completion: each prompt is prefilled K times, every step
sorts the whole vocabulary for top-p, and rows that hit EOS are computed until the longest ends.
On a CPU that is most of a step (benchmarks/bench_grpo_step.py prints the split). The mixin
below replaces only that hook: the K copies of a prompt share one prefill, sampling is top-k →
top-p inside the k candidates, and finished rows leave the batch (replyrl.generation). It returns
what TRL's own path returns — token ids cut after the first EOS (kept), no logprobs — so the
loss, the KL to the reference and every metric downstream are TRL's, unchanged
(tests/test_train_rollout.py compares the loss of one batch both ways).

Anything the loop does not do — vLLM, continuous batching, vision-language models, FSDP, `min_p`,
a repetition penalty, extra `generation_kwargs` — goes to TRL's path as before.
"""

from __future__ import annotations

from typing import Literal

import torch

from replyrl.generation import SamplingConfig, sample_loop

RolloutBackend = Literal["trl", "fast"]


def check_rollout_backend(backend: str) -> str:
    """`backend` if it is `trl` or `fast` (the default is `trl`: see docs/architecture.md#rollouts
    for the CPU measurement; `scripts/gpu_check.sh` measures both on a GPU)."""
    if backend not in ("trl", "fast"):
        raise ValueError(f"grpo.rollout_backend must be trl or fast, got {backend!r}")
    return backend


def prompt_groups(prompt_ids: list[list[int]]) -> tuple[list[list[int]], int]:
    """(distinct prompts, samples per prompt) for a batch of rows where TRL's sampler repeats
    each prompt K times in a row. When the runs are not all the same length (a group split
    across processes), every row is its own prompt with one sample.

    >>> prompt_groups([[1], [1], [2], [2]])
    ([[1], [2]], 2)
    >>> prompt_groups([[1], [1], [2]])
    ([[1], [1], [2]], 1)
    """
    runs: list[list] = []
    for ids in prompt_ids:
        if runs and runs[-1][0] == ids:
            runs[-1][1] += 1
        else:
            runs.append([ids, 1])
    counts = {n for _, n in runs}
    if len(counts) == 1:
        return [ids for ids, _ in runs], counts.pop()
    return [list(ids) for ids in prompt_ids], 1


class FastRolloutMixin:
    """Put before `GRPOTrainer` in a trainer's bases; `rollout_backend` picks the sampler."""

    def __init__(self, *args, rollout_backend: str = "trl", **kwargs):
        super().__init__(*args, **kwargs)
        self.rollout_backend = check_rollout_backend(rollout_backend)

    def _fast_rollouts_apply(self, images, multimodal_fields) -> bool:
        """Whether this batch can be sampled by the loop (else TRL's own path runs)."""
        return (
            self.rollout_backend == "fast"
            and not self.use_vllm
            and not getattr(self, "use_transformers_continuous_batching", False)
            and not getattr(self, "_is_vlm", False)
            and not getattr(self, "is_fsdp_enabled", False)
            and images is None
            and not multimodal_fields
            and not self.min_p
            and self.repetition_penalty in (None, 1.0)
            and not self.args.generation_kwargs
        )

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        if not self._fast_rollouts_apply(images, multimodal_fields):
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        from trl.models import unwrap_model_for_generation

        prompts, n = prompt_groups(prompt_ids)
        cfg = SamplingConfig(
            n=n,
            max_new_tokens=self.max_completion_length,
            temperature=self.temperature,
            top_k=self.top_k or 0,
            top_p=self.top_p if self.top_p is not None else 1.0,
            batch_prompts=len(prompts),
        )
        # One seed per prompt from torch's global RNG: `set_seed` makes a run reproducible, and
        # the draws move the RNG on as sampling does.
        seeds = torch.randint(0, 2**62, (len(prompts),)).tolist()
        with unwrap_model_for_generation(
            self.model_wrapped,
            self.accelerator,
            gather_deepspeed3_params=self.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
        ) as unwrapped:
            completion_ids = sample_loop(
                unwrapped, prompts, seeds, cfg, self.eos_token_ids, self._tokenizer.pad_token_id
            )
        return completion_ids, None  # TRL's `generate` path returns no logprobs either
