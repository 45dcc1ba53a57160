"""Plain TRL GRPOTrainer smoke run with the composite reward as its reward function (DESIGN §3):
the default policy with LoRA, 2 steps, K=4, 16 new tokens on CPU; every component is logged."""

from __future__ import annotations

import pytest
import torch

from replyrl.rewards.build import RewardConfig, build_reward
from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel


@pytest.mark.slow
def test_grpo_smoke_logs_each_component(tmp_path, encoder):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from replyrl.models import load_tokenizer, prompt_messages, resolve_policy

    # A reward model folder: a seeded (untrained) head is enough to exercise the wiring.
    torch.manual_seed(0)
    RewardModel(
        RewardHead(HeadConfig(hidden=16)),
        meta={"score_mean": 0.0, "score_std": 1.0, "heuristic_mean": 0.5, "heuristic_std": 0.1},
    ).save(tmp_path / "rm")
    reward = build_reward(
        RewardConfig(
            kind="composite",
            model=str(tmp_path / "rm"),
        )
    )
    tweets = [
        "Just finished my first marathon, legs are gone!",
        "Is grad school worth it for a CS major?",
    ]
    ds = Dataset.from_list(
        [
            {"prompt": prompt_messages(t), "tweet": t, "tweet_id": f"t{i}"}
            for i, t in enumerate(tweets)
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=False,
        use_cpu=True,
        loss_type="grpo",
        scale_rewards="group",
        beta=0.04,
        seed=0,
        remove_unused_columns=False,
    )
    policy = resolve_policy(None)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=ds,
        processing_class=load_tokenizer(policy),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    trainer.train()
    logged = {k for row in trainer.state.log_history for k in row}
    for name in (
        "learned",
        "heuristic",
        "relevance",
        "length",
        "sentiment",
        "uniqueness",
        "safety",
        "engagement",
    ):
        assert f"rewards/{name}/mean" in logged, name
    assert trainer.state.global_step == 2
