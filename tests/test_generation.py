"""The batched sampler: the same distribution as transformers' warpers, the same tokens as
`generate` when decoding is greedy (left padding, shared prefill, rows leaving the batch), and
replies that depend on the seed and the tweet only, not on batching or input order."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from replyrl.generation import SamplingConfig, generate_replies, nucleus, sample_tokens


@pytest.mark.parametrize(
    "temperature,top_k,top_p", [(0.9, 50, 0.95), (0.7, 0, 0.9), (1.3, 8, 1.0), (0.5, 3, 0.2)]
)
def test_nucleus_is_the_transformers_warper_distribution(temperature, top_k, top_p):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 300, generator=g) * torch.tensor([0.3, 1, 2, 4, 8, 0.01])[:, None]
    ids, probs = nucleus(logits, temperature, top_k, top_p)
    dense = torch.zeros_like(logits).scatter(1, ids, probs)
    ref = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        ref = TopKLogitsWarper(top_k)(None, ref)
    ref = torch.softmax(TopPLogitsWarper(top_p)(None, ref), dim=-1)
    assert torch.allclose(dense, ref, atol=1e-6)
    assert torch.equal(dense > 0, ref > 0)  # the same kept set, not just close values


def test_sample_tokens_follows_the_probabilities_by_inverse_cdf():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    u = (torch.arange(1000) + 0.5) / 1000  # an even grid: counts are exact quantiles
    picks = torch.cat([sample_tokens(logits, u[i : i + 1], 1.0, 0, 1.0) for i in range(1000)])
    assert torch.bincount(picks, minlength=4).tolist() == [500, 300, 150, 50]
    picks = torch.cat([sample_tokens(logits, u[i : i + 1], 1.0, 0, 0.7) for i in range(1000)])
    # nucleus 0.7 keeps tokens 0 and 1 (mass above token 2 is 0.8 >= 0.7), renormalised 5:3
    assert torch.bincount(picks, minlength=4).tolist() == [625, 375, 0, 0]


@pytest.mark.parametrize("compact_at,reserve", [(0.1, None), (1.0, 1)])
def test_greedy_rows_match_generate_and_stop_at_their_own_eos(
    policy, monkeypatch, compact_at, reserve
):
    # (1.0, 1): finished rows stay in the batch until all are done, and the KV buffer has room
    # for one more token only, so it is regrown at every other step
    from replyrl import generation

    monkeypatch.setattr(generation, "COMPACT_AT", compact_at)
    if reserve is not None:
        new_cache = generation.new_cache
        monkeypatch.setattr(
            generation, "new_cache", lambda model, reserve_: new_cache(model, reserve)
        )
    model, tok = policy
    tok.padding_side = "left"
    prompts = ["Coffee or tea?", "My cat knocked the plant over again this morning, third time"]
    enc = tok(prompts, return_tensors="pt", padding=True)
    assert enc["attention_mask"][0, 0] == 0  # the short prompt is left-padded
    cfg = SamplingConfig(n=2, max_new_tokens=10, top_k=1)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    with torch.no_grad():
        ours = generation.sample_batch(
            model, enc["input_ids"], enc["attention_mask"], gens, cfg, eos=[tok.eos_token_id]
        )
        ref = model.generate(
            **enc, do_sample=False, max_new_tokens=10, pad_token_id=tok.pad_token_id
        )
    ref = ref[:, enc["input_ids"].shape[1] :].tolist()
    assert ours == [ref[0], ref[0], ref[1], ref[1]]  # greedy: both samples of a prompt agree
    # pretend the 3rd token of prompt 0 is an end token: its rows stop there, prompt 1's go on
    stop = ref[0][2]
    assert stop not in ref[1]
    with torch.no_grad():
        short = generation.sample_batch(
            model, enc["input_ids"], enc["attention_mask"], gens, cfg, eos=[stop]
        )
    assert short == [ref[0][:3], ref[0][:3], ref[1], ref[1]]


def test_replies_depend_on_seed_and_tweet_not_on_batching_or_order(policy):
    model, tok = policy
    tweets = [
        "Coffee or tea?",
        "Monday again, and the coffee machine is broken.",
        "Just finished my first marathon after two years of training!",
    ]
    cfg = SamplingConfig(n=2, max_new_tokens=6, batch_prompts=1, seed=3)
    one = generate_replies(model, tok, tweets, cfg)
    assert [len(r) for r in one] == [2, 2, 2] and all(r.strip() for rs in one for r in rs)
    assert generate_replies(model, tok, tweets[::-1], cfg) == one[::-1]
    assert generate_replies(model, tok, tweets[1:2], cfg) == one[1:2]
    cfg3 = SamplingConfig(n=2, max_new_tokens=6, batch_prompts=3, seed=3)
    # prompts are sorted by length before batching, so input order does not change the batch
    assert (
        generate_replies(model, tok, tweets[::-1], cfg3)
        == generate_replies(model, tok, tweets, cfg3)[::-1]
    )
    other = generate_replies(
        model, tok, tweets, SamplingConfig(n=2, max_new_tokens=6, batch_prompts=1, seed=4)
    )
    assert other != one
    assert generate_replies(model, tok, [], cfg) == []


def test_sampling_config_rejects_bad_values():
    for bad in (
        dict(top_k=-1),
        dict(top_p=0),
        dict(temperature=0),
        dict(n=0),
        dict(batch_prompts=0),
    ):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)


def test_the_locked_transformers_gets_the_reserved_kv_layer():
    # when the lock moves to a transformers the layer was not tested with, this fails: re-run
    # the greedy test above and benchmarks/bench_generate.py, then widen KV_LAYER_TRANSFORMERS
    from replyrl import generation

    assert generation._kv_layer_class() is not None


def test_without_the_reserved_kv_layer_the_replies_are_the_same(policy, monkeypatch):
    """The fallback for a transformers the private-API layer was not tested with: plain
    `DynamicCache` layers, the same replies."""
    import transformers
    from transformers.cache_utils import DynamicLayer

    from replyrl import generation

    model, tok = policy
    tweets = ["Coffee or tea?", "Monday again, and the coffee machine is broken."]
    cfg = SamplingConfig(n=2, max_new_tokens=8, batch_prompts=2, seed=1)
    reserved = generate_replies(model, tok, tweets, cfg)
    monkeypatch.setattr(transformers, "__version__", "5.99.0")
    generation._kv_layer_class.cache_clear()
    try:
        assert generation._kv_layer_class() is None
        assert all(type(x) is DynamicLayer for x in generation.new_cache(model, 4).layers)
        assert generate_replies(model, tok, tweets, cfg) == reserved
    finally:
        generation._kv_layer_class.cache_clear()


def test_generate_backend_is_greedy_equal_seeded_and_leaves_the_rng_alone(policy):
    model, tok = policy
    tweets = ["Coffee or tea?", "Just finished my first marathon after two years of training!"]
    greedy = dict(n=2, max_new_tokens=8, batch_prompts=2, top_k=1)
    loop = generate_replies(model, tok, tweets, SamplingConfig(backend="loop", **greedy))
    assert (
        generate_replies(model, tok, tweets, SamplingConfig(backend="generate", **greedy)) == loop
    )
    cfg = SamplingConfig(n=3, max_new_tokens=8, seed=2, backend="generate")
    state = torch.get_rng_state()
    one = generate_replies(model, tok, tweets, cfg)
    assert torch.equal(torch.get_rng_state(), state)
    assert [len(r) for r in one] == [3, 3] and one == generate_replies(model, tok, tweets, cfg)


def test_auto_backend_is_the_loop_on_cpu_and_generate_on_a_gpu():
    from replyrl.generation import resolve_backend

    assert resolve_backend("auto", "cpu") == "loop"
    assert resolve_backend("auto", "cuda") == "generate"
    assert resolve_backend("generate", "cpu") == "generate"
