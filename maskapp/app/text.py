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


LEGEND_NAME_CHARS = 36  # about a third of a chart's width at 1000 px, so that a few sources share a line


def short_source(name: str, most: int = LEGEND_NAME_CHARS) -> str:
    """A long source name cut to what tells cameras apart, for a chart's legend: a stream's host name (an
    address whole) and its last path part ('cam-entrance-north/…/101' for rtsp://cam-entrance-north.
    site.local:554/Streaming/Channels/101), a file's name; names up to `most` characters as they are.
    Each of two RTSP names on a legend line of its own left the chart above them a strip. Callers keep
    the full name where two sources' short names meet."""
    if len(name) <= most:
        return name
    rest = name.split("://", 1)[-1].rsplit("@", 1)[-1]  # no scheme, and no password in a legend
    head, _, path = rest.partition("/")
    host = head
    if head.startswith("["):  # an IPv6 address, whole
        host = head.partition("]")[0] + "]"
    elif "://" in name:
        host = head.split(":", 1)[0]  # no port
        if re.search(r"[a-z]", host, re.IGNORECASE):  # a name, not an address
            host = host.split(".", 1)[0]  # cameras of one site share its domain
    last = path.rstrip("/").rsplit("/", 1)[-1]
    shown = f"{host}/…/{last}" if last and last != path.rstrip("/") else f"{host}/{last}" if last else host
    if len(shown) > most:  # still long (a long host or file name): its start and end
        keep = most - 1
        shown = f"{shown[: keep // 2]}…{shown[-(keep - keep // 2) :]}"
    return shown
