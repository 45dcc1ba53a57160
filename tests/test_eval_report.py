"""Generation cache reuse, training-log reading, report files and `replyrl report DIR`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from replyrl.evaluation.evaluate import EvalConfig, evaluate, parse_models
from replyrl.evaluation.generate_cache import EvalTweet, cache_path, cached_generations
from replyrl.evaluation.judge import JudgeConfig
from replyrl.evaluation.logs import training_curves
from replyrl.evaluation.scoring import Scorers
from replyrl.generation import SamplingConfig

TWEETS = [
    EvalTweet(
        f"t{i}",
        f"Tweet number {i} about my garden tomatoes and basil",
        [
            f"Your tomatoes look great, how often do you water them? ({i})",
            f"Basil and tomatoes together is the best combo {i}!",
        ],
    )
    for i in range(4)
]


class Counting:
    def __init__(self, n):
        self.n, self.seen = n, []

    def __call__(self, tweets):
        self.seen.extend(tweets)
        return [[f"{t} reply {j}" for j in range(self.n)] for t in tweets]


def test_generation_cache_reuses_lines_and_keys_on_sampling(tmp_path):
    s = SamplingConfig(n=2, seed=0)
    path = cache_path(tmp_path, "m", str(tmp_path), s)
    gen = Counting(2)
    rows = cached_generations(path, TWEETS[:2], gen, 2)
    assert len(gen.seen) == 2 and [r["tweet_id"] for r in rows] == ["t0", "t1"]
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["replies"] == [
        f"{TWEETS[0].tweet} reply 0",
        f"{TWEETS[0].tweet} reply 1",
    ]
    gen2 = Counting(2)
    rows2 = cached_generations(path, TWEETS, gen2, 2)
    assert gen2.seen == [TWEETS[2].tweet, TWEETS[3].tweet]  # only the missing tweets
    assert rows2[:2] == rows
    assert cache_path(tmp_path, "m", str(tmp_path), SamplingConfig(n=2, seed=1)) != path
    assert (
        cache_path(tmp_path, "m", str(tmp_path), SamplingConfig(n=2, seed=0, batch_prompts=3))
        == path
    )


def test_parse_models_names_and_seeds(tmp_path):
    specs = parse_models(
        [
            "base=base",
            "grpo=runs/grpo/seed_3/adapter",
            "grpo=runs/grpo/seed_4/adapter",
            "sft=x",
            "sft=y",
        ]
    )
    assert [(s.name, s.path, s.seed) for s in specs] == [
        ("base", None, 0),
        ("grpo", "runs/grpo/seed_3/adapter", 3),
        ("grpo", "runs/grpo/seed_4/adapter", 4),
        ("sft", "x", 0),
        ("sft", "y", 1),
    ]
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse_models(["=x"])


def _run_folder(tmp_path, name, seed, kl_scale):
    run = tmp_path / "experiments" / name / f"seed_{seed}"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    lines = [json.dumps({"step": s, "kl": kl_scale * s, "reward": 0.1 * s}) for s in range(1, 6)]
    (run / "log_history.jsonl").write_text("\n".join(lines) + '\n{"step": 6, "kl"')  # torn line
    return run / "adapter"


def test_training_curves_tolerant(tmp_path):
    adapter = _run_folder(tmp_path, "grpo", 0, 0.02)
    c = training_curves(str(adapter))
    assert c["final_kl"] == pytest.approx(0.1) and len(c["reward"]) == 5
    assert training_curves(None) is None
    assert training_curves(str(tmp_path / "nowhere")) is None
    (tmp_path / "empty").mkdir()
    assert training_curves(str(tmp_path / "empty")) is None


def test_report_with_seeds_logs_and_rebuild(tmp_path, encoder):
    a0, a1 = _run_folder(tmp_path, "grpo", 0, 0.02), _run_folder(tmp_path, "grpo", 1, 0.03)
    specs = parse_models(["base=base", f"grpo={a0}", f"grpo={a1}"])
    rng = np.random.default_rng(0)

    def fake(seed):
        return lambda tweets: [
            [f"{t[:20]} reply {rng.integers(1000)}" for _ in range(4)] for t in tweets
        ]

    gens = {"base__seed0": fake(0), "grpo__seed0": fake(1), "grpo__seed1": fake(2)}
    cfg = EvalConfig(
        sampling=SamplingConfig(n=4), ks=[1, 4], bootstrap=200, judge=JudgeConfig(enabled=False)
    )
    scorers = Scorers(
        lambda t, r: np.array([len(x) / 100 for x in r]),
        "fake proxy",
        gold=lambda t, r: np.array([len(x) % 7 / 7 for x in r]),
        gold_name="fake gold",
    )
    out = tmp_path / "eval"
    s = evaluate(
        specs, "mem", out, cfg, scorers=scorers, generators=gens, encoder=encoder, tweets=TWEETS
    )
    grpo = s["models"]["grpo"]["metrics"]["proxy"]
    assert grpo["n_seeds"] == 2 and grpo["n"] == 8
    assert set(s["training"]) == {"grpo__seed0", "grpo__seed1"}
    assert {(c["a"], c["b"]) for c in s["comparisons"]} == {("grpo", "base")}
    assert {c["unit"] for c in s["comparisons"]} == {"seed"}  # two seeds: the seed is the unit
    html = (out / "report.html").read_text()
    imgs = re.findall(r"<img [^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) == 4  # pass@k, diversity-quality, engagement vs KL, training curves
    assert "SYNTHETIC" not in html
    md = (out / "report.md").read_text()
    assert "| grpo |" in md and "seeds" in md
    assert "p (Holm)" in md and "p pooled (secondary)" in md
    (out / "report.html").unlink()
    from replyrl.cli import app

    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    again = json.loads((out / "summary.json").read_text())
    assert again["models"]["grpo"]["metrics"]["proxy"] == pytest.approx(grpo)
    assert (out / "report.html").exists()
    bad = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert bad.exit_code == 2 and "runs.json" in bad.output


def test_cli_rejects_bad_config_before_loading_models(tmp_path):
    from replyrl.cli import app

    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            "base=base",
            "--data",
            "x.jsonl",
            "--out",
            str(tmp_path),
            "--set",
            "ks=[1,16]",
        ],
    )
    assert res.exit_code == 2 and "sampling.n" in res.output
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--model",
            "base=base",
            "--data",
            "x.jsonl",
            "--out",
            str(tmp_path),
            "--set",
            "pass_critrion=reference",
        ],
    )
    assert res.exit_code == 2 and "pass_criterion" in res.output
