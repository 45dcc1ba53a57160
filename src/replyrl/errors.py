"""The one base class of expected errors: problems a person at the terminal can fix.

Every error the project raises on purpose for bad input, a missing model, a corrupt artifact or a
config that cannot work subclasses `UserError`, so the CLI's error boundary can print its message as
one line (exit code 2) and keep tracebacks for bugs (or for `--debug`). The specific classes keep
their historical builtin bases (`ConfigError` is still a `ValueError`) so callers that catch those
continue to work.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected error; its message says what is wrong (file, line, field, value) and what to do."""
