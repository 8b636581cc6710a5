"""Video source names as they may be shown, logged or stored."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_source(source: str) -> str:
    """A source name safe to show and log: a stream URL loses its user:password and query (tokens live
    there)."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
    except ValueError:  # a malformed IPv6 host ('http://[::1'): cut by hand, the same way
        scheme, _, rest = source.partition("://")
        authority, slash, path = rest.split("?", 1)[0].split("#", 1)[0].partition("/")
        return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    netloc = parts.netloc.rpartition("@")[2]  # the host and port, as written (even a malformed port)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
