"""Outputs checked before the work that fills them: a command that would run for minutes and only then
find its result file unwritable fails at once instead, with one OutputError naming the path."""

from __future__ import annotations

import tempfile
from pathlib import Path

from maskapp.errors import OutputError


def unwritable(path: Path, error: OSError) -> OutputError:
    """The error for a result file that could not be written (raise it `from None`)."""
    return OutputError(f"cannot write {path} ({error.strerror}); allowed: a writable file path")


def ensure_writable_file(path: Path) -> Path:
    """`path` unchanged when a file can be written there, else OutputError. Its folder is made, as writing
    the file would make it; a file that did not exist is created to try and removed again."""
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except OSError as error:
        raise unwritable(path, error) from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def ensure_writable_folder(folder: Path) -> Path:
    """`folder`, made when missing, when files can be written in it, else OutputError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(
            f"cannot write in folder {folder} ({error.strerror}); allowed: a writable folder path"
        ) from None
    return folder
