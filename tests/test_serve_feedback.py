"""The feedback log: rows in the preference-pair format, appends safe across processes, and no
torn line on a failed write, a killed writer or a full disk (a real 64 kB tmpfs where mounting is
permitted)."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

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


def _row(i: int, size: int = 100) -> dict:
    return feedback_rows(f"tweet {i}", Shown(f"c{i} " + "x" * size, 1.0), [Shown("r", 0.0)], "m")[0]


def test_a_failing_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    from replyrl.serve import feedback as fb

    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.append([_row(0)])
    before = log.path.read_bytes()
    real_write = os.write

    def half_then_enospc(fd, data):  # like a filling disk: a short write, then ENOSPC
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fb.os, "write", half_then_enospc)
    with pytest.raises(fb.FeedbackDiskFull, match="is full: the pick was not recorded"):
        log.append([_row(1, 5000)])
    assert log.path.read_bytes() == before  # the half-written line was truncated away
    monkeypatch.setattr(
        fb.os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error"))
    )
    with pytest.raises(fb.FeedbackWriteError, match="I/O error"):
        log.append([_row(2)])
    monkeypatch.undo()
    log.append([_row(3)])
    assert [json.loads(x)["chosen"][:2] for x in log.path.read_text().splitlines()] == ["c0", "c3"]


def test_a_torn_tail_from_a_kill_is_cut_and_a_whole_row_kept(tmp_path, caplog):
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.append([_row(0)])
    whole = log.path.read_bytes()
    with open(log.path, "ab") as f:
        f.write(b'{"tweet_id": "feedback:abc", "tweet": "torn mid-wri')  # kill -9 mid-write
    log.append([_row(1)])
    assert "torn line" in caplog.text
    lines = log.path.read_text().splitlines()
    assert [json.loads(x)["chosen"][:2] for x in lines] == ["c0", "c1"]
    # A whole row that only lost its final newline (an editor) is kept, not cut.
    log.path.write_bytes(whole.rstrip(b"\n"))
    log.append([_row(2)])
    assert [json.loads(x)["chosen"][:2] for x in log.path.read_text().splitlines()] == ["c0", "c2"]
    assert log.count() == 2


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 64 kB tmpfs, or a skip saying why it cannot be mounted here."""
    import shutil
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command: cannot make a small tmpfs for the disk-full test")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({r.stderr.strip() or r.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_leaves_no_torn_line_and_answers_507(tiny_disk):
    from fastapi.testclient import TestClient

    from replyrl.serve.app import create_app
    from replyrl.serve.fakes import fake_suggester

    log = FeedbackLog(tiny_disk / "feedback.jsonl")
    statuses = []
    with TestClient(create_app(fake_suggester(), log)) as client:
        for i in range(200):  # ~3 kB per pick: the 64 kB disk fills after ~20
            answer = client.post(
                "/api/suggest", json={"tweet": f"tweet {i} " + "t" * 1500, "k": 2, "seed": i}
            ).json()
            r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 0})
            statuses.append(r.status_code)
            if r.status_code != 200:
                assert r.status_code == 507 and "is full" in r.json()["detail"]
                break
        assert statuses[-1] == 507 and set(statuses[:-1]) == {200}
        raw = log.path.read_bytes()
        assert raw.endswith(b"\n")
        rows = [json.loads(x) for x in raw.decode().splitlines()]  # every line whole
        assert len(rows) == len(statuses) - 1
        # Space comes back: the same pick goes through, on its own line.
        log.path.write_bytes(b"".join(line + b"\n" for line in raw.splitlines()[:5]))
        r = client.post("/api/feedback", json={"id": answer["id"], "chosen": 0})
        assert r.status_code == 200
    rows = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["suggestion_id"] == answer["id"]


def test_an_unwritable_path_is_a_feedback_error_not_a_crash(tmp_path):
    from replyrl.serve.feedback import FeedbackWriteError

    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(FeedbackWriteError, match="could not write .*dir.jsonl"):
        FeedbackLog(tmp_path / "dir.jsonl").append([_row(0)])
