"""Fast GRPO rollouts: the same loss as TRL's own rollouts for the same completions, reproducible
under a seed, and TRL's path wherever the loop does not apply."""

import pytest
import torch

from replyrl.config import load_config
from replyrl.training.config import TrainConfig
from replyrl.training.rollout import check_rollout_backend, prompt_groups


def test_prompt_groups_share_repeated_prompts_and_fall_back_on_uneven_runs():
    assert prompt_groups([[1, 2], [1, 2], [3], [3]]) == ([[1, 2], [3]], 2)
    assert prompt_groups([[5]] * 4) == ([[5]], 4)
    # a group split across processes: every row samples alone, nothing is merged wrongly
    assert prompt_groups([[1], [1], [1], [2]]) == ([[1], [1], [1], [2]], 1)
    # the same prompt twice, not adjacent, stays two groups
    assert prompt_groups([[1], [1], [2], [2], [1], [1]]) == ([[1], [2], [1]], 2)


def test_rollout_backend_names_are_checked():
    from replyrl.training.config import GRPOSection

    assert GRPOSection().rollout_backend == "trl" and check_rollout_backend("fast") == "fast"
    with pytest.raises(ValueError, match="rollout_backend"):
        check_rollout_backend("vllm")


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    from replyrl.training.run import build_trainer

    tmp = tmp_path_factory.mktemp("rollout")
    cfg = load_config(
        TrainConfig,
        None,
        [
            "recipe=grpo",
            "reward.kind=heuristic",
            "grpo.num_generations=4",
            "grpo.prompts_per_step=2",
            "grpo.max_completion_length=10",
            "grpo.rollout_backend=fast",
            "optim.max_steps=1",
            "optim.report_to=[]",
            "data.max_tweets=4",
            "data.split=all",
            f"output_dir={tmp}",
        ],
    )
    t = build_trainer(cfg, tmp / "run")
    t.current_gradient_accumulation_steps = 1  # set by the training loop; we call the loss directly
    t.model.train()
    return t


def _batch(trainer):
    return [trainer.train_dataset[0]] * 4 + [trainer.train_dataset[1]] * 4  # K=4, two prompts


def test_fast_rollouts_are_seeded_and_follow_the_eos_rule(trainer):
    assert trainer.rollout_backend == "fast"
    torch.manual_seed(0)
    a = trainer._generate_and_score_completions(_batch(trainer))
    torch.manual_seed(0)
    b = trainer._generate_and_score_completions(_batch(trainer))
    torch.manual_seed(1)
    c = trainer._generate_and_score_completions(_batch(trainer))
    assert torch.equal(a["completion_ids"], b["completion_ids"])
    assert not torch.equal(a["completion_ids"], c["completion_ids"])
    assert a["completion_ids"].shape[0] == 8 and a["completion_ids"].shape[1] <= 10


def test_fast_and_trl_rollouts_give_the_same_loss_for_the_same_completions(trainer, monkeypatch):
    """Sample with the loop, then make TRL's `generate` path return the very same token ids:
    masks, rewards, advantages and the loss must be identical (the mixin changes who samples,
    not what TRL computes from the samples)."""
    batch = _batch(trainer)
    torch.manual_seed(0)
    first = trainer._generate_and_score_completions(batch)
    # Make some rows end early: the 3rd sampled token of row 0 becomes an extra end token, so
    # the batch has EOS-terminated rows (cut, EOS kept) and rows cut at the length budget.
    extra_eos = int(first["completion_ids"][0, 2])
    monkeypatch.setattr(trainer, "eos_token_ids", [*trainer.eos_token_ids, extra_eos])
    torch.manual_seed(0)
    fast = trainer._generate_and_score_completions(batch)
    lengths = fast["completion_mask"].sum(1).tolist()
    assert min(lengths) < 10 and lengths[0] == 3, lengths
    ids = [row[: int(n)].tolist() for row, n in zip(fast["completion_ids"], lengths)]
    pad = trainer.processing_class.pad_token_id

    def fake_generate(input_ids, attention_mask, **kwargs):
        rows = [r + [pad] * (10 - len(r)) for r in ids]  # generate pads finished rows
        return torch.cat([input_ids, torch.tensor(rows, device=input_ids.device)], dim=1)

    monkeypatch.setattr(trainer.model, "generate", fake_generate)
    monkeypatch.setattr(trainer, "rollout_backend", "trl")
    slow = trainer._generate_and_score_completions(batch)
    for key in ("prompt_ids", "completion_ids", "completion_mask", "advantages"):
        assert torch.equal(fast[key], slow[key]), key
    loss_fast = trainer.compute_loss(trainer.model, fast)
    loss_slow = trainer.compute_loss(trainer.model, slow)
    assert torch.isfinite(loss_fast) and torch.equal(loss_fast, loss_slow)


def test_trl_path_runs_where_the_loop_does_not_apply(trainer, monkeypatch):
    called = []
    monkeypatch.setattr(
        type(trainer).__mro__[2],  # GRPOTrainer, behind ObjectiveGRPOTrainer and the mixin
        "_generate_single_turn",
        lambda self, *a, **k: called.append(1) or ([[1]] * len(a[0]), None),
    )
    monkeypatch.setattr(trainer, "repetition_penalty", 1.2)  # the loop has no such penalty
    trainer._generate_single_turn([[1, 2]] * 4, None, {}, 4)
    assert called == [1]
