"""YAML configs with `_base_` inheritance, deep merge, `--set key=value` overrides, and strict
loading into typed dataclasses (unknown keys fail with a did-you-mean; bad values fail before any
model loads)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
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


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Load a YAML config, resolving `_base_` (a path, or list of paths, relative to the file)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: _base_ cycle: {' -> '.join(map(str, _seen + (path,)))}")
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    merged: dict = {}
    for b in [bases] if isinstance(bases, str) else bases:
        merged = deep_merge(merged, load_yaml(path.parent / b, _seen + (path,)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML (so 0.5, true, [1, 2] get their types)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, _, raw = text.partition("=")
    if not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


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
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else f"; valid keys: {', '.join(sorted(fields))}"
            )
            raise ConfigError(f"{where}: unknown key '{key}'{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def _coerce(tp: Any, value: Any, where: str) -> Any:
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
        return from_dict(tp, value or {}, where)
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
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
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
