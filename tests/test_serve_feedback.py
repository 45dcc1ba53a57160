"""The feedback log: rows in the preference-pair format, and appends safe across processes."""

from __future__ import annotations

import json
import multiprocessing as mp

from replyrl.data.pairs import read_pairs
from replyrl.serve.feedback import FeedbackLog, Shown, feedback_rows, feedback_tweet_id


def test_rows_one_per_passed_over_reply_and_readable_as_pairs(tmp_path):
    rows = feedback_rows(
        "  Big launch today  ",
        Shown("Congrats!", 1.2),
        [Shown("meh", -0.4), Shown("Congrats! ", 1.2), Shown("Ship it", 0.3)],
        model="m",
        now=0,
    )
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("Congrats!", "meh"),
        ("Congrats!", "Ship it"),
    ]
    assert rows[0]["tweet"] == "Big launch today"
    assert rows[0]["tweet_id"] == feedback_tweet_id("Big launch today")
    assert rows[0]["time"] == "1970-01-01T00:00:00Z"
    log = FeedbackLog(tmp_path / "fb" / "feedback.jsonl")
    assert log.count() == 0
    assert log.append(rows) == 2 and log.append([]) == 0
    pairs = read_pairs(log.path)  # what `replyrl reward train --pairs` reads
    assert [(p.chosen, p.rejected, p.margin) for p in pairs] == [
        ("Congrats!", "meh", 1.0),
        ("Congrats!", "Ship it", 1.0),
    ]
    assert pairs[0].chosen_score is None and pairs[0].extra["source"] == "feedback"
    assert pairs[0].extra["rejected_reward"] == -0.4  # negative reward scores survive validation


def test_tweet_id_is_stable_and_short():
    a = feedback_tweet_id("hello")
    assert a == feedback_tweet_id("  hello ") == "feedback:aaf4c61ddcc5"  # sha1("hello")[:12]
    assert a != feedback_tweet_id("hello!")


def _writer(path: str, worker: int, n: int) -> None:
    log = FeedbackLog(path)
    for i in range(n):
        log.append(
            feedback_rows(
                f"tweet {worker}",
                Shown(f"w{worker} i{i} " + "x" * 3000, 1.0),
                [Shown("a" * 3000, 0.0), Shown("b" * 3000, 0.0)],
                model="m",
            )
        )


def test_appends_from_several_processes_never_interleave(tmp_path):
    path = str(tmp_path / "feedback.jsonl")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    lines = open(path, encoding="utf-8").read().splitlines()
    assert len(lines) == 4 * 20 * 2
    rows = [json.loads(line) for line in lines]
    seen = {(r["chosen"].split()[0], r["chosen"].split()[1]) for r in rows}
    assert len(seen) == 80
