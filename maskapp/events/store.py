"""The event log: a small store interface and its embedded SQLite implementation.

SQLite in WAL mode, one transaction per write, synchronous=FULL: a row is on disk when a write returns, so
a crash, a SIGKILL or Ctrl-C loses at most the write in flight, and a reader (the Compliance log page)
never blocks the writer. No image data is ever stored: a row holds a time, a source name, a run id, a
per-run person number, a kind, a class label and a frame index.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Protocol

from maskapp import PROJECT_ROOT
from maskapp.config import number_within
from maskapp.errors import EventStoreError
from maskapp.outputs import why_unwritable

logger = logging.getLogger(__name__)

# Git-ignored (see .gitignore): an event log is operational data, never part of the repository.
DEFAULT_EVENTS_DIR = PROJECT_ROOT / "events"
DEFAULT_EVENTS_PATH = DEFAULT_EVENTS_DIR / "events.sqlite"

EVENT_KINDS = ("person_seen", "violation", "person_left")
# The aggregate table's named columns; any other class name is still kept in its `counts` JSON.
VERDICT_COLUMNS = ("with_mask", "mask_worn_incorrectly", "without_mask")
SCHEMA_NAME = "maskapp-events"
SCHEMA_VERSION = 1
_TABLES = ("meta", "events", "aggregates")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,      -- ISO-8601 UTC, fixed width: text order is time order
    source TEXT NOT NULL,
    run TEXT NOT NULL,       -- person numbers restart with every run
    person INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('person_seen', 'violation', 'person_left')),
    label TEXT NOT NULL,
    frame INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS aggregates (
    id INTEGER PRIMARY KEY,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    source TEXT NOT NULL,
    with_mask INTEGER NOT NULL,
    mask_worn_incorrectly INTEGER NOT NULL,
    without_mask INTEGER NOT NULL,
    total INTEGER NOT NULL,
    counts TEXT NOT NULL     -- JSON {label: people}, for any class names
);
CREATE INDEX IF NOT EXISTS aggregates_start ON aggregates (window_start);
"""


# --- values --------------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime | date) -> str:
    """Fixed-width ISO-8601 UTC text ('2026-11-26T10:22:01.123+00:00'), so that SQL text order is time
    order. A naive datetime is taken as UTC (not local time), a date as its midnight UTC."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, dtime())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def utc_seconds(moment: datetime) -> float:
    """Unix seconds of a moment; a naive datetime is taken as UTC (not local time)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def window_start_seconds(seconds: float, length_s: float) -> float:
    """The start of the `length_s`-long window holding `seconds`, windows aligned to the Unix epoch (so
    that windows of two runs or two cameras line up)."""
    return seconds - seconds % length_s


def floor_time(moment: datetime, length: timedelta) -> datetime:
    """The start of the `length`-long window holding `moment`, in UTC (window_start_seconds)."""
    return datetime.fromtimestamp(window_start_seconds(utc_seconds(moment), length.total_seconds()), UTC)


@dataclass(frozen=True)
class Event:
    time: str  # ISO-8601 UTC (iso_utc)
    source: str
    run: str
    person: int
    kind: str  # one of EVENT_KINDS
    label: str
    frame: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class AggregateWindow:
    """People counted by final verdict in one time window; no per-person data."""

    window_start: str
    window_end: str
    source: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class StoreStats:
    events_written: int
    windows_written: int
    dropped_writes: int  # writes given up (locked database, disk full...): logged, processing went on
    dropped_rows: int


class EventStore(Protocol):
    """What a recorder needs from an event log. SQLite is the embedded default; a server database for many
    cameras would implement the same six methods. Writes never raise for a runtime database problem: they
    log, count the dropped write and return False, so that the frame loop goes on."""

    def write_events(self, events: Sequence[Event]) -> bool: ...

    def write_window(self, window: AggregateWindow) -> bool: ...

    def delete_before(self, moment: datetime) -> int | None:
        """Delete the events before `moment` and the windows ended by then: the number of rows deleted,
        or None when the delete had to be given up (logged, as a dropped write is)."""
        ...

    def discard_run(self, run: str) -> int | None:
        """Delete every event of `run` in one transaction (a run stopped before its end, to be run again
        from the start): the number of rows deleted, or None when it had to be given up (logged)."""
        ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


# --- retention -----------------------------------------------------------------------------------------

