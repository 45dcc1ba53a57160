"""Helpers of the bad-input suites (tests/test_bad_input_*.py): run the CLI in process and check
that an expected error came out as exactly one `error:` line, exit code 2, and no traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from replyrl.cli import app

runner = CliRunner()


def cli(*args) -> object:
    """`replyrl ARGS...` in process (typer's CliRunner)."""
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> str:
    """Exit code 2, no traceback, one `error:` line on stderr holding every needle; returns it."""
    out = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}\n{result.exception!r}"
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    lines = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]
