"""Video source names as they may be shown, logged or stored."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_source(source: str) -> str:
    """A source name safe to show and log: a stream URL loses its user:password and query (tokens live
    there)."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    netloc = parts.netloc.rpartition("@")[2]  # the host and port, as written (even a malformed port)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
