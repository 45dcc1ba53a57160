"""Acceptance test of the record loader (issue 2): every kind of broken row gets its own error
with the right line number and field; --skip-invalid keeps exactly the good rows and writes
exactly the bad lines, verbatim, to the rejects file."""

from __future__ import annotations

import gzip
import json

import pytest

from replyrl.records import DataError, load_records, write_records, write_rejects


def good(i: int) -> bytes:
    return json.dumps(
        {
            "tweet_id": f"g{i}",
            "tweet": "a tweet",
            "reply": f"good reply {i}",
            "reply_likes": i,
            "keep_me": {"nested": [1, "x"]},
        }
    ).encode()


def row(**kw) -> bytes:
    base = {"tweet_id": "b", "tweet": "a tweet", "reply": "bad reply", "reply_likes": 1}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# (raw line, expected [(field, reason substring)]) — one entry per kind of broken row
BROKEN: list[tuple[bytes, list[tuple[str | None, str]]]] = [
    (row(tweet_id=...), [("tweet_id", "missing required field")]),
    (row(tweet=...), [("tweet", "missing required field")]),
    (row(reply=...), [("reply", "missing required field")]),
    (row(reply_likes=...), [("reply_likes", "missing required field")]),
    (row(tweet_id=None), [("tweet_id", "required field is null")]),
    (row(reply_likes=None), [("reply_likes", "required field is empty")]),
    (row(reply_likes=""), [("reply_likes", "required field is empty")]),
    (row(tweet=""), [("tweet", "empty text")]),
    (row(reply="  \n\t "), [("reply", "empty text")]),
    (row(tweet_id=["x"]), [("tweet_id", "expected a string, got array")]),
    (row(tweet_id=True), [("tweet_id", "expected a string, got boolean")]),
    (row(tweet=42), [("tweet", "expected a string, got number")]),
    (row(reply={"text": "hi"}), [("reply", "expected a string, got object")]),
    (row(reply_likes=-1), [("reply_likes", "count must be >= 0")]),
    (row(reply_likes=2.5), [("reply_likes", "got a fraction")]),
    (row(reply_likes="many"), [("reply_likes", "got text")]),
    (row(reply_likes=True), [("reply_likes", "got a boolean")]),
    (row(reply_likes=10**30), [("reply_likes", "implausibly large")]),
    (row(reply_likes=1e300), [("reply_likes", "implausibly large")]),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": NaN}',
        [("reply_likes", "not finite")],
    ),
    (row(reply_retweets=-2), [("reply_retweets", "count must be >= 0")]),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1, "tweet_likes": Infinity}',
        [("tweet_likes", "not finite")],
    ),
    (row(tweet_likes=[3]), [("tweet_likes", "got array")]),
    (row(reply_author_followers=-5), [("reply_author_followers", "count must be >= 0")]),
    (row(reply_time_diff_seconds=-1.5), [("reply_time_diff_seconds", "must be >= 0")]),
    (row(reply_time_diff_seconds="soon"), [("reply_time_diff_seconds", "got text")]),
    (row(reply_time_diff_seconds=1e300), [("reply_time_diff_seconds", "implausibly large")]),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1, '
        b'"reply_time_diff_seconds": -Infinity}',
        [("reply_time_diff_seconds", "not finite")],
    ),
    (row(reply_id=["x"]), [("reply_id", "expected a string, got array")]),
    (row(created_at={"d": 1}), [("created_at", "expected a string, got object")]),
    (b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_li', [(None, "not valid JSON")]),
    (b"[1, 2]", [(None, "row is a JSON array")]),
    (b'"just a string"', [(None, "row is a JSON string")]),
    (b"null", [(None, "row is a JSON null")]),
    (b"42", [(None, "row is a JSON number")]),
    (
        b'{"tweet_id": "b", "tweet": "caf\xe9", "reply": "r", "reply_likes": 1}',
        [(None, "invalid UTF-8 at byte 31")],
    ),
    (
        b'\xef\xbb\xbf{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1}',
        [(None, "not valid JSON")],
    ),  # a BOM is only harmless at the start of the file
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1, "reply_likes": -1}',
        [("reply_likes", "more than once"), ("reply_likes", "count must be >= 0")],
    ),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "hi \\ud83d", "reply_likes": 1}',
        [("reply", "lone surrogate")],
    ),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1, "score": NaN}',
        [("score", "non-finite number")],
    ),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": 1, "meta": {"x": [Infinity]}}',
        [("meta", "non-finite number")],
    ),
    (b"[" * 100_000 + b"]" * 100_000, [(None, "nested too deeply")]),
    (
        b'{"tweet_id": "b", "tweet": "t", "reply": "r", "reply_likes": ' + b"9" * 5000 + b"}",
        [(None, "not valid JSON")],
    ),
    (row() + b" trailing", [(None, "not valid JSON")]),
    (row() + row(), [(None, "not valid JSON")]),
    (
        b'{"tweet_id": "b\x00", "tweet": "t", "reply": "r", "reply_likes": 1}',
        [(None, "not valid JSON")],
    ),
    (
        b"{}",
        [
            ("tweet_id", "missing"),
            ("tweet", "missing"),
            ("reply", "missing"),
            ("reply_likes", "missing"),
        ],
    ),
]


