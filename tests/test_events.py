"""The event log on real SQLite files: rows once per person, aggregate-only mode, crash safety, bad files,
a locked database, and the report on a hand-made log with hand-checked numbers."""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maskapp import PROJECT_ROOT
from maskapp.app.compliance_log import log_days, read_log, source_rows, time_zone, zone_name
from maskapp.cli import main
from maskapp.errors import EventStoreError, MaskappError
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.report import EventLog
from maskapp.events.session import EventSettings, PeopleLog
from maskapp.events.store import (
    DEFAULT_EVENTS_PATH,
    READ_BUSY_TIMEOUT_S,
    AggregateWindow,
    Event,
    Retention,
    SqliteEventStore,
    delete_old_rows,
    is_new_log,
    iso_utc,
)
from maskapp.media.sources import redact_source
from tests.conftest import write_lock_held_elsewhere

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ListHook:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def see(person: int, label: str, settled: bool = True) -> PersonObservation:
    return PersonObservation(person, label, settled)


# --- once per person ---------------------------------------------------------------------------------


def run_scene(recorder: EventRecorder, clock: FakeClock) -> None:
    """60 frames: 1 compliant; 2 non-compliant, settles at frame 10, flips to with_mask at 20 and back at 25;
    3 settles mask_worn_incorrectly at 3 and leaves at 30; 4 is unsettled without_mask and leaves at 42."""
    for frame in range(60):
        seen = [see(1, "with_mask", settled=frame >= 5)]
        label2 = "with_mask" if 20 <= frame < 25 else "without_mask"
        seen.append(see(2, label2, settled=frame >= 10))
        if frame < 30:
            seen.append(see(3, "mask_worn_incorrectly", settled=frame >= 3))
        if 40 <= frame < 42:
            seen.append(see(4, "without_mask", settled=False))
        ended = [EndedPerson(3, "mask_worn_incorrectly")] if frame == 30 else []
        ended += [EndedPerson(4, "without_mask")] if frame == 42 else []
        recorder.observe(frame, seen, ended)
        clock.advance(0.1)
    recorder.close(60)


def test_one_violation_per_non_compliant_person_across_many_frames(tmp_path):
    path, clock, hook = tmp_path / "log.sqlite", FakeClock(), ListHook()
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "door", hook=hook, clock=clock)
        run_scene(recorder, clock)
        summary = recorder.summary()

    table = rows(path, "SELECT kind, person, label, frame FROM events ORDER BY id")
    seen = [(p, label, f) for kind, p, label, f in table if kind == "person_seen"]
    violations = [(p, label, f) for kind, p, label, f in table if kind == "violation"]
    left = sorted((p, label, f) for kind, p, label, f in table if kind == "person_left")
    assert seen == [
        (1, "with_mask", 0),
        (2, "without_mask", 0),
        (3, "mask_worn_incorrectly", 0),
        (4, "without_mask", 40),
    ]
    # Person 2 flips to with_mask and back: still one violation. Person 4 never settled: none.
    assert violations == [(3, "mask_worn_incorrectly", 3), (2, "without_mask", 10)]
    assert left == [
        (1, "with_mask", 60),
        (2, "without_mask", 60),
        (3, "mask_worn_incorrectly", 30),
        (4, "without_mask", 42),
    ]
    assert [(e.person, e.kind) for e in hook.events] == [(3, "violation"), (2, "violation")]
    assert summary.people_seen == 4 and summary.people_present == 0 and summary.violations == 2
    assert summary.people_by_verdict == {"with_mask": 1, "without_mask": 2, "mask_worn_incorrectly": 1}
    assert summary.compliance == pytest.approx(0.25)
    assert summary.events_written == len(table) == 10 and summary.dropped_writes == 0


def test_rows_hold_iso_utc_time_source_run_and_no_image(tmp_path):
    path, clock = tmp_path / "log.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        EventRecorder(store, "door", clock=clock, run="r1").observe(7, [see(1, "without_mask")])
    ((time_, source, run, person, kind, label, frame),) = rows(
        path, "SELECT time, source, run, person, kind, label, frame FROM events WHERE kind = 'violation'"
    )
    assert (time_, source, run, person, kind, label, frame) == (
        "2026-11-26T09:00:00.000+00:00",
        "door",
        "r1",
        1,
        "violation",
        "without_mask",
        7,
    )
    columns = {c[1]: c[2] for c in rows(path, "PRAGMA table_info(events)")}
    assert "BLOB" not in columns.values()
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_close_ends_everyone_still_present_as_on_a_dropped_stream(tmp_path):
    path = tmp_path / "log.sqlite"
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "rtsp://cam", clock=FakeClock())
        recorder.observe(0, [see(1, "with_mask"), see(2, "without_mask", settled=False)])
        recorder.observe(1, [see(1, "with_mask"), see(2, "mask_worn_incorrectly", settled=False)])
        closed = recorder.close(2)
        assert recorder.close(3) == []  # a second close does nothing
    assert [(e.kind, e.person, e.label, e.frame) for e in closed] == [
        ("person_left", 1, "with_mask", 2),
        ("person_left", 2, "mask_worn_incorrectly", 2),
    ]
    assert rows(path, "SELECT COUNT(*) FROM events WHERE kind = 'person_left'") == [(2,)]
    with pytest.raises(RuntimeError):
        recorder.observe(4, [])


