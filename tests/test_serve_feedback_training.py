"""Feedback into training: a preference RM trained with `--pairs feedback.jsonl` on top of the usual
pairs loads, scores, and ranks suggestions as the composite reward (`--reward RM_DIR`)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from replyrl.cli import app
from replyrl.data.synth import synthesize
from replyrl.records import write_records
from replyrl.serve.fakes import FakeGenerator
from replyrl.serve.feedback import FeedbackLog, Shown, feedback_rows
from replyrl.serve.loading import build_ranker
from replyrl.serve.suggest import Suggester


def test_rm_trained_with_feedback_pairs_loads_scores_and_ranks(tmp_path):
    records = synthesize(n_tweets=20, seed=0)
    data = write_records(tmp_path / "records.jsonl", records)
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    for i, r in enumerate(records[:24:4]):
        log.append(
            feedback_rows(
                r.tweet,
                Shown(f"Great point about this, thanks for sharing #{i}", 0.7),
                [Shown("lol", 0.2), Shown("no", 0.1)],
                model="fake",
            )
        )
    assert log.count() == 12
    out = tmp_path / "rm"
    res = CliRunner().invoke(
        app,
        [
            "reward",
            "train",
            "--data",
            str(data),
            "--pairs",
            str(log.path),
            "--out",
            str(out),
            "--set",
            "objective=preference",
            "--set",
            "epochs=2",
            "--set",
            "patience=1",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "config.json").read_text())
    assert str(log.path) in json.dumps(meta)  # the feedback file is recorded as a training input

    from replyrl.rewards.learned import load_reward_model

    rm = load_reward_model(out)
    s = rm.score(
        ["Just shipped my first open source library!"] * 2, ["Congrats, what does it do?", "ok"]
    )
    assert s.shape == (2,) and np.all(np.isfinite(s))

    ranker = build_ranker(out)
    assert ranker.name == "composite(rm)"
    suggester = Suggester(FakeGenerator(), ranker_embed(ranker), ranker)
    result = suggester.suggest("Just shipped my first open source library!", k=3, seed=0)
    assert len(result.suggestions) == 3
    assert {"learned", "heuristic", "relevance"} <= set(result.suggestions[0].components)
    scores = [x.score for x in result.suggestions]
    assert scores == sorted(scores, reverse=True)


def ranker_embed(ranker):
    """Dedup with the same embedding cache the composite reward uses."""
    return ranker.fn.embeddings.encode
