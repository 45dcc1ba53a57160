"""The one device setting: auto picks cuda → mps → cpu, every model loader is handed it, and a
device, dtype or backend this machine lacks is one clear error before any model loads."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from replyrl.config import ConfigError, load_config
from replyrl.device import DeviceError, resolve_device, resolve_dtype, supports_bf16
from replyrl.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend this machine has one bf16-capable CUDA GPU (nothing is ever put on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


def test_auto_is_the_first_of_cuda_mps_cpu(monkeypatch, fake_cuda):
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_auto_dtype_is_bf16_only_where_supported(fake_cuda):
    assert resolve_dtype("auto", "cuda") == "bfloat16" and supports_bf16("cuda")
    assert resolve_dtype("auto", "cpu") == "float32" and not supports_bf16("cpu")
    assert resolve_dtype("float32", "cuda") == "float32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_one_clear_error():
    with pytest.raises(DeviceError, match="device=cuda, but torch .* sees no CUDA GPU") as e:
        resolve_device("cuda")
    assert isinstance(e.value, UserError)
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_bf16_on_a_device_without_it_is_one_clear_error():
    with pytest.raises(DeviceError, match="model.dtype=bfloat16 needs a CUDA GPU with bf16"):
        resolve_dtype("bfloat16", "cpu", where="model.dtype")
    with pytest.raises(DeviceError, match="float16 needs a GPU"):
        resolve_dtype("float16", "cpu")


def _train_cfg(*overrides):
    from replyrl.training.config import TrainConfig

    return load_config(TrainConfig, ROOT / "configs/train/grpo.yaml", list(overrides))


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.dtype=bfloat16", "model.dtype=bfloat16 needs a CUDA GPU"),
        ("optim.bf16=true", "optim.bf16=true needs a CUDA GPU"),
        ("grpo.use_vllm=true", "grpo.use_vllm=true needs vLLM, which is not installed"),
    ],
)
def test_training_runtime_errors_come_before_any_model_loads(override, match, monkeypatch):
    from replyrl.training import run

    monkeypatch.setattr(run, "build_trainer", lambda *a: pytest.fail("a model was loaded"))
    cfg = _train_cfg("device=cpu", override)
    with pytest.raises(DeviceError, match=match):
        run.train(cfg)


def test_training_runtime_on_a_gpu_machine(fake_cuda):
    from replyrl.training.run import runtime

    assert runtime(_train_cfg()) == ("cuda", "bfloat16", True)
    assert runtime(_train_cfg("device=cpu")) == ("cpu", "float32", False)
    assert runtime(_train_cfg("model.dtype=float32")) == ("cuda", "float32", False)
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES"):
        runtime(_train_cfg("device=cuda:0"))


def test_config_device_names_are_checked_when_loaded():
    from replyrl.evaluation.evaluate import EvalConfig
    from replyrl.training.config import TrainConfig

    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        load_config(EvalConfig, None, ["device=gpu"])
    with pytest.raises(ConfigError, match="use_cpu=true contradicts device=cuda"):
        load_config(TrainConfig, None, ["device=cuda", "optim.use_cpu=true"])
    assert load_config(TrainConfig, None, ["optim.use_cpu=true"]).device == "cpu"


def test_every_loader_is_handed_the_device(monkeypatch):
    """Encoder (rewards, diversity, metrics), reward models, judge and sampler: each gets the
    device it is told, not a hard-coded cpu."""
    from replyrl import models
    from replyrl.evaluation import judge as judge_mod
    from replyrl.rewards.build import RewardConfig, build_reward
    from replyrl.rewards.embeddings import EmbeddingCache
    from replyrl.training.config import TrainConfig
    from replyrl.training.run import objective_reward

    seen = []
    monkeypatch.setattr(models, "_load_encoder", lambda name, device: seen.append(device))
    assert EmbeddingCache(device="cpu").encoder is None  # the stand-in loader returns None
    assert seen == ["cpu"]
    assert build_reward(RewardConfig(kind="heuristic"), device="cpu").embeddings.device == "cpu"
    cfg = load_config(TrainConfig, None, ["recipe=polychromic", "objective.diversity_weight=0.5"])
    assert objective_reward(cfg, "cpu").embeddings.device == "cpu"
    loaded = []
    monkeypatch.setattr(models, "load_policy", lambda path, **kw: loaded.append(kw) or (None, None))
    with pytest.raises(AttributeError):  # the fake has no tokenizer; the call is what counts
        judge_mod.LocalBackend(None, device="cpu")
    assert loaded == [{"device": "cpu"}]


def test_cli_generate_with_a_missing_gpu_or_vllm_prints_one_line(monkeypatch):
    from replyrl.cli import app

    runner = CliRunner()
    if not torch.cuda.is_available():
        r = runner.invoke(app, ["generate", "hello", "--device", "cuda"])
        assert r.exit_code == 2 and "sees no CUDA GPU" in r.output
        assert "Traceback" not in r.output
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails: not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    r = runner.invoke(app, ["generate", "hello", "--backend", "vllm"])
    assert r.exit_code == 2 and "needs vLLM, which is not installed" in r.output
    r = runner.invoke(app, ["generate", "hello", "--backend", "fast"])
    assert r.exit_code == 2 and "backend must be one of" in r.output


def test_vllm_backend_plumbing_with_a_stand_in_engine(monkeypatch, fake_cuda):
    """No vLLM here: a stand-in module records what the sampler asks of it."""
    from replyrl.generation import SamplingConfig, load_sampler, prompt_seed

    calls = {}

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class LLM:
        def __init__(self, **kw):
            calls["llm"] = kw

        def generate(self, prompts, params, use_tqdm=False):
            calls["prompts"], calls["params"] = prompts, [p.kw for p in params]
            out = types.SimpleNamespace
            return [
                out(outputs=[out(text=f" {p[-12:]}#{j} ") for j in range(q.kw["n"])])
                for p, q in zip(prompts, params)
            ]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, SamplingParams
    fake.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    cfg = SamplingConfig(n=3, top_k=0, seed=5, backend="vllm")
    replies = load_sampler(None, cfg, device="cuda")(["tweet one", "tweet two"])
    assert [len(r) for r in replies] == [3, 3] and replies[0][2].endswith("#2")
    assert calls["llm"]["dtype"] == "bfloat16" and calls["llm"]["seed"] == 5
    assert [p["seed"] for p in calls["params"]] == [prompt_seed(5, p) for p in calls["prompts"]]
    assert calls["params"][0]["top_k"] == -1 and calls["params"][0]["max_tokens"] == 48
    with pytest.raises(DeviceError, match="vllm needs a CUDA GPU"):
        load_sampler(None, cfg, device="cpu")
