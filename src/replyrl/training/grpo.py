"""`ObjectiveGRPOTrainer`: TRL's GRPOTrainer plus our objective (see objective.py for the math).

Two short overrides, nothing forked:
* `_generate_and_score_completions`: TRL samples K completions per prompt and turns our reward
  R_i = β·r_i + c_i into group-normalised advantages; we clip advantages (optional) and attach the
  tokenised reference reply of each prompt for the SFT term.
* `compute_loss`: TRL's policy loss (clipped ratio + k3 KL) weighted by β + λ, plus α·NLL of the
  reference reply.
"""

from __future__ import annotations

import numpy as np
import torch
from trl import GRPOTrainer

from replyrl.training.objective import policy_reward, sft_nll, total_loss
from replyrl.training.rollout import FastRolloutMixin


class ObjectiveReward:
    """The policy-gradient reward R_i = β·r_i + c_i as one TRL reward function.

    `engagement` is any reward callable; the diversity credit c_i is computed among completions of
    the same prompt, found by `tweet_id` (or the prompt itself), never by position.
    """

    __name__ = "objective"

    def __init__(
        self,
        engagement,
        beta: float,
        lam: float,
        mode: str = "additive",
        floor: float = 0.05,
        encoder=None,
    ):
        from replyrl.rewards.embeddings import EmbeddingCache

        self.engagement, self.beta, self.lam, self.mode, self.floor = (
            engagement,
            beta,
            lam,
            mode,
            floor,
        )
        # One cache for the whole run: the encoder loads once and repeated texts are encoded once.
        self.embeddings = (
            encoder if isinstance(encoder, EmbeddingCache) else EmbeddingCache(encoder)
        )

    def __call__(self, prompts, completions, **columns) -> list[float]:
        from replyrl.rewards.base import completion_texts
        from replyrl.rewards.diversity import diversity_credit

        log_metric = columns.get("log_metric")
        texts = completion_texts(completions)
        if self.engagement is not None and (self.beta > 0 or self.mode != "additive"):
            r = np.asarray(self.engagement(prompts, completions, **columns), dtype=np.float64)
        else:  # polychromic with additive credit needs no engagement reward
            r = np.zeros(len(texts))
        keys = columns.get("tweet_id") or [str(p) for p in prompts]
        stats: dict[str, float] = {}
        credit = diversity_credit(
            keys,
            texts,
            r,
            mode=self.mode,
            lam=self.lam,
            encoder=self.embeddings,
            floor=self.floor,
            stats=stats,
        )
        total = policy_reward(r, credit, self.beta)
        if not np.all(np.isfinite(total)):
            raise ValueError(f"objective reward produced non-finite values: {total.tolist()}")
        if log_metric is not None:
            log_metric("rewards/engagement/mean", float(r.mean()))
            log_metric("diversity/credit_mean", float(np.mean(credit)))
            for k, v in stats.items():
                log_metric(f"diversity/{k}", float(v))
            log_metric("completions/mean_chars", float(np.mean([len(t) for t in texts])))
        return total.tolist()


class ObjectiveGRPOTrainer(FastRolloutMixin, GRPOTrainer):
    """GRPO with α·SFT + (β + λ)·PG; α, β, λ come from `ObjectiveConfig.resolved(recipe)`."""

    def __init__(
        self,
        *args,
        alpha: float,
        beta: float,
        lam: float,
        advantage_clip: float | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.alpha, self.pg_beta, self.lam, self.advantage_clip = alpha, beta, lam, advantage_clip

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        if self.advantage_clip is not None:
            out["advantages"] = out["advantages"].clamp(-self.advantage_clip, self.advantage_clip)
        if self.alpha > 0:
            out.update(self._reference_batch(inputs))
        return out

    def _reference_batch(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        """Tokenised prompt + reference reply, one row per completion (rows repeat per prompt).

        Only the first completion of each prompt is flagged in `sft_rows`, so the NLL is computed
        once per prompt however TRL shuffles and splits the batch.
        """
        tok = self.processing_class
        seen: set[str] = set()
        ids, labels, flags = [], [], []
        for x in inputs:
            prompt_text = tok.apply_chat_template(
                x["prompt"], tokenize=False, add_generation_prompt=True
            )
            full_text = tok.apply_chat_template(
                x["prompt"] + [{"role": "assistant", "content": x["reply"]}], tokenize=False
            )
            p_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
            f_ids = tok(full_text, add_special_tokens=False)["input_ids"][
                : len(p_ids) + self.max_completion_length
            ]
            ids.append(f_ids)
            labels.append([-100] * len(p_ids) + f_ids[len(p_ids) :])
            key = x.get("tweet_id") or prompt_text
            flags.append(key not in seen)
            seen.add(key)
        width = max(len(i) for i in ids)
        pad = tok.pad_token_id
        device = self.accelerator.device
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
            "sft_rows": torch.tensor(flags, device=device),
        }

    def sft_loss(self, model, inputs) -> torch.Tensor | None:
        """α's term: NLL of the reference replies of the prompts flagged in this micro-batch."""
        rows = inputs["sft_rows"].bool()
        if not rows.any():
            return None
        logits = model(
            input_ids=inputs["sft_input_ids"][rows],
            attention_mask=inputs["sft_attention_mask"][rows],
        ).logits  # (b, T, V)
        return sft_nll(logits, inputs["sft_labels"][rows])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        pg = super().compute_loss(model, inputs) if self.pg_beta + self.lam > 0 else None
        sft = self.sft_loss(model, inputs) if self.alpha > 0 else None
        if sft is not None:
            self._metrics[mode]["losses/sft"].append(sft.item())
            # TRL already divides its policy loss for gradient accumulation; do the same for ours.
            sft = sft / (self.current_gradient_accumulation_steps if mode == "train" else 1)
        if pg is not None:
            self._metrics[mode]["losses/policy"].append(pg.item())
        if pg is None and sft is None:  # a micro-batch with no SFT row under an SFT-only objective
            return sum((p * 0).sum() for p in model.parameters() if p.requires_grad)
        self._metrics[mode]["objective/alpha"].append(self.alpha)
        self._metrics[mode]["objective/beta"].append(self.pg_beta)
        self._metrics[mode]["objective/lambda"].append(self.lam)
        return total_loss(pg, sft, self.alpha, self.pg_beta, self.lam)
