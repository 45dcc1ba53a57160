"""The (tweet, reply, engagement) record and its validating loader (DESIGN §2).

Every bad row becomes a `RowError` naming file, line, field, value and reason. By default the
loader stops with all errors listed; with `skip_invalid=True` it keeps going and the caller can
write the bad lines verbatim to a rejects file. Nothing is dropped without being counted.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import re
import unicodedata
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from replyrl.errors import InputError, UserError, missing_path_error
from replyrl.io import atomic_write_bytes

REQUIRED_TEXT = ("tweet_id", "tweet", "reply")
COUNT_FIELDS = ("reply_likes", "reply_retweets", "tweet_likes", "reply_author_followers")
OPTIONAL_STR = ("reply_id", "tweet_author", "reply_author", "created_at")
KNOWN_FIELDS = (*REQUIRED_TEXT, *COUNT_FIELDS, "reply_time_diff_seconds", *OPTIONAL_STR)
MAX_COUNT = 10**12  # beyond any real engagement count; larger values are corrupt data
_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
}
MAX_SECONDS = 1e10  # ~317 years: no reply comes later than that; larger values are corrupt data
MAX_TEXT_CHARS = 10_000
"""Longest text a field may hold: a tweet is at most 4,000 characters even for paying X users (the
web app caps pasted tweets at 2,000), so longer is a broken export (e.g. a whole file in one CSV
cell)."""
ID_FIELDS = ("tweet_id", "reply_id")
# Characters that print as nothing: text made only of these (and whitespace) counts as empty.
# Categories Cc/Cf/Zs/Zl/Zp (controls, zero-width and format marks, spaces) plus the letters and
# marks that render blank: Hangul fillers, the braille blank, the combining grapheme joiner and
# variation selectors.
_BLANK_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
_BLANK_CHARS = set("\u115f\u1160\u3164\uffa0\u2800\u034f") | {
    chr(c) for c in [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
}
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_MISSING_WORDS = {
    "nan",
    "inf",
    "-inf",
    "+inf",
    "infinity",
    "-infinity",
    "+infinity",
    "none",
    "null",
}


@dataclass
class Record:
    """One reply to one tweet with its engagement counts."""

    tweet_id: str
    """Groups the replies of one tweet; splits never put one tweet_id in two splits."""
    tweet: str
    """The tweet (post) text."""
    reply: str
    """The reply text."""
    reply_likes: int
    """Likes on the reply."""
    reply_retweets: int = 0
    """Retweets of the reply."""
    tweet_likes: int = 0
    """Likes on the tweet itself (its popularity, which the reply does not control)."""
    reply_author_followers: int | None = None
    """Followers of the reply's author, when known."""
    reply_time_diff_seconds: float | None = None
    """Seconds between tweet and reply, when known."""
    reply_id: str | None = None
    """The reply's own id in the source, when known."""
    tweet_author: str | None = None
    """Who posted the tweet, when known."""
    reply_author: str | None = None
    """Who posted the reply, when known."""
    created_at: str | None = None
    """When the reply was posted (as given, usually ISO 8601), when known."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown fields, passed through untouched."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d = {k: v for k, v in d.items() if v is not None or k in REQUIRED_TEXT}
        d.update(extra)
        return d


@dataclass
class RowError:
    """A bad row: where it is, which field, what value, and why."""

    file: str
    """The data file."""
    line: int
    """1-based line number (for CSV: the row's first line; 0: the file as a whole)."""
    field: str | None
    """The offending field, or None when the whole line is bad (not JSON, not an object)."""
    value: Any
    """The offending value (for a whole-line error: the line's start)."""
    reason: str
    """What is wrong, in words."""

    def __str__(self) -> str:
        value = repr(self.value)
        if len(value) > 80:
            value = value[:77] + "..."
        where = f"{self.file}:{self.line}"
        fld = f" field '{self.field}'" if self.field else ""
        return f"{where}:{fld} {self.reason} (value: {value})"


class DataError(UserError):
    """Raised when input data is invalid; carries every row error found (up to a cap).

    The message's first line names the first bad row (file, line, field, value, reason) and what
    to do; the other rows follow, one per line.
    """

    def __init__(self, errors: list[RowError], total: int | None = None, hint: str = ""):
        self.errors = errors
        self.total = total if total is not None else len(errors)
        todo = hint or ("fix the row" if self.total == 1 else "fix these rows")
        if self.total == 1:
            msg = f"{errors[0]}; {todo}"
        else:
            msg = f"{self.total} invalid rows, the first: {errors[0]}; {todo}"
            msg += "".join(f"\n  {e}" for e in errors[1:])
            if self.total > len(errors):
                msg += f"\n  ... and {self.total - len(errors)} more"
        super().__init__(msg)


@dataclass
class LoadResult:
    """What a load kept, what it rejected, and the duplicates it removed."""

    records: list[Record]
    """Valid, de-duplicated records in file order."""
    errors: list[RowError]
    """Every error found (a bad row may have several)."""
    rejected_lines: list[bytes]
    """The bad rows' lines, verbatim as read, one entry per bad row."""
    duplicates: int
    """Valid rows dropped because an earlier row had the same (tweet_id, reply)."""
    n_rows: int
    """Rows read (blank lines are not rows)."""


def parse_row(row: dict[str, Any], file: str, line: int) -> tuple[Record | None, list[RowError]]:
    """Validate one row (a dict from JSON or CSV) into a Record, or return its errors."""
    errs: list[RowError] = []

    def err(fld: str | None, value: Any, reason: str) -> None:
        errs.append(RowError(file, line, fld, value, reason))

    if not isinstance(row, dict):
        err(None, row, f"row is a JSON {_type_name(row)}, expected an object")
        return None, errs
    for k in getattr(row, "duplicate_keys", ()):
        err(k, None, "key appears more than once in the object (which value is meant?)")
    vals: dict[str, Any] = {}
    for f in REQUIRED_TEXT:
        v = row.get(f)
        if f not in row:
            err(f, None, "missing required field")
        elif v is None:
            err(f, v, "required field is null")
        elif f == "tweet_id" and isinstance(v, int) and not isinstance(v, bool):
            vals[f] = str(v)  # numeric ids are common in exports
        elif not isinstance(v, str):
            err(f, v, f"expected a string, got {_type_name(v)}")
        elif reason := text_problem(f, v):
            err(f, v, reason)
        else:
            vals[f] = v
    for f in COUNT_FIELDS:
        required = f == "reply_likes"
        if f not in row or row[f] is None or row[f] == "":
            if required:
                err(
                    f,
                    row.get(f),
                    "missing required field" if f not in row else "required field is empty",
                )
            continue
        n, reason = _as_count(row[f])
        if reason:
            err(f, row[f], reason)
        else:
            vals[f] = n
    t = row.get("reply_time_diff_seconds")
    if t is not None and t != "":
        x, reason = _as_number(t)
        if reason:
            err("reply_time_diff_seconds", t, reason)
        elif x < 0:
            err("reply_time_diff_seconds", t, "must be >= 0")
        elif x > MAX_SECONDS:
            err("reply_time_diff_seconds", t, f"implausibly large (> {MAX_SECONDS:g} s)")
        else:
            vals["reply_time_diff_seconds"] = x
    for f in OPTIONAL_STR:
        v = row.get(f)
        if v is None or v == "":
            continue
        if isinstance(v, float):
            # a JSON float has lost digits already (1e20, 123456789012345678.0): none to keep exactly
            err(
                f,
                v,
                "expected a string, got a JSON number with a fraction or exponent (its digits may "
                "be lost): write the value as a string",
            )
            continue
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # a JSON integer is exact
        if not isinstance(v, str):
            err(f, v, f"expected a string, got {_type_name(v)}")
        elif (reason := text_problem(f, v)) and not reason.startswith("empty"):
            err(f, v, reason)
        elif not reason:
            vals[f] = v
    extra = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    for k, v in extra.items():
        # unknown fields pass through, so they must survive being written back as JSON
        reason = _json_unsafe(v)
        if reason or _has_surrogate(k):
            err(k, v, f"unknown field holds {reason or 'a lone surrogate in its name'}")
        elif isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
            err(k, v, f"text is {len(v):,} characters long, more than the {MAX_TEXT_CHARS:,} cap")
    if errs:
        return None, errs
    return Record(**vals, extra=extra), []


def text_problem(field: str, text: str) -> str:
    """Why `text` cannot be the value of text field `field` ('' when it can): the one text rule of
    data files and of the web API (empty or invisible-only, a NUL, a lone surrogate, over the cap,
    a missing-value marker as an id)."""
    if is_blank(text):
        return (
            "empty text after stripping whitespace"
            if not text.strip()
            else "text holds only invisible or control characters (counts as empty)"
        )
    if "\x00" in text:
        # C tools, databases and tokenizers cut or refuse text at a NUL: it is a broken export
        return "text holds a NUL character (U+0000): remove it"
    if _has_surrogate(text):
        return "text holds a lone surrogate (invalid Unicode, cannot be written as UTF-8)"
    if len(text) > MAX_TEXT_CHARS:
        return f"text is {len(text):,} characters long, more than the {MAX_TEXT_CHARS:,} cap"
    if field in ID_FIELDS and text.strip().lower() in _MISSING_WORDS:
        return f"{text.strip()!r} is a missing-value marker (e.g. from a spreadsheet), not an id"
    return ""


def is_blank(text: str) -> bool:
    """True when `text` prints as nothing: only whitespace, control, zero-width or format
    characters (e.g. U+200B, U+FEFF, U+2060), or blank-rendering fillers (e.g. U+3164)."""
    return all(
        c.isspace() or c in _BLANK_CHARS or unicodedata.category(c) in _BLANK_CATEGORIES
        for c in text
    )


def _number_text_problem(s: str, pattern: re.Pattern) -> str:
    """Why a number written as text is refused ('' when it is plain ASCII digits)."""
    if pattern.fullmatch(s) or s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return ""
    if "_" in s:
        return "number holds an underscore (Python reads 1_000 as 1000, most tools do not): write plain digits"
    if any(c.isdigit() or unicodedata.category(c) == "Nd" for c in s) and not s.isascii():
        return "number uses non-ASCII digits: write it with 0-9"
    return "expected a number, got text"


def _as_count(v: Any) -> tuple[int, str]:
    if isinstance(v, bool):
        return 0, "expected an integer count, got a boolean"
    if isinstance(v, str):
        s = v.strip()
        problem = _number_text_problem(s, _ASCII_NUMBER)
        if problem:
            return 0, problem.replace("expected a number", "expected an integer count")
        try:
            v = int(s) if _ASCII_INT.fullmatch(s) else float(s)
        except ValueError:
            return 0, "expected an integer count, got text"
    if isinstance(v, float):
        if not math.isfinite(v):
            return 0, "count is not finite"
        if v != int(v):
            return 0, "expected an integer count, got a fraction"
        v = int(v)
    if not isinstance(v, int):
        return 0, f"expected an integer count, got {_type_name(v)}"
    if v < 0:
        return 0, "count must be >= 0"
    if v > MAX_COUNT:
        return 0, f"count is implausibly large (> {MAX_COUNT})"
    return v, ""


def _as_number(v: Any) -> tuple[float, str]:
    if isinstance(v, bool):
        return 0.0, "expected a number, got a boolean"
    if isinstance(v, str):
        problem = _number_text_problem(v.strip(), _ASCII_NUMBER)
        if problem:
            return 0.0, problem
        try:
            v = float(v.strip())
        except ValueError:
            return 0.0, "expected a number, got text"
    if not isinstance(v, (int, float)):
        return 0.0, f"expected a number, got {_type_name(v)}"
    v = float(v)
    if not math.isfinite(v):
        return 0.0, "number is not finite"
    return v, ""


def _type_name(v: Any) -> str:
    """The JSON name of a value's type (users write JSON, not Python)."""
    return "object" if isinstance(v, dict) else _JSON_TYPES.get(type(v), type(v).__name__)


def _has_surrogate(text: str) -> bool:
    """True for lone surrogates (from JSON "\\ud800" escapes or undecodable CSV bytes)."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def _json_unsafe(v: Any) -> str:
    """Why `v` cannot be written back as strict UTF-8 JSON, or '' when it can."""
    if isinstance(v, float) and not math.isfinite(v):
        return "a non-finite number (NaN/Infinity is not valid JSON)"
    if isinstance(v, str) and _has_surrogate(v):
        return "a lone surrogate (invalid Unicode)"
    if isinstance(v, dict):
        dup = getattr(v, "duplicate_keys", ())
        if dup:
            return f"an object that gives key {dup[0]!r} more than once (which value is meant?)"
        reasons = (_json_unsafe(k) or _json_unsafe(x) for k, x in v.items())
        return next((r for r in reasons if r), "")
    if isinstance(v, list):
        return next((r for r in map(_json_unsafe, v) if r), "")
    return ""


class _Row(dict):
    """A parsed JSON object that remembers keys given twice (json keeps the last silently)."""

    duplicate_keys: tuple[str, ...] = ()


def _object_hook(pairs: list[tuple[str, Any]]) -> dict:
    row = dict(pairs)
    if len(row) == len(pairs):
        return row  # the common case stays a plain dict (it may end up in Record.extra)
    seen: set[str] = set()
    dup = _Row(pairs)
    dup.duplicate_keys = tuple(dict.fromkeys(k for k, _ in pairs if k in seen or seen.add(k)))
    return dup


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # truncated or corrupt gzip, no permission
        raise DataError(
            [RowError(str(path), 0, None, path.name, f"cannot read file ({e})")],
            hint="check that it is a complete, readable JSONL, JSONL.gz or CSV file",
        ) from None


def _iter_raw_rows(path: Path):
    """Yield (line_no, raw_bytes, row_or_None, error_reason) for JSONL(.gz) or CSV files."""
    name = path.name[:-3] if path.suffix == ".gz" else path.name
    data = _read_bytes(path)
    if name.endswith(".csv"):
        yield from _iter_csv(data)
        return
    for i, raw in enumerate(data.splitlines(keepends=True), start=1):
        body = raw.rstrip(b"\r\n")
        if i == 1 and body.startswith(b"\xef\xbb\xbf"):
            body = body[3:]  # a UTF-8 BOM is harmless; strip it rather than reject line 1
        if not body.strip():
            continue
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            yield i, raw, None, f"invalid UTF-8 at byte {e.start}"
            continue
        try:
            # NaN/Infinity parse to floats so the field that holds them is named in the error
            row = json.loads(text, parse_constant=float, object_pairs_hook=_object_hook)
        except (json.JSONDecodeError, ValueError) as e:
            yield i, raw, None, f"line is not valid JSON ({e})"
            continue
        except RecursionError:
            yield i, raw, None, "line is not valid JSON (nested too deeply)"
            continue
        yield i, raw, row, ""


def _iter_csv(data: bytes):
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Undecodable bytes become lone surrogates, so only the rows holding them are rejected
    # (parse_row names the field) and the rest of the file still loads.
    text = data.decode("utf-8", "surrogateescape")
    blines = data.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    repeated = ""
    start = 1
    with csv_field_limit(len(text) + 1):
        for cells in _csv_rows(reader):
            line, end = start, reader.line_num
            start = end + 1
            raw = b"".join(blines[line - 1 : end])  # a quoted cell may span several lines
            if isinstance(cells, str):  # the csv module gave up: the rest of the file is one row
                yield line, b"".join(blines[line - 1 :]), None, cells
                return
            if header is None:
                header = [h.strip() for h in cells]
                missing = [f for f in (*REQUIRED_TEXT, "reply_likes") if f not in header]
                if missing:
                    # the rows below are still read: each fails on the missing field, so every
                    # line is counted and lands in the rejects file
                    yield (
                        line,
                        raw,
                        None,
                        f"CSV header lacks required column(s): {', '.join(missing)}",
                    )
                repeated = ", ".join(repeated_names(header))
                if repeated:
                    yield line, raw, None, f"CSV header repeats column(s) {repeated}"
                continue
            if not any(c.strip() for c in cells):
                continue
            if repeated:  # which of two same-named cells is meant? every row is refused
                yield line, raw, None, f"CSV header repeats column(s) {repeated}"
            elif len(cells) != len(header):
                yield line, raw, None, f"CSV row has {len(cells)} cells, header has {len(header)}"
            else:
                yield line, raw, dict(zip(header, cells)), ""


def repeated_names(names: list[str]) -> list[str]:
    """Column names given more than once, in order of first repeat."""
    seen: set[str] = set()
    return list(dict.fromkeys(n for n in names if n in seen or seen.add(n)))


@contextlib.contextmanager
def csv_field_limit(n: int):
    """Let the csv module read cells of up to `n` characters (its default limit is 131,072), so
    an over-long cell is read whole and refused by the text cap with its row named, instead of
    stopping the parse; the data is in memory already, so the limit guards nothing here."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, n))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_rows(reader):
    """The reader's rows; a csv.Error becomes its message (a str) as the last item."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield f"CSV cannot be parsed from here on ({e})"
            return


def append_unique(records: list[Record], seen: set[tuple[str, str]], rec: Record) -> bool:
    """Append `rec` unless its (tweet_id, reply) was seen (first row wins); True for a duplicate."""
    key = (rec.tweet_id, rec.reply.strip())
    if key in seen:
        return True
    seen.add(key)
    records.append(rec)
    return False


def load_records(
    path: str | Path,
    skip_invalid: bool = False,
    max_errors: int = 50,
) -> LoadResult:
    """Load and validate records from JSONL, JSONL.gz or CSV.

    Args:
        path: the data file.
        skip_invalid: keep going past bad rows (they are returned in `rejected_lines`).
        max_errors: how many errors an exception lists before summarising the rest.

    Returns:
        A LoadResult; duplicates (same tweet_id and reply) are removed keeping the first row.

    Raises:
        DataError: any bad row when `skip_invalid` is False.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise missing_path_error(path, "data file")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a records file (JSONL, JSONL.gz or CSV)")
    records: list[Record] = []
    errors: list[RowError] = []
    rejected: list[bytes] = []
    seen: set[tuple[str, str]] = set()
    dups = n_rows = 0
    for line, raw, row, reason in _iter_raw_rows(path):
        n_rows += 1
        if reason:
            value = raw[:80].decode("utf-8", "replace")
            row_errs = [RowError(str(path), line, None, value, reason)]
            rec = None
        else:
            rec, row_errs = parse_row(row, str(path), line)
        if row_errs:
            errors.extend(row_errs)
            rejected.append(raw if raw.endswith(b"\n") else raw + b"\n")
            continue
        dups += append_unique(records, seen, rec)
    if errors and not skip_invalid:
        raise DataError(
            errors[:max_errors],
            total=len(errors),
            hint="fix the row(s), or pass --skip-invalid to write them to a rejects file",
        )
    return LoadResult(records, errors, rejected, dups, n_rows)


def write_rejects(path: str | Path, rejected_lines: list[bytes]) -> Path:
    """Write bad lines verbatim (bytes as read) to a rejects file."""
    return atomic_write_bytes(path, b"".join(rejected_lines))


def write_records(path: str | Path, records: list[Record]) -> Path:
    """Write records as JSONL (gzip when the name ends in .gz), atomically."""
    path = Path(path)
    text = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)