def test_any_class_names_and_compliant_labels(tmp_path):
    with SqliteEventStore(tmp_path / "log.sqlite") as store:
        recorder = EventRecorder(store, "x", compliant_labels=("mask",), clock=FakeClock())
        events = recorder.observe(0, [see(1, "mask"), see(2, "no_mask")])
        recorder.close(1)
    assert [(e.kind, e.person) for e in events if e.kind == "violation"] == [("violation", 2)]
    assert recorder.summary().people_by_verdict == {"mask": 1, "no_mask": 1}
    assert recorder.summary().compliance == 0.5


def test_a_failing_hook_is_logged_and_recording_goes_on(tmp_path, caplog):
    class BrokenHook:
        def notify(self, event: Event) -> None:
            raise ConnectionError("gate unplugged")

    with SqliteEventStore(tmp_path / "log.sqlite") as store:
        recorder = EventRecorder(store, "door", hook=BrokenHook(), clock=FakeClock())
        with caplog.at_level(logging.WARNING):
            recorder.observe(0, [see(1, "without_mask")])
        recorder.close(1)
        assert store.stats().events_written == 3
    assert recorder.summary().hook_errors == 1
    assert "violation hook failed" in caplog.text


def test_stream_credentials_never_reach_the_log(tmp_path):
    assert redact_source("rtsp://admin:secret@10.0.0.5:554/live?token=abc") == "rtsp://10.0.0.5:554/live"
    assert redact_source("0") == "0"
    assert redact_source("rtsp://admin:secret@[::1/live?token=abc") == "rtsp://[::1/live"  # malformed too
    path = tmp_path / "log.sqlite"
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "rtsp://admin:secret@cam/live", clock=FakeClock())
        recorder.observe(0, [see(1, "with_mask")])
    assert rows(path, "SELECT DISTINCT source FROM events") == [("rtsp://cam/live",)]
    assert b"secret" not in b"".join(f.read_bytes() for f in tmp_path.glob("log.sqlite*"))


# --- aggregate-only mode -------------------------------------------------------------------------------


def test_aggregate_mode_stores_only_counts_per_window(tmp_path):
    """10 minutes at one frame per second, 5-minute windows; people leave at known times."""
    path, clock = tmp_path / "agg.sqlite", FakeClock(T0 + timedelta(minutes=2))  # starts mid-window
    leaves = {
        30: (1, "with_mask"),
        200: (2, "without_mask"),
        400: (3, "with_mask"),
        500: (4, "mask_worn_incorrectly"),
    }
    hook = ListHook()
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "hall", aggregate_minutes=5, clock=clock, hook=hook)
        for frame in range(600):
            present = [see(p, label) for left_at, (p, label) in leaves.items() if left_at > frame]
            present.append(see(5, "without_mask"))
            ended = [EndedPerson(*leaves[frame])] if frame in leaves else []
            recorder.observe(frame, present, ended)
            clock.advance(1)
        recorder.close(600)  # person 5 is counted on close, in the last window

    assert rows(path, "SELECT COUNT(*) FROM events") == [(0,)]
    windows = rows(
        path,
        "SELECT window_start, window_end, source, with_mask, mask_worn_incorrectly, without_mask, total "
        "FROM aggregates ORDER BY window_start",
    )
    # Left at 09:02:30 (1) -> the 09:00 window; 09:05:20 (2) and 09:08:40 (3) -> 09:05;
    # 09:10:20 (4) and the close at 09:12:00 (5) -> 09:10.
    assert windows == [
        ("2026-11-26T09:00:00.000+00:00", "2026-11-26T09:05:00.000+00:00", "hall", 1, 0, 0, 1),
        ("2026-11-26T09:05:00.000+00:00", "2026-11-26T09:10:00.000+00:00", "hall", 1, 0, 1, 2),
        ("2026-11-26T09:10:00.000+00:00", "2026-11-26T09:15:00.000+00:00", "hall", 0, 1, 1, 2),
    ]
    assert sum(w[-1] for w in windows) == 5  # each person counted exactly once
    # The gate is still told in real time (the hook gets no image), once per non-compliant person.
    assert sorted(e.person for e in hook.events) == [2, 4, 5]


