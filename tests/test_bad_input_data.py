"""Bad data files: rows that must be refused with file, line, field and value, and files the
loader must report as one clear error (never a traceback, never accepted silently).

Rows are tried through `load_records` (JSONL and CSV) and, for a sample, `replyrl data validate`
and `replyrl data import`; with `--skip-invalid` the bad row must land in the rejects file.
"""

from __future__ import annotations

import csv
import errno
import json

import pytest
from bad_input import assert_one_line_error, cli
from hypothesis import given, settings
from hypothesis import strategies as st

from replyrl.data.importers import import_csv, import_xapi
from replyrl.records import MAX_TEXT_CHARS, DataError, is_blank, load_records, parse_row

GOOD = {"tweet_id": "t1", "tweet": "What a game", "reply": "Great finish!", "reply_likes": 3}
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c\u200d",  # zero-width non-joiner, joiner
    "\ufeff",  # byte-order mark
    "\u2060",  # word joiner
    "\u00ad",  # soft hyphen
    "\u3164",  # Hangul filler
    "\u2800",  # braille blank
    "\u115f\u1160",  # Hangul choseong/jungseong fillers
    "\ufe0f",  # variation selector
    "\x00",  # NUL
    "\x07\x08",  # bell, backspace
    "\x1b\x7f",  # escape, delete
    "\u202e",  # right-to-left override
    " \u200b \t\u2028\u2029 ",  # spaces, line/paragraph separators
    "\u180e",  # Mongolian vowel separator
]


def _jsonl(tmp_path, row, raw: str | None = None):
    f = tmp_path / "recs.jsonl"
    f.write_text((raw if raw is not None else json.dumps(row)) + "\n", encoding="utf-8")
    return f


def _refused(tmp_path, row, field, raw=None):
    f = _jsonl(tmp_path, row, raw)
    with pytest.raises(DataError) as e:
        load_records(f)
    (err,) = e.value.errors
    assert (err.file, err.line, err.field) == (str(f), 1, field), err
    res = load_records(f, skip_invalid=True)
    assert res.records == [] and len(res.rejected_lines) == 1
    return err


@pytest.mark.parametrize("text", INVISIBLE, ids=[repr(t) for t in INVISIBLE])
@pytest.mark.parametrize("field", ["tweet", "reply", "tweet_id"])
def test_invisible_text_counts_as_empty(tmp_path, field, text):
    err = _refused(tmp_path, {**GOOD, field: text}, field)
    assert "empty" in err.reason


@pytest.mark.parametrize("text", ["a\u200b", "\u200bhi", "🙂", "\u0301e", "ok\x07"])
def test_visible_text_with_invisible_parts_is_kept(tmp_path, text):
    assert not is_blank(text)
    (rec,) = load_records(_jsonl(tmp_path, {**GOOD, "reply": text})).records
    assert rec.reply == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("".join(INVISIBLE) + " \t\n\r\x0b\x0c\u3000"), min_size=1))
def test_generated_invisible_text_is_empty(text):
    _, errs = parse_row({**GOOD, "reply": text}, "f.jsonl", 1)
    assert [e.field for e in errs] == ["reply"] and "empty" in errs[0].reason


COUNTS = {
    "fullwidth digits": ("１２", "non-ASCII digits"),
    "arabic-indic digits": ("٣", "non-ASCII digits"),
    "devanagari digits": ("४२", "non-ASCII digits"),
    "mixed digits": ("1２", "non-ASCII digits"),
    "bengali digit": ("৫", "non-ASCII digits"),
    "underscore": ("1_000", "underscore"),
    "underscore float": ("1_0.5", "underscore"),
    "leading underscore": ("_5", "underscore"),
    "superscript": ("²", "non-ASCII digits"),
    "roman numeral": ("Ⅻ", "text"),
    "hex": ("0x10", "text"),
    "words": ("ten", "text"),
    "comma thousands": ("1,000", "text"),
    "nan text": ("nan", "not finite"),
    "inf text": ("inf", "not finite"),
    "negative": ("-3", ">= 0"),
    "fraction": ("2.5", "fraction"),
    "too large": ("1e13", "implausibly large"),
}


