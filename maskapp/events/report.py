"""Read an event log: summaries, people per hour, compliance over time, the events table and its CSV.

Everything here is plain data (dataclasses, lists, dicts) for the Compliance log page and the `events` CLI
command to render. The database is opened read-only, so a report can run beside a live writer.

Counting rules (the same as the recorder's):
- A person is one (source, run, person) of the per-person rows, counted once, with their final verdict:
  the `person_left` label, or, for a person without one (a run killed, or still going), their last label.
- Aggregate windows add their counts of people to their source.
- Date ranges are half-open [start, end) in UTC; a naive datetime is UTC; a `date` as `end` means through
  that day (a reader in another time zone passes aware datetimes: its local midnights). A person falls
  in a range, and in a time bucket, by the time of their last event in the range (normally when they
  left); an aggregate window by its start.
- Compliance = people whose verdict is compliant (`with_mask` only by default) / people.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maskapp.errors import EventStoreError
from maskapp.events.recorder import COMPLIANT_LABELS
from maskapp.events.store import (
    EVENT_KINDS,
    AggregateWindow,
    Event,
    check_schema,
    iso_utc,
    open_for_reading,
    read_problem,
    require_log_file,
    sqlite_problem,
    window_start_seconds,
)
from maskapp.labels import CLASS_NAMES, in_class_order, verdict_name

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("time", "source", "run", "person", "kind", "label", "frame")


@dataclass(frozen=True)
class PersonRecord:
    source: str
    run: str
    person: int
    label: str  # final verdict (see the module docstring)
    first_time: str
    last_time: str
    left: bool  # has a person_left row
    violation: bool  # has a violation row


@dataclass(frozen=True)
class SourceSummary:
    source: str
    people: int  # per-person rows and aggregate windows together
    by_verdict: dict[str, int]
    compliant: int
    violations: int  # violation rows (per-person runs only)
    still_present: int  # seen, never left: a run killed, or still going
    aggregate_windows: int
    first_time: str | None
    last_time: str | None
    counted_in_windows: int = 0  # people of the aggregate windows: counts alone, never a violation row
    # A violation is written when a person is first judged non-compliant; their verdict is the final one.
    # These were flagged, then left compliant: in `violations` and in a compliant verdict both.
    flagged_then_compliant: int = 0
    # An aggregate window's bounds are nominal: a clip that stopped at 11:50:30 has a window to 11:55, and
    # 'to 11:55' read as the camera running until then. Where first_time or last_time is such a bound, the
    # window (start, end) it bounds, so that the span is shown as that window.
    first_window: tuple[str, str] | None = None
    last_window: tuple[str, str] | None = None
    # Stretches between two of its aggregate windows with no window at all: a window is stored when a frame
    # comes in (nobody in view included), so these are times the camera sent no frame, not idle windows.
    window_gaps: int = 0

    @property
    def compliance(self) -> float | None:
        return self.compliant / self.people if self.people else None

    @property
    def logged_one_by_one(self) -> bool:
        """False for a source whose every person was counted in aggregate windows: those runs store no
        per-person row, so neither its violations nor who is still present can be known, and a 0 for
        either read as a fact (nobody unmasked, everyone gone)."""
        return self.aggregate_windows == 0 or self.people > self.counted_in_windows

    @property
    def violations_logged(self) -> bool:
        return self.logged_one_by_one

    @property
    def still_present_logged(self) -> bool:
        return self.logged_one_by_one


@dataclass(frozen=True)
class LogSummary:
    path: str
    events: int  # event rows in the range
    sources: list[SourceSummary]
    windows: list[AggregateWindow]  # aggregate-only rows in the range, oldest first

    @property
    def people(self) -> int:
        return sum(source.people for source in self.sources)

    @property
    def compliance(self) -> float | None:
        compliant = sum(source.compliant for source in self.sources)
        return compliant / self.people if self.people else None

    @property
    def flagged_then_compliant(self) -> int:
        return sum(source.flagged_then_compliant for source in self.sources)

    @property
    def violations_logged(self) -> bool:
        """Whether any source in the range logged people one by one (and so their violations)."""
        return any(source.violations_logged for source in self.sources)

    @property
    def counts_only_sources(self) -> list[str]:
        """The sources with no per-person row in the range (aggregate counts only): no violation of
        theirs is listed, and no row of theirs is in an events CSV."""
        return [source.source for source in self.sources if not source.logged_one_by_one]


@dataclass(frozen=True)
class PeriodCounts:
    """People by verdict for one source in one time bucket."""

    start: str  # bucket start, ISO-8601 with the offset of the time zone the buckets were cut in
    source: str
    by_verdict: dict[str, int]
    compliant: int

    @property
    def people(self) -> int:
        return sum(self.by_verdict.values())

    @property
    def compliance(self) -> float | None:
        return self.compliant / self.people if self.people else None


@dataclass(frozen=True)
class CompliancePoint:
    start: str
    source: str
    people: int
    compliance: float


DateBound = datetime | date | None


# One row per person in a time range. Insertion order (id), not time order, says which event came first
# and last: a clock stepping back must not put person_left before the rest. The verdict is the label of
# the person's first person_left row (final), else of their last row.
_PEOPLE_SQL = """
WITH people AS (
    SELECT source, run, person, MIN(id) AS first_id, MAX(id) AS last_id,
        MIN(CASE WHEN kind = 'person_left' THEN id END) AS left_id,
        MAX(kind = 'violation') AS violation
    FROM events WHERE {where} GROUP BY source, run, person
)
SELECT people.source, people.run, people.person, COALESCE(gone.label, last.label), first.time, last.time,
    people.left_id IS NOT NULL, people.violation
