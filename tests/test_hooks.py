"""The violation webhook against real local HTTP servers: delivered, retried, down, slow, full queue,
bad URL; and wired to a recorder, once per non-compliant person."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from maskapp.errors import HookError, MaskappError
from maskapp.events.hooks import HookStats, WebhookNotifier
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.store import Event, SqliteEventStore
from tests.conftest import Gate

EVENT = Event("2026-11-26T09:00:00.000+00:00", "door", "r1", 7, "violation", "without_mask", 42)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """A proxy from the environment must not capture requests to 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def gate() -> Iterator[Gate]:
    server = Gate()
    yield server
    server.stop()


def closed_port_url() -> str:
    """A URL on a port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/violation"


def test_the_gate_receives_the_violation_as_json(gate):
    notifier = WebhookNotifier(gate.url, timeout_s=2)
    assert notifier.notify(EVENT)
    stats = notifier.close(timeout=10)
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (1, 0, 0, 0)
    assert gate.received == [EVENT.to_dict()]
    assert gate.headers[0]["Content-Type"] == "application/json"


def test_a_server_error_is_retried_with_backoff():
    gate = Gate(statuses=[503, 500])
    try:
        notifier = WebhookNotifier(gate.url, retries=3, backoff_s=0.05)
        started = time.monotonic()
        notifier.notify(EVENT)
        stats = notifier.close(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        gate.stop()
    assert (stats.sent, stats.failed) == (1, 0)
    assert len(gate.received) == 3  # 503, 500, then 204
    assert elapsed >= 0.05 + 0.1  # waited 0.05 s, then 0.1 s between the tries


def test_a_client_error_is_not_retried(caplog):
    gate = Gate(statuses=[400])
    try:
        notifier = WebhookNotifier(gate.url, retries=3, backoff_s=0.01)
        notifier.notify(EVENT)
        with caplog.at_level(logging.WARNING):
            stats = notifier.close(timeout=10)
    finally:
        gate.stop()
    assert (stats.sent, stats.failed, len(gate.received)) == (0, 1, 1)
    assert "HTTP 400" in caplog.text


def test_a_gate_that_is_down_is_counted_and_never_blocks_the_caller(caplog):
    notifier = WebhookNotifier(closed_port_url(), timeout_s=0.5, retries=2, backoff_s=0.02)
    started = time.monotonic()
    queued = [notifier.notify(EVENT) for _ in range(5)]
    assert time.monotonic() - started < 0.05  # the frame loop is not held up
    with caplog.at_level(logging.WARNING, logger="maskapp.events.hooks"):
        stats = notifier.close(timeout=20)
    assert all(queued)
    assert (stats.sent, stats.failed, stats.dropped) == (0, 5, 0)
    assert "not delivered" in caplog.text and "processing goes on" in caplog.text


def test_a_slow_gate_times_out():
    hold = threading.Event()
    gate = Gate(hold=hold)
    try:
        notifier = WebhookNotifier(gate.url, timeout_s=0.2, retries=1, backoff_s=0.01)
        started = time.monotonic()
        assert notifier.notify(EVENT)
        assert time.monotonic() - started < 0.05
        stats = notifier.close(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        gate.stop()
    assert (stats.sent, stats.failed) == (0, 1)
    assert len(gate.received) == 2  # the first try and one retry, each given up after 0.2 s
    assert 0.4 <= elapsed < 3


def test_a_full_queue_drops_and_counts_without_blocking():
    hold = threading.Event()
    gate = Gate(hold=hold)
    try:
        notifier = WebhookNotifier(gate.url, timeout_s=5, retries=0, queue_size=2)
        assert notifier.notify(EVENT)
        deadline = time.monotonic() + 5
        while not gate.received and time.monotonic() < deadline:  # the first one is in flight
            time.sleep(0.01)
        started = time.monotonic()
        queued = [notifier.notify(EVENT) for _ in range(5)]
        assert time.monotonic() - started < 0.05
        assert queued == [True, True, False, False, False]
        assert notifier.stats().dropped == 3
        hold.set()
        stats = notifier.close(timeout=10)
    finally:
        gate.stop()
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (3, 0, 3, 0)


def test_close_gives_up_after_its_timeout_and_drops_the_rest(caplog):
    hold = threading.Event()
    gate = Gate(hold=hold)
    try:
        notifier = WebhookNotifier(gate.url, timeout_s=5, retries=0)
        for _ in range(3):  # one in flight on a gate that does not answer, two waiting
            notifier.notify(EVENT)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            notifier.close(timeout=0.3)
        assert time.monotonic() - started < 1
        assert "close timed out" in caplog.text
        hold.set()
        deadline = time.monotonic() + 5
        while notifier.stats().dropped < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        gate.stop()
    stats = notifier.stats()
    assert (stats.dropped, stats.pending, stats.sent + stats.failed) == (2, 0, 1)


def test_an_event_in_flight_when_close_times_out_is_counted_as_pending(caplog):
    """It was in no count: one violation on a gate that did not answer showed "0 sent, 0 failed, 0
    dropped", and the warning said "0 event(s) left unsent"."""
    hold = threading.Event()
    gate = Gate(hold=hold)
    try:
        notifier = WebhookNotifier(gate.url, timeout_s=5, retries=0)
        notifier.notify(EVENT)
        deadline = time.monotonic() + 5
        while not gate.received and time.monotonic() < deadline:  # it is in flight
            time.sleep(0.01)
        with caplog.at_level(logging.WARNING):
            stats = notifier.close(timeout=0.3)
        assert "close timed out, 1 event(s) left unsent or unconfirmed" in caplog.text
        assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (0, 0, 0, 1)
        hold.set()  # the gate answers at last: sent, and no longer pending
        deadline = time.monotonic() + 5
        while notifier.stats().sent < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        gate.stop()
    assert notifier.stats() == HookStats(1, 0, 0, 0)


