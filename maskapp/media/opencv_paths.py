"""File names as OpenCV must get them.

OpenCV's Python binding encodes a path (or a stream URL) as UTF-8, and a str it cannot encode crashes the
whole process with a segmentation fault: no exception, no message. Python gives such a str for any name it
could not decode with the file-system encoding: every non-ASCII name under an ASCII locale (`LANG=C` in a
container, `PYTHONUTF8=0`), and bytes of another encoding (a Latin-1 name from an old archive) anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

NOT_UTF8 = "its name is not UTF-8 text, which OpenCV cannot open; allowed: a UTF-8 name (rename it)"


def opencv_path(path: str | Path) -> str | None:
    """`path` as the str OpenCV opens the same file with (its bytes read as UTF-8); None when its bytes
    are not UTF-8, which no str given to OpenCV can name."""
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_bgr(path: str | Path) -> np.ndarray | None:
    """cv2.imread (BGR) under any name: None when the file cannot be decoded or no str can name it."""
    name = opencv_path(path)
    return None if name is None else cv2.imread(name, cv2.IMREAD_COLOR)
