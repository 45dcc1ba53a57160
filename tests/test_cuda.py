"""On a CUDA GPU (skipped elsewhere; scripts/gpu_check.sh runs these with `-m cuda`): models land
on the GPU in bf16, the own sampler keeps its guarantees there, and a GRPO step trains."""

from __future__ import annotations

import pytest
import torch

from replyrl.generation import SamplingConfig, generate_replies

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
TWEETS = [
    "Coffee or tea?",
    "Monday again, and the coffee machine is broken.",
    "Just finished my first marathon after two years of training!",
]


@pytest.fixture(scope="module")
def gpu_policy():
    from replyrl.models import load_policy

    return load_policy(device="auto")


def test_auto_loads_the_policy_and_encoder_on_the_gpu(gpu_policy):
    from replyrl.models import load_encoder

    model, _ = gpu_policy
    assert model.device.type == "cuda"
    assert model.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    assert load_encoder().device.type == "cuda"


@pytest.mark.parametrize("backend", ["loop", "generate"])
def test_greedy_replies_agree_between_the_backends(gpu_policy, backend):
    model, tok = gpu_policy
    greedy = dict(n=2, max_new_tokens=12, batch_prompts=3, top_k=1)
    ref = generate_replies(model, tok, TWEETS, SamplingConfig(backend="loop", **greedy))
    got = generate_replies(model, tok, TWEETS, SamplingConfig(backend=backend, **greedy))
    # bf16 kernels may break a near-tie differently between batch shapes: allow one of three
    assert sum(a == b for a, b in zip(ref, got)) >= 2


def test_loop_replies_do_not_depend_on_batching_or_order(gpu_policy):
    model, tok = gpu_policy
    cfg = SamplingConfig(n=4, max_new_tokens=16, batch_prompts=1, seed=3, backend="loop")
    one = generate_replies(model, tok, TWEETS, cfg)
    assert generate_replies(model, tok, TWEETS[::-1], cfg) == one[::-1]


def test_a_grpo_step_trains_on_the_gpu(tmp_path):
    from replyrl.config import load_config
    from replyrl.training.config import TrainConfig
    from replyrl.training.run import train

    for backend in ("fast", "trl"):
        cfg = load_config(
            TrainConfig,
            None,
            [
                "recipe=grpo",
                "device=cuda",
                "reward.kind=heuristic",
                f"grpo.rollout_backend={backend}",
                "grpo.num_generations=4",
                "grpo.prompts_per_step=2",
                "grpo.max_completion_length=16",
                "optim.max_steps=2",
                "optim.report_to=[]",
                "optim.sample_every=0",
                "data.max_tweets=4",
                "data.split=all",
                f"output_dir={tmp_path / backend}",
            ],
        )
        out = train(cfg)
        assert (out / "adapter" / "adapter_model.safetensors").exists()