RETENTION_CHECK_EVERY = timedelta(hours=1)  # rows a day old need no faster deleting; a check is one query
MAX_KEEP_DAYS = 3650  # ten years: past that, "keep all" says it; and dates stay in range


def optional_duration(value: float | None, unit: str, most: float, rule: str) -> timedelta | None:
    """A setting in `unit` (a timedelta keyword: days, minutes) as a duration; None (no value, or 0)
    turns it off. EventStoreError, `rule` and the value, for anything but a positive number up to `most`."""
    if value is None or value == 0:
        return None
    if not number_within(value, most):
        raise EventStoreError(f"{rule}; got {value!r}")
    return timedelta(**{unit: value})


def retention_period(days: float | None) -> timedelta | None:
    """How long rows are kept; None (no days, or 0) keeps them all. EventStoreError otherwise."""
    rule = (
        f"days to keep events must be a positive number up to {MAX_KEEP_DAYS} (ten years); "
        "0 or none: keep all"
    )
    return optional_duration(days, "days", MAX_KEEP_DAYS, rule)


class Retention:
    """Deletes a store's rows older than `keep`: on the first `apply`, then at most once per
    RETENTION_CHECK_EVERY of the clock. `deleted` counts the rows deleted so far."""

    def __init__(self, store: EventStore, keep: timedelta, clock: Callable[[], datetime] = utc_now) -> None:
        self.store, self.keep, self._clock = store, keep, clock
        self.deleted = 0
        self._last_check: datetime | None = None

    def apply(self) -> None:
        now = self._clock()
        if self._last_check is not None and now - self._last_check < RETENTION_CHECK_EVERY:
            return
        self._last_check = now
        deleted = self.store.delete_before(now - self.keep) or 0
        if deleted:
            logger.info(
                "event log: %d row(s) older than %g day(s) deleted", deleted, self.keep / timedelta(days=1)
            )
        self.deleted += deleted


