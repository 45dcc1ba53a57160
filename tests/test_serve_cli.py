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

    def load(
        model=None, reward=None, max_new_tokens=48, cfg=None, device="cpu", run=None, style=None
    ):
        calls.append((model, reward, max_new_tokens))
        s = fake_suggester(cfg)
        s.style = style or s.style
        if run is not None:
            calls.append(("run", run.name, str(run.adapter), run.instruction))
            s.instruction = run.instruction
        return s

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


@pytest.mark.parametrize("columns", ["160", "80", "60"])
def test_suggest_table_shows_every_reply_and_component(fake_loaded, columns):
    import re

    r = runner.invoke(app, ["suggest", TWEET, "-k", "2", "--seed", "4"], env={"COLUMNS": columns})
    assert r.exit_code == 0, r.output
    assert "Replies from fake, ranked by fake" in " ".join(r.stdout.split())
    # Every reply is readable however narrow the terminal (the words may wrap, not vanish).
    replies = [s.reply for s in fake_suggester().suggest(TWEET, k=2, seed=4).suggestions]
    words = re.findall(r"[a-z]+", r.stdout)
    for reply in replies:
        assert " ".join(reply.split()) in " ".join(words)
    for name in ("uniqueness", "length", "echo", "as_author", "penalty", "total"):
        assert name in r.stdout
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


def test_suggest_with_tone_voice_and_run(fake_loaded, tmp_path):
    from test_serve_run import _metrics, make_run

    voice = tmp_path / "voice.txt"
    voice.write_text("ship it\nlove this\n")
    run = make_run(tmp_path / "demo", {"base": _metrics(gold=0.1), "dpo": _metrics(gold=0.4)})
    args = ["suggest", TWEET, "-k", "2", "--json", "--tone", "witty", "--voice", str(voice)]
    r = runner.invoke(app, [*args, "--run", str(run)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["tone"] == "witty" and out["voice"] == ["ship it", "love this"]
    adapter = str(run / "experiments" / "dpo" / "seed_0" / "adapter")
    assert fake_loaded[-1] == ("run", "dpo", adapter, "Reply like a friend.")
    assert "highest mean gold (0.400)" in r.stderr
    r = runner.invoke(app, ["suggest", TWEET, "--json", "--run", str(run), "--recipe", "base"])
    assert r.exit_code == 0 and fake_loaded[-1][:3] == ("run", "base", "None")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tone", "sarcastic"], "unknown tone 'sarcastic'"),
        (["--voice", "VOICE_EMPTY"], "has no replies"),
        (["--voice", "VOICE_HUGE"], "bytes (at most 16,384)"),
        (["--voice", "NOPE"], "voice file not found"),
        (["--run", "UNFINISHED"], "is not a finished pipeline run"),
        (["--recipe", "sft"], "--recipe picks a model of a pipeline run"),
        (["--run", "UNFINISHED", "--model", "x"], "leave out --model/--reward"),
    ],
)
def test_bad_style_and_run_arguments_are_one_clear_error(fake_loaded, tmp_path, args, message):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "huge.txt").write_text("a reply\n" * 5000)
    (tmp_path / "unfinished" / "stages").mkdir(parents=True)
    paths = {
        "VOICE_EMPTY": tmp_path / "empty.txt",
        "VOICE_HUGE": tmp_path / "huge.txt",
        "NOPE": tmp_path / "nope.txt",
        "UNFINISHED": tmp_path / "unfinished",
    }
    args = [str(paths.get(a, a)) for a in args]
    for command in (["suggest", TWEET], ["serve"]):
        r = runner.invoke(app, [*command, *args], env={"COLUMNS": "300"})
        assert r.exit_code == 2, r.output
        assert message in r.stderr and "Traceback" not in r.output
        assert len(r.stderr.strip().splitlines()) == 1
    assert fake_loaded == []  # refused before any model loads


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


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"format": "something-else"}', "not a replyrl reward model config"),
        ('{"format": "replyrl-reward-model", "version": 1}', "cannot rank by the reward model"),
    ],
)
def test_corrupt_reward_folder_is_a_clear_error(tmp_path, config, message):
    rm = tmp_path / "rm"
    rm.mkdir()
    (rm / "config.json").write_text(config)
    (rm / "head.safetensors").write_bytes(b"not safetensors")
    r = runner.invoke(app, ["suggest", TWEET, "--reward", str(rm)], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_serve_refuses_a_folder_as_feedback_file(fake_loaded, tmp_path):
    r = runner.invoke(app, ["serve", "--feedback", str(tmp_path)], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "is a folder" in r.output and fake_loaded == []
