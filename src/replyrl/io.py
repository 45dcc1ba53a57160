"""Atomic file writes and JSONL helpers: every artifact is written to a temp file, then renamed.

A write that the operating system refuses (a folder where the file should go, permission denied,
a full disk) raises `FileAccessError` naming the path; a JSON file of ours that does not parse
raises `ArtifactError` naming the file and line.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from replyrl.errors import ArtifactError, file_access_error


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder and an atomic rename.

    Raises:
        FileAccessError: `path` is a folder, or the system refused the write (e.g. a full disk);
            nothing is left behind (the target keeps its old content).
    """
    path = Path(path)
    if path.is_dir():
        raise file_access_error(OSError(errno.EISDIR, "Is a directory"), path, "cannot write")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared and served
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, ArtifactError):
            raise file_access_error(e, path, "cannot write") from e
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    return atomic_write_text(
        path, json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default) + "\n"
    )


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write rows as JSON lines, atomically."""
    text = "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows)
    return atomic_write_text(path, text)


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Read a JSONL file we wrote ourselves (user data goes through `replyrl.records`).

    Raises:
        ArtifactError: a line is not UTF-8 JSON holding an object (names the file and line).
    """
    for line_no, row, problem in iter_jsonl(path):
        if problem:
            raise ArtifactError(
                f"{path}:{line_no}: {problem}; the file is corrupt: delete it or rerun the step "
                "that wrote it"
            )
        yield row


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any, str]]:
    """(line number, parsed object, problem) per non-blank line; `problem` is '' for a good line
    (a JSON object) and says what is wrong otherwise (the object is then None)."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield line_no, None, f"invalid UTF-8 at byte {e.start}"
                continue
            except (ValueError, RecursionError) as e:
                yield line_no, None, f"not valid JSON ({str(e)[:80]})"
                continue
            if not isinstance(row, dict):
                yield line_no, None, f"expected a JSON object, got {type(row).__name__}"
                continue
            yield line_no, row, ""


def read_json(path: str | Path, what: str = "file") -> Any:
    """Read a JSON file we wrote ourselves; a missing or corrupt one raises ArtifactError."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {what} is missing") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: {what} is a folder, expected a JSON file") from None
    except UnicodeDecodeError as e:
        raise ArtifactError(
            f"{path}: {what} is corrupt (invalid UTF-8 at byte {e.start})"
        ) from None
    except (ValueError, RecursionError) as e:
        line = getattr(e, "lineno", None)
        at = f":{line}" if line else ""
        raise ArtifactError(
            f"{path}{at}: {what} is corrupt (not valid JSON: {str(e)[:80]})"
        ) from None


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
