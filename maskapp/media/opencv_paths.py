"""File names as OpenCV must get them.

OpenCV's Python binding encodes a path (or a stream URL) as UTF-8, and a str it cannot encode crashes the
whole process with a segmentation fault: no exception, no message. Python gives such a str for any name it
could not decode with the file-system encoding: every non-ASCII name under an ASCII locale (`LANG=C` in a
container, `PYTHONUTF8=0`), and bytes of another encoding (a Latin-1 name from an old archive) anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def opencv_path(path: str | Path) -> str | None:
    """`path` as the str OpenCV opens the same file with (its bytes read as UTF-8); None when its bytes
    are not UTF-8, which no str given to OpenCV can name."""
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def not_utf8(path: str | Path) -> str:
    """Why a path that opencv_path refused cannot be used, and what is allowed, for an error message."""
    return f"its name is not UTF-8 text, which OpenCV cannot open; allowed: a UTF-8 name (rename {path})"