def test_logs_do_not_carry_the_urls_secrets(caplog):
    url = closed_port_url().replace("http://", "http://user:s3cret@") + "?token=abc123"
    notifier = WebhookNotifier(url, timeout_s=0.5, retries=0)
    notifier.notify(EVENT)
    with caplog.at_level(logging.DEBUG, logger="maskapp.events.hooks"):
        assert notifier.close(timeout=10).failed == 1
    assert "not delivered" in caplog.text
    assert "s3cret" not in caplog.text and "abc123" not in caplog.text


def test_credentials_in_the_url_are_sent_as_basic_auth(gate):
    notifier = WebhookNotifier(gate.url.replace("http://", "http://gate%40door:s3cret@"))
    notifier.notify(EVENT)
    assert notifier.close(timeout=10).sent == 1
    expected = "Basic " + base64.b64encode(b"gate@door:s3cret").decode()
    assert gate.headers[0]["Authorization"] == expected
    assert "s3cret" not in notifier.url


def test_notify_after_close_is_dropped(gate):
    notifier = WebhookNotifier(gate.url)
    notifier.close()
    assert not notifier.notify(EVENT)
    assert notifier.stats().dropped == 1


@pytest.mark.parametrize(
    "url", ["ftp://gate.local/x", "file:///etc/passwd", "gate.local/violation", "javascript:alert(1)"]
)
def test_a_bad_scheme_is_rejected_at_construction(url):
    with pytest.raises(HookError, match=r"only http:// and https:// are allowed"):
        WebhookNotifier(url)
    assert issubclass(HookError, MaskappError)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timeout_s": 0}, "timeout must be a positive number"),
        ({"retries": -1}, "retries must be a whole number from 0 to 10"),
        ({"queue_size": 0}, "queue size must be a whole number of at least 1"),
        ({"backoff_s": float("nan")}, "backoff must be zero or more"),
    ],
)
def test_bad_settings_are_rejected(settings, message):
    with pytest.raises(HookError, match=message):
        WebhookNotifier("http://gate.local/", **settings)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http:///violation", "has no host"),
        ("http://gate local/x", "has no host, or blanks in it"),
        ("http://gate.local:http/violation", "is malformed"),
        ("http://gate.local:99999/x", r"is malformed \(Port out of range"),
        ("http://gate.local:0/x", "has port 0; allowed: a port from 1 to 65535"),
        ("http://[::1/violation", r"'http://\[::1/violation' is malformed \(Invalid IPv6 URL\)"),
        ("gate.local:8080/violation", "does not start with http:// or https://"),
    ],
)
def test_a_url_without_a_usable_host_or_port_is_rejected(url, message):
    with pytest.raises(HookError, match=message):
        WebhookNotifier(url)


def test_a_recorder_tells_the_gate_once_per_non_compliant_person(gate, tmp_path):
    notifier = WebhookNotifier(gate.url)
    clock = lambda: datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # noqa: E731
    with SqliteEventStore(tmp_path / "log.sqlite") as store:
        recorder = EventRecorder(store, "door", hook=notifier, clock=clock)
        for frame in range(30):  # 30 frames of the same two people
            seen = [PersonObservation(1, "without_mask", True), PersonObservation(2, "with_mask", True)]
            recorder.observe(frame, seen, [EndedPerson(3, "x")] if frame == 5 else [])
        recorder.close(30)
    stats = notifier.close(timeout=10)
    assert stats.sent == 1
    assert [(r["person"], r["kind"], r["label"], r["frame"]) for r in gate.received] == [
        (1, "violation", "without_mask", 0)
    ]
