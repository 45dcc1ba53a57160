"""YAML configs with `_base_` inheritance, deep merge, `--set key=value` overrides, and strict
loading into typed dataclasses (unknown keys fail with a did-you-mean; bad values fail before any
model loads).

Strict means: a YAML syntax error, a tab used for indentation, a key given twice, bytes that are not
UTF-8, nesting deeper than `MAX_DEPTH`, a section set to a scalar, and a non-finite number (NaN/inf)
anywhere are errors naming the file (and line, where YAML knows it) rather than surprises later.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from replyrl.errors import UserError, missing_path_error

T = TypeVar("T")
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
MAX_DEPTH = 32
"""Deepest nesting of mappings/lists a config may have (ours use 4; deeper is a mistake or an attack
on the parser's recursion)."""
INT_MAX = 2**63 - 1
"""Largest integer a config field takes (what torch and numpy can hold)."""
SEED_MAX = 2**32 - 1
"""Largest seed (numpy's seeding takes 32 bits); seeds are fields named `seed`, `*_seed`, `seeds`."""


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be used; the message says where and how to fix it."""


def deep_merge(base: dict, over: dict) -> dict:
    """Merge `over` into a copy of `base`; nested dicts merge, everything else replaces."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping."""


class _HugeNumber(yaml.constructor.ConstructorError):
    """An integer with more digits than Python reads (4,300 by default)."""


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last) and
    reports an integer of thousands of digits as a YAML error at its line (Python's int() would
    raise a bare ValueError from inside the parser)."""

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            digits = sum(c.isdigit() for c in str(node.value))
            raise _HugeNumber(
                None, None, f"a number of {digits:,} digits is out of range", node.start_mark
            ) from None

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` merges are meant to be overridden
                key = self.construct_object(key_node, deep=False)
                try:
                    seen = first_line.get(key)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if seen is not None:
                    raise _DuplicateKey(
                        None,
                        None,
                        f"key {key!r} is given twice (first on line {seen}); keep one",
                        key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _parse_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load` with duplicate keys rejected and every failure one ConfigError line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply for a config") from None
    except yaml.YAMLError as e:
        raise ConfigError(_yaml_problem(where, text, e)) from None


def _yaml_problem(where: str, text: str, e: yaml.YAMLError) -> str:
    if isinstance(e, yaml.reader.ReaderError):
        line = text[: e.position].count("\n") + 1
        ch = chr(e.character) if isinstance(e.character, int) else str(e.character)
        return (
            f"{where}:{line}: character {ch!r} (U+{ord(ch[:1] or ' '):04X}) is not allowed in "
            f"YAML ({e.reason}); remove it"
        )
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    problem = " ".join(str(getattr(e, "problem", None) or e).split())
    context = " ".join(str(getattr(e, "context", None) or "").split())
    if "'\\t'" in problem or "\t" in problem:
        return f"{where}{at}: a tab character: YAML is indented with spaces, not tabs"
    if isinstance(e, (_DuplicateKey, _HugeNumber)):
        return f"{where}{at}: {problem}"
    if isinstance(e, yaml.constructor.ConstructorError) and "constructor for the tag" in problem:
        # e.g. !!python/object: the safe loader builds no objects, so this is not a syntax slip
        found = re.search(r"tag '(.*)'", problem)
        tag = (found.group(1) if found else "?").replace("tag:yaml.org,2002:", "!!")
        return (
            f"{where}{at}: unsupported YAML tag {tag!r}: configs are plain data, and tags that "
            "build Python objects (!!python/...) are refused as unsafe; remove the tag"
        )
    return (
        f"{where}{at}: YAML syntax error: {problem}"
        + (f" ({context})" if context else "")
        + "; fix the file (quote values holding ':' or '#')"
    )


def _check_tree(data: Any, where: str) -> None:
    """Reject nesting deeper than MAX_DEPTH, a structure that contains itself (YAML anchors can
    build one), and non-finite numbers; a sub-tree shared through aliases is visited once."""
    done: set[int] = set()
    on_path: set[int] = set()

    def visit(x: Any, path: str) -> None:
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(
                f"{where}: {path or 'the value'} must be a finite number, got {x!r} (NaN/inf is "
                "never valid)"
            )
        if not isinstance(x, (dict, list)) or id(x) in done:
            return
        if id(x) in on_path or len(on_path) >= MAX_DEPTH:
            raise ConfigError(
                f"{where}: {path or 'the config'} is nested deeper than {MAX_DEPTH} levels "
                "(or refers to itself through a YAML alias)"
            )
        on_path.add(id(x))
        if isinstance(x, dict):
            for k, v in x.items():
                name = k if isinstance(k, str) and k.isprintable() else repr(k)
                visit(v, f"{path}.{name}" if path else name)
        else:
            for i, v in enumerate(x):
                visit(v, f"{path}[{i}]")
        on_path.discard(id(x))
        done.add(id(x))

    visit(data, "")


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Load a YAML config, resolving `_base_` (a path, or list of paths, relative to the file)."""
    given = path
    try:
        path = Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a symbolic link loop
        raise ConfigError(
            str(missing_path_error(Path(given).expanduser(), "config file"))
        ) from None
    if path in _seen:
        raise ConfigError(f"{path}: _base_ cycle: {' -> '.join(map(str, _seen + (path,)))}")
    via = f" (the _base_ of {_seen[-1]})" if _seen else ""
    if not path.exists():
        raise ConfigError(f"{missing_path_error(given, 'config file')}{via}")
    if not path.is_file():
        raise ConfigError(f"{given}{via} is a folder, not a config file: give a YAML file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{given}{via}: cannot read the config ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "save the config as UTF-8"
        ) from None
    data = _parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    _check_tree(data, str(path))
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if (
        not isinstance(bases, list)
        or not bases
        or not all(isinstance(b, str) and b.strip() for b in bases)
    ):
        raise ConfigError(
            f"{path}: _base_ must be a file path or a list of file paths (relative to this file), "
            f"got {bases!r}"
        )
    merged: dict = {}
    for b in bases:
        merged = deep_merge(merged, load_yaml(path.parent / b, _seen + (path,)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML (so 0.5, true, [1, 2] get their types)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, _, raw = text.partition("=")
    keys = key.strip().split(".")
    if not key.strip() or not all(k.strip() for k in keys):
        raise ConfigError(f"--set expects key.sub=value, got {text!r}")
    try:
        value = yaml.load(raw, Loader=_StrictLoader) if raw.strip() else ""
    except RecursionError:
        raise ConfigError(f"--set {key.strip()}: value nested too deeply") from None
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(_yaml_problem(f"--set {key.strip()}", raw, e)) from None
    except yaml.YAMLError:
        value = raw  # not YAML: the text itself (e.g. a path holding ': ')
    _check_tree(value, f"--set {key.strip()}")
    return [k.strip() for k in keys], value


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply `--set key.sub=value` overrides to a config dict (returns a new dict)."""
    for text in overrides or []:
        keys, value = parse_override(text)
        patch: dict = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            patch = {k: patch}
        data = deep_merge(data, patch)
    return data


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclasses.

    Unknown keys raise ConfigError with a suggestion; simple types are checked and coerced
    (int -> float); the dataclass's own `__post_init__` then validates values.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"{where}: key {key!r} is not text (YAML reads yes/no/on/off as booleans and "
                "bare numbers as numbers: quote the key)"
            )
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else f"; valid keys: {', '.join(sorted(fields))}"
            )
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # __post_init__ validation (a ConfigError is a ValueError)
        raise ConfigError(f"{where}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{where} must be a finite number, got {value!r} (NaN/inf is never valid)"
        )
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if value is None:  # a section header with every key commented out
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: this section must be a mapping of its keys, got "
                f"{type(value).__name__} {value!r} (write `{where.rsplit('.', 1)[-1]}:` with "
                "indented key: value lines below)"
            )
        return from_dict(tp, value, where)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _check_tree(value, where)
        return value
    if tp is float:
        if isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; people write it
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, int) and abs(value) > INT_MAX:
            raise ConfigError(f"{where}: {value} is out of range for a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        name = re.sub(r"\[\d+\]$", "", where.rsplit(".", 1)[-1])
        if name in ("seed", "seeds") or name.endswith("_seed"):
            if not 0 <= value <= SEED_MAX:
                raise ConfigError(f"{where}: a seed must be in 0..{SEED_MAX}, got {value}")
        elif abs(value) > INT_MAX:
            raise ConfigError(f"{where}: {value} is out of range (at most {INT_MAX})")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Any:
        _check_tree(value, where)
    return value


def to_dict(obj: Any) -> Any:
    """A dataclass config as a plain dict (for saving beside a run)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data: dict | None = None,
) -> T:
    """Load `path` (with `_base_`), apply overrides, and build a validated `cls`."""
    merged = load_yaml(path) if path else {}
    if data:
        merged = deep_merge(merged, data)
    merged = apply_overrides(merged, overrides)
    return from_dict(cls, merged, where=str(path) if path else "config")