def test_aggregate_mode_keeps_any_class_name_in_its_counts(tmp_path):
    path = tmp_path / "agg.sqlite"
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(
            store, "x", aggregate_minutes=1, clock=FakeClock(), compliant_labels=("mask",)
        )
        recorder.observe(0, [see(1, "mask"), see(2, "no_mask")])
        recorder.close(1)
    assert rows(path, "SELECT total, counts FROM aggregates") == [(2, '{"mask": 1, "no_mask": 1}')]
    assert rows(path, "SELECT COUNT(*) FROM events") == [(0,)]


@pytest.mark.parametrize("minutes", [-5, float("nan"), float("inf"), 1e12, 7 * 24 * 60 + 1])
def test_aggregate_window_must_be_positive(tmp_path, minutes):
    with SqliteEventStore(tmp_path / "a.sqlite") as store, pytest.raises(EventStoreError, match="positive"):
        EventRecorder(store, "x", aggregate_minutes=minutes)


# --- crash safety ------------------------------------------------------------------------------------

CHILD = """
import signal, sys, time
# A shell's background job inherits SIGINT ignored; Ctrl-C in a terminal reaches a Python that handles it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.store import SqliteEventStore

recorder = EventRecorder(SqliteEventStore(sys.argv[1]), "crash-cam")
frame = 0
while True:
    frame += 1
    ended = [EndedPerson(frame - 1, "without_mask")] if frame > 1 else []
    recorder.observe(frame, [PersonObservation(frame, "without_mask", True)], ended)
    print(frame, flush=True)  # after the commit: every printed frame must be on disk
    time.sleep(0.002)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_rows_written_before_a_kill_survive(tmp_path, sig):
    path = tmp_path / "crash.sqlite"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        last = 0
        while last < 40:
            line = child.stdout.readline()
            assert line, "the child died before recording 40 frames"
            last = int(line)
        os.kill(child.pid, sig)
        child.communicate(timeout=120)  # drains the pipe, so a child busy printing can always exit
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode != 0

    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    seen = {p for (p,) in rows(path, "SELECT person FROM events WHERE kind = 'person_seen'")}
    violated = {p for (p,) in rows(path, "SELECT person FROM events WHERE kind = 'violation'")}
    assert set(range(1, last + 1)) <= seen and set(range(1, last + 1)) <= violated
    with EventLog(path) as log:  # the report reads the killed run; its last person never left
        (source,) = log.summary().sources
    assert source.source == "crash-cam" and source.still_present == 1 and source.people == len(seen)
    with SqliteEventStore(path) as store:  # and a new run can append to it
        assert store.write_events([Event(iso_utc(T0), "cam", "r2", 1, "person_seen", "with_mask", 0)])


# --- bad paths and files -------------------------------------------------------------------------------


def test_a_path_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    not_a_folder = r"not_a_folder is a file, not a folder\); give a path in a writable folder"
    with pytest.raises(EventStoreError, match=not_a_folder):
        SqliteEventStore(blocker / "events.sqlite")
    with pytest.raises(EventStoreError, match="is a folder"):
        SqliteEventStore(tmp_path)


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "events.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(EventStoreError, match=r"events\.sqlite.*corrupt or not an SQLite database"):
        SqliteEventStore(path)
    with pytest.raises(EventStoreError, match="corrupt or not an SQLite database"):
        EventLog(path)


def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    for opener in (SqliteEventStore, EventLog):
        with pytest.raises(
            EventStoreError, match=r"other\.sqlite is an SQLite database but not a maskapp events log"
        ):
            opener(path)
    assert rows(path, "SELECT name FROM sqlite_master") == [("users",)]  # left as it was


def test_another_programs_tables_named_like_ours_are_refused_as_not_a_log(tmp_path):
    """Tables called meta, events and aggregates of another program: 'SQLite error: no such column:
    key' before, now the same sentence as for any other program's database."""
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        for table in ("meta (name TEXT, body TEXT)", "events (title TEXT)", "aggregates (total INTEGER)"):
            conn.execute(f"CREATE TABLE {table}")
    for opener in (SqliteEventStore, EventLog):
        with pytest.raises(
            EventStoreError,
            match=r"other\.sqlite is an SQLite database but not a maskapp events log \(its meta table has no "
            r"key and value columns\); give a file written by maskapp or a new path",
        ):
            opener(path)


def test_report_needs_an_existing_maskapp_log(tmp_path):
    with pytest.raises(EventStoreError, match="no events database"):
        EventLog(tmp_path / "missing.sqlite")
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(EventStoreError, match="not a maskapp events log"):
        EventLog(tmp_path / "empty.sqlite")
    assert issubclass(EventStoreError, MaskappError)


def test_a_locked_database_drops_the_write_logs_and_goes_on(tmp_path, caplog):
    path, clock = tmp_path / "locked.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, "door", clock=clock)
        recorder.observe(0, [see(1, "with_mask")])
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            events = recorder.observe(1, [see(2, "without_mask")])
        blocked = time.monotonic() - started
        other.execute("ROLLBACK")
        other.close()
        recorder.observe(2, [see(3, "with_mask")])
        recorder.close(3)
        stats = store.stats()
    assert blocked < 1.0  # retried briefly, did not hang the frame loop
    assert [e.kind for e in events] == ["person_seen", "violation"]  # still returned for the page
    assert "locked" in caplog.text and "dropped" in caplog.text
    assert (stats.dropped_writes, stats.dropped_rows) == (1, 2)
    assert recorder.summary().dropped_writes == 1
    assert rows(path, "SELECT person, kind FROM events ORDER BY id") == [
        (1, "person_seen"),
        (3, "person_seen"),
        (1, "person_left"),
        (2, "person_left"),
        (3, "person_left"),
    ]


def test_a_database_locked_before_start_is_a_clear_error(tmp_path):
    path = tmp_path / "busy.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # a fresh file, rollback journal: even reading waits
    try:
        with pytest.raises(EventStoreError, match=r"busy\.sqlite.*locked by another"):
            SqliteEventStore(path)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_log_locked_by_another_program_is_a_clear_error_after_a_short_wait(tmp_path, capsys):
    """A writer in a non-WAL journal mode keeps readers out: sqlite3's default wait (5 s per statement,
    twice on the page) made the `events` command and the Compliance log page hang ~10 s, then say only
    'locked'. Readers now wait READ_BUSY_TIMEOUT_S and name the lock."""
    path, clock = tmp_path / "log.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        EventRecorder(store, "door", clock=clock).observe(0, [see(1, "with_mask")])
    said = (
        r"log\.sqlite: it is locked by another connection or process "
        rf"\(a write lock, still held after {READ_BUSY_TIMEOUT_S:g} s"
    )
    with write_lock_held_elsewhere(path):
        for read in (EventLog, read_log, log_days):
            with pytest.raises(EventStoreError, match=said):
                read(path)
        assert main(["events", str(path)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert re.search(said, line) and line.endswith("try again once that write has ended")
    with EventLog(path) as log:  # the lock gone, the log reads as before
        waited_ms = log._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        assert log.summary().people == 1
    assert waited_ms == READ_BUSY_TIMEOUT_S * 1000


def test_a_locked_log_is_waited_for_once_before_its_error(tmp_path, monkeypatch):
    """The Compliance log page asked `is_new_log` (which waited READ_BUSY_TIMEOUT_S for the lock, then said
    'not new'), then opened the log and waited as long again for the same lock: the reader now meets the
    lock with one connection, and `is_new_log` names it."""
    path, clock = tmp_path / "log.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        EventRecorder(store, "door", clock=clock).observe(0, [see(1, "with_mask")])
    read_connections = []
    connect = sqlite3.connect

    def counting_connect(database, *args, **kwargs):
        if kwargs.get("uri") and str(database).endswith("?mode=ro"):
            read_connections.append(database)
        return connect(database, *args, **kwargs)

    with write_lock_held_elsewhere(path):
        monkeypatch.setattr(sqlite3, "connect", counting_connect)
        with pytest.raises(EventStoreError, match="it is locked by another connection or process"):
            is_new_log(path)
        assert len(read_connections) == 1
        with pytest.raises(EventStoreError, match="it is locked by another connection or process"):
            log_days(path)
        assert len(read_connections) == 2
    monkeypatch.undo()
    assert is_new_log(path) is False and log_days(path)[0] is not None  # the lock gone: read as before


# --- how long rows are kept -----------------------------------------------------------------------------


def days_ago(days: float, source: str = "door", person: int = 1) -> Event:
    return Event(iso_utc(T0 - timedelta(days=days)), source, "r1", person, "person_seen", "with_mask", 1)


def window_days_ago(days: float) -> AggregateWindow:
    start = T0 - timedelta(days=days)
    return AggregateWindow(iso_utc(start), iso_utc(start + timedelta(minutes=15)), "hall", {"with_mask": 2})


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_old_rows_are_deleted_and_not_left_readable_in_the_file(tmp_path):
    path = tmp_path / "log.sqlite"
    with SqliteEventStore(path) as store:
        store.write_events([days_ago(40, "old-lobby-camera", n) for n in range(20)])
        store.write_events([days_ago(2, "door", n) for n in range(5)])
        store.write_window(window_days_ago(40))
        store.write_window(window_days_ago(2))
        assert b"old-lobby-camera" in file_bytes(path)
        assert store.delete_before(T0 - timedelta(days=30)) == 21  # 20 events and 1 window
        assert store.delete_before(T0 - timedelta(days=30)) == 0
    assert rows(path, "SELECT DISTINCT source FROM events") == [("door",)]
    assert rows(path, "SELECT COUNT(*) FROM aggregates") == [(1,)]
    assert b"old-lobby-camera" not in file_bytes(path)  # overwritten, not only unlinked


def test_retention_deletes_when_a_log_opens_then_at_most_hourly(tmp_path):
    path, clock = tmp_path / "log.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        store.write_events([days_ago(3, person=1), days_ago(0.5, person=2)])
    log = PeopleLog(EventSettings(path, keep_days=1), "door", clock=clock)
    assert rows(path, "SELECT person FROM events") == [(2,)]  # deleted on opening
    assert log.close().rows_deleted == 1 and log.close().to_dict()["rows_deleted"] == 1

    with SqliteEventStore(path) as store:
        retention = Retention(store, timedelta(days=1), clock)
        retention.apply()
        store.write_events([days_ago(2, person=3)])
        clock.advance(30 * 60)
        retention.apply()
        assert len(rows(path, "SELECT person FROM events")) == 2  # half an hour on: not checked yet
        clock.advance(31 * 60)
        retention.apply()
        assert rows(path, "SELECT person FROM events") == [(2,)] and retention.deleted == 1


def test_retention_on_a_store_that_refuses_the_delete_goes_on(tmp_path, caplog):
    path, clock = tmp_path / "log.sqlite", FakeClock()
    with SqliteEventStore(path) as store:
        store.write_events([days_ago(3)])
        retention = Retention(store, timedelta(days=1), clock)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level(logging.WARNING):
                retention.apply()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert retention.deleted == 0 and "not deleted this time" in caplog.text
        clock.advance(3600)
        retention.apply()
        assert retention.deleted == 1


@pytest.mark.parametrize("days", [-1, float("nan"), float("inf"), "30", True, 1e12, 3651])
def test_days_to_keep_must_be_a_positive_number(tmp_path, days):
    with pytest.raises(EventStoreError, match="days to keep events must be a positive number"):
        EventSettings(tmp_path / "log.sqlite", keep_days=days)
    with pytest.raises(EventStoreError, match="apply to an events file"):
        EventSettings(None, keep_days=7)
    assert not (tmp_path / "log.sqlite").exists()


def test_delete_old_rows_of_a_log_on_disk(hand_made_log, tmp_path):
    later = FakeClock(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    assert delete_old_rows(hand_made_log, 1, clock=later) == 5  # 4 events before 10:00, 1 window
    assert rows(hand_made_log, "SELECT MIN(time) FROM events") == [(at(10, 5),)]
    with pytest.raises(EventStoreError, match="no events database"):
        delete_old_rows(tmp_path / "missing.sqlite", 1)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_home_path_is_expanded_and_a_name_too_long_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = EventSettings(Path("~/door.sqlite"))  # quoted on a command line, or typed into a page
    assert settings.path == tmp_path / "door.sqlite"
    too_long = tmp_path / ("a" * 300 + ".sqlite")
    for open_it in (SqliteEventStore, lambda path: EventLog(path), lambda path: delete_old_rows(path, 1)):
        with pytest.raises(EventStoreError, match=r"\(File name too long\); give a path whose .* 255"):
            open_it(too_long)


def test_the_default_log_lives_in_a_git_ignored_folder():
    assert DEFAULT_EVENTS_PATH.parent == PROJECT_ROOT / "events"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(DEFAULT_EVENTS_PATH)], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0


# --- the report on a hand-made log ---------------------------------------------------------------------


def at(hour: int, minute: int) -> str:
    return iso_utc(datetime(2026, 11, 26, hour, minute, tzinfo=UTC))


HAND_MADE = [
    Event(at(9, 10), "door", "r1", 1, "person_seen", "with_mask", 10),
    Event(at(9, 15), "door", "r1", 2, "person_seen", "without_mask", 20),
    Event(at(9, 16), "door", "r1", 2, "violation", "without_mask", 25),
    Event(at(9, 20), "door", "r1", 1, "person_left", "with_mask", 30),
    Event(at(10, 5), "door", "r1", 2, "person_left", "without_mask", 40),
    Event(at(10, 30), "door", "r1", 3, "person_seen", "with_mask", 50),  # provisional label
    Event(at(10, 31), "door", "r1", 3, "violation", "mask_worn_incorrectly", 55),
    Event(at(10, 40), "door", "r1", 3, "person_left", "mask_worn_incorrectly", 60),
    # A new run: person number 1 again, a different person; never left.
    Event(at(10, 50), "door", "r2", 1, "person_seen", "with_mask", 1),
]
HAND_WINDOWS = [
    AggregateWindow(at(9, 0), at(9, 15), "hall", {"with_mask": 3, "without_mask": 1}),
    AggregateWindow(at(10, 0), at(10, 15), "hall", {"with_mask": 2}),
]


@pytest.fixture
def hand_made_log(tmp_path) -> Path:
    path = tmp_path / "hand.sqlite"
    with SqliteEventStore(path) as store:
        assert store.write_events(HAND_MADE)
        for window in HAND_WINDOWS:
            assert store.write_window(window)
    return path


def test_report_summary_by_source(hand_made_log):
    with EventLog(hand_made_log) as log:
        summary = log.summary()
    door, hall = summary.sources
    assert (door.source, door.people, door.violations, door.still_present) == ("door", 4, 2, 1)
    assert door.by_verdict == {"with_mask": 2, "without_mask": 1, "mask_worn_incorrectly": 1}
    assert door.compliance == 0.5
    assert (door.first_time, door.last_time) == (at(9, 10), at(10, 50))
    assert (hall.source, hall.people, hall.aggregate_windows, hall.violations) == ("hall", 6, 2, 0)
    assert hall.by_verdict == {"with_mask": 5, "without_mask": 1}
    assert hall.compliance == pytest.approx(5 / 6)
    assert (hall.first_time, hall.last_time) == (at(9, 0), at(10, 15))
    assert (summary.events, summary.people, len(summary.windows)) == (9, 10, 2)
    assert summary.compliance == pytest.approx(7 / 10)


def test_report_people_per_hour_and_compliance_over_time(hand_made_log):
    with EventLog(hand_made_log) as log:
        hours = log.people_per_hour()
        points = log.compliance_over_time()
    assert [(h.start[11:16], h.source, h.by_verdict) for h in hours] == [
        ("09:00", "door", {"with_mask": 1}),
        ("09:00", "hall", {"with_mask": 3, "without_mask": 1}),
        ("10:00", "door", {"without_mask": 1, "mask_worn_incorrectly": 1, "with_mask": 1}),
        ("10:00", "hall", {"with_mask": 2}),
    ]
    assert [(p.source, p.people, round(p.compliance, 4)) for p in points] == [
        ("door", 1, 1.0),
        ("hall", 4, 0.75),
        ("door", 3, 0.3333),
        ("hall", 2, 1.0),
    ]


def test_hours_are_the_readers_local_hours_also_off_the_whole_hour(hand_made_log):
    """India is UTC+05:30: its hours are not UTC's hours relabelled, so people regroup."""
    with EventLog(hand_made_log) as log:
        hours = log.people_per_hour(zone=ZoneInfo("Asia/Kolkata"))
        points = log.compliance_over_time(zone=ZoneInfo("Asia/Kolkata"))
    assert [(h.start, h.source, h.by_verdict) for h in hours] == [
        ("2026-11-26T14:00:00.000+05:30", "door", {"with_mask": 1}),  # left 09:20 UTC = 14:50
        ("2026-11-26T14:00:00.000+05:30", "hall", {"with_mask": 3, "without_mask": 1}),  # 09:00 = 14:30
        ("2026-11-26T15:00:00.000+05:30", "door", {"without_mask": 1}),  # 10:05 = 15:35
        ("2026-11-26T15:00:00.000+05:30", "hall", {"with_mask": 2}),
        ("2026-11-26T16:00:00.000+05:30", "door", {"mask_worn_incorrectly": 1, "with_mask": 1}),
    ]
    assert [(p.start[11:16], p.source, p.people) for p in points][-1] == ("16:00", "door", 2)


