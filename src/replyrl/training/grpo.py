"""`ObjectiveGRPOTrainer`: TRL's GRPOTrainer plus our objective (objective.py has the math).

Three short overrides, nothing forked:
* `_calculate_rewards`: TRL calls our reward function on each process's completions and gathers
  the engagement rewards; we gather the completions' embeddings too and turn r into R per prompt
  group on the whole gathered batch, so a group split across processes is credited as one.
* `_generate_and_score_completions`: TRL turns R into group-normalised advantages; we clip them
  (optional), multiply them by w = β + λ (the policy-gradient weight, so it touches neither the KL
  leash nor the entropy bonus) and attach the tokenised reference reply for the SFT term.
* `compute_loss`: TRL's loss plus α times the reference-reply NLL, normalised per optimizer step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from accelerate.utils import gather, gather_object
from trl import GRPOTrainer

from replyrl.rewards.base import check_rewards, completion_texts
from replyrl.training.objective import (
    ObjectiveConfig,
    Weights,
    objective_rewards,
    sft_nll_per_row,
)
from replyrl.training.rollout import FastRolloutMixin


class ObjectiveReward:
    """The TRL reward function of the objective: the engagement reward r of each completion.

    It returns zeros when R does not read engagement (e.g. polychromic in additive mode), so no
    reward model is loaded there. The group transform r → R happens after the gather, in
    `ObjectiveGRPOTrainer._calculate_rewards`; `embeddings` is the cache that encodes completions
    for the diversity term (shared with the engagement reward when both use the same encoder).
    """

    __name__ = "objective"

    def __init__(self, engagement: Any, weights: Weights, embeddings: Any = None):
        from replyrl.rewards.embeddings import EmbeddingCache

        self.engagement, self.weights = engagement, weights
        if weights.needs_engagement and engagement is None:
            raise ValueError(
                f"the objective (β={weights.beta}, λ={weights.lam}, mode={weights.mode}) reads the "
                "engagement reward, but none was given"
            )
        self.embeddings = embeddings if embeddings is not None else EmbeddingCache()

    def __call__(self, prompts, completions, **columns) -> list[float]:
        n = len(completions)
        if not self.weights.needs_engagement:
            return [0.0] * n
        values = self.engagement(prompts, completions, **columns)
        return check_rewards(values, n, getattr(self.engagement, "__name__", "engagement"))

    def embed(self, completions) -> np.ndarray:
        """(n, d) unit embeddings of the completions (each distinct text encoded once per run)."""
        return self.embeddings.encode(completion_texts(completions))


class ObjectiveGRPOTrainer(FastRolloutMixin, GRPOTrainer):
    """GRPO with the objective α·SFT + w·PG(R) + KL; weights from `ObjectiveConfig.resolved`."""

    def __init__(self, *args, weights: Weights, objective: ObjectiveConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.weights, self.objective = weights, objective
        (self.objective_reward,) = [f for f in self.reward_funcs if isinstance(f, ObjectiveReward)]

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        r = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # (N, 1)
        mode = "train" if self.model.training else "eval"
        k = self.num_generations if mode == "train" else self.num_generations_eval
        emb = None
        if self.weights.needs_diversity:
            local = torch.from_numpy(self.objective_reward.embed(completions))
            emb = gather(local.to(self.accelerator.device)).float().cpu().numpy()  # (N, d)
        texts = gather_object(completion_texts(completions))
        keys = gather_object([str(x.get("tweet_id", x["prompt"])) for x in inputs])
        engagement = r[:, 0].float().cpu().numpy()
        rewards, stats = objective_rewards(
            engagement, emb, texts, keys, k, self.weights, self.objective, self.args.seed
        )
        metrics = self._metrics[mode]
        if self.weights.needs_engagement:
            metrics["rewards/engagement/mean"].append(float(engagement.mean()))
        for name, value in stats.items():
            metrics[f"diversity/{name}"].append(value)
        metrics["completions/mean_chars"].append(float(np.mean([len(t) for t in texts])))
        return torch.tensor(rewards, dtype=r.dtype, device=r.device).unsqueeze(1)

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        adv = out["advantages"]
        if self.objective.advantage_clip is not None:
            adv = adv.clamp(-self.objective.advantage_clip, self.objective.advantage_clip)
        # The surrogate is linear in A, so w·A weights the PG term alone (KL keeps kl_coef).
        out["advantages"] = adv * self.weights.pg_weight
        if self.weights.alpha > 0:
            out.update(self._reference_batch(inputs))
        return out

    def _reference_batch(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        """Tokenised prompt + reference reply, one row per completion (rows repeat per prompt).

        The first completion of each prompt *in the gathered order* carries the prompt's NLL
        (`sft_rows`), and `sft_prompts` is the number of prompts per process in the generation
        batch: summing NLL / sft_prompts over the micro-batches of one optimizer step gives the mean
        over prompts, whatever the gradient accumulation or the shuffling of rows.
        """
        tok = self.processing_class
        k = self.num_generations if self.model.training else self.num_generations_eval
        offset = self.accelerator.process_index * len(inputs)
        ids, labels = [], []
        for x in inputs:
            prompt_text = tok.apply_chat_template(
                x["prompt"], tokenize=False, add_generation_prompt=True
            )
            full_text = tok.apply_chat_template(
                x["prompt"] + [{"role": "assistant", "content": x["reply"]}], tokenize=False
            )
            p_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
            f_ids = tok(full_text, add_special_tokens=False)["input_ids"]
            f_ids = f_ids[: len(p_ids) + self.max_completion_length]
            ids.append(f_ids)
            labels.append([-100] * len(p_ids) + f_ids[len(p_ids) :])
        width = max(len(i) for i in ids)
        pad, device = tok.pad_token_id, self.accelerator.device
        first = [(offset + i) % k == 0 for i in range(len(inputs))]
        return {
            "sft_input_ids": torch.tensor(
                [i + [pad] * (width - len(i)) for i in ids], device=device
            ),
            "sft_attention_mask": torch.tensor(
                [[1] * len(i) + [0] * (width - len(i)) for i in ids], device=device
            ),
            "sft_labels": torch.tensor(
                [lab + [-100] * (width - len(lab)) for lab in labels], device=device
            ),
            "sft_rows": torch.tensor(first, device=device),
            "sft_prompts": torch.full((len(inputs),), len(inputs) / k, device=device),
        }

    def sft_loss(self, model, inputs) -> torch.Tensor:
        """Σ NLL of the flagged reference replies in this micro-batch / prompts per step.

        A micro-batch without a flagged row still runs the forward pass (on one row, weight 0):
        under DDP every rank must call the model the same number of times per step, and which
        rows a rank holds depends on how the groups were split.
        """
        rows = inputs["sft_rows"].bool()
        weight = 1.0
        if not rows.any():
            rows, weight = torch.zeros_like(rows), 0.0
            rows[0] = True
        logits = model(
            input_ids=inputs["sft_input_ids"][rows],
            attention_mask=inputs["sft_attention_mask"][rows],
        ).logits  # (b, T, V)
        nll = sft_nll_per_row(logits, inputs["sft_labels"][rows])  # (b,)
        if weight:
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["losses/sft"].append(nll.mean().item())
        return weight * nll.sum() / inputs["sft_prompts"][0]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self._metrics[mode]["losses/policy"].append(loss.item())
        if self.weights.alpha > 0:
            loss = loss + self.weights.alpha * self.sft_loss(model, inputs)
        w = self.weights
        self._metrics[mode]["objective/alpha"].append(w.alpha)
        self._metrics[mode]["objective/beta"].append(w.beta)
        self._metrics[mode]["objective/lambda"].append(w.lam)
        return loss