@pytest.mark.parametrize("value,needle", COUNTS.values(), ids=COUNTS.keys())
@pytest.mark.parametrize("field", ["reply_likes", "tweet_likes"])
def test_counts_written_oddly_are_refused(tmp_path, field, value, needle):
    err = _refused(tmp_path, {**GOOD, field: value}, field)
    assert needle in err.reason, err


@pytest.mark.parametrize(
    "value", ["１２", "1_000", "٣.٥", "1e1_0", "NaN", "-inf"], ids=lambda v: repr(v)
)
def test_odd_numbers_in_reply_time(tmp_path, value):
    _refused(tmp_path, {**GOOD, "reply_time_diff_seconds": value}, "reply_time_diff_seconds")


@pytest.mark.parametrize("value", [" 12 ", "+4", "7.0", "1e3"])
def test_plain_ascii_counts_still_load(tmp_path, value):
    (rec,) = load_records(_jsonl(tmp_path, {**GOOD, "reply_likes": value})).records
    assert rec.reply_likes == int(float(value))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=6))
def test_generated_count_text_is_a_count_or_an_error(text):
    rec, errs = parse_row({**GOOD, "reply_likes": text}, "f.jsonl", 1)
    if rec is not None:  # accepted: it was written with ASCII digits only
        assert text.strip().isascii() and "_" not in text
        assert rec.reply_likes == int(float(text.strip()))
    else:
        assert [e.field for e in errs] == ["reply_likes"]


ID_VALUES = {
    "NaN": ("NaN", None),
    "Infinity": ("Infinity", None),
    "-Infinity": ("-Infinity", None),
    "nan text": ('"nan"', None),
    "NaN text": ('"NaN"', None),
    "inf text": ('"inf"', None),
    "null text": ('"null"', None),
    "None text": ('"None"', None),
}


@pytest.mark.parametrize("raw,_", ID_VALUES.values(), ids=ID_VALUES.keys())
@pytest.mark.parametrize("field", ["tweet_id", "reply_id"])
def test_nan_and_inf_in_id_fields(tmp_path, field, raw, _):
    line = json.dumps({**GOOD, field: "X"}).replace('"X"', raw)
    _refused(tmp_path, None, field, raw=line)


@pytest.mark.parametrize("field", ["tweet", "reply", "tweet_id", "reply_author", "note"])
def test_text_over_the_cap(tmp_path, field):
    err = _refused(tmp_path, {**GOOD, field: "x" * (MAX_TEXT_CHARS + 1)}, field)
    assert f"{MAX_TEXT_CHARS:,}" in err.reason


def test_text_at_the_cap_loads(tmp_path):
    (rec,) = load_records(_jsonl(tmp_path, {**GOOD, "reply": "y" * MAX_TEXT_CHARS})).records
    assert len(rec.reply) == MAX_TEXT_CHARS


# --- CSV ----------------------------------------------------------------------------------------

DUP_HEADERS = {
    "reply twice": "tweet_id,tweet,reply,reply,reply_likes\nt,a,b,c,1\n",
    "likes twice": "tweet_id,tweet,reply,reply_likes,reply_likes\nt,a,b,1,2\n",
    "extra twice": "tweet_id,tweet,reply,reply_likes,x,x\nt,a,b,1,2,3\n",
    "space padded": "tweet_id,tweet, tweet ,reply,reply_likes\nt,a,b,c,1\n",
}


@pytest.mark.parametrize("text", DUP_HEADERS.values(), ids=DUP_HEADERS.keys())
def test_repeated_csv_columns_are_refused(tmp_path, text):
    f = tmp_path / "recs.csv"
    f.write_text(text)
    with pytest.raises(DataError, match="repeats column"):
        load_records(f)
    res = load_records(f, skip_invalid=True)
    assert res.records == [] and len(res.rejected_lines) == 2  # header and row: nothing kept
    with pytest.raises(DataError, match="more than once"):
        import_csv(f)


