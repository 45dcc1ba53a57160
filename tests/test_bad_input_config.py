"""Bad configs: YAML that does not parse, wrong shapes, non-finite and out-of-range values.

Every case must end in one ConfigError naming the file (and line, where YAML knows it) or the field;
CLI cases run `replyrl train -c` / `reward train -c` / `evaluate --config` in process and must print
one `error:` line with exit code 2 and no traceback. Nothing loads a model.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import pytest
from bad_input import assert_one_line_error, cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replyrl.config import MAX_DEPTH, SEED_MAX, ConfigError, load_config
from replyrl.evaluation.evaluate import EvalConfig
from replyrl.generation import SamplingConfig
from replyrl.pipeline import PipelineConfig
from replyrl.rewards.build import RewardConfig
from replyrl.rewards.train import RewardTrainConfig
from replyrl.training.config import TrainConfig

# --- YAML that does not parse, or parses into the wrong shape -----------------------------------

YAML_BROKEN = {
    "unclosed list": ("seed: [1, 2\n", ":2:", "YAML syntax error"),
    "unclosed map": ("grpo: {kl_coef: 1\n", ":2:", "YAML syntax error"),
    "unclosed quote": ('name: "abc\n', ":2:", "YAML syntax error"),
    "bad indent": ("grpo:\n  kl_coef: 1\n top_p: 1\n", ":3:", "YAML syntax error"),
    "colon in plain value": ("name: a: b\n", ":1:", "YAML syntax error"),
    "tab indent": ("grpo:\n\tkl_coef: 1\n", ":2:", "tab"),
    "tab before key": ("\tseed: 1\n", ":1:", "tab"),
    "tab in nested": ("optim:\n  max_steps: 3\n\t  learning_rate: 0.1\n", ":3:", "tab"),
    "two documents": ("seed: 1\n---\nseed: 2\n", ":", "YAML syntax error"),
    "unknown tag": ("seed: !!python/object:os.system 1\n", ":1:", "unsafe"),
    "python apply tag": (
        'name: !!python/object/apply:os.system ["echo hi"]\n',
        ":1:",
        "unsupported YAML tag '!!python/object/apply:os.system'",
    ),
    "python name tag": ("optim:\n  report_to: !!python/name:os.system\n", ":2:", "unsafe"),
    "local tag": ("name: !mytag x\n", ":1:", "unsupported YAML tag '!mytag'"),
    "5,000-digit integer": ("seed: " + "9" * 5000 + "\n", ":1:", "5,000 digits is out of range"),
    "5,000-digit integer in a list": (
        "optim:\n  report_to: [1, -" + "1" * 5000 + "]\n",
        ":2:",
        "5,000 digits",
    ),
    "bad alias": ("seed: *nothing\n", ":1:", "YAML syntax error"),
    "nul byte": ("seed: 1\x00\n", ":1:", "not allowed"),
    "escape char": ("name: a\x1b\n", ":1:", "not allowed"),
    "duplicate top key": ("seed: 1\nseed: 2\n", ":2:", "given twice (first on line 1)"),
    "duplicate nested key": (
        "optim:\n  max_steps: 3\n  max_steps: 4\n",
        ":3:",
        "'max_steps' is given twice (first on line 2)",
    ),
    "duplicate flow key": ("grpo: {kl_coef: 1, kl_coef: 2}\n", ":1:", "given twice"),
    "duplicate section": ("grpo: {}\ndpo: {}\ngrpo: {}\n", ":3:", "'grpo' is given twice"),
    "top level list": ("- seed\n- 1\n", "", "top level must be a mapping"),
    "top level scalar": ("42\n", "", "top level must be a mapping"),
    "top level text": ("just text\n", "", "top level must be a mapping"),
    "boolean key": ("yes: 1\n", "", "key True is not text"),
    "number key": ("1: 2\n", "", "key 1 is not text"),
    "self-referencing alias": ("a: &x [*x]\n", "", "nested deeper"),
}


@pytest.mark.parametrize("text,where,needle", YAML_BROKEN.values(), ids=YAML_BROKEN.keys())
def test_broken_yaml_is_one_clear_error(tmp_path, text, where, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(TrainConfig, f)
    msg = str(e.value)
    assert str(f) + where in msg and needle in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "name", ["unclosed list", "tab indent", "duplicate nested key", "nul byte"]
)
def test_broken_yaml_through_the_cli(tmp_path, name):
    text, where, needle = YAML_BROKEN[name]
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    assert_one_line_error(cli("train", "-c", f), str(f) + where, needle)


INVALID_UTF8 = {
    "latin-1 byte": (b"name: caf\xe9\n", ":1:", "not UTF-8"),
    "lone continuation": (b"seed: 1\nname: \x80\n", ":2:", "not UTF-8"),
    "truncated sequence": (b"name: \xe2\x82\n", ":1:", "not UTF-8"),
    "gzip bytes": (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", ":1:", "not UTF-8"),
    # UTF-16 without a byte-order mark decodes as UTF-8 with NUL characters between the letters
    "utf-16 without bom": ("seed: 1\n".encode("utf-16-le"), ":1:", "U+0000"),
}


@pytest.mark.parametrize("data,where,needle", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_names_file_and_line(tmp_path, data, where, needle):
    f = tmp_path / "bad.yaml"
    f.write_bytes(data)
    assert_one_line_error(cli("train", "-c", f), f"{f}{where}", needle)


def test_a_folder_as_config(tmp_path):
    assert_one_line_error(cli("train", "-c", tmp_path), str(tmp_path), "is a folder")
    assert_one_line_error(cli("reward", "train", "-c", tmp_path, "--out", tmp_path / "o"), "folder")


def test_a_missing_config(tmp_path):
    assert_one_line_error(cli("train", "-c", tmp_path / "nope.yaml"), "not found", "nope.yaml")


BAD_BASE = {
    "number": "_base_: 5\n",
    "mapping": "_base_: {a: b}\n",
    "list of numbers": "_base_: [1, 2]\n",
    "empty list": "_base_: []\n",
    "empty string": "_base_: ''\n",
    "list with null": "_base_: [null]\n",
    "boolean": "_base_: true\n",
    "nested list": "_base_: [[a.yaml]]\n",
}


@pytest.mark.parametrize("text", BAD_BASE.values(), ids=BAD_BASE.keys())
def test_base_of_the_wrong_type(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    assert_one_line_error(cli("train", "-c", f), str(f), "_base_ must be a file path")


def test_base_problems_name_the_referencing_file(tmp_path):
    (tmp_path / "c.yaml").write_text("_base_: missing.yaml\n")
    assert_one_line_error(cli("train", "-c", tmp_path / "c.yaml"), "missing.yaml", "_base_ of")
    (tmp_path / "d.yaml").write_text("_base_: .\n")
    assert_one_line_error(cli("train", "-c", tmp_path / "d.yaml"), "is a folder")
    (tmp_path / "e.yaml").write_text("_base_: f.yaml\n")
    (tmp_path / "f.yaml").write_text("_base_: e.yaml\n")
    assert_one_line_error(cli("train", "-c", tmp_path / "e.yaml"), "_base_ cycle")
    (tmp_path / "g.yaml").write_text("_base_: h.yaml\n")
    (tmp_path / "h.yaml").write_text("seed: [1\n")
    assert_one_line_error(cli("train", "-c", tmp_path / "g.yaml"), "h.yaml:2:", "YAML syntax")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200, 1500])
@pytest.mark.parametrize("kind", ["mapping", "list", "flow mapping"])
def test_very_deep_nesting(tmp_path, depth, kind):
    if kind == "mapping":
        text = "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "b: 1\n"
    elif kind == "list":
        text = "seed: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "seed: " + "{a: " * depth + "1" + "}" * depth + "\n"
    f = tmp_path / "deep.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match="nested"):
        load_config(TrainConfig, f)


def test_deep_nesting_in_a_set_value():
    with pytest.raises(ConfigError, match="nested"):
        load_config(TrainConfig, None, ["data.quartiles=" + "[" * 1500 + "]" * 1500])


def test_alias_bomb_is_checked_quickly(tmp_path):
    # 9 levels of 10 aliases would be 10^9 leaves if expanded; shared sub-trees are visited once
    lines = ["a0: &a0 [1, 2]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\nreward: {x: *a9}\n")
    with pytest.raises(ConfigError, match="unknown key 'a0'"):
        load_config(TrainConfig, f)


# --- sections set to scalars --------------------------------------------------------------------

SECTIONS = ["data", "model", "objective", "grpo", "dpo", "optim", "grpo.adaptive_kl"]
SCALARS = ["0", "5", "false", "true", "text", "[1, 2]", "''"]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("scalar", SCALARS)
def test_a_section_set_to_a_scalar(section, scalar):
    with pytest.raises(ConfigError, match="must be a mapping") as e:
        load_config(TrainConfig, None, [f"{section}={scalar}"])
    assert section.split(".")[-1] in str(e.value)


def test_a_section_set_to_a_scalar_in_a_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("grpo: 0\n")
    assert_one_line_error(cli("train", "-c", f), "grpo", "must be a mapping", "0")


def test_an_empty_section_header_keeps_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("grpo:\n  # kl_coef: 0.1\n")
    assert load_config(TrainConfig, f).grpo.kl_coef == 0.04


# --- every float field refuses NaN and infinity --------------------------------------------------


def _float_fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = (
            typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()
        )
        if tp is float or float in args:
            yield prefix + f.name
        inner = next((a for a in (tp, *args) if dataclasses.is_dataclass(a)), None)
        if inner is not None:
            yield from _float_fields(inner, f"{prefix}{f.name}.")


FLOAT_FIELDS = [
    (cls, path)
    for cls in (TrainConfig, RewardTrainConfig, EvalConfig, RewardConfig)
    for path in _float_fields(cls)
] + [(TrainConfig, "reward.learned_weight"), (TrainConfig, "reward.heuristic.relevance")]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize(
    "cls,path", FLOAT_FIELDS, ids=[f"{c.__name__}.{p}" for c, p in FLOAT_FIELDS]
)
def test_non_finite_floats_are_refused(cls, path, value):
    with pytest.raises(ConfigError) as e:
        load_config(cls, None, [f"{path}={value}"])
    msg = str(e.value)
    assert path.split(".")[-1] in msg and ("nan" in msg or "inf" in msg), msg


def test_there_are_float_fields_to_check():
    assert len(FLOAT_FIELDS) >= 40


def test_non_finite_in_a_file_names_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  learning_rate: .nan\n")
    assert_one_line_error(cli("train", "-c", f), str(f), "learning_rate", "nan")
    g = tmp_path / "r.yaml"
    g.write_text("weight_decay: .inf\n")
    assert_one_line_error(cli("reward", "train", "-c", g, "--out", tmp_path / "o"), "weight_decay")


# --- values out of range (accepted silently before) ---------------------------------------------

OUT_OF_RANGE = [
    (TrainConfig, "grpo.temperature=0", "temperature"),
    (TrainConfig, "grpo.temperature=-0.5", "temperature"),
    (TrainConfig, "grpo.top_p=0", "top_p"),
    (TrainConfig, "grpo.top_p=1.5", "top_p"),
    (TrainConfig, "grpo.top_p=-1", "top_p"),
    (TrainConfig, "grpo.num_iterations=0", "num_iterations"),
    (TrainConfig, "grpo.num_iterations=-2", "num_iterations"),
    (TrainConfig, "grpo.entropy_coef=-0.1", "entropy_coef"),
    (TrainConfig, "grpo.kl_coef=-0.1", "kl_coef"),
    (TrainConfig, "grpo.num_generations=1", "num_generations"),
    (TrainConfig, "optim.warmup_steps=-1", "warmup_steps"),
    (TrainConfig, "optim.max_grad_norm=-1", "max_grad_norm"),
    (TrainConfig, "optim.learning_rate=0", "learning_rate"),
    (TrainConfig, "optim.max_steps=0", "max_steps"),
    (TrainConfig, "optim.save_total_limit=0", "save_total_limit"),
    (TrainConfig, "optim.sample_every=-1", "sample_every"),
    (TrainConfig, "model.lora_dropout=1.5", "lora_dropout"),
    (TrainConfig, "model.lora_dropout=1", "lora_dropout"),
    (TrainConfig, "model.lora_dropout=-0.1", "lora_dropout"),
    (TrainConfig, "model.target_modules=[]", "target_modules"),
    (TrainConfig, "model.target_modules=['']", "target_modules"),
    (TrainConfig, "model.lora_r=0", "lora_r"),
    (TrainConfig, "dpo.beta=0", "beta"),
    (TrainConfig, "dpo.beta=-1", "beta"),
    (TrainConfig, "dpo.batch_size=0", "batch_size"),
    (TrainConfig, "dpo.pair_ratio=0.5", "pair_ratio"),
    (TrainConfig, "objective.diversity_weight=-1", "diversity_weight"),
    (TrainConfig, "objective.advantage_clip=0", "advantage_clip"),
    (TrainConfig, "grpo.adaptive_kl.down=1", "adaptive_kl"),
    (TrainConfig, "data.quartiles=[5]", "quartiles"),
    (RewardTrainConfig, "lr=0", "lr"),
    (RewardTrainConfig, "lr=-1e-3", "lr"),
    (RewardTrainConfig, "weight_decay=-0.1", "weight_decay"),
    (RewardTrainConfig, "huber_delta=0", "huber_delta"),
    (RewardTrainConfig, "huber_delta=-1", "huber_delta"),
    (RewardTrainConfig, "val_frac=0.7", "val_frac"),
    (RewardTrainConfig, "head.dropout=1.2", "dropout"),
    (RewardTrainConfig, "heuristic.length_sigma_lo=0", "length_sigma_lo"),
    (EvalConfig, "sampling.temperature=0", "temperature"),
    (EvalConfig, "sampling.top_p=0", "top_p"),
    (EvalConfig, "sampling.top_p=2", "top_p"),
    (EvalConfig, "judge.timeout_s=0", "timeout_s"),
    (EvalConfig, "judge.retries=-1", "retries"),
    (EvalConfig, "alarms.min_length_chars=-5", "min_length_chars"),
    (EvalConfig, "alarms.relevance_floor=3", "relevance_floor"),
    (EvalConfig, "pass_quantile=1.5", "pass_quantile"),
    (RewardConfig, "learned_weight=-1", "learned_weight"),
    (RewardConfig, "heuristic_weight=-0.5", "heuristic_weight"),
    (TrainConfig, "optim.report_to=[foo]", "optim.report_to: unknown logger 'foo'"),
    (TrainConfig, "optim.report_to=[none, tensorboard]", "cannot be combined"),
    (PipelineConfig, "reward.learned_weight=-1", "learned_weight must be finite and >= 0"),
    (PipelineConfig, "reward.heuristic_weight=-2", "heuristic_weight must be finite and >= 0"),
    (PipelineConfig, "recipes=[sft, sft]", "recipes lists sft more than once"),
    (PipelineConfig, "recipes=[sft, grpo, grpo]", "recipes lists grpo more than once"),
    (PipelineConfig, "recipe_set={grpo: optim.max_steps=3}", "recipe_set.grpo must be a list"),
    (PipelineConfig, "recipe_set={sft: [1, 2]}", "recipe_set.sft must be a list"),
    (PipelineConfig, "recipe_set={sft: {a: 1}}", "recipe_set.sft must be a list"),
    (TrainConfig, "objective.diversity_floor=1.5", "diversity_floor"),
]


@pytest.mark.parametrize(
    "cls,override,needle", OUT_OF_RANGE, ids=[f"{c.__name__}:{o}" for c, o, _ in OUT_OF_RANGE]
)
def test_out_of_range_values_are_refused(cls, override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(cls, None, [override])


@pytest.mark.parametrize("device", ["device=cpu", "optim.use_cpu=true"])
def test_vllm_on_cpu_fails_before_any_model_loads(tmp_path, device):
    f = tmp_path / "c.yaml"
    f.write_text(f"recipe: grpo\noutput_dir: {tmp_path / 'runs'}\n")
    # the run's device check (training/run.py runtime) says it: vLLM missing, or no CUDA GPU
    r = cli("train", "-c", f, "--set", "grpo.use_vllm=true", "--set", device)
    assert_one_line_error(r, "grpo.use_vllm=true needs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override", ["grpo.temperature=0", "model.lora_dropout=2", "optim.warmup_steps=-1"]
)
def test_out_of_range_through_the_cli(tmp_path, override):
    f = tmp_path / "c.yaml"
    f.write_text("recipe: sft\n")
    key = override.split("=")[0].split(".")[-1]
    assert_one_line_error(cli("train", "-c", f, "--set", override), str(f), key)


# --- seeds and integers that overflow ------------------------------------------------------------

SEED_OVERRIDES = [
    "seed=99999999999999999999",
    f"seed={SEED_MAX + 1}",
    "seed=-1",
    "data.split_seed=18446744073709551616",
    "data.split_seed=-5",
    "optim.max_steps=99999999999999999999999",
    "grpo.max_completion_length=-99999999999999999999999",
]


@pytest.mark.parametrize("override", SEED_OVERRIDES)
def test_overflowing_integers_are_refused(override):
    with pytest.raises(ConfigError, match="range|seed"):
        load_config(TrainConfig, None, [override])


@pytest.mark.parametrize(
    "cls,override",
    [
        (RewardTrainConfig, "seed=4294967296"),
        (RewardTrainConfig, "split.seed=-1"),
        (EvalConfig, "seed=1e400"),
        (EvalConfig, "sampling.seed=4294967296"),
        (RewardTrainConfig, "heuristic.ngram=99999999999999999999999"),
        (EvalConfig, "bootstrap=1e999"),
    ],
)
def test_overflowing_seeds_of_other_configs(cls, override):
    with pytest.raises(ConfigError):
        load_config(cls, None, [override])


def test_largest_seed_is_accepted():
    assert load_config(TrainConfig, None, [f"seed={SEED_MAX}"]).seed == SEED_MAX


def test_overflowing_seed_through_the_cli(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("recipe: sft\n")
    assert_one_line_error(cli("train", "-c", f, "--seed", "99999999999999999999"), "seed")
    assert_one_line_error(cli("train", "-c", f, "--set", "seed=-1"), "seed")


def test_float_field_given_a_huge_integer():
    with pytest.raises(ConfigError, match="out of range"):
        load_config(TrainConfig, None, ["optim.learning_rate=" + "9" * 400])


BAD_SETS = ["noequals", "=5", "a..b=1", ".a=1", "a.=1", "seed={a: 1, a: 2}"]


@pytest.mark.parametrize("override", BAD_SETS)
def test_malformed_set_overrides(override):
    with pytest.raises(ConfigError):
        load_config(TrainConfig, None, [override])


# --- run names that would escape the output folder ----------------------------------------------

BAD_NAMES = ["..", ".", "../x", "a/b", "/etc", "a\\b", "..\\..", "", "  ", "a\x00b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_run_names_that_escape_output_dir(name):
    with pytest.raises(ConfigError, match="name must be a plain folder name"):
        load_config(TrainConfig, None, data={"name": name})


def test_run_name_through_the_cli(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: ../../escape\n")
    assert_one_line_error(cli("train", "-c", f, "--overwrite"), "name must be a plain folder")


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError):
        SamplingConfig(temperature=float("nan"))
    with pytest.raises(ConfigError):
        SamplingConfig(seed=2**40)


# --- generated configs: load or fail with a ConfigError, never anything else ---------------------

FIELDS = [
    "seed",
    "name",
    "recipe",
    "grpo.temperature",
    "grpo.top_p",
    "grpo.num_iterations",
    "optim.learning_rate",
    "optim.warmup_steps",
    "model.lora_dropout",
    "model.target_modules",
    "dpo.beta",
    "data.quartiles",
    "objective.sft_weight",
    "grpo",
    "reward",
]
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), min_size=1, max_size=4))
def test_generated_values_load_or_fail_cleanly(pairs):
    data: dict = {}
    for path, value in pairs:
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node.get(p, {}), dict) else {}
        node[last] = value
    try:
        cfg = load_config(TrainConfig, None, data=data)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    # accepted: every float in it is finite and the seed usable
    assert 0 <= cfg.seed <= SEED_MAX
    for path in ("grpo.temperature", "grpo.top_p", "optim.learning_rate", "dpo.beta"):
        obj = cfg
        for p in path.split("."):
            obj = getattr(obj, p)
        assert math.isfinite(obj) and obj > 0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_generated_yaml_text_loads_or_fails_cleanly(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("gen") / "c.yaml"
    f.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_config(TrainConfig, f)
    except ConfigError:
        pass


# --- issue 26: config values checked before any model loads -------------------------------------


@pytest.fixture
def no_model_loads(monkeypatch):
    """Make building the trainer (which loads the policy) fail loudly: a check that came after it
    would surface as this AssertionError (a traceback), not as the expected one-line error."""
    import replyrl.training.run as run

    def boom(*a, **k):
        raise AssertionError("the policy was about to load")

    monkeypatch.setattr(run, "build_trainer", boom)
    monkeypatch.setattr(run, "_policy", boom)


@pytest.mark.parametrize(
    "sets,needles",
    [
        (["optim.report_to=[foo]"], ["optim.report_to", "'foo'"]),
        (["reward.kind=learned", "reward.model=MISSING"], ["reward.model", "not found"]),
        (["reward.kind=composite", "reward.model=MISSING"], ["reward.model", "not found"]),
        (["reward.kind=composite", "reward.learned_weight=-1"], ["learned_weight", "-1"]),
    ],
    ids=["report_to", "learned model", "composite model", "negative weight"],
)
def test_train_checks_before_the_policy_loads(tmp_path, no_model_loads, sets, needles):
    f = tmp_path / "c.yaml"
    f.write_text(f"recipe: grpo\noutput_dir: {tmp_path / 'runs'}\nreward: {{kind: heuristic}}\n")
    args = [a for s in sets for a in ("--set", s.replace("MISSING", str(tmp_path / "no_rm")))]
    assert_one_line_error(cli("train", "-c", f, *args), *needles)
    assert not (tmp_path / "runs").exists()


def test_missing_reward_model_that_is_a_link_loop(tmp_path, no_model_loads):
    loop = tmp_path / "rm"
    loop.symlink_to(loop)
    f = tmp_path / "c.yaml"
    f.write_text(f"recipe: grpo\noutput_dir: {tmp_path / 'runs'}\n")
    r = cli("train", "-c", f, "--set", "reward.kind=learned", "--set", f"reward.model={loop}")
    assert_one_line_error(r, "reward.model", "symbolic link loop")


PIPELINE_BAD = {
    "learned_weight": ("reward:\n  kind: composite\n  learned_weight: -1\n", "learned_weight"),
    "recipe_set string": (
        'recipe_set: {grpo: "optim.max_steps=3"}\n',
        "recipe_set.grpo must be a list of key=value overrides, got the string 'optim.max_steps=3'",
    ),
    "recipes twice": ("recipes: [sft, sft]\n", "recipes lists sft more than once"),
    "python tag": ("name: !!python/object/apply:os.system [id]\n", "unsafe"),
}


@pytest.mark.parametrize("text,needle", PIPELINE_BAD.values(), ids=PIPELINE_BAD.keys())
def test_pipeline_config_errors_name_the_field(tmp_path, text, needle):
    f = tmp_path / "p.yaml"
    f.write_text(f"out: {tmp_path / 'out'}\n" + text)
    line = assert_one_line_error(cli("pipeline", "-c", f), str(f), needle)
    assert "--set expects" not in line and "YAML syntax error" not in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "run_set,needle",
    [
        ("[reward.learned_weight=-1]", "learned_weight must be finite and >= 0"),
        ("[reward.kind=learnt]", "kind"),
        ('["optim.report_to=[foo]"]', "optim.report_to"),
    ],
)
def test_a_runs_reward_and_logger_overrides_fail_at_plan_time(tmp_path, run_set, needle):
    from pathlib import Path

    from replyrl.pipeline import plan

    path = Path(__file__).resolve().parents[1] / "configs/pipeline/cpu-demo.yaml"
    runs = f"runs=[{{name: g2, recipe: grpo, reward: composite, set: {run_set}}}]"
    with pytest.raises(ConfigError, match=needle) as e:
        plan(load_config(PipelineConfig, path, [f"out={tmp_path}", runs]), path)
    assert "run g2 (seed 0)" in str(e.value)
    assert not (tmp_path / "cpu-demo").exists()


@pytest.mark.parametrize(
    "value", ["9" * 5000, "[1, " + "9" * 5000 + "]", "{a: " + "9" * 4500 + "}"]
)
def test_a_set_value_of_thousands_of_digits_names_its_key(value):
    with pytest.raises(ConfigError, match="--set optim.max_steps.*digits is out of range"):
        load_config(TrainConfig, None, [f"optim.max_steps={value}"])