def test_the_page_reads_days_and_shows_times_in_the_readers_zone(hand_made_log):
    """Kiritimati is UTC+14: the log's 10:00 UTC is already the next day there."""
    zone = ZoneInfo("Pacific/Kiritimati")
    assert log_days(hand_made_log) == (date(2026, 11, 26), date(2026, 11, 26))
    assert log_days(hand_made_log, zone) == (date(2026, 11, 26), date(2026, 11, 27))
    view = read_log(hand_made_log, date(2026, 11, 27), date(2026, 11, 27), zone)
    assert view.summary.people == 5  # as from 10:00 UTC: three at the door, two in the hall
    assert view.violations == [
        {
            "time (Pacific/Kiritimati)": "2026-11-27 00:31:00",
            "source": "door",
            "person": "r1 #3",  # run-qualified: person 3 of another run is someone else
            "verdict": "Mask worn incorrectly",  # as the page names it; the CSV keeps the stored label
            "frame": 55,
        }
    ]
    assert at(10, 31) in view.violations_csv  # the download keeps the stored UTC time
    door = source_rows(view.summary, zone)[0]
    assert (door["From (Pacific/Kiritimati)"], door["To (Pacific/Kiritimati)"]) == (
        "2026-11-27 00:05:00",
        "2026-11-27 00:50:00",
    )
    assert read_log(hand_made_log, date(2026, 11, 27), date(2026, 11, 27)).summary.people == 0  # UTC