def test_repeated_column_after_mapping(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("tweet_id,tweet,reply,likes,reply_likes\nt,a,b,1,2\n")
    with pytest.raises(DataError, match="after --map renaming"):
        import_csv(f, {"likes": "reply_likes"})
    r = cli(
        "data",
        "import",
        "--format",
        "csv",
        f,
        "--out",
        tmp_path / "o.jsonl",
        "--map",
        "likes=reply_likes",
    )
    assert_one_line_error(r, str(f), "reply_likes", "more than once")


HUGE = 200_000  # over the csv module's 131,072-character field limit


@pytest.mark.parametrize("quoted", [False, True])
@pytest.mark.parametrize("where", ["reply", "extra"])
def test_csv_cell_over_the_field_limit(tmp_path, quoted, where):
    cell = ('"' + "a\n" * (HUGE // 2) + '"') if quoted else "a" * HUGE
    f = tmp_path / "recs.csv"
    reply, extra = (cell, "x") if where == "reply" else ("fine", cell)
    f.write_text(
        f"tweet_id,tweet,reply,reply_likes,note\nt1,hi,ok,1,x\nt2,hi,{reply},1,{extra}\n"
        "t3,hi,yes,2,x\n"
    )
    with pytest.raises(DataError, match="cap") as e:
        load_records(f)
    assert e.value.errors[0].line == 3
    res = load_records(f, skip_invalid=True)
    assert [r.tweet_id for r in res.records] == ["t1", "t3"] and len(res.rejected_lines) == 1
    with pytest.raises(DataError, match="cap"):
        import_csv(f)
    imp = import_csv(f, skip_invalid=True)
    assert [r.tweet_id for r in imp.result.records] == ["t1", "t3"]
    assert csv.field_size_limit() == 131072  # the loader restores the module's limit


def test_csv_cell_over_the_limit_through_the_cli(tmp_path):
    f = tmp_path / "recs.csv"
    f.write_text(f"tweet_id,tweet,reply,reply_likes\nt1,hi,{'a' * HUGE},1\nt2,hi,ok,1\n")
    assert_one_line_error(cli("data", "validate", f), f"{f}:2", "reply", "cap")
    r = cli("data", "validate", f, "--skip-invalid", "--rejects", tmp_path / "rej")
    assert r.exit_code == 0, r.output
    assert "1 valid records, 1 rejected" in r.output


# --- JSONL rows through the CLI -------------------------------------------------------------------

CLI_ROWS = {
    "zero-width reply": ({**GOOD, "reply": "\u200b\u200b"}, "reply"),
    "control tweet": ({**GOOD, "tweet": "\x01\x02"}, "tweet"),
    "fullwidth likes": ({**GOOD, "reply_likes": "５"}, "reply_likes"),
    "underscore likes": ({**GOOD, "reply_likes": "1_0"}, "reply_likes"),
    "long reply": ({**GOOD, "reply": "z" * (MAX_TEXT_CHARS + 5)}, "reply"),
    "nan id text": ({**GOOD, "reply_id": "NaN"}, "reply_id"),
    "NUL in reply": ({**GOOD, "reply": "great\x00 game"}, "reply"),
    "float reply_id": ({**GOOD, "reply_id": 1.2345678901234567e19}, "reply_id"),
    "nested duplicate key": (None, "meta"),
}


NESTED_DUPLICATE = json.dumps(GOOD)[:-1] + ', "meta": {"a": 1, "a": 2}}'


@pytest.mark.parametrize("row,field", CLI_ROWS.values(), ids=CLI_ROWS.keys())
def test_bad_rows_through_the_cli(tmp_path, row, field):
    if row is None:
        row = json.loads(NESTED_DUPLICATE)  # what json keeps; the file holds both keys
        f = _jsonl(tmp_path, None, raw=NESTED_DUPLICATE)
        assert_one_line_error(cli("data", "validate", f), f"{f}:1", f"field '{field}'", "'a'")
        return
    f = _jsonl(tmp_path, row)
    assert_one_line_error(cli("data", "validate", f), f"{f}:1", f"field '{field}'", "value:")
    rej = tmp_path / "rej.jsonl"
    good = json.dumps(GOOD) + "\n"
    f.write_text(good + json.dumps(row) + "\n")
    r = cli("data", "validate", f, "--skip-invalid", "--rejects", rej)
    assert r.exit_code == 0 and "1 valid records, 1 rejected" in r.output, r.output
    assert json.loads(rej.read_text()) == row


def test_xapi_bad_metrics_and_deep_json(tmp_path):
    x = {
        "data": [
            {
                "id": "2",
                "text": "hi",
                "public_metrics": [1, 2],
                "referenced_tweets": [{"type": "replied_to", "id": "1"}],
            }
        ],
        "includes": {"tweets": [{"id": "1", "text": "root", "public_metrics": "x"}]},
    }
    f = tmp_path / "x.json"
    f.write_text(json.dumps(x))
    with pytest.raises(DataError, match="reply_likes"):
        import_xapi(f)
    f.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested too deeply"):
        import_xapi(f)


# --- files the loader cannot use --------------------------------------------------------------------


def test_a_folder_as_data(tmp_path):
    assert_one_line_error(cli("data", "validate", tmp_path), str(tmp_path), "is a folder")
    assert_one_line_error(cli("data", "stats", tmp_path), "is a folder")


def test_rejects_pointing_at_a_folder(tmp_path):
    f = tmp_path / "recs.jsonl"
    f.write_text(json.dumps(GOOD) + "\n{oops\n")
    out = tmp_path / "rejdir"
    out.mkdir()
    r = cli("data", "validate", f, "--skip-invalid", "--rejects", out)
    assert_one_line_error(r, str(out), "folder")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS])
def test_rejects_on_a_full_or_refusing_disk(tmp_path, monkeypatch, code):
    import replyrl.io

    f = tmp_path / "recs.jsonl"
    f.write_text(json.dumps(GOOD) + "\n{oops\n")
    rej = tmp_path / "rej.jsonl"

    def refuse(fd):
        raise OSError(code, "refused")

    monkeypatch.setattr(replyrl.io.os, "fsync", refuse)
    r = cli("data", "validate", f, "--skip-invalid", "--rejects", rej)
    hint = {
        errno.ENOSPC: "disk is full",
        errno.EDQUOT: "quota",
        errno.EACCES: "permission",
        errno.EROFS: "read-only",
    }[code]
    assert_one_line_error(r, str(rej), hint)
    assert not rej.exists() and [p.name for p in tmp_path.iterdir()] == ["recs.jsonl"]


def test_import_out_is_a_folder(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("tweet_id,tweet,reply,reply_likes\nt,a,b,1\n")
    r = cli("data", "import", "--format", "csv", f, "--out", tmp_path)
    assert_one_line_error(r, str(tmp_path), "folder")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--format", "yaml"], "--format must be xapi or csv"),
        (["--format", "csv", "--map", "nonsense"], "--map expects"),
        (["--format", "csv", "--map", "a=notafield"], "not a record field"),
        (["--format", "xapi", "--map", "a=reply"], "--map applies to --format csv only"),
    ],
)
def test_import_arguments(tmp_path, args, needle):
    f = tmp_path / "in.csv"
    f.write_text("a,tweet_id,tweet,reply,reply_likes\n1,t,a,b,1\n")
    assert_one_line_error(cli("data", "import", f, "--out", tmp_path / "o.jsonl", *args), needle)