@pytest.fixture()
def broken_file(tmp_path):
    """A JSONL file: a BOM'd good first line, then good and broken rows interleaved."""
    lines, bad_lines, expected, good_replies = [], [], {}, []
    lines.append(b"\xef\xbb\xbf" + good(0) + b"\n")
    good_replies.append("good reply 0")
    for k, (raw, errs) in enumerate(BROKEN, start=1):
        lines.append(raw + b"\n")
        bad_lines.append(raw + b"\n")
        expected[len(lines)] = errs
        lines.append(good(k) + b"\r\n")  # CRLF line endings are fine too
        good_replies.append(f"good reply {k}")
        if k % 10 == 0:
            lines.append(b"   \n")  # blank lines are not rows
    lines.append(good(0))  # duplicate of line 1 (same tweet_id and reply), no final newline
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"".join(lines))
    return path, bad_lines, expected, good_replies


def test_at_least_30_kinds():
    assert len(BROKEN) >= 30


def test_each_broken_row_gets_its_own_error(broken_file):
    path, _, expected, _ = broken_file
    with pytest.raises(DataError) as e:
        load_records(path, max_errors=1000)
    errs = e.value.errors
    assert e.value.total == len(errs) == sum(len(v) for v in expected.values())
    got: dict[int, list[tuple[str | None, str]]] = {}
    for x in errs:
        got.setdefault(x.line, []).append((x.field, x.reason))
        assert x.file == str(path)
    assert sorted(got) == sorted(expected)
    for line, exp in expected.items():
        assert len(got[line]) == len(exp), (line, got[line])
        for (gf, gr), (ef, er) in zip(got[line], exp):
            assert gf == ef and er in gr, (line, got[line], exp)
    text = str(e.value)
    assert f"{path}:2: field 'tweet_id' missing required field" in text
    assert "--skip-invalid" in text


def test_error_cap_in_message(broken_file):
    with pytest.raises(DataError) as e:
        load_records(broken_file[0], max_errors=5)
    assert len(e.value.errors) == 5 and "... and" in str(e.value)


def test_skip_invalid_keeps_exactly_good_rows_and_rejects_bad_lines(broken_file, tmp_path):
    path, bad_lines, _, good_replies = broken_file
    res = load_records(path, skip_invalid=True)
    assert [r.reply for r in res.records] == good_replies
    assert res.duplicates == 1
    assert res.n_rows == len(good_replies) + len(bad_lines) + 1
    assert res.rejected_lines == bad_lines
    rej = write_rejects(tmp_path / "rejects.jsonl", res.rejected_lines)
    assert rej.read_bytes() == b"".join(bad_lines)
    assert res.records[0].extra == {"keep_me": {"nested": [1, "x"]}}  # unknown fields kept
    out = write_records(tmp_path / "clean.jsonl", res.records)
    assert load_records(out).records == res.records


def test_csv_rules(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes(
        b"\xef\xbb\xbftweet_id,tweet,reply,reply_likes,reply_time_diff_seconds,lang\n"
        b"t1,hello,hi,3,12.5,en\n"  # 2 good
        b't1,hello,"multi\nline, reply",0,,en\n'  # 3-4 good (quoted newline)
        b"t2,hello,hey,-4,,en\n"  # 5 negative count
        b"t2,hello,short row\n"  # 6 missing cells
        b"t2,hello,yo,1,,en,extra\n"  # 7 too many cells
        b"t3,caf\xe9,ok,1,,en\n"  # 8 invalid UTF-8 in one cell
        b"t3,,empty tweet,1,,en\n"  # 9 empty text
        b"\n"
        b"t4,x,y,1,soon,en\n"  # 11 bad number
        b"t4,x,z,2,,en\n"
    )  # 12 good
    with pytest.raises(DataError) as e:
        load_records(p, max_errors=100)
    got = [(x.line, x.field) for x in e.value.errors]
    assert got == [
        (5, "reply_likes"),
        (6, None),
        (7, None),
        (8, "tweet"),
        (9, "tweet"),
        (11, "reply_time_diff_seconds"),
    ]
    res = load_records(p, skip_invalid=True)
    assert [r.reply for r in res.records] == ["hi", "multi\nline, reply", "z"]
    assert res.records[0].reply_time_diff_seconds == 12.5 and res.records[0].extra == {"lang": "en"}
    raw = p.read_bytes().splitlines(keepends=True)
    assert res.rejected_lines == [raw[i - 1] for i in (5, 6, 7, 8, 9, 11)]


def test_csv_missing_columns_rejects_every_line(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("tweet_id,tweet,reply\nt1,a,b\nt2,c,d\n")
    with pytest.raises(DataError) as e:
        load_records(p)
    got = [(x.line, x.field, x.reason) for x in e.value.errors]
    assert got[0] == (1, None, "CSV header lacks required column(s): reply_likes")
    assert got[1:] == [
        (2, "reply_likes", "missing required field"),
        (3, "reply_likes", "missing required field"),
    ]
    res = load_records(p, skip_invalid=True)
    assert res.records == [] and b"".join(res.rejected_lines) == p.read_bytes()


def test_gzip_roundtrip_and_corrupt_gzip(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    p.write_bytes(gzip.compress(good(1) + b"\n" + b"[1]\n"))
    res = load_records(p, skip_invalid=True)
    assert [r.reply for r in res.records] == ["good reply 1"] and res.rejected_lines == [b"[1]\n"]
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(good(1) * 50)[:40])
    with pytest.raises(DataError, match="cannot read file"):
        load_records(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_records(tmp_path / "nope.jsonl")