def test_the_events_command_reads_days_and_shows_times_on_another_clock(hand_made_log, capsys):
    """Kiritimati is UTC+14: 2026-11-27 there began at 10:00 UTC on the 26th."""
    kiritimati = ["--timezone", "Pacific/Kiritimati"]
    assert main(["events", str(hand_made_log), "--from", "2026-11-27", *kiritimati]) == 0
    out = capsys.readouterr().out
    assert "5 people" in out and "(times in Pacific/Kiritimati)" in out
    assert "from 2026-11-27 00:05:00 to 2026-11-27 00:50:00" in out  # the door, 10:05 to 10:50 UTC
    assert "2026-11-27 00:00:00 to 2026-11-27 00:15:00  hall" in out  # the hall's window from 10:00 UTC
    assert main(["events", str(hand_made_log), "--from", "2026-11-27T00:30", *kiritimati]) == 0  # 10:30 UTC
    assert "2 people" in capsys.readouterr().out
    assert main(["events", str(hand_made_log), "--from", "2026-11-27"]) == 0  # UTC: nobody yet
    assert "no people" in capsys.readouterr().out
    assert main(["events", str(hand_made_log), "--timezone", "Mars/Olympus_Mons"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: unknown time zone 'Mars/Olympus_Mons'; allowed: an IANA name such as Europe/Paris, "
        "America/New_York or UTC"
    )


def test_an_unknown_or_missing_browser_zone_is_utc(caplog):
    with caplog.at_level(logging.WARNING):
        assert zone_name(time_zone("Mars/Olympus_Mons")) == "UTC"
    assert "unknown time zone 'Mars/Olympus_Mons'" in caplog.text
    assert zone_name(time_zone(None)) == zone_name(time_zone("UTC")) == "UTC"
    assert zone_name(time_zone("Europe/Paris")) == "Europe/Paris"


def test_report_on_idle_windows_only(tmp_path):
    path = tmp_path / "idle.sqlite"
    with SqliteEventStore(path) as store:
        store.write_window(AggregateWindow(at(9, 0), at(9, 5), "hall", {}))
    with EventLog(path) as log:
        (hall,) = log.summary().sources
        assert (hall.people, hall.aggregate_windows, hall.compliance) == (0, 1, None)
        assert log.people_per_hour() == [] and log.compliance_over_time() == []


def test_report_date_filter(hand_made_log):
    since_ten = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    with EventLog(hand_made_log) as log:
        door, hall = log.summary(start=since_ten).sources
        assert (door.people, door.violations, hall.people) == (3, 1, 2)
        assert [e.person for e in log.violations(start=since_ten)] == [3]
        assert log.summary(end=date(2026, 11, 25)).sources == []  # the day before: nothing
        assert log.summary(start=date(2026, 11, 26), end=date(2026, 11, 26)).events == 9  # through that day
        naive_nine_thirty = datetime(2026, 11, 26, 9, 30)  # naive = UTC
        assert len(log.events(end=naive_nine_thirty)) == 4
        with pytest.raises(EventStoreError, match="allowed: person_seen, violation, person_left"):
            log.events(kinds=("arrival",))
        with pytest.raises(
            EventStoreError, match=re.escape("starts (2026-11-27) at or after its end (2026-11-26)")
        ):
            log.summary(start=date(2026, 11, 27), end=date(2026, 11, 26))  # the two flags swapped
        with pytest.raises(EventStoreError, match="allowed: a start before the end"):
            log.events(start=since_ten, end=since_ten)


def test_report_csv_export(hand_made_log, tmp_path):
    out = tmp_path / "events.csv"
    with EventLog(hand_made_log) as log:
        assert log.export_csv(out) == 9
        text = log.events_csv(kinds=("violation",))
    exported = list(csv.DictReader(out.open(newline="")))
    assert list(exported[0]) == ["time", "source", "run", "person", "kind", "label", "frame"]
    assert exported[2] == {
        "time": at(9, 16),
        "source": "door",
        "run": "r1",
        "person": "2",
        "kind": "violation",
        "label": "without_mask",
        "frame": "25",
    }
    assert [row["person"] for row in csv.DictReader(io.StringIO(text))] == ["2", "3"]
    assert not list(tmp_path.glob("*.partial"))


def test_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    path = tmp_path / "f.sqlite"
    with SqliteEventStore(path) as store:
        store.write_events([Event(at(9, 0), "=HYPERLINK(1)", "r", 1, "person_seen", "with_mask", 0)])
    with EventLog(path) as log:
        (row,) = csv.DictReader(io.StringIO(log.events_csv()))
    assert row["source"] == "'=HYPERLINK(1)"


def test_csv_to_an_unwritable_place_is_a_clear_error(hand_made_log, tmp_path):
    with EventLog(hand_made_log) as log, pytest.raises(EventStoreError, match="cannot write CSV"):
        log.export_csv(tmp_path / "no_such_folder" / "out.csv")


@pytest.mark.parametrize("table, column", [("events", "time"), ("aggregates", "window_start")])
@pytest.mark.parametrize(
    "edited",
    [
        "yesterday",
        "2026-11-24",  # a date alone: sorted as text, it would fall outside its own day
        "2026-11-24T10:00:00.000-05:00",  # another offset: sorted as text, the wrong day
        "9999-12-31T23:59:59.000+00:00",  # no next midnight to end a date filter at
        "0001-01-01T00:00:00.000+00:00",  # no earlier day for a reader west of Greenwich
    ],
)
def test_a_row_whose_time_was_edited_is_a_clear_error(hand_made_log, table, column, edited):
    """A log written by maskapp, then one time changed by hand (or by another program)."""
    with contextlib.closing(sqlite3.connect(hand_made_log)) as conn, conn:
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = (SELECT MIN(id) FROM {table})", (edited,))
    with EventLog(hand_made_log) as log, pytest.raises(EventStoreError) as raised:
        log.summary()
    assert "hand.sqlite" in str(raised.value)
    assert f"{edited!r}; allowed: ISO-8601 UTC times as maskapp writes them" in str(raised.value)


@pytest.mark.parametrize(
    "counts", ['{"with_mask": "many"}', '{"with_mask": -2}', '{"with_mask": 1.5}', "[1, 2]"]
)
def test_an_aggregate_row_with_edited_counts_is_a_clear_error(hand_made_log, counts):
    with contextlib.closing(sqlite3.connect(hand_made_log)) as conn, conn:
        conn.execute(
            "UPDATE aggregates SET counts = ? WHERE id = (SELECT MIN(id) FROM aggregates)", (counts,)
        )
    with EventLog(hand_made_log) as log, pytest.raises(EventStoreError, match=r"malformed counts.*allowed"):
        log.summary()


def test_the_time_span_covers_events_and_windows_and_an_empty_log_has_none(hand_made_log, tmp_path):
    with EventLog(hand_made_log) as log:
        assert log.time_span() == (at(9, 0), at(10, 50))  # a window opens first, an event comes last
    empty = tmp_path / "empty.sqlite"
    SqliteEventStore(empty).close()
    with EventLog(empty) as log:
        assert log.time_span() == (None, None)


def test_a_log_read_once_per_view_shows_rows_written_since_when_opened_again(hand_made_log):
    with EventLog(hand_made_log) as log:
        before = log.summary().people
        with SqliteEventStore(hand_made_log) as store:  # a camera still writing
            store.write_events([Event(at(11, 0), "door", "r2", 2, "person_seen", "with_mask", 9)])
        assert log.summary().people == before  # this view's people were read once
    with EventLog(hand_made_log) as log:
        assert log.summary().people == before + 1


def test_an_edited_time_outside_the_chosen_days_is_still_a_clear_error(hand_made_log):
    """The Compliance log's date filter spans the whole log, so every time is read for it."""
    with contextlib.closing(sqlite3.connect(hand_made_log)) as conn, conn:
        conn.execute("UPDATE events SET time = 'zz-garbage' WHERE id = (SELECT MAX(id) FROM events)")
    with pytest.raises(EventStoreError, match="'zz-garbage'; allowed: ISO-8601"):
        read_log(hand_made_log, date(2026, 11, 26), date(2026, 11, 26))


def test_the_readme_quotes_both_forms_of_an_aggregate_sources_time_span(tmp_path):
    """The README quoted only `within window ...`, while a source counted in several windows reads
    `from window ... to window ...` (the hall of the hand-made log, its two windows; one window: within)."""
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    quoted = re.findall(r"`((?:within|from) window \.\.\.(?: to window \.\.\.)?)`", readme)
    for windows in (HAND_WINDOWS, HAND_WINDOWS[:1]):
        path = tmp_path / f"hall{len(windows)}.sqlite"
        with SqliteEventStore(path) as store:
            for window in windows:
                assert store.write_window(window)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["events", str(path)]) == 0
        (span,) = [line.strip() for line in out.getvalue().splitlines() if " window " in line and "–" in line]
        form = re.sub(r"window [^–]+–\S+", "window ...", span)
        assert form in quoted, (span, quoted)
