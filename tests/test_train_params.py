"""One optimizer step of every recipe changes every trainable LoRA parameter (TRL's own check).

A fresh LoRA adapter has B = 0, so A gets no gradient in the first step; the runs therefore start
from an adapter with non-zero A and B, as an RL run started from the SFT adapter does.
"""

import pytest
import torch

from replyrl.config import load_config
from replyrl.training.config import TrainConfig
from replyrl.training.objective import RECIPES


@pytest.fixture(scope="module")
def init_adapter(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from replyrl.models import load_tokenizer, resolve_policy

    path = resolve_policy(None)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(path),
        LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)
    out = tmp_path_factory.mktemp("init") / "adapter"
    model.save_pretrained(out)
    load_tokenizer(path).save_pretrained(out)
    return out


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_one_step_changes_every_trainable_parameter(tmp_path, synth_file, init_adapter, recipe):
    from replyrl.training.run import build_trainer

    cfg = load_config(
        TrainConfig,
        None,
        [
            f"recipe={recipe}",
            f"name={recipe}",
            f"model.init_adapter={init_adapter}",
            f"data.path={synth_file}",
            "data.max_tweets=3",
            "reward.kind=heuristic",
            "grpo.num_generations=3",
            "grpo.prompts_per_step=1",
            "grpo.max_completion_length=8",
            "optim.batch_size=2",
            "dpo.batch_size=2",
            "optim.max_steps=1",
            "optim.learning_rate=0.01",
            "optim.save_steps=100",
            "optim.sample_every=0",
            "optim.report_to=[]",
            f"output_dir={tmp_path}",
        ],
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert before and all("lora_" in n for n in before), sorted(before)[:3]
    trainer.train()
    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert not unchanged, (
        f"{recipe}: {len(unchanged)} of {len(before)} unchanged, e.g. {unchanged[:3]}"
    )
