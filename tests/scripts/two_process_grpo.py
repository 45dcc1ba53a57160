"""Two GRPO steps of ObjectiveGRPOTrainer under `accelerate launch --num_processes 2 --cpu`, with a
per-device batch of 2 and K = 4, so every prompt's group is split across the two ranks.

Each rank records every objective call (its local completions, the gathered texts, keys,
engagement and the R it computed) to OUT/rank<r>.json; rank 0's JsonlLogCallback writes
OUT/log_history.jsonl. tests/test_train_multiprocess.py checks them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig

    import replyrl.training.grpo as grpo
    from replyrl.models import load_tokenizer, prompt_messages, resolve_policy
    from replyrl.rewards.heuristic import HeuristicReward
    from replyrl.training.callbacks import JsonlLogCallback
    from replyrl.training.objective import ObjectiveConfig, Weights

    state = PartialState()
    calls = []
    original = grpo.objective_rewards

    def recording(engagement, emb, texts, keys, k, weights, cfg, seed=0):
        rewards, stats = original(engagement, emb, texts, keys, k, weights, cfg, seed)
        calls.append(
            {
                "texts": list(texts),
                "keys": list(keys),
                "engagement": engagement.tolist(),
                "rewards": rewards.tolist(),
                "k": k,
            }
        )
        return rewards, stats

    grpo.objective_rewards = recording
    local_texts = []
    tweets = ["Just finished my first marathon, legs are gone!", "Is grad school worth it for CS?"]
    rows = [
        {"prompt": prompt_messages(t), "tweet": t, "reply": "Congrats!", "tweet_id": f"t{i}"}
        for i, t in enumerate(tweets)
    ]
    weights = Weights(alpha=0.3, beta=0.5, lam=0.5, mode="multiplicative")
    objective = ObjectiveConfig(diversity_floor=0.0, diversity_min_chars=0)
    heuristic = HeuristicReward()

    def engagement(prompts, completions, **cols):
        local_texts.append([c[0]["content"] if isinstance(c, list) else c for c in completions])
        return heuristic(prompts, completions, **cols)

    reward = grpo.ObjectiveReward(engagement, weights, heuristic.embeddings)
    policy = resolve_policy(None)
    args = GRPOConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=2,
        per_device_train_batch_size=2,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        loss_type="grpo",
        scale_rewards="group",
        beta=0.04,
        seed=0,
        remove_unused_columns=False,
    )
    torch.manual_seed(0)
    trainer = grpo.ObjectiveGRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(policy),
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(policy),
        peft_config=LoraConfig(
            task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]
        ),
        weights=weights,
        objective=objective,
    )
    trainer.add_callback(JsonlLogCallback(out / "log_history.jsonl"))
    trainer.train()
    record = {
        "rank": state.process_index,
        "world": state.num_processes,
        "global_step": trainer.state.global_step,
        "local_texts": local_texts,
        "calls": calls,
    }
    (out / f"rank{state.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
