"""The objective in the real trainer (tiny model, one generation batch):

* λ changes the gradient (D enters through the advantages);
* the KL leash is weighted by kl_coef alone, whatever the policy-gradient weight w = β + λ;
* the SFT term has the same weight under gradient accumulation (prompts are averaged per step).
"""

import dataclasses

import pytest
import torch

from replyrl.config import load_config
from replyrl.training.config import TrainConfig


def _trainer(tmp_path, data, recipe: str, *extra: str):
    from replyrl.training.run import build_trainer

    cfg = load_config(
        TrainConfig,
        None,
        [
            f"recipe={recipe}",
            "grpo.num_generations=4",
            "grpo.prompts_per_step=2",
            "grpo.max_completion_length=12",
            "optim.max_steps=1",
            "optim.report_to=[]",
            "data.max_tweets=4",
            "data.split=all",
            f"data.path={data}",
            "reward.kind=heuristic",
            f"output_dir={tmp_path}",
            *extra,
        ],
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop; we call the loss
    return trainer


def _batch(trainer, seed=0, n_prompts=1):
    torch.manual_seed(seed)
    rows = [trainer.train_dataset[i] for i in range(n_prompts)]
    inputs = [row for row in rows for _ in range(trainer.num_generations)]  # K per prompt, in order
    trainer.model.eval()
    with torch.no_grad():
        return trainer._generate_and_score_completions(inputs)


def _grads(trainer, batch) -> dict[str, torch.Tensor]:
    model = trainer.model
    model.train()
    model.zero_grad()
    trainer.compute_loss(model, batch).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def polychromic(tmp_path_factory, synth_file):
    return _trainer(tmp_path_factory.mktemp("poly"), synth_file, "polychromic")


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, synth_file):
    return _trainer(tmp_path_factory.mktemp("hybrid"), synth_file, "hybrid")


def test_lambda_changes_the_advantages_and_the_gradient(polychromic):
    trainer = polychromic
    with_div = _batch(trainer, seed=0)
    assert with_div["advantages"].abs().sum() > 0, "the diversity term must give advantages"
    weights = trainer.weights
    trainer.weights = dataclasses.replace(weights, lam=1e-9)  # same sampling seed, λ ≈ 0
    try:
        without = _batch(trainer, seed=0)
    finally:
        trainer.weights = weights
    assert torch.equal(with_div["completion_ids"], without["completion_ids"])  # same replies
    assert without["advantages"].abs().max() < 1e-4  # polychromic additive: R = d only
    g_div, g_none = _grads(trainer, with_div), _grads(trainer, without)
    diff = sum((g_div[n] - g_none[n]).abs().sum().item() for n in g_div)
    total = sum(g.abs().sum().item() for g in g_none.values())
    assert total > 0 and diff > 1e-6 * total, (diff, total)


def _perturb_lora(model, scale=0.05, seed=0):
    """Move the policy away from the reference (a fresh LoRA has B = 0, hence KL = 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)


def test_kl_is_weighted_by_kl_coef_alone(hybrid):
    """L(kl_coef) is linear in kl_coef with slope = the sequence-mean k3 KL although the policy
    gradient is weighted by w = β + λ = 0.7 (the old loss multiplied the KL by 0.7 too)."""
    trainer = hybrid
    _perturb_lora(trainer.model)
    batch = _batch(trainer)
    trainer.model.eval()
    losses = {}
    for coef in (0.0, 0.5):
        trainer.beta = coef
        with torch.no_grad():
            losses[coef] = trainer.compute_loss(trainer.model, batch).item()
    # the k3 estimate by hand from the same log-probs TRL uses
    with torch.no_grad():
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, batch["completion_ids"].size(1)
        )
    delta = batch["ref_per_token_logps"] - logps
    kl = torch.exp(delta) - delta - 1  # (B, T)
    cmask = batch["completion_mask"]
    seq_kl = ((kl * cmask).sum(-1) / cmask.sum(-1).clamp(min=1)).mean().item()
    assert seq_kl > 1e-4
    assert (losses[0.5] - losses[0.0]) / 0.5 == pytest.approx(seq_kl, rel=1e-3)
    assert trainer.weights.pg_weight == pytest.approx(0.7)


def test_sft_term_weight_is_the_same_under_gradient_accumulation(hybrid):
    """Two prompts in one micro-batch, or one per micro-batch (accumulation 2): same SFT loss,
    equal to the mean over prompts of each reference reply's token-mean NLL."""
    from replyrl.training.objective import sft_nll_per_row

    trainer = hybrid
    batch = _batch(trainer, n_prompts=2)
    rows = batch["sft_rows"].bool()
    assert rows.tolist() == [True, False, False, False, True, False, False, False]
    trainer.model.eval()
    with torch.no_grad():
        whole = trainer.sft_loss(trainer.model, batch).item()
        halves = [
            {k: v[s] for k, v in batch.items() if k.startswith("sft_")}
            for s in (slice(0, 4), slice(4, 8))
        ]
        accumulated = sum(trainer.sft_loss(trainer.model, h).item() for h in halves)
        logits = trainer.model(
            input_ids=batch["sft_input_ids"][rows], attention_mask=batch["sft_attention_mask"][rows]
        ).logits
        by_hand = sft_nll_per_row(logits, batch["sft_labels"][rows]).mean().item()
    assert whole == pytest.approx(by_hand, rel=1e-5)
    assert accumulated == pytest.approx(by_hand, rel=1e-5)
