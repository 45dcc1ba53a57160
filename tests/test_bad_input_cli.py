"""The CLI error boundary: every expected error is one `error:` line with exit code 2, `--debug`
shows its traceback, and bugs keep theirs; plus the command-line arguments that used to end in a
traceback (`train-seeds --seeds 0,x`, sampling options, output paths that are folders or files)."""

from __future__ import annotations

import json

import pytest
from bad_input import assert_one_line_error, cli

from replyrl.cli.train import parse_seeds
from replyrl.config import SEED_MAX, ConfigError
from replyrl.errors import InputError

ROW = {"tweet_id": "t1", "tweet": "What a game", "reply": "Great finish!", "reply_likes": 3}


@pytest.fixture()
def records(tmp_path):
    f = tmp_path / "recs.jsonl"
    f.write_text("".join(json.dumps({**ROW, "tweet_id": f"t{i}"}) + "\n" for i in range(8)))
    return f


@pytest.fixture()
def train_cfg(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text(f"recipe: sft\nname: r\noutput_dir: {tmp_path / 'runs'}\n")
    return f


def test_debug_shows_the_traceback(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: [1\n")
    assert_one_line_error(cli("train", "-c", f), "YAML syntax error")
    r = cli("--debug", "train", "-c", f)
    assert r.exit_code == 1 and isinstance(r.exception, ConfigError)


def test_a_bug_keeps_its_traceback(records, monkeypatch):
    import replyrl.records

    def broken(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(replyrl.records, "load_records", broken)
    r = cli("data", "validate", records)
    assert r.exit_code == 1 and isinstance(r.exception, RuntimeError)


def test_interrupt_exits_130(records, monkeypatch):
    import replyrl.records

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(replyrl.records, "load_records", interrupted)
    assert cli("data", "validate", records).exit_code == 130


BAD_SEEDS = ["0,x", "x", "", ",", "0,,1", "1.5", "-1", "0,0", str(SEED_MAX + 1), "٣", " ", "0;1"]


@pytest.mark.parametrize("seeds", BAD_SEEDS, ids=[repr(s) for s in BAD_SEEDS])
def test_train_seeds_with_bad_seeds(train_cfg, seeds):
    with pytest.raises(InputError, match="--seeds"):
        parse_seeds(seeds)
    assert_one_line_error(cli("train-seeds", "-c", train_cfg, "--seeds", seeds), "--seeds")


@pytest.mark.parametrize("seeds,want", [("0,1,2", [0, 1, 2]), (" 3 , 4", [3, 4]), ("7", [7])])
def test_train_seeds_parses_good_seeds(seeds, want):
    assert parse_seeds(seeds) == want


GENERATE_ARGS = {
    "temperature nan": (["--temperature", "nan"], "temperature"),
    "temperature zero": (["--temperature", "0"], "temperature"),
    "temperature negative": (["--temperature", "-1"], "temperature"),
    "temperature inf": (["--temperature", "inf"], "temperature"),
    "seed overflow": (["--seed", "99999999999999999999"], "seed"),
    "seed negative": (["--seed", "-1"], "seed"),
    "no replies": (["-n", "0"], "n must be"),
    "no tokens": (["--max-new-tokens", "0"], "max_new_tokens"),
}


@pytest.mark.parametrize("args,needle", GENERATE_ARGS.values(), ids=GENERATE_ARGS.keys())
def test_generate_options_fail_before_any_model_loads(args, needle, monkeypatch):
    import replyrl.models

    def no_model(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(replyrl.models, "load_policy", no_model)
    assert_one_line_error(cli("generate", "a tweet", *args), needle)


def test_output_that_is_a_folder(tmp_path, records):
    folder = tmp_path / "out"
    folder.mkdir()
    assert_one_line_error(cli("data", "pairs", records, "--out", folder), str(folder), "folder")
    assert_one_line_error(
        cli("data", "import", "--format", "csv", records, "--out", folder), "folder"
    )


def test_output_folder_that_is_a_file(tmp_path, records):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("data", "split", records, "--out", blocker)
    assert_one_line_error(r, str(blocker))
    assert blocker.read_text() == "x"
    r = cli("data", "pairs", records, "--out", blocker / "p.jsonl")
    assert_one_line_error(r, str(blocker))


def test_report_of_a_plain_file(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("x")
    assert_one_line_error(cli("report", f), "not an evaluation folder")


def test_evaluate_model_arguments(tmp_path, records):
    out = tmp_path / "o"
    assert_one_line_error(
        cli("evaluate", "--model", "=x", "--data", records, "--out", out), "NAME=PATH"
    )
    assert_one_line_error(
        cli("evaluate", "--model", "a=/no/such/dir", "--data", records, "--out", out),
        "path not found",
    )


def test_reward_score_with_a_missing_model(tmp_path):
    r = cli("reward", "score", "tweet", "reply", "--model", tmp_path / "nope")
    assert_one_line_error(r, "reward model folder not found")
