"""Corrupt or mismatched saved artifacts: reward-model folders, LoRA adapter folders, the
generation cache, evaluation results, and the judge and embedding caches.

A model folder that cannot be used is one error naming the file; a cache line that cannot be used
is reported (file and line) and computed again, and is never returned as a result.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from bad_input import assert_one_line_error, cli
from safetensors.torch import load_file, save_file

from replyrl.errors import ArtifactError, UserError
from replyrl.evaluation.generate_cache import EvalTweet, cached_generations
from replyrl.io import read_jsonl
from replyrl.rewards.learned import HeadConfig, RewardHead, RewardModel, load_reward_model

# --- reward-model folders ------------------------------------------------------------------------


@pytest.fixture()
def rm_dir(tmp_path):
    torch.manual_seed(0)
    head = RewardHead(HeadConfig(emb_dim=8, hidden=4))
    meta = {"score_mean": 0.1, "score_std": 1.0, "heuristic_mean": 0.5, "heuristic_std": 0.2}
    return RewardModel(head, meta=meta).save(tmp_path / "rm")


def _edit_config(d, fn):
    cfg = json.loads((d / "config.json").read_text())
    fn(cfg)
    (d / "config.json").write_text(json.dumps(cfg))


def _edit_tensors(d, fn):
    state = load_file(str(d / "head.safetensors"))
    fn(state)
    save_file(state, str(d / "head.safetensors"))


def _folder_instead(d, name):
    (d / name).unlink()
    (d / name).mkdir()


RM_CORRUPTIONS = {
    "no config.json": (lambda d: (d / "config.json").unlink(), "config.json"),
    "no head.safetensors": (lambda d: (d / "head.safetensors").unlink(), "head.safetensors"),
    "config.json is a folder": (lambda d: _folder_instead(d, "config.json"), "config.json"),
    "head is a folder": (lambda d: _folder_instead(d, "head.safetensors"), "head.safetensors"),
    "empty config": (lambda d: (d / "config.json").write_text(""), "config.json"),
    "garbled config": (lambda d: (d / "config.json").write_text('{"format": '), "config.json"),
    "config not UTF-8": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe{}"), "config.json"),
    "config is a list": (lambda d: (d / "config.json").write_text("[1]"), "config.json"),
    "wrong format": (lambda d: _edit_config(d, lambda c: c.update(format="x")), "format"),
    "version text": (lambda d: _edit_config(d, lambda c: c.update(version="1")), "version"),
    "newer version": (lambda d: _edit_config(d, lambda c: c.update(version=99)), "newer"),
    "no head section": (lambda d: _edit_config(d, lambda c: c.pop("head")), "head"),
    "head is a list": (lambda d: _edit_config(d, lambda c: c.update(head=[1])), "head"),
    "head emb_dim text": (
        lambda d: _edit_config(d, lambda c: c["head"].update(emb_dim="8")),
        "emb_dim",
    ),
    "head hidden 0": (lambda d: _edit_config(d, lambda c: c["head"].update(hidden=0)), "hidden"),
    "head unknown key": (lambda d: _edit_config(d, lambda c: c["head"].update(size=3)), "size"),
    "head dropout NaN": (
        lambda d: (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"dropout": 0.1', '"dropout": NaN')
        ),
        "dropout",
    ),
    "head unknown feature": (
        lambda d: _edit_config(d, lambda c: c["head"].update(extra_features=["colour"])),
        "colour",
    ),
    "encoder number": (lambda d: _edit_config(d, lambda c: c.update(encoder=5)), "encoder"),
    "meta is a list": (lambda d: _edit_config(d, lambda c: c.update(meta=[])), "meta"),
    "score_mean NaN": (
        lambda d: (d / "config.json").write_text(
            (d / "config.json").read_text().replace('"score_mean": 0.1', '"score_mean": NaN')
        ),
        "score_mean",
    ),
    "score_std text": (
        lambda d: _edit_config(d, lambda c: c["meta"].update(score_std="1")),
        "score_std",
    ),
    "heuristic_std Infinity": (
        lambda d: (d / "config.json").write_text(
            (d / "config.json")
            .read_text()
            .replace('"heuristic_std": 0.2', '"heuristic_std": Infinity')
        ),
        "heuristic_std",
    ),
    "empty head file": (lambda d: (d / "head.safetensors").write_bytes(b""), "head.safetensors"),
    "garbage head file": (
        lambda d: (d / "head.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{junk}"),
        "head.safetensors",
    ),
    "truncated head file": (
        lambda d: (d / "head.safetensors").write_bytes((d / "head.safetensors").read_bytes()[:-40]),
        "head.safetensors",
    ),
    "config wider than tensors": (
        lambda d: _edit_config(d, lambda c: c["head"].update(emb_dim=16)),
        "shape",
    ),
    "config hidden differs": (
        lambda d: _edit_config(d, lambda c: c["head"].update(hidden=5)),
        "shape",
    ),
    "missing tensor": (lambda d: _edit_tensors(d, lambda s: s.pop(sorted(s)[0])), "lacks"),
    "extra tensor": (
        lambda d: _edit_tensors(d, lambda s: s.update(extra=torch.zeros(2))),
        "extra",
    ),
    "NaN weights": (
        lambda d: _edit_tensors(d, lambda s: s["mlp.1.weight"].fill_(float("nan"))),
        "non-finite",
    ),
    "integer tensor": (
        lambda d: _edit_tensors(d, lambda s: s.update(x_std=torch.ones(2, dtype=torch.int64))),
        "x_std",
    ),
    # issue 26: numbers that load but change or flip the reward
    "score_std 0": (lambda d: _edit_config(d, lambda c: c["meta"].update(score_std=0)), "> 0"),
    "score_std -1": (
        lambda d: _edit_config(d, lambda c: c["meta"].update(score_std=-1.0)),
        "meta.score_std must be > 0",
    ),
    "heuristic_std 0": (
        lambda d: _edit_config(d, lambda c: c["meta"].update(heuristic_std=0.0)),
        "meta.heuristic_std must be > 0",
    ),
    "x_std all zero": (lambda d: _edit_tensors(d, lambda s: s["x_std"].zero_()), "'x_std'"),
    "x_std negative": (lambda d: _edit_tensors(d, lambda s: s["x_std"].fill_(-1.0)), "<= 0"),
    "x_std one zero": (lambda d: _edit_tensors(d, lambda s: s["x_std"][:1].zero_()), "<= 0"),
    "encoder folder gone": (
        lambda d: _edit_config(d, lambda c: c.update(encoder=str(d / "gone" / "encoder"))),
        "config.json: field 'encoder' names the folder",
    ),
}


@pytest.mark.parametrize("corrupt,needle", RM_CORRUPTIONS.values(), ids=RM_CORRUPTIONS.keys())
def test_corrupt_reward_model_folder(rm_dir, corrupt, needle):
    corrupt(rm_dir)
    with pytest.raises(UserError) as e:
        load_reward_model(rm_dir)
    msg = str(e.value)
    assert str(rm_dir) in msg and needle in msg and "\n" not in msg, msg
    assert isinstance(e.value, (ArtifactError, FileNotFoundError))


def test_intact_reward_model_folder_loads(rm_dir):
    rm = load_reward_model(rm_dir)
    assert rm.cfg.emb_dim == 8 and rm.meta["score_std"] == 1.0


@pytest.mark.parametrize("name", ["garbled config", "missing tensor", "config wider than tensors"])
def test_corrupt_reward_model_through_the_cli(tmp_path, rm_dir, name):
    corrupt, needle = RM_CORRUPTIONS[name]
    corrupt(rm_dir)
    data = tmp_path / "d.jsonl"
    data.write_text('{"tweet_id": "t", "tweet": "a", "reply": "b", "reply_likes": 1}\n')
    r = cli("reward", "validate", "--model", rm_dir, "--data", data, "--cache-dir", "off")
    assert_one_line_error(r, str(rm_dir), needle)
    assert_one_line_error(cli("reward", "score", "tweet", "reply", "--model", rm_dir), needle)


def test_reward_model_without_its_encoder_names_the_config_through_the_cli(rm_dir):
    gone = rm_dir.parent / "encoders" / "mine"
    _edit_config(rm_dir, lambda c: c.update(encoder=str(gone)))
    r = cli("reward", "score", "tweet", "reply", "--model", rm_dir)
    line = assert_one_line_error(r, str(rm_dir / "config.json"), str(gone), "replyrl reward train")
    assert "--model" not in line.split(str(gone))[-1]  # the hint is not "pass --model"


def test_a_hub_id_encoder_is_not_taken_for_a_path(rm_dir):
    _edit_config(rm_dir, lambda c: c.update(encoder="sentence-transformers/all-mpnet-base-v2"))
    assert load_reward_model(rm_dir).encoder_name == "sentence-transformers/all-mpnet-base-v2"


@pytest.mark.parametrize(
    "content",
    ['{"a": 1}', "[1, 2]", "{oops", '["t1", 5]'],
    ids=["object", "ints", "garbled", "mixed"],
)
def test_corrupt_train_tweets_file(tmp_path, rm_dir, content):
    (rm_dir / "train_tweets.json").write_text(content)
    data = tmp_path / "d.jsonl"
    data.write_text('{"tweet_id": "t", "tweet": "a", "reply": "b", "reply_likes": 1}\n')
    r = cli("reward", "validate", "--model", rm_dir, "--data", data, "--cache-dir", "off")
    assert_one_line_error(r, "train_tweets.json")


# --- LoRA adapter folders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Llama (saved as a base folder) and a LoRA adapter trained on nothing but
    initialised with non-zero B, so applying it changes the logits."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny")
    cfg = LlamaConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(root / "base")
    wide = LlamaConfig(**{**cfg.to_dict(), "hidden_size": 32, "intermediate_size": 64})
    LlamaForCausalLM(wide).save_pretrained(root / "wide")
    model = get_peft_model(
        LlamaForCausalLM.from_pretrained(root / "base"),
        LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(root / "adapter")
    _set_config(root / "adapter", base_model_name_or_path=str(root / "base"))
    return root


def _set_config(d, **kv):
    c = json.loads((d / "adapter_config.json").read_text())
    c.update(kv)
    (d / "adapter_config.json").write_text(json.dumps(c))


def _base(root):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(root / "base")


ADAPTER_CORRUPTIONS = {
    "no weights": (lambda d, r: (d / "adapter_model.safetensors").unlink(), "no weights"),
    "pickle weights only": (
        lambda d, r: (d / "adapter_model.safetensors").rename(d / "adapter_model.bin"),
        "pickle",
    ),
    "garbled config": (lambda d, r: (d / "adapter_config.json").write_text("{"), "corrupt"),
    "config without peft_type": (
        lambda d, r: (d / "adapter_config.json").write_text('{"r": 2}'),
        "peft_type",
    ),
    "base name a number": (lambda d, r: _set_config(d, base_model_name_or_path=7), "base_model"),
    "other target modules": (
        lambda d, r: _set_config(d, target_modules=["k_proj", "o_proj"]),
        "does not match",
    ),
    "one more target module": (
        lambda d, r: _set_config(d, target_modules=["q_proj", "v_proj", "k_proj"]),
        "no saved weights",
    ),
    "other rank": (lambda d, r: _set_config(d, r=4), "size mismatch"),
    "garbage weights": (
        lambda d, r: (d / "adapter_model.safetensors").write_bytes(b"\x00" * 16),
        "safetensors",
    ),
    "weights of a wider base": (
        lambda d, r: shutil.copy(r / "wide_adapter" / "adapter_model.safetensors", d),
        "size mismatch",
    ),
    "NaN weights": (lambda d, r: _edit_adapter(d, float("nan")), "NaN/inf"),
    "inf weights": (lambda d, r: _edit_adapter(d, float("-inf")), "NaN/inf"),
}


def _edit_adapter(d, value):
    """Set one element of one LoRA tensor to `value` (a diverged run's weights)."""
    path = d / "adapter_model.safetensors"
    state = load_file(str(path))
    state[sorted(state)[0]].view(-1)[0] = value
    save_file(state, str(path))


@pytest.fixture()
def adapter(tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    if not (tiny / "wide_adapter").exists():
        wide = get_peft_model(
            LlamaForCausalLM.from_pretrained(tiny / "wide"),
            LoraConfig(r=2, target_modules=["q_proj", "v_proj"]),
        )
        wide.save_pretrained(tiny / "wide_adapter")
    d = tmp_path / "adapter"
    shutil.copytree(tiny / "adapter", d)
    return d


@pytest.mark.parametrize(
    "corrupt,needle", ADAPTER_CORRUPTIONS.values(), ids=ADAPTER_CORRUPTIONS.keys()
)
def test_corrupt_or_mismatched_adapter(tiny, adapter, corrupt, needle):
    from replyrl.models import load_adapter

    corrupt(adapter, tiny)
    with pytest.raises(ArtifactError) as e:
        load_adapter(_base(tiny), adapter)
    assert str(adapter) in str(e.value) and needle in str(e.value), str(e.value)


def test_intact_adapter_changes_the_model(tiny, adapter):
    from replyrl.models import load_adapter

    ids = torch.tensor([[1, 2, 3, 4]])
    base = _base(tiny)
    with torch.no_grad():
        before = base(ids).logits.clone()
        after = load_adapter(base, adapter)(ids).logits
    assert not torch.allclose(before, after)


@pytest.mark.parametrize(
    "name", ["no weights", "other target modules", "other rank", "NaN weights"]
)
def test_adapter_through_the_cli(adapter, tiny, name):
    corrupt, needle = ADAPTER_CORRUPTIONS[name]
    corrupt(adapter, tiny)
    assert_one_line_error(cli("generate", "hello", "--model", adapter), str(adapter), needle)


# --- the generation cache ----------------------------------------------------------------------------

TWEETS = [EvalTweet("t1", "first tweet", ["ref a"]), EvalTweet("t2", "second tweet", ["ref b"])]
GOOD_ROW = {"tweet_id": "t1", "tweet": "first tweet", "replies": ["x", "y"]}
BAD_CACHE_LINES = {
    "not JSON": "{oops",
    "invalid UTF-8": b'{"tweet_id": "t2", "tweet": "\xff"}',
    "a list": "[1, 2]",
    "a number": "42",
    "replies not a list": json.dumps({"tweet_id": "t2", "tweet": "second tweet", "replies": "ab"}),
    "replies of numbers": json.dumps(
        {"tweet_id": "t2", "tweet": "second tweet", "replies": [1, 2]}
    ),
    "replies of lists": json.dumps(
        {"tweet_id": "t2", "tweet": "second tweet", "replies": [["a"], ["b"]]}
    ),
    "replies null": json.dumps({"tweet_id": "t2", "tweet": "second tweet", "replies": None}),
    "replies NaN": '{"tweet_id": "t2", "tweet": "second tweet", "replies": [NaN, "b"]}',
    "too few replies": json.dumps({"tweet_id": "t2", "tweet": "second tweet", "replies": ["a"]}),
    "tweet_id a number": json.dumps(
        {"tweet_id": 2, "tweet": "second tweet", "replies": ["a", "b"]}
    ),
    "tweet_id missing": json.dumps({"tweet": "second tweet", "replies": ["a", "b"]}),
    "tweet null": json.dumps({"tweet_id": "t2", "tweet": None, "replies": ["a", "b"]}),
    "deeply nested": '{"tweet_id": "t2", "replies": ' + "[" * 50_000 + "]" * 50_000 + "}",
}


@pytest.mark.parametrize("line", BAD_CACHE_LINES.values(), ids=BAD_CACHE_LINES.keys())
def test_corrupt_cache_line_is_generated_again(tmp_path, caplog, line):
    path = tmp_path / "cache.jsonl"
    bad = line if isinstance(line, bytes) else line.encode()
    path.write_bytes(json.dumps(GOOD_ROW).encode() + b"\n" + bad + b"\n")
    asked = []

    def generate(tweets):
        asked.extend(tweets)
        return [[f"new {i}", f"new {i}b"] for i, _ in enumerate(tweets)]

    with caplog.at_level(logging.WARNING):
        rows = cached_generations(path, TWEETS, generate, n=2)
    assert asked == ["second tweet"]  # the good line is reused, the bad one generated again
    assert rows[0]["replies"] == ["x", "y"] and rows[1]["replies"] == ["new 0", "new 0b"]
    assert all(isinstance(r, str) for row in rows for r in row["replies"])
    assert f"{path}:2:" in caplog.text
    # the rewritten cache is whole again
    assert [r["tweet_id"] for r in read_jsonl(path)] == ["t1", "t2"]


def test_cached_rows_carry_the_current_references(tmp_path):
    path = tmp_path / "cache.jsonl"
    stale = {**GOOD_ROW, "reference": 5, "references": "stale"}
    path.write_text(json.dumps(stale) + "\n")
    rows = cached_generations(path, TWEETS[:1], lambda t: [], n=2)
    assert rows[0]["reference"] == "ref a" and rows[0]["references"] == ["ref a"]


@pytest.mark.parametrize(
    "content", [b"{oops\n", b'{"a": 1}\n\xff\n', b"[1]\n", b'{"a": 1}\n' + b"[" * 50_000 + b"\n"]
)
def test_read_jsonl_names_file_and_line(tmp_path, content):
    f = tmp_path / "r.jsonl"
    f.write_bytes(content)
    with pytest.raises(ArtifactError, match=f"{f}:\\d+: "):
        list(read_jsonl(f))


def test_corrupt_evaluation_folder_through_report(tmp_path):
    out = tmp_path / "eval"
    (out / "results").mkdir(parents=True)
    (out / "runs.json").write_text("{oops")
    assert_one_line_error(cli("report", out), "runs.json", "corrupt")
    (out / "runs.json").write_text('{"runs": 5}')
    assert_one_line_error(cli("report", out), "runs.json", "run list")
    (out / "runs.json").write_text(json.dumps({"config": {}, "runs": [{"id": "a"}]}))
    (out / "results" / "a.jsonl").write_text('{"x": 1}\n{bad\n')
    assert_one_line_error(cli("report", out), "a.jsonl:2")
    (out / "results" / "a.jsonl").write_text('{"x": 1}\n')
    assert_one_line_error(cli("report", out), "results", "re-run")


# --- caches that are only a speed-up ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["{oops", "[1, 2]", '{"k": "high"}', '{"k": 7}', '{"k": NaN}'],
    ids=["garbled", "list", "text verdict", "out of range", "nan"],
)
def test_corrupt_judge_cache(tmp_path, caplog, content):
    from replyrl.evaluation.judge import Judge, JudgeConfig

    f = tmp_path / "judge.json"
    f.write_text(content)
    with caplog.at_level(logging.WARNING):
        judge = Judge(JudgeConfig(), cache_file=f, backend=object())
    assert judge.cache == {} and str(f) in caplog.text


@pytest.mark.parametrize(
    "keys,mat",
    [
        ("{oops", torch.zeros(1, 3)),
        ('["a", "b"]', torch.zeros(1, 3)),
        ("[1]", torch.zeros(1, 3)),
        ('["a"]', torch.full((1, 3), float("nan"))),
        ('["a"]', torch.zeros(3)),
    ],
    ids=["garbled keys", "count mismatch", "int keys", "nan", "1-d"],
)
def test_corrupt_embedding_cache(tmp_path, caplog, keys, mat):
    from replyrl.rewards.embeddings import EmbeddingCache

    (tmp_path / "keys.json").write_text(keys)
    save_file({"embeddings": mat}, str(tmp_path / "embeddings.safetensors"))
    cache = EmbeddingCache(encoder=object())
    with caplog.at_level(logging.WARNING):
        assert cache.load(tmp_path) == 0
    assert "corrupt" in caplog.text