def test_bad_label_and_ratio(tmp_path):
    f = _jsonl(tmp_path, GOOD)
    assert_one_line_error(cli("data", "stats", f, "--label", "nope"), "--label", "nope")
    r = cli("data", "pairs", f, "--out", tmp_path / "p.jsonl", "--ratio", "nan")
    assert_one_line_error(r, "ratio", "nan")
    r = cli("data", "split", f, "--out", tmp_path / "s", "--sft", "nan")
    assert_one_line_error(r, "sft", "nan")


PAIR = {"tweet_id": "t", "tweet": "a tweet", "chosen": "good reply", "rejected": "bad reply"}


@pytest.mark.parametrize(
    "field,value",
    [
        ("chosen", "\u200b\u200b"),
        ("rejected", "\x00"),
        ("tweet", "\u3164"),
        ("chosen", "c" * (MAX_TEXT_CHARS + 1)),
    ],
    ids=["zero-width chosen", "NUL rejected", "filler tweet", "long chosen"],
)
def test_bad_preference_pairs(tmp_path, field, value):
    from replyrl.data.pairs import read_pairs

    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps(PAIR) + "\n" + json.dumps({**PAIR, field: value}) + "\n")
    with pytest.raises(DataError) as e:
        read_pairs(f)
    (err,) = e.value.errors
    assert (err.line, err.field) == (2, field)


# --- issue 26: NUL in text, floats in optional id fields, duplicate keys below the top level,
# symbolic link loops


