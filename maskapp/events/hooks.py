"""Outgoing violation hooks: POST each violation event as JSON to a gate or any HTTP endpoint.

The frame loop only puts the event on a bounded queue (never blocks; a full queue drops and counts); one
background daemon thread sends, with a timeout and a few retries with exponential backoff. A failure is
logged and counted, never raised: a gate that is down must not stop the camera. Standard library only.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from maskapp import __version__
from maskapp.errors import HookError
from maskapp.events.store import Event
from maskapp.media.sources import redact_source

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")
_POLL_S = 0.1  # how often an idle sending thread checks for close()
_LOG_EVERY_DROP = 100  # a full queue logs its first drop and then every 100th, not every frame


@dataclass(frozen=True)
class HookStats:
    sent: int  # delivered with a 2xx answer
    failed: int  # given up after the retries (or a 4xx answer, which retrying cannot fix)
    dropped: int  # never sent: queue full, notified after close, or left when close timed out
    pending: int  # still queued, or being sent (a gate that has not answered yet)


@dataclass(frozen=True)
class _Failure:
    reason: str
    retry: bool


class WebhookNotifier:
    """POSTs violation events (maskapp.events.store.Event or a JSON-able mapping) to `url`.

    Raises HookError at construction for a URL other than http(s)://host... or a setting out of range.
    `notify` returns at once (True if queued). `close(timeout)` sends what is queued, then stops."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        queue_size: int = 100,
        backoff_s: float = 0.25,
    ) -> None:
        self.url, self._headers = checked_url(url)
        self._shown_url = redact_source(self.url)  # logs must not carry a token or password from the URL
        _check_settings(timeout_s, retries, queue_size, backoff_s)
        self._timeout_s, self._retries, self._backoff_s = timeout_s, retries, backoff_s
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=queue_size)
        self._counts_lock = threading.Lock()
        self._sent = self._failed = self._dropped = self._in_flight = 0
        self._closed = False
        self._abort = threading.Event()  # set when close() times out: stop retrying, drop the rest
        self._thread = threading.Thread(target=self._run, name="maskapp-webhook", daemon=True)
        self._thread.start()

    def notify(self, event: Event | Mapping[str, object]) -> bool:
        """Queue one event; never blocks. False (logged, counted) when the queue is full or closed."""
        payload = event.to_dict() if isinstance(event, Event) else dict(event)
        if self._closed:
            self._count_dropped("the notifier is closed")
            return False
        try:
            self._queue.put_nowait(json.dumps(payload).encode("utf-8"))
        except queue.Full:
            self._count_dropped(f"the queue is full ({self._queue.maxsize} waiting)")
            return False
        return True

    def stats(self) -> HookStats:
        with self._counts_lock:
            # The event being sent counts as pending: when close() times out on a gate that does not
            # answer, it was in no count at all ("0 sent, 0 failed, 0 dropped" for one violation).
            return HookStats(self._sent, self._failed, self._dropped, self._queue.qsize() + self._in_flight)

    def close(self, timeout: float = 5.0) -> HookStats:
        """Send what is queued (up to `timeout` seconds), then stop the thread. Idempotent."""
        if not self._closed:
            self._closed = True  # the thread ends once the queue is empty
            self._thread.join(max(0.0, timeout))
            if self._thread.is_alive():
                unsent = self.stats().pending
                self._abort.set()
                logger.warning(
                    "webhook %s: close timed out, %d event(s) left unsent or unconfirmed",
                    self._shown_url,
                    unsent,
                )
        return self.stats()

    # --- the sending thread ---

    def _run(self) -> None:
        while True:
            try:
                body = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._closed:
                    return
                continue
            if self._abort.is_set():
                self._count_dropped("close timed out")
                continue
            with self._counts_lock:
                self._in_flight = 1
            try:
                self._deliver(body)
            finally:
                with self._counts_lock:
                    self._in_flight = 0

    def _deliver(self, body: bytes) -> None:
        failure = _Failure("not tried", retry=False)
        for attempt in range(self._retries + 1):
            # Exponential backoff between tries; an aborted close cuts the wait short.
            if attempt and self._abort.wait(self._backoff_s * 2 ** (attempt - 1)):
                break
            failure = self._post(body)
            if failure is None:
                self._add(sent=1)
                return
            logger.debug("webhook %s: try %d failed: %s", self._shown_url, attempt + 1, failure.reason)
            if not failure.retry:
                break
        self._add(failed=1)
        logger.warning(
            "webhook %s: violation event not delivered (%s); processing goes on",
            self._shown_url,
            failure.reason,
        )

    def _post(self, body: bytes) -> _Failure | None:
        request = urllib.request.Request(self.url, data=body, method="POST", headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read(65536)  # let the server finish its answer before the connection closes
            return None
        except urllib.error.HTTPError as exc:
            # 408 and 429 and 5xx may pass on a later try; any other 4xx will not.
            return _Failure(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500 or exc.code in (408, 429))
        except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, DNS, timeout
            reason = getattr(exc, "reason", exc)
            return _Failure(f"{type(exc).__name__}: {reason}", retry=True)
        except Exception as exc:  # anything else (a malformed answer...): the sending thread must live on
            logger.debug("webhook %s: unexpected error", self._shown_url, exc_info=True)
            return _Failure(f"{type(exc).__name__}: {exc}", retry=False)

    def _add(self, *, sent: int = 0, failed: int = 0) -> None:
        with self._counts_lock:
            self._sent += sent
            self._failed += failed
            self._in_flight = 0  # in the same step: never counted twice

    def _count_dropped(self, why: str) -> None:
        with self._counts_lock:
            self._dropped += 1
            dropped = self._dropped
        if dropped == 1 or dropped % _LOG_EVERY_DROP == 0:
            logger.warning("webhook %s: event dropped, %s (%d dropped so far)", self._shown_url, why, dropped)


def checked_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL to post to and the request headers. user:password in the URL becomes a Basic
    Authorization header (urllib would take it for part of the host name)."""
    shown, example = redact_source(str(url)), "expected e.g. http://gate.local:8080/violation"
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError as exc:  # a malformed IPv6 host, or a port that is no number from 0 to 65535
        raise HookError(f"webhook URL {shown!r} is malformed ({exc}); {example}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        if "://" not in str(url):
            raise HookError(
                f"webhook URL {shown!r} does not start with http:// or https://; only http:// and "
                f"https:// are allowed ({example})"
            )
        raise HookError(
            f"webhook URL {shown!r} has scheme {parts.scheme!r}; only http:// and https:// are allowed"
        )
    if not parts.hostname or any(c.isspace() for c in parts.hostname):
        raise HookError(f"webhook URL {shown!r} has no host, or blanks in it; {example}")
    if port == 0:
        raise HookError(f"webhook URL {shown!r} has port 0; allowed: a port from 1 to 65535")
    headers = {"Content-Type": "application/json", "User-Agent": f"maskapp/{__version__}"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    netloc = f"{parts.hostname}:{port}" if port else parts.hostname
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
        netloc = f"[{parts.hostname}]:{port}" if port else f"[{parts.hostname}]"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), headers


def _check_settings(timeout_s: float, retries: int, queue_size: int, backoff_s: float) -> None:
    if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
        raise HookError(f"webhook timeout must be a positive number of seconds, got {timeout_s!r}")
    if not (isinstance(retries, int) and 0 <= retries <= 10):
        raise HookError(f"webhook retries must be a whole number from 0 to 10, got {retries!r}")
    if not (isinstance(queue_size, int) and queue_size >= 1):
        raise HookError(f"webhook queue size must be a whole number of at least 1, got {queue_size!r}")
    if not (isinstance(backoff_s, int | float) and math.isfinite(backoff_s) and backoff_s >= 0):
        raise HookError(f"webhook backoff must be zero or more seconds, got {backoff_s!r}")
