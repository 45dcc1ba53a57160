"""Offline model defaults: the packaged policy converts to a trainable checkpoint, the encoder
loads from its package, prompts use the chat template, and a missing model is a clear error."""

import json
import re

import pytest
from typer.testing import CliRunner


def test_default_policy_is_a_plain_trainable_checkpoint():
    from replyrl.models import default_policy_path

    path = default_policy_path()
    cfg = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 30
    assert list(path.glob("*.safetensors"))


def test_prompt_uses_chat_template(policy):
    from replyrl.models import build_prompt

    _, tok = policy
    p = build_prompt(tok, "  Coffee or tea?  ", "Be brief.")
    assert p.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>user\nCoffee or tea?<|im_end|>" in p
    assert p.endswith("<|im_start|>assistant\n")


def test_encoder_loads_offline(encoder):
    v = encoder.encode(["hello world", "hello world"], normalize_embeddings=True)
    assert v.shape == (2, 384)
    assert float(v[0] @ v[1]) == pytest.approx(1.0, abs=1e-5)


def test_missing_model_says_how_to_get_it():
    from replyrl.models import ModelNotFoundError, load_policy

    with pytest.raises(ModelNotFoundError, match="never downloads"):
        load_policy("no-such-org/no-such-model-xyz")


def test_batched_generation_is_seeded_and_shaped(policy):
    from replyrl.generation import SamplingConfig, generate_replies

    model, tok = policy
    cfg = SamplingConfig(n=2, max_new_tokens=8, batch_prompts=2, seed=3)
    a = generate_replies(
        model, tok, ["Coffee or tea?", "Best pizza topping?", "Monday again."], cfg
    )
    b = generate_replies(
        model, tok, ["Coffee or tea?", "Best pizza topping?", "Monday again."], cfg
    )
    assert [len(x) for x in a] == [2, 2, 2] and a == b
    assert all(r.strip() for x in a for r in x)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=0)


def test_generate_cli_prints_n_replies():
    from replyrl.cli import app

    res = CliRunner().invoke(
        app,
        [
            "generate",
            "Just shipped my first open source library!",
            "-n",
            "3",
            "--max-new-tokens",
            "12",
        ],
    )
    assert res.exit_code == 0, res.output
    numbered = re.findall(
        r"(?:^|\]|\n)([1-9])\. \S", res.output
    )  # stderr progress bars may precede "1."
    assert numbered == ["1", "2", "3"], res.output
