"""Importers: common exports → records (DESIGN §2).

X API v2 (search or conversation responses): every tweet in `data` that has a `replied_to`
reference becomes a record paired with its parent, found in `includes.tweets` or `data` of any
response in the file. Metrics come from `public_metrics`, followers from `includes.users`, and
reply_time_diff_seconds from the two `created_at` stamps. Input: one response object, a JSON list
of responses, or JSONL with one response per line. Replies whose parent is not in the file are
counted and skipped (a reply without its tweet is no training example), never silently dropped.

CSV: any CSV whose columns map onto record fields with `source_col=field` pairs; unmapped
columns keep their names (so columns already named like fields need no mapping, and the rest
pass through as extra fields).

Every produced row goes through the record validator, so an import reports bad rows exactly as
`load_records` does (file, line — the response number for X API files — field, value).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from replyrl.errors import InputError, missing_path_error
from replyrl.records import (
    KNOWN_FIELDS,
    DataError,
    LoadResult,
    Record,
    RowError,
    append_unique,
    csv_field_limit,
    parse_row,
    repeated_names,
)


@dataclass
class ImportResult:
    """Records produced by an importer and what it skipped, by reason."""

    result: LoadResult
    """Validated records, row errors, duplicates, and rejected rows (as from `load_records`,
    except that a rejected row is the produced record as a JSON line: an export's item is not a
    line of its own)."""
    skipped: Counter = field(default_factory=Counter)
    """Items not turned into records (e.g. 'parent tweet not in file'), by reason."""


def import_xapi(path: str | Path, skip_invalid: bool = False, max_errors: int = 50) -> ImportResult:
    """Turn X API v2 response JSON (object, list, or JSONL of objects) into records."""
    path = Path(path)
    responses = _read_responses(path)
    tweets: dict[str, dict] = {}
    users: dict[str, dict] = {}
    errors: list[RowError] = []
    order: list[tuple[int, dict]] = []  # (response number, tweet) for tweets listed in `data`
    for n, resp in responses:
        if not isinstance(resp, dict):
            errors.append(RowError(str(path), n, None, resp, "expected an X API response object"))
            continue
        data = resp.get("data", [])
        if isinstance(data, dict):  # a single-tweet lookup response
            data = [data]
        includes = resp.get("includes") or {}
        bad = [
            RowError(str(path), n, name, val, "expected a list of objects with an 'id'")
            for name, val in (
                ("data", data),
                ("includes.tweets", includes.get("tweets", [])),
                ("includes.users", includes.get("users", [])),
            )
            if not isinstance(val, list) or not all(isinstance(t, dict) and "id" in t for t in val)
        ]
        if bad:
            errors += bad
            continue
        for t in [*data, *includes.get("tweets", [])]:
            tweets.setdefault(str(t["id"]), t)
        for u in includes.get("users", []):
            users.setdefault(str(u["id"]), u)
        order += [(n, t) for t in data]
    skipped: Counter = Counter()
    rows: list[tuple[int, dict]] = []
    seen_ids: set[str] = set()
    for n, t in order:
        parent_id = _replied_to(t)
        if parent_id is None:
            skipped["not a reply (no replied_to reference)"] += 1
            continue
        if str(t["id"]) in seen_ids:
            skipped["same reply listed twice"] += 1
            continue
        seen_ids.add(str(t["id"]))
        parent = tweets.get(parent_id)
        if parent is None:
            skipped["parent tweet not in file"] += 1
            continue
        rows.append((n, _xapi_row(t, parent, users)))
    if errors and not skip_invalid:
        raise DataError(errors[:max_errors], total=len(errors))
    result = _validate(rows, str(path), skip_invalid, max_errors, prior_errors=errors)
    return ImportResult(result, skipped)


def import_csv(
    path: str | Path,
    mapping: dict[str, str] | None = None,
    skip_invalid: bool = False,
    max_errors: int = 50,
) -> ImportResult:
    """Read a CSV, renaming columns by `mapping` ({source column: record field})."""
    path = Path(path)
    mapping = dict(mapping or {})
    for src, dst in mapping.items():
        if dst not in KNOWN_FIELDS:
            hint = difflib.get_close_matches(dst, KNOWN_FIELDS, n=1)
            raise DataError(
                [
                    RowError(
                        str(path),
                        0,
                        dst,
                        f"{src}={dst}",
                        "not a record field"
                        + (
                            f"; did you mean '{hint[0]}'?"
                            if hint
                            else f"; fields: {', '.join(KNOWN_FIELDS)}"
                        ),
                    )
                ]
            )
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            [
                RowError(
                    str(path),
                    line,
                    None,
                    data[e.start : e.start + 8],
                    f"invalid UTF-8 at byte {e.start}",
                )
            ]
        ) from None
    with csv_field_limit(len(text) + 1):
        try:
            table = _csv_table(text)
        except csv.Error as e:
            raise DataError(
                [RowError(str(path), 0, None, path.name, f"CSV cannot be parsed ({e})")]
            ) from None
    if not table:
        raise DataError([RowError(str(path), 1, None, "", "CSV file is empty (no header)")])
    header = [h.strip() for h in table[0][1]]
    missing_src = [s for s in mapping if s not in header]
    if missing_src:
        raise DataError(
            [
                RowError(str(path), 1, s, header, "mapped column not in the CSV header")
                for s in missing_src
            ]
        )
    names = [mapping.get(h, h) for h in header]
    repeated = repeated_names(names)
    if repeated:
        raise DataError(
            [
                RowError(
                    str(path),
                    1,
                    repeated[0],
                    header,
                    "column given more than once in the header"
                    + (" (after --map renaming)" if names != header else "")
                    + ": which one is meant? rename or drop one",
                )
            ]
        )
    rows: list[tuple[int, dict]] = []
    shape_errors: list[RowError] = []
    for line, cells in table[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            shape_errors.append(
                RowError(
                    str(path),
                    line,
                    None,
                    cells,
                    f"CSV row has {len(cells)} cells, header has {len(names)}",
                )
            )
            continue
        rows.append((line, dict(zip(names, cells))))
    if shape_errors and not skip_invalid:
        raise DataError(shape_errors[:max_errors], total=len(shape_errors))
    result = _validate(rows, str(path), skip_invalid, max_errors, prior_errors=shape_errors)
    return ImportResult(result)


def _csv_table(text: str) -> list[tuple[int, list[str]]]:
    """(line the row starts on, its cells) per CSV row (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, start = [], 1
    for cells in reader:
        rows.append((start, cells))
        start = reader.line_num + 1
    return rows


def parse_mapping(items: list[str]) -> dict[str, str]:
    """Parse ['likes=reply_likes', ...] into {'likes': 'reply_likes'}."""
    out: dict[str, str] = {}
    for it in items:
        src, sep, dst = it.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise InputError(f"--map expects source_column=field, got {it!r}")
        out[src.strip()] = dst.strip()
    return out


def _read_responses(path: Path) -> list[tuple[int, Any]]:
    """(number, response) pairs: list index + 1 for a JSON list/object, line number for JSONL."""
    if not path.exists():
        raise missing_path_error(path, "X API file")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            [
                RowError(
                    str(path),
                    raw[: e.start].count(b"\n") + 1,
                    None,
                    raw[e.start : e.start + 8],
                    f"invalid UTF-8 at byte {e.start}",
                )
            ]
        ) from None
    try:
        obj = json.loads(text)
        return list(enumerate(obj, start=1)) if isinstance(obj, list) else [(1, obj)]
    except json.JSONDecodeError:
        pass
    except RecursionError:
        raise DataError(
            [RowError(str(path), 1, None, path.name, "JSON nested too deeply to be an export")]
        ) from None
    out, errors = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((i, json.loads(line)))
            except RecursionError:
                errors.append(RowError(str(path), i, None, line[:80], "JSON nested too deeply"))
            except json.JSONDecodeError as e:
                errors.append(
                    RowError(str(path), i, None, line[:80], f"line is not valid JSON ({e})")
                )
    if errors:
        raise DataError(
            errors[:50],
            total=len(errors),
            hint="expected one X API response object, a JSON list of them, or JSONL",
        )
    return out