@pytest.mark.parametrize("field", ["tweet", "reply", "tweet_id", "reply_id", "reply_author"])
@pytest.mark.parametrize("text", ["a\x00b", "\x00hi", "hi\x00"], ids=["inside", "first", "last"])
def test_nul_inside_text_is_refused(tmp_path, field, text):
    err = _refused(tmp_path, {**GOOD, field: text}, field)
    assert "NUL" in err.reason and err.value == text


def test_nul_inside_a_csv_reply_is_refused(tmp_path):
    f = tmp_path / "r.csv"
    f.write_bytes(b"tweet_id,tweet,reply,reply_likes\nt1,hi,ok\x00 then,1\nt2,yo,fine,2\n")
    with pytest.raises(DataError) as e:
        load_records(f)
    (err,) = e.value.errors
    assert (err.line, err.field, err.value) == (2, "reply", "ok\x00 then") and "NUL" in err.reason
    res = load_records(f, skip_invalid=True)
    assert [r.tweet_id for r in res.records] == ["t2"] and len(res.rejected_lines) == 1
    assert_one_line_error(cli("data", "validate", f), f"{f}:2", "field 'reply'", "NUL")


OPTIONAL_IDS = ["reply_id", "tweet_author", "reply_author", "created_at"]


@pytest.mark.parametrize("field", OPTIONAL_IDS)
@pytest.mark.parametrize("raw", ["1.5", "12345678901234567890.0", "1e20", "1E3", "-0.0", "7.0"])
def test_floats_in_optional_id_fields_are_refused(tmp_path, field, raw):
    line = json.dumps({**GOOD, field: "X"}).replace('"X"', raw)
    err = _refused(tmp_path, None, field, raw=line)
    assert "write the value as a string" in err.reason


@pytest.mark.parametrize("field", OPTIONAL_IDS)
@pytest.mark.parametrize("raw", ["123456789012345678901234567890", "-7", "0", '"1.5e20"'])
def test_integers_and_strings_in_optional_id_fields_are_kept_exactly(tmp_path, field, raw):
    line = json.dumps({**GOOD, field: "X"}).replace('"X"', raw)
    (rec,) = load_records(_jsonl(tmp_path, None, raw=line)).records
    assert getattr(rec, field) == raw.strip('"')


@pytest.mark.parametrize(
    "extra",
    [
        '{"a": 1, "a": 2}',
        '[{"k": "x", "k": "y"}]',
        '{"deep": {"deeper": [1, {"z": 0, "z": 0}]}}',
    ],
    ids=["object", "object in a list", "deeper"],
)
def test_duplicate_keys_nested_in_an_unknown_field_are_refused(tmp_path, extra):
    line = json.dumps(GOOD)[:-1] + f', "meta": {extra}}}'
    err = _refused(tmp_path, None, "meta", raw=line)
    assert "more than once" in err.reason


def test_nested_objects_without_duplicates_pass_through(tmp_path):
    row = {**GOOD, "meta": {"a": 1, "b": [{"a": 2}, {"a": 3}]}}
    (rec,) = load_records(_jsonl(tmp_path, row)).records
    assert rec.extra == {"meta": row["meta"]}


def test_symlink_loop_is_named_as_such(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.symlink_to(b)
    b.symlink_to(a)
    from replyrl.errors import ArtifactNotFoundError

    with pytest.raises(ArtifactNotFoundError, match="symbolic link loop"):
        load_records(a)
    line = assert_one_line_error(cli("data", "validate", a), str(a), "symbolic link loop")
    assert "not found" not in line
    self_loop = tmp_path / "self.jsonl"
    self_loop.symlink_to(self_loop)
    assert_one_line_error(cli("data", "stats", self_loop), "symbolic link loop")


def test_link_to_nothing_names_its_target(tmp_path):
    link = tmp_path / "data.jsonl"
    link.symlink_to(tmp_path / "gone.jsonl")
    assert_one_line_error(cli("data", "validate", link), str(link), "gone.jsonl", "does not exist")


def test_symlink_loop_as_a_config_or_pairs_file(tmp_path):
    loop = tmp_path / "c.yaml"
    loop.symlink_to(loop)
    from replyrl.config import ConfigError, load_yaml
    from replyrl.data.pairs import read_pairs

    with pytest.raises(ConfigError, match="symbolic link loop"):
        load_yaml(loop)
    with pytest.raises(Exception, match="symbolic link loop"):
        read_pairs(loop)
