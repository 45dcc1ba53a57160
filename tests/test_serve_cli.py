"""`replyrl suggest` and `replyrl serve` argument handling and output (fakes), plus the real
acceptance run with the packaged model (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replyrl.cli import app
from replyrl.serve.fakes import fake_suggester

TWEET = "Just shipped my first open source library!"
runner = CliRunner()


@pytest.fixture()
def fake_loaded(monkeypatch):
    import replyrl.serve.loading as loading

    calls = []

    def load(model=None, reward=None, max_new_tokens=48, cfg=None, device="cpu"):
        calls.append((model, reward, max_new_tokens))
        return fake_suggester(cfg)

    monkeypatch.setattr(loading, "load_suggester", load)
    return calls


def test_suggest_json(fake_loaded):
    r = runner.invoke(
        app, ["suggest", TWEET, "-k", "3", "--json", "--seed", "4", "--max-new-tokens", "20"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["tweet"] == TWEET and out["seed"] == 4 and out["reward"] == "fake"
    assert len({s["reply"] for s in out["suggestions"]}) == 3
    assert fake_loaded == [(None, None, 20)]


def test_suggest_table(fake_loaded):
    r = runner.invoke(app, ["suggest", TWEET, "-k", "2"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "Replies ranked by fake" in r.stdout and "uniqueness" in r.stdout and "total" in r.stdout
    assert "6 sampled in 1 round(s)" in r.stdout  # 3 x k candidates, one generate call


@pytest.mark.parametrize(
    "args, hint",
    [
        (["-k", "0"], "-k"),
        (["-k", "17"], "-k"),
        (["--temperature", "0"], "--temperature"),
        (["--temperature", "2.5"], "--temperature"),
    ],
)
def test_suggest_bad_arguments(fake_loaded, args, hint):
    r = runner.invoke(app, ["suggest", TWEET, *args])
    assert r.exit_code == 2 and hint in r.output
    assert fake_loaded == []  # rejected before loading any model


def test_suggest_missing_reward_model_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["suggest", TWEET, "--reward", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "reward train" in r.output


@pytest.mark.slow
def test_suggest_with_the_packaged_model_offline():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("replyrl")
    proc = subprocess.run(
        [str(exe), "suggest", TWEET, "-k", "5", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    replies = [s["reply"] for s in out["suggestions"]]
    assert len(replies) == 5 and len({r.lower() for r in replies}) == 5
    assert all(r.strip() for r in replies)
    assert {"relevance", "length", "sentiment", "uniqueness", "safety"} <= set(
        out["suggestions"][0]["components"]
    )
