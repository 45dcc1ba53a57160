"""CLI smoke runs of `replyrl data ...` through typer's CliRunner (in process, tiny inputs)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_file
from typer.testing import CliRunner

from replyrl.cli import app
from replyrl.data.pairs import read_pairs
from replyrl.records import Record, load_records, write_records

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["data", *map(str, args)])


@pytest.fixture()
def records_file(tmp_path):
    recs = [
        Record(
            tweet_id=f"t{i}",
            tweet=f"tweet number {i}",
            reply=f"reply {j} to {i}",
            reply_likes=(i * 3 + j * 5) % 17,
            tweet_likes=i * 10,
            reply_time_diff_seconds=float(60 * (j + 1)),
        )
        for i in range(40)
        for j in range(4)
    ]
    return write_records(tmp_path / "recs.jsonl", recs)


def test_validate_ok_and_errors(tmp_path, records_file):
    r = run("validate", records_file)
    assert r.exit_code == 0, r.output
    assert "160 valid records, 0 rejected" in r.output
    bad = tmp_path / "bad.jsonl"
    lines = records_file.read_bytes().splitlines(keepends=True)[:3]
    bad.write_bytes(
        lines[0]
        + b'{"tweet_id": "x", "tweet": "t", "reply": "r", "reply_likes": -1}\n'
        + lines[1]
        + b"{oops\n"
        + lines[2]
    )
    r = run("validate", bad)
    assert r.exit_code == 2
    assert f"{bad}:2: field 'reply_likes' count must be >= 0" in r.output
    assert f"{bad}:4:" in r.output and "not valid JSON" in r.output
    rej = tmp_path / "rej.jsonl"
    r = run("validate", bad, "--skip-invalid", "--rejects", rej)
    assert r.exit_code == 0, r.output
    assert "3 valid records, 2 rejected" in r.output
    assert rej.read_bytes() == (
        b'{"tweet_id": "x", "tweet": "t", "reply": "r", "reply_likes": -1}\n{oops\n'
    )


def test_missing_file_is_a_clean_error(tmp_path):
    r = run("validate", tmp_path / "nope.jsonl")
    assert r.exit_code == 2 and "not found" in r.output


def test_split_twice_byte_identical(tmp_path, records_file):
    for d in ("a", "b"):
        r = run("split", records_file, "--out", tmp_path / d, "--seed", "7")
        assert r.exit_code == 0, r.output
    assert "sft" in r.output and "Q4" in r.output
    for name in ("sft.jsonl", "rl.jsonl", "gold.jsonl", "test.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["seed"] == 7 and sum(s["tweets"] for s in man["splits"].values()) == 40
    r = run("split", records_file, "--out", tmp_path / "c", "--sft", "0.9")
    assert r.exit_code == 2 and "sum to 1" in r.output


def test_pairs_and_stats(tmp_path, records_file):
    out = tmp_path / "pairs.jsonl"
    r = run("pairs", records_file, "--out", out, "--ratio", "2", "--max-per-tweet", "2")
    assert r.exit_code == 0, r.output
    pairs = read_pairs(out)
    assert pairs and f"wrote {len(pairs)} pairs" in r.output
    assert max(sum(p.tweet_id == t for p in pairs) for t in {p.tweet_id for p in pairs}) <= 2
    r = run("stats", records_file, "--label", "residual")
    assert r.exit_code == 0, r.output
    assert "variance explained by context" in r.output and "tweets" in r.output
    r = run("stats", records_file, "--label", "nope")
    assert r.exit_code == 2


def test_import_csv_and_xapi(tmp_path):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("pid,post,comment,likes\np1,Hello,Hi!,3\np1,Hello,Yo,0\n")
    out = tmp_path / "out.jsonl"
    r = run(
        "import",
        "--format",
        "csv",
        csv_path,
        "--out",
        out,
        "--map",
        "pid=tweet_id",
        "--map",
        "post=tweet",
        "--map",
        "comment=reply",
        "--map",
        "likes=reply_likes",
    )
    assert r.exit_code == 0, r.output
    assert [x.reply for x in load_records(out).records] == ["Hi!", "Yo"]
    x = {
        "data": [
            {
                "id": "2",
                "text": "reply!",
                "author_id": "u",
                "referenced_tweets": [{"type": "replied_to", "id": "1"}],
                "public_metrics": {"like_count": 4, "retweet_count": 0},
            }
        ],
        "includes": {"tweets": [{"id": "1", "text": "root", "public_metrics": {"like_count": 9}}]},
    }
    xp = tmp_path / "x.json"
    xp.write_text(json.dumps(x))
    r = run("import", "--format", "xapi", xp, "--out", out)
    assert r.exit_code == 0, r.output
    (rec,) = load_records(out).records
    assert (rec.tweet_id, rec.tweet, rec.reply, rec.reply_likes, rec.tweet_likes) == (
        "1",
        "root",
        "reply!",
        4,
        9,
    )
    r = run("import", "--format", "yaml", xp, "--out", out)
    assert r.exit_code == 2


def test_synth_cli(tmp_path, encoder):  # the encoder fixture warms the per-process model cache
    out = tmp_path / "s.jsonl"
    r = run("synth", "--out", out, "--tweets", "6", "--seed", "1")
    assert r.exit_code == 0, r.output
    recs = load_records(out).records
    assert len({x.tweet_id for x in recs}) == 6
    assert all(x.extra["source"] == "synthetic" for x in recs)


def test_validate_seed5k_reports_5000_valid():
    r = run("validate", shared_file("seed5k.jsonl"))
    assert r.exit_code == 0, r.output
    assert "5,000 valid records, 0 rejected" in r.output


def test_stats_residual_on_pool_prints_variance_explained():
    r = run("stats", shared_file("pool.jsonl"), "--label", "residual")
    assert r.exit_code == 0, r.output
    assert "variance explained by context" in r.output