def user_path(text: str) -> Path | None:
    """An events path typed into a page: blanks stripped, `~` expanded as a shell would (a page is not a
    shell, and a folder named '~' in the working directory is nobody's intent); None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # ~user of no such user, or no home directory
        raise EventStoreError(f"cannot expand {text!r} ({exc}); give the full path") from exc


def is_file(path: Path) -> bool:
    """Path.is_file(), with a name the system refuses (over 255 characters...) an EventStoreError."""
    try:
        return path.is_file()
    except OSError as exc:
        raise _unusable_path(path, exc) from exc


def _unusable_path(path: Path, exc: OSError) -> EventStoreError:
    allowed = (
        "a path whose folder and file names are at most 255 characters"
        if exc.errno == errno.ENAMETOOLONG
        else "a path in a folder you can read"
    )
    return EventStoreError(f"cannot use events path {path} ({exc.strerror or exc}); give {allowed}")


def require_log_file(path: Path) -> None:
    """EventStoreError unless `path` is a file: a reader or a cleaning job never makes a new, empty log."""
    if not is_file(path):
        raise EventStoreError(
            f"no events database at {path} (missing, or not a file); give an events .sqlite file"
        )


def delete_old_rows(path: Path, keep_days: float, clock: Callable[[], datetime] = utc_now) -> int:
    """Delete an existing log's rows older than `keep_days` (the `events --keep-days` job): the number
    deleted. EventStoreError for a missing, corrupt, foreign or locked log."""
    keep = retention_period(keep_days)
    require_log_file(Path(path))
    if keep is None:
        return 0
    with SqliteEventStore(path) as store:
        deleted = store.delete_before(clock() - keep)
    if deleted is None:
        raise EventStoreError(
            f"could not delete old rows from {path} (see the warning above); try again later"
        )
    return deleted


# --- SQLite errors and schema, shared with the report reader ----------------------------------------------


# A maskapp write holds its lock for milliseconds; a lock still held after this is another program's long
# transaction (rollback journal: it keeps readers out), and a page or `events` must say so, not hang.
READ_BUSY_TIMEOUT_S = 0.5


def open_for_reading(path: Path) -> sqlite3.Connection:
    """A read-only connection that waits READ_BUSY_TIMEOUT_S for a lock (sqlite3's default: 5 s per
    statement, ~10 s before a reader's page said anything)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=READ_BUSY_TIMEOUT_S, check_same_thread=False)


def read_problem(path: Path, exc: sqlite3.Error) -> EventStoreError:
    """The error of a read that failed: a lock is named with how long it was waited for and what to do."""
    problem = sqlite_problem(exc)
    if _is_busy(exc):
        problem += (
            f" (a write lock, still held after {READ_BUSY_TIMEOUT_S:g} s: a program writing it in a "
            "non-WAL journal mode keeps readers out); try again once that write has ended"
        )
    return EventStoreError(f"cannot read events database {path}: {problem}")


def sqlite_problem(exc: sqlite3.Error) -> str:
    """One phrase for what went wrong, from SQLite's error code."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "it is locked by another connection or process"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return "it is corrupt or not an SQLite database"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_IOERR", "SQLITE_FULL")):
        return f"it cannot be opened or written ({exc})"
    return f"SQLite error: {exc}"


def table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def is_new_log(path: Path) -> bool:
    """True for an SQLite file with no table yet: a writer has just created it and adds the tables (in one
    transaction) next. Readers show it as an empty log, not as another program's database.

    Raises EventStoreError for a log still locked after READ_BUSY_TIMEOUT_S: the reader that opened it
    next waited as long again for the same lock (a locked log took twice the wait to say so)."""
    try:
        with contextlib.closing(open_for_reading(path)) as conn:
            return not table_names(conn)
    except sqlite3.Error as exc:
        if _is_busy(exc):
            raise read_problem(path, exc) from exc
        return False  # not SQLite: the reader that opens it says what it is


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Raise EventStoreError unless the database holds maskapp's event tables in a version we read."""
    tables = table_names(conn)
    if not set(_TABLES) <= tables:
        found = ", ".join(sorted(tables)) or "no tables"
        raise EventStoreError(
            f"{path} is an SQLite database but not a maskapp events log (it has {found}; expected tables "
            f"{', '.join(_TABLES)}); give a file written by maskapp or a new path"
        )
    columns = {row[1] for row in conn.execute("PRAGMA table_info(meta)").fetchall()}
    if not {"key", "value"} <= columns:  # another program's tables of the same names
        raise EventStoreError(
            f"{path} is an SQLite database but not a maskapp events log (its meta table has no key and "
            "value columns); give a file written by maskapp or a new path"
        )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema") != SCHEMA_NAME:
        raise EventStoreError(f"{path} is not a maskapp events log (meta schema {meta.get('schema')!r})")
    version = meta.get("version", "")
    if not version.isdigit():  # "use a newer maskapp" would send the reader after one that does not exist
        raise EventStoreError(
            f"{path} is not a maskapp events log (its version {version[:20]!r} is no version number); "
            "give a file written by maskapp or a new path"
        )
    if int(version) > SCHEMA_VERSION:  # it said "reads versions 1 to 1"
        raise EventStoreError(
            f"{path} is an events log of version {version}, written by a newer maskapp; this one reads "
            f"logs of version {SCHEMA_VERSION} and older: open it with that newer maskapp, or give another "
            "file"
        )


# --- the SQLite store -----------------------------------------------------------------------------------


class SqliteEventStore:
    """The embedded event log. Safe to share between threads (one lock around the connection).

    Opening raises EventStoreError (path not writable, corrupt file, another schema, locked). Writing never
    raises for a database problem: a locked database is retried briefly, then the write is dropped, logged
    and counted, because a frame loop must not stop for its log."""

    def __init__(
        self, path: Path | str = DEFAULT_EVENTS_PATH, *, busy_timeout_s: float = 0.05, attempts: int = 3
    ) -> None:
        self.path = Path(path)
        self._attempts = max(1, attempts)
        self._lock = threading.Lock()
        self._events_written = self._windows_written = self._dropped_writes = self._dropped_rows = 0
        self._conn: sqlite3.Connection | None = _open_for_writing(self.path, busy_timeout_s)
        logger.info("event log: %s", self.path)

    def write_events(self, events: Sequence[Event]) -> bool:
        if not events:
            return True
        rows = [(e.time, e.source, e.run, e.person, e.kind, e.label, e.frame) for e in events]
        sql = (
            "INSERT INTO events (time, source, run, person, kind, label, frame) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        return self._write(sql, rows, window=False)

    def write_window(self, window: AggregateWindow) -> bool:
        named = [int(window.counts.get(label, 0)) for label in VERDICT_COLUMNS]
        row = (window.window_start, window.window_end, window.source, *named, window.total)
        sql = (
            "INSERT INTO aggregates (window_start, window_end, source, with_mask, mask_worn_incorrectly, "
            "without_mask, total, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        return self._write(sql, [(*row, json.dumps(dict(window.counts), sort_keys=True))], window=True)

    def delete_before(self, moment: datetime) -> int | None:
        cutoff = iso_utc(moment)
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"event log {self.path} is closed")
            try:
                return _delete_transaction(self._conn, cutoff)
            except sqlite3.Error as exc:
                logger.warning(
                    "event log %s: %s; rows before %s not deleted this time",
                    self.path,
                    sqlite_problem(exc),
                    cutoff,
                )
                return None

    def discard_run(self, run: str) -> int | None:
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"event log {self.path} is closed")
            try:
                with _immediate_transaction(self._conn):
                    return self._conn.execute("DELETE FROM events WHERE run = ?", (run,)).rowcount
            except sqlite3.Error as exc:
                logger.warning(
                    "event log %s: %s; the events of stopped run %s were not deleted and stay in the log",
                    self.path,
                    sqlite_problem(exc),
                    run,
                )
                return None

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                self._events_written, self._windows_written, self._dropped_writes, self._dropped_rows
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the last connection checkpoints the WAL into the file
                self._conn = None

    def __enter__(self) -> SqliteEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, sql: str, rows: list[tuple], *, window: bool) -> bool:
        with self._lock:
            if self._conn is None:
                raise RuntimeError(f"event log {self.path} is closed")
            problem = ""
            for attempt in range(self._attempts):
                try:
                    _transaction(self._conn, sql, rows)
                    self._count_written(len(rows), window)
                    return True
                except sqlite3.Error as exc:
                    problem = sqlite_problem(exc)
                    if not _is_busy(exc):
                        break
                    time.sleep(0.01 * 2**attempt)  # brief: the frame loop is waiting
            self._dropped_writes += 1
            self._dropped_rows += len(rows)
            logger.warning(
                "event log %s: %s; %d row(s) dropped (%d write(s) dropped so far), processing goes on",
                self.path,
                problem,
                len(rows),
                self._dropped_writes,
            )
            return False

    def _count_written(self, rows: int, window: bool) -> None:
        if window:
            self._windows_written += rows
        else:
            self._events_written += rows


