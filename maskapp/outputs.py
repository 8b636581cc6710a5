"""Outputs checked before the work that fills them: a command that would run for minutes and only then
find its result file unwritable fails at once instead, with one OutputError naming the path."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from maskapp.errors import OutputError


def path_text(path: Path | str) -> str:
    """`path` as text any JSON reader or terminal takes: name bytes that are not UTF-8 (a file named on a
    system with another encoding) as \\xNN, as `ls -b` shows them, not as lone surrogates, which
    strict JSON parsers refuse."""
    text = str(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name decodes to: escape it as it stands
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def why_not_there(path: Path, expected: str) -> str:
    """Why `path` is not the `expected` "folder" or "file" to read, in words for an error: a file given
    where a folder is expected (or the reverse) exists, so "does not exist" would mislead."""
    if not path.exists():
        return "does not exist"
    if expected == "folder":
        return "is a file, not a folder"
    return "is a folder, not a file" if path.is_dir() else "is not a regular file"


def why_unwritable(folder: Path, error: OSError) -> str:
    """Why `folder` could not be made or written in. A file standing where one of its folders should be
    gets its own words: mkdir's are a puzzling "File exists" or "Not a directory"."""
    chain = [*reversed(folder.parents), folder]
    blocking = next((part for part in chain if part.exists() and not part.is_dir()), None)
    return f"{blocking} is a file, not a folder" if blocking else str(error.strerror or error)


def unwritable(path: Path, error: OSError) -> OutputError:
    """The error for a result file that could not be written (raise it `from None`)."""
    reason = why_unwritable(path.parent, error)
    return OutputError(f"cannot write {path} ({reason}); allowed: a writable file path")


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
        reason = why_unwritable(folder, error)
        allowed = "allowed: a writable folder path"
        raise OutputError(f"cannot write in folder {folder} ({reason}); {allowed}") from None
    return folder


def refuse_overwriting(outputs: Mapping[str, Path | Iterable[Path] | None], inputs: Iterable[Path]) -> None:
    """OutputError when a result (`flag: path` or `flag: paths`) would be written over one of the command's
    own input files, or over another of its results (video --out x --json x): either would be lost, with
    nothing said."""
    kept = {path.resolve() for path in inputs if path.is_file()}
    written: dict[Path, str] = {}
    for flag, paths in outputs.items():
        for path in [paths] if isinstance(paths, Path) else paths or ():
            if path.resolve() in kept:
                raise OutputError(
                    f"{flag} {path} is also this command's input, which writing there would destroy; "
                    "allowed: another path"
                )
            other = written.setdefault(path.resolve(), flag)
            if other != flag:
                raise OutputError(
                    f"{flag} {path} is also where {other} writes, so one result would replace the other; "
                    "allowed: a different path for each"
                )


def require_new_folder(folder: Path, made_by: str, own_files: Iterable[str] = ()) -> Path:
    """`folder` when it is missing, empty, or holds only `own_files` (a previous result of the same kind,
    to be replaced); else OutputError: writing there would replace files of another kind without a word."""
    own = set(own_files)
    try:
        others = sorted(entry.name for entry in folder.iterdir() if entry.name not in own)
    except OSError:  # missing, or not a folder: making it will say what is wrong
        return folder
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise OutputError(
            f"{folder} already holds {shown}, which {made_by} would replace or mix with; "
            "allowed: a new or empty folder"
        )
    return folder