def _replied_to(tweet: dict) -> str | None:
    for ref in tweet.get("referenced_tweets") or []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and ref.get("id") is not None:
            return str(ref["id"])
    return None


def _xapi_row(t: dict, parent: dict, users: dict[str, dict]) -> dict[str, Any]:
    m, pm = _obj(t.get("public_metrics")), _obj(parent.get("public_metrics"))
    author, p_author = users.get(str(t.get("author_id"))), users.get(str(parent.get("author_id")))
    row: dict[str, Any] = {
        "tweet_id": str(parent["id"]),
        "tweet": parent.get("text"),
        "reply": t.get("text"),
        "reply_likes": m.get("like_count"),
        "reply_retweets": m.get("retweet_count", 0),
        "tweet_likes": pm.get("like_count", 0),
        "reply_id": str(t["id"]),
        "created_at": t.get("created_at"),
        "source": "x-api-v2",
    }
    if author is not None:
        row["reply_author"] = author.get("username") or str(author["id"])
        followers = _obj(author.get("public_metrics")).get("followers_count")
        if followers is not None:
            row["reply_author_followers"] = followers
    if p_author is not None:
        row["tweet_author"] = p_author.get("username") or str(p_author["id"])
    delay = _seconds_between(parent.get("created_at"), t.get("created_at"))
    if delay is not None:
        row["reply_time_diff_seconds"] = delay
    for k in ("conversation_id", "lang"):
        if t.get(k) is not None:
            row[k] = t[k]
    for k in ("reply_count", "quote_count", "impression_count"):
        if k in m:
            row[f"reply_{k}"] = m[k]
    return {k: v for k, v in row.items() if v is not None or k in ("tweet", "reply", "reply_likes")}


def _obj(x: Any) -> dict:
    """`x` when it is a JSON object, else {} (a malformed metrics block then reads as absent, and
    the required reply_likes is reported missing)."""
    return x if isinstance(x, dict) else {}


def _seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from `start` to `end` (ISO 8601); None when either is missing or unparsable.

    A negative difference (clock skew between services) is clamped to 0: the reply cannot
    precede its tweet, and dropping the timing would hide the row from the later-wins rule.
    """
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    if (a.tzinfo is None) != (b.tzinfo is None):  # naive vs aware: no common clock
        return None
    return max(0.0, (b - a).total_seconds())


def _validate(
    rows: list[tuple[int, dict]],
    file: str,
    skip_invalid: bool,
    max_errors: int,
    prior_errors: list[RowError],
) -> LoadResult:
    records: list[Record] = []
    errors = list(prior_errors)
    seen: set[tuple[str, str]] = set()
    rejected: list[bytes] = []
    dups = 0
    for line, row in rows:
        rec, errs = parse_row(row, file, line)
        if errs:
            errors += errs
            rejected.append((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            continue
        dups += append_unique(records, seen, rec)
    if errors and not skip_invalid:
        raise DataError(errors[:max_errors], total=len(errors))
    return LoadResult(records, errors, rejected, dups, len(rows) + len(prior_errors))
