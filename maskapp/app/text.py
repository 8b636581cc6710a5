"""Text the pages show: names and messages escaped for markdown, paths shortened, download file names."""

from __future__ import annotations

import re
from pathlib import Path

from maskapp import PROJECT_ROOT

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")


def plain(text: object) -> str:
    """Text from a file name, a path or an error message, shown literally in a markdown element."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def shown_path(path: str | Path) -> str:
    """A path relative to the project when it is inside it (shorter on screen), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def stem(name: str) -> str:
    """A safe download file name stem from an uploaded file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:80] or "image"


def breakable(name: object) -> str:
    """A name a narrow table may break after each / and _ (a zero-width space there): a run name, a
    camera's path or URL is one long word, which made its column as wide as itself."""
    return re.sub(r"([/_])", "\\1\u200b", str(name))
