"""The one base class of expected errors: problems a person at the terminal can fix.

Every error the project raises on purpose for bad input, a missing model, a corrupt artifact or a
config that cannot work subclasses `UserError`, so the CLI's error boundary can print its message as
one line (exit code 2) and keep tracebacks for bugs (or for `--debug`). The specific classes keep
their historical builtin bases (`ConfigError` is still a `ValueError`) so callers that catch those
continue to work.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class UserError(Exception):
    """An expected error; its message says what is wrong (file, line, field, value) and what to do."""


class InputError(UserError, ValueError):
    """Input that cannot be used as a whole (too little data for a step, an argument out of range);
    a single bad row is a `replyrl.records.DataError` instead."""


class ArtifactError(UserError, ValueError):
    """A saved artifact (reward model, adapter, checkpoint, cache, result file) that is incomplete,
    corrupt or does not match what reads it; the message names the file."""


class ArtifactNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user pointed at does not exist; the message says how to make it."""


class FileAccessError(UserError, OSError):
    """The operating system refused a read or write of a user-given path (a folder where a file is
    expected, permission denied, a full disk); the message names the path and what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


# What to do about the OSErrors a user can cause with a path they give.
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write somewhere else",
    errno.EDQUOT: "the disk quota is exhausted: free space or write somewhere else",
    errno.EACCES: "permission denied: check the path's permissions or pick another path",
    errno.EPERM: "permission denied: check the path's permissions or pick another path",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EISDIR: "this is a folder: give a file path",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ELOOP: "too many symbolic links",
}


def missing_path_error(path: str | Path, what: str, hint: str = "") -> ArtifactNotFoundError:
    """The error for a user-given `path` that `Path.exists()` says is not there: a symbolic link
    loop and a link to nothing are named as such (both also read as "not there"), anything else is
    "<what> not found: <path>". `hint` says how to make the missing thing."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return ArtifactNotFoundError(
                f"{what} {path}: a symbolic link loop (the link leads back to itself): point the "
                "link at a real file or give the real path"
            )
        if os.path.islink(path):
            return ArtifactNotFoundError(
                f"{what} {path}: a symbolic link to {os.readlink(path)}, which does not exist"
            )
    tail = f" ({hint})" if hint else ""
    return ArtifactNotFoundError(f"{what} not found: {path}{tail}")


def describe_os_error(e: OSError, what: str = "") -> str:
    """One line for an OSError on a path: `<what> <path>: <problem>: <what to do>`."""
    path = e.filename if e.filename is not None else ""
    hint = _OS_HINTS.get(e.errno or 0) or (e.strerror or e.__class__.__name__)
    where = " ".join(p for p in (what, str(path)) if p)
    return f"{where}: {hint}" if where else hint


def file_access_error(
    e: OSError, path: str | Path | None = None, what: str = ""
) -> FileAccessError:
    """A FileAccessError (one clear line) for an OSError raised while reading or writing `path`."""
    if path is not None and e.filename is None:
        e.filename = str(path)
    err = FileAccessError(describe_os_error(e, what))
    err.errno, err.strerror, err.filename = e.errno, e.strerror, e.filename
    return err