FROM people
JOIN events AS first ON first.id = people.first_id
JOIN events AS last ON last.id = people.last_id
LEFT JOIN events AS gone ON gone.id = people.left_id
"""


class EventLog:
    """An events database opened read-only. Raises EventStoreError for a missing, corrupt or non-maskapp
    file. Use as a context manager, or call close().

    The people of a time range are read once per EventLog (the summary and the charts of one view all
    need them): open a new one to see rows written since."""

    def __init__(self, path: Path | str, *, compliant_labels: Collection[str] = COMPLIANT_LABELS) -> None:
        self.path = Path(path)
        self._compliant = frozenset(compliant_labels)
        self._conn = _open_read_only(self.path)
        self._people: dict[tuple[DateBound, DateBound], list[PersonRecord]] = {}

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- rows ---

    def events(
        self,
        *,
        start: DateBound = None,
        end: DateBound = None,
        kinds: Collection[str] | None = None,
        source: str | None = None,
    ) -> list[Event]:
        """Event rows in time order (all kinds unless `kinds` is given)."""
        return self._select_events(start, end, kinds, source, order="time, id")

    def _select_events(
        self,
        start: DateBound,
        end: DateBound,
        kinds: Collection[str] | None,
        source: str | None,
        *,
        order: str,
    ) -> list[Event]:
        _check_kinds(kinds)
        sql, params = _range_sql("time", start, end)
        if kinds is not None:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params.extend(kinds)
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        columns = "time, source, run, person, kind, label, frame"
        query = f"SELECT {columns} FROM events WHERE {sql} ORDER BY {order}"
        return [
            Event(_checked_time(row[0], "an event", self.path), *row[1:])
            for row in self._query(query, params)
        ]

    def violations(self, *, start: DateBound = None, end: DateBound = None) -> list[Event]:
        return self.events(start=start, end=end, kinds=("violation",))

    def windows(self, *, start: DateBound = None, end: DateBound = None) -> list[AggregateWindow]:
        sql, params = _range_sql("window_start", start, end)
        columns = "window_start, window_end, source, counts"
        query = f"SELECT {columns} FROM aggregates WHERE {sql} ORDER BY window_start, id"
        return [
            AggregateWindow(
                _checked_time(s, "an aggregate window", self.path),
                _checked_time(e, "an aggregate window", self.path),
                src,
                _counts(raw),
            )
            for s, e, src, raw in self._query(query, params)
        ]

    def people(self, *, start: DateBound = None, end: DateBound = None) -> list[PersonRecord]:
        """One record per person of the per-person runs, in order of their last event."""
        if (start, end) not in self._people:
            self._people[start, end] = self._read_people(start, end)
        return list(self._people[start, end])

    def _read_people(self, start: DateBound, end: DateBound) -> list[PersonRecord]:
        # In SQL: a year of an entrance is a million rows, which Python took 5 s to fold into people.
        where, params = _range_sql("time", start, end)
        records = [
            PersonRecord(
                source,
                run,
                person,
                label,
                _checked_time(first, "an event", self.path),
                _checked_time(last, "an event", self.path),
                bool(left),
                bool(violation),
            )
            for source, run, person, label, first, last, left, violation in self._query(
                _PEOPLE_SQL.format(where=where), params
            )
        ]
        return sorted(records, key=lambda person: person.last_time)

    def time_span(self) -> tuple[str | None, str | None]:
        """The first and last time in the whole log (events and aggregate windows); (None, None) if empty.
        Read by SQL alone: times are stored in one ISO-8601 UTC form, so they sort as text."""
        (events_first, events_last), (windows_first, windows_last) = (
            self._query(sql, [])[0]
            for sql in (
                "SELECT MIN(time), MAX(time) FROM events",
                "SELECT MIN(window_start), MAX(window_end) FROM aggregates",
            )
        )
        # All four together: a window whose end was edited to before its start still spans forwards.
        times = [t for t in (events_first, events_last, windows_first, windows_last) if t is not None]
        if not times:
            return None, None
        checked = [_checked_time(t, "an event or window", self.path) for t in times]
        return min(checked), max(checked)

    # --- summaries ---

    def summary(self, *, start: DateBound = None, end: DateBound = None) -> LogSummary:
        people, windows = self.people(start=start, end=end), self.windows(start=start, end=end)
        sources = sorted({p.source for p in people} | {w.source for w in windows})
        where, params = _range_sql("time", start, end)
        ((events,),) = self._query(f"SELECT COUNT(*) FROM events WHERE {where}", params)
        return LogSummary(
            path=str(self.path),
            events=events,
            sources=[self._source_summary(s, people, windows) for s in sources],
            windows=windows,
        )

    def people_by_period(
        self, *, minutes: float = 60, start: DateBound = None, end: DateBound = None, zone: tzinfo = UTC
    ) -> list[PeriodCounts]:
        """People by verdict per source per `minutes`-long bucket, oldest first; buckets without people are
        left out. Buckets follow `zone`'s clock (aligned to its midnights), so an hour is a local hour
        also where the offset is not whole hours (India's +05:30)."""
        if not minutes > 0:
            raise EventStoreError(f"time bucket must be a positive number of minutes, got {minutes!r}")
        step = timedelta(minutes=minutes).total_seconds()
        buckets: dict[tuple[datetime, str], Counter[str]] = {}
        for person in self.people(start=start, end=end):  # a Counter each was most of a year's 5 s
            key = (_bucket_start(person.last_time, step, zone), person.source)
            buckets.setdefault(key, Counter())[person.label] += 1
        for window in self.windows(start=start, end=end):
            key = (_bucket_start(window.window_start, step, zone), window.source)
            buckets.setdefault(key, Counter()).update(window.counts)
        return [
            PeriodCounts(
                bucket.isoformat(timespec="milliseconds"),
                source,
                dict(counts),
                self._compliant_count(counts),
            )
            for (bucket, source), counts in sorted(buckets.items())
            if counts.total() > 0  # an idle aggregate window has no people to show
        ]

    def people_per_hour(
        self, *, start: DateBound = None, end: DateBound = None, zone: tzinfo = UTC
    ) -> list[PeriodCounts]:
        return self.people_by_period(minutes=60, start=start, end=end, zone=zone)

    def compliance_over_time(
        self, *, minutes: float = 60, start: DateBound = None, end: DateBound = None, zone: tzinfo = UTC
    ) -> list[CompliancePoint]:
        """Compliance of people per source per bucket, oldest first (buckets with people only)."""
        return compliance_points(self.people_by_period(minutes=minutes, start=start, end=end, zone=zone))

    # --- CSV ---

    def events_csv(
        self,
        *,
        start: DateBound = None,
        end: DateBound = None,
        kinds: Collection[str] | None = None,
        source: str | None = None,
    ) -> str:
        """The events table as CSV text (the same filters as events()), e.g. for a download button."""
        return csv_text(self.events(start=start, end=end, kinds=kinds, source=source))

    def export_csv(
        self,
        out: Path | str,
        *,
        start: DateBound = None,
        end: DateBound = None,
        kinds: Collection[str] | None = None,
        source: str | None = None,
    ) -> int:
        """Write the events table to `out`; returns the number of rows. Written through a temporary file,
        so a failed export leaves no half file behind."""
        out = Path(out)
        events = self.events(start=start, end=end, kinds=kinds, source=source)
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("w", newline="", encoding="utf-8") as handle:
                write_csv(events, handle)
            os.replace(partial, out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise EventStoreError(
                f"cannot write CSV {out} ({exc.strerror or exc}); give a writable path"
            ) from exc
        logger.debug("wrote %d event(s) to %s", len(events), out)  # the command prints it
        return len(events)

    # --- helpers ---

    def _source_summary(
        self, source: str, people: list[PersonRecord], windows: list[AggregateWindow]
    ) -> SourceSummary:
        mine = [p for p in people if p.source == source]
        own_windows = [w for w in windows if w.source == source]
        verdicts = Counter(p.label for p in mine)
        in_windows = Counter()
        for window in own_windows:
            in_windows.update(window.counts)
        verdicts.update(in_windows)
        seen = [p.first_time for p in mine] + [p.last_time for p in mine]
        first_window = min(own_windows, key=lambda w: w.window_start, default=None)
        last_window = max(own_windows, key=lambda w: w.window_end, default=None)
        # A window bounds the span only where it reaches past everyone seen one by one.
        if first_window is not None and seen and min(seen) <= first_window.window_start:
            first_window = None
        if last_window is not None and seen and max(seen) >= last_window.window_end:
            last_window = None
        return SourceSummary(
            source=source,
            people=sum(verdicts.values()),
            by_verdict=dict(verdicts),
            compliant=self._compliant_count(verdicts),
            violations=sum(p.violation for p in mine),
            still_present=sum(not p.left for p in mine),
            aggregate_windows=len(own_windows),
            first_time=first_window.window_start if first_window else min(seen, default=None),
            last_time=last_window.window_end if last_window else max(seen, default=None),
            counted_in_windows=in_windows.total(),
            flagged_then_compliant=sum(p.violation and p.label in self._compliant for p in mine),
            first_window=_bounds(first_window),
            last_window=_bounds(last_window),
            window_gaps=len(window_gaps(own_windows)),
        )

    def _compliant_count(self, counts: Counter[str]) -> int:
        return sum(n for label, n in counts.items() if label in self._compliant)

    def _query(self, sql: str, params: list) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise read_problem(self.path, exc) from exc


def window_gaps(windows: Iterable[AggregateWindow]) -> list[tuple[str, str, str]]:
    """(source, start, end) of each stretch between a source's windows that no window covers: no frame
    came in then (a window where frames came and nobody was seen is stored, with its zero people)."""
    gaps, reached = [], {}
    for window in sorted(windows, key=lambda w: w.window_start):
        end = reached.get(window.source)
        if end is not None and window.window_start > end:
            gaps.append((window.source, end, window.window_start))
        reached[window.source] = max(end or window.window_end, window.window_end)
    return gaps


def _bounds(window: AggregateWindow | None) -> tuple[str, str] | None:
    return None if window is None else (window.window_start, window.window_end)


def parse_zone(name: str) -> tzinfo:
    """An IANA time zone name ('Europe/Paris', 'UTC'); EventStoreError for one this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise EventStoreError(
            f"unknown time zone {name!r}; allowed: an IANA name such as Europe/Paris, America/New_York or UTC"
        ) from exc


def zone_name(zone: tzinfo) -> str:
    return "UTC" if zone in (UTC, ZoneInfo("UTC")) else str(zone)


def local_time(stamp: str | None, zone: tzinfo) -> str | None:
    """A stored ISO-8601 UTC time as `zone`'s wall clock, to the second: '2026-11-27 14:06:54'."""
    if stamp is None:
        return None
    return datetime.fromisoformat(stamp).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def span_time(stamp: str | None, window: tuple[str, str] | None, zone: tzinfo) -> str | None:
    """A source's first or last time on `zone`'s clock; where it is an aggregate window's bound, the window
    ('window 2026-11-24 11:50:00–11:55:00'): counts alone do not say when in it the camera started or
    stopped, and its nominal end read as the camera running until then."""
    if window is None:
        return local_time(stamp, zone)
    start, end = (local_time(bound, zone) for bound in window)
    same_day = start[:10] == end[:10]
    return f"window {start}–{end[11:] if same_day else end}"


def zoned_range(start: DateBound, end: DateBound, zone: tzinfo) -> tuple[DateBound, DateBound]:
    """A range given in `zone`: a day starts at its midnight there (an end day: through that day), a
    moment without an offset is on its clock; for the queries above, which read days and naive moments
    as UTC."""

    def bound(value: DateBound, next_day: bool) -> DateBound:
        if value is None or isinstance(value, datetime):
            return value if value is None or value.tzinfo else value.replace(tzinfo=zone)
        return datetime.combine(value + timedelta(days=next_day), time(), zone)

    return bound(start, False), bound(end, True)


def compliance_points(periods: Iterable[PeriodCounts]) -> list[CompliancePoint]:
    """Compliance of people per source per bucket, from the buckets' counts (buckets with people only)."""
    return [CompliancePoint(p.start, p.source, p.people, p.compliant / p.people) for p in periods]


_WALL_CLOCK_EPOCH = datetime(1970, 1, 1)


def _bucket_start(stamp: str, step_s: float, zone: tzinfo) -> datetime:
    """The start, in `zone`, of the `step_s`-long bucket holding an ISO time: buckets cut `zone`'s wall
    clock as windows cut UTC's (in UTC, the aggregate windows' own bounds)."""
    wall = datetime.fromisoformat(stamp).astimezone(zone).replace(tzinfo=None)
    seconds = window_start_seconds((wall - _WALL_CLOCK_EPOCH).total_seconds(), step_s)
    return (_WALL_CLOCK_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=zone)


def csv_text(events: Iterable[Event]) -> str:
    buffer = io.StringIO()
    write_csv(events, buffer)
    return buffer.getvalue()


def write_csv(events: Iterable[Event], handle: TextIO) -> None:
    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    for event in events:  # attributes, not asdict: 4x faster on a year's violations
        writer.writerow([_csv_cell(getattr(event, column)) for column in CSV_COLUMNS])


def _csv_cell(value: object) -> object:
    """Text starting with = + - @ would run as a formula in a spreadsheet (a source name is user input)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _open_read_only(path: Path) -> sqlite3.Connection:
    require_log_file(path)
    try:
        conn = open_for_reading(path)
    except sqlite3.Error as exc:
        raise EventStoreError(f"cannot open events database {path}: {sqlite_problem(exc)}") from exc
    try:
        check_schema(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise read_problem(path, exc) from exc
    except EventStoreError:
        conn.close()
        raise
    return conn


def _range_sql(column: str, start: DateBound, end: DateBound) -> tuple[str, list]:
    if start is not None and end is not None and iso_utc(start) >= _end_bound(end):
        raise EventStoreError(
            f"the time range starts ({start}) at or after its end ({end}); allowed: a start before the end"
        )
    clauses, params = ["1 = 1"], []
    if start is not None:
        clauses.append(f"{column} >= ?")
        params.append(iso_utc(start))
    if end is not None:
        clauses.append(f"{column} < ?")
        params.append(_end_bound(end))
    return " AND ".join(clauses), params


def _end_bound(end: datetime | date) -> str:
    if isinstance(end, datetime):
        return iso_utc(end)
    return iso_utc(end + timedelta(days=1))  # a date means through that day


def _check_kinds(kinds: Collection[str] | None) -> None:
    unknown = set(kinds or ()) - set(EVENT_KINDS)
    if unknown:
        raise EventStoreError(f"unknown event kind(s) {sorted(unknown)}; allowed: {', '.join(EVENT_KINDS)}")


# The one form iso_utc writes. Years keep a day's margin from datetime's bounds, so that a date filter's
# next midnight and the reader's time zone can be computed for any row.
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
_STORED_YEARS = range(1900, 9999)


def _checked_time(value: object, row: str, path: Path) -> str:
    """A stored time as maskapp writes it; a row of another program (or edited by hand) is refused here,
    before the charts and the summary compute with it (they sort times as text: one form only)."""
    if isinstance(value, str) and _STORED_TIME.fullmatch(value):
        try:
            if datetime.fromisoformat(value).year in _STORED_YEARS:
                return value
        except ValueError:  # a 13th month...
            pass
    raise EventStoreError(
        f"events database {path}: {row} row has the time {str(value)[:40]!r}; allowed: ISO-8601 UTC times "
        "as maskapp writes them (years 1900 to 9998), e.g. 2026-11-27T12:58:03.877+00:00"
    )


def _counts(raw: str) -> dict[str, int]:
    try:
        counts = json.loads(raw)
    except json.JSONDecodeError:
        counts = None
    valid = isinstance(counts, dict) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
    )
    if not valid:
        raise EventStoreError(
            f"an aggregate row holds malformed counts {raw[:80]!r}; allowed: a JSON object of class "
            'names and people counts (whole numbers, 0 or more), e.g. {"with_mask": 3, "without_mask": 1}'
        )
    return {str(label): n for label, n in counts.items()}


# --- text --------------------------------------------------------------------------------------------------


NO_WINDOW = "no window (no frame came in: the camera was not running)"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _verdicts_text(counts: dict[str, int], *, every_class: bool) -> str:
    """'Mask 1, Mask worn incorrectly 0, No mask 2': the verdicts named and ordered as the Compliance log
    page shows them (it printed with_mask, without_mask beside a page saying Mask, No mask); with
    `every_class`, the three classes always, as the page's table of sources; else those with people."""
    labels = in_class_order({*counts, *(CLASS_NAMES if every_class else ())})
    return ", ".join(
        f"{verdict_name(label)} {counts.get(label, 0)}" for label in labels if every_class or counts[label]
    )


def _violations_text(source: SourceSummary) -> str:
    if source.violations_logged and source.flagged_then_compliant:
        return f"violations {source.violations} ({source.flagged_then_compliant} of them left compliant)"
    if source.violations_logged:
        return f"violations {source.violations}"
    return "violations not logged (aggregate counts only, no per-person row)"  # '0' read as nobody unmasked


def _still_present_text(source: SourceSummary) -> str:
    if source.still_present_logged:
        return f"still present at the end of the log {source.still_present}"
    return "still present not logged"  # '0' read as everyone gone: counts alone say nothing of who left


def gaps_text(gaps: int) -> str:
    """Beside a source's number of windows: its stretches with none (the camera sent no frame)."""
    return f" ({gaps} gap{'s' if gaps != 1 else ''} with no window: not running)" if gaps else ""


def _span_text(source: SourceSummary, zone: tzinfo) -> str:
    first = span_time(source.first_time, source.first_window, zone) or "-"
    if source.first_window is not None and source.first_window == source.last_window:
        return f"within {first}"  # 'from window X to window X' said one window twice
    return f"from {first} to {span_time(source.last_time, source.last_window, zone) or '-'}"


def format_summary(summary: LogSummary, zone: tzinfo = UTC) -> str:
    """The `events` command's report: per source, people by verdict, violations, compliance of people and
    the time span (in `zone`); then the aggregate windows."""
    lines = [
        f"{summary.path}: {summary.events} event rows, {summary.people} people, "
        f"compliance of people {_share(summary.compliance)} (times in {zone_name(zone)})"
    ]
    if not summary.sources:
        lines.append("no people or aggregate windows in this range")
    for source in summary.sources:
        lines += [
            "",
            f"source {source.source}",
            f"  people {source.people} ({_verdicts_text(source.by_verdict, every_class=True)}), "
            f"compliance {_share(source.compliance)}",
            f"  {_violations_text(source)}, {_still_present_text(source)}, "
            f"aggregate windows {source.aggregate_windows}{gaps_text(source.window_gaps)}",
            f"  {_span_text(source, zone)}",
        ]
    if summary.windows:
        lines += ["", "aggregate windows (people by verdict, no per-person rows):"]
        # A stretch without a window listed as such: skipped silently, it read as an idle window dropped.
        rows = [
            (w.window_start, w.window_end, w.source, _verdicts_text(w.counts, every_class=False) or "nobody")
            for w in summary.windows
        ]
        rows += [(start, end, source, NO_WINDOW) for source, start, end in window_gaps(summary.windows)]
        for start, end, source, counts in sorted(rows, key=lambda row: row[0]):
            lines.append(f"  {local_time(start, zone)} to {local_time(end, zone)}  {source}: {counts}")
    return "\n".join(lines)