def _is_busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


@contextlib.contextmanager
def _immediate_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """All or nothing: BEGIN IMMEDIATE takes the write lock up front, so a busy database fails here; any
    exception (KeyboardInterrupt too) rolls back and keeps every earlier commit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _transaction(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    with _immediate_transaction(conn):
        conn.executemany(sql, rows)


def _delete_transaction(conn: sqlite3.Connection, cutoff: str) -> int:
    with _immediate_transaction(conn):
        deleted = conn.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
        deleted += conn.execute("DELETE FROM aggregates WHERE window_end <= ?", (cutoff,)).rowcount
    return deleted


def _open_for_writing(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    try:
        folder = path.is_dir()
    except OSError as exc:
        raise _unusable_path(path, exc) from exc
    if folder:
        raise EventStoreError(
            f"events path {path} is a folder; give a file path such as {path}/events.sqlite"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EventStoreError(
            f"cannot create the folder of events database {path} ({why_unwritable(path.parent, exc)}); "
            "give a path in a writable folder"
        ) from exc
    try:
        # Autocommit mode (isolation_level=None): every write opens its own explicit transaction.
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise EventStoreError(
            f"cannot open events database {path}: {sqlite_problem(exc)}; give a writable file path"
        ) from exc
    try:
        _prepare(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    try:
        fresh = not table_names(conn)  # the first read: a file that is not SQLite fails here
        if not fresh:
            check_schema(conn, path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=FULL")  # a commit survives power loss too; events are rare
        # A deleted row is overwritten with zeros, not left readable in a free page of the file.
        conn.execute("PRAGMA secure_delete=ON")
        if fresh:
            _create_schema(conn)
    except sqlite3.Error as exc:
        raise EventStoreError(
            f"cannot use events database {path}: {sqlite_problem(exc)}; "
            "give a writable path to a new file or to a maskapp events log"
        ) from exc
    if str(mode).lower() != "wal":
        logger.warning(
            "event log %s: journal mode %s, not WAL (file system without shared memory?)", path, mode
        )


def _create_schema(conn: sqlite3.Connection) -> None:
    with _immediate_transaction(conn):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        meta = [("schema", SCHEMA_NAME), ("version", str(SCHEMA_VERSION))]
        conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", meta)
