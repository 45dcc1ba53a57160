"""Atomic writes: the file appears whole (temp + rename), readable by others, no temp left behind."""

import json
import os
import stat

import pytest

from replyrl.io import atomic_write_json, atomic_write_text, read_jsonl, write_jsonl


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["a.json"]
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")
    with pytest.raises(TypeError):
        atomic_write_json(p, {"x": object()})
    assert p.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_jsonl_roundtrip(tmp_path):
    rows = [{"a": 1}, {"b": "é"}]
    write_jsonl(tmp_path / "r.jsonl", rows)
    assert list(read_jsonl(tmp_path / "r.jsonl")) == rows
