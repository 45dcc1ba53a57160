"""Checkpoint evaluation (the over-optimisation curve): which folders count, KL per step, points."""

import json

import numpy as np
import pytest

from replyrl.evaluation.checkpoints import (
    CheckpointError,
    evaluate_checkpoints,
    kl_at_steps,
    run_checkpoints,
)
from replyrl.evaluation.generate_cache import EvalTweet
from replyrl.evaluation.scoring import Scorers


def fake_run(tmp_path, steps=(2, 4)):
    run = tmp_path / "run"
    for s in steps:
        c = run / "checkpoints" / f"checkpoint-{s}"
        c.mkdir(parents=True)
        (c / "adapter_config.json").write_text("{}")
        (c / "trainer_state.json").write_text(json.dumps({"global_step": s}))
    rows = [
        {"step": 1, "kl": 0.01},
        {"step": 2, "kl": 0.02, "loss": 1.0},
        {"step": 3, "kl": 0.05},
        {"step": 4, "kl": 0.09},
    ]
    (run / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_checkpoints_are_listed_by_step_and_validated(tmp_path):
    run = fake_run(tmp_path, steps=(10, 2))
    assert [s for s, _ in run_checkpoints(run)] == [2, 10]
    other = fake_run(tmp_path / "elsewhere", steps=(3,))
    with pytest.raises(CheckpointError, match="is not a checkpoint of the run"):
        run_checkpoints(run, [other / "checkpoints" / "checkpoint-3"])
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 7}')
    with pytest.raises(CheckpointError, match="global_step 7 does not match"):
        run_checkpoints(run)
    with pytest.raises(CheckpointError, match="no checkpoints/ folder"):
        run_checkpoints(tmp_path / "nothing")


def test_kl_is_read_at_each_step(tmp_path):
    run = fake_run(tmp_path)
    assert kl_at_steps(run, [0, 2, 4, 5]) == {0: 0.0, 2: 0.02, 4: 0.09, 5: 0.09}


def test_points_score_each_checkpoint_on_the_same_tweets(tmp_path):
    run = fake_run(tmp_path)
    tweets = [EvalTweet("t1", "tweet one", ["ref"]), EvalTweet("t2", "tweet two", ["ref"])]
    seen = []

    def generate(path, texts):
        seen.append((path, tuple(texts)))
        step = 0 if path is None else int(path.rsplit("-", 1)[-1])
        return [["x" * (10 + step)] * 2 for _ in texts]

    scorers = Scorers(
        lambda t, r: np.array([len(x) for x in r], float),
        "len",
        audience=lambda t, r: np.full(len(r), 0.5),
    )
    pts = evaluate_checkpoints(run, None, tweets, scorers, sampling=None, generate=generate)
    assert [p["step"] for p in pts] == [0, 2, 4]
    assert [p["kl"] for p in pts] == [0.0, 0.02, 0.09]
    assert [p["proxy"] for p in pts] == [10.0, 12.0, 14.0]
    assert all(p["audience"] == 0.5 for p in pts)
    assert {texts for _, texts in seen} == {("tweet one", "tweet two")}


def test_other_files_beside_the_checkpoints_are_ignored(tmp_path):
    run = fake_run(tmp_path)
    (run / "checkpoints" / "README.md").write_text("TRL model card")
    assert [s for s, _ in run_checkpoints(run)] == [2, 4]
