"""The Compliance log page's work: an events database read into what the page shows (no Streamlit here).

Times are stored in UTC; the page shows them in the reader's time zone (their browser's, or UTC), and its
days and hours are that zone's: someone reading yesterday's log at a site sees the site's opening hour
as it was on the clock. The CSV download keeps the stored UTC times. A missing file is not an error here
(the page says how to start one); a file that is not a maskapp events log raises EventStoreError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

from maskapp.app.text import breakable
from maskapp.errors import EventStoreError
from maskapp.events.report import (
    CompliancePoint,
    EventLog,
    LogSummary,
    PeriodCounts,
    compliance_points,
    csv_text,
    gaps_text,
    local_time,
    parse_zone,
    span_time,
    zone_name,
    zoned_range,
)
from maskapp.events.store import is_file, is_new_log, user_path
from maskapp.labels import CLASS_NAMES, WITH_MASK, in_class_order, verdict_name

logger = logging.getLogger(__name__)

VERDICT_COLUMN = "verdict"  # the violations table's; the CSV's column is "label", with the stored labels

# An aggregate-only source's violations and people still present: it stored counts alone, so a 0 there
# would claim nobody unmasked, or everyone gone.
NOT_LOGGED = "not logged"
AGGREGATE_ONLY = (
    "No violations to list: this range was logged with 'Aggregate counts only' "
    "(`video --aggregate-minutes`), which stores the number of people by verdict per time window and no "
    "per-person row, so no violation either. The people and compliance above are those counts."
)


@dataclass(frozen=True)
class ViolationsFigure:
    """The page's top 'Violations' figure: the violations listed below, and what that count leaves out."""

    value: int | str  # "n/a" where no source in the range logged people one by one
    note: str | None = None  # under the figure: the sources whose violations it cannot count
    help: str | None = None


@dataclass(frozen=True)
class LogView:
    summary: LogSummary  # in the date range
    compliance: list[CompliancePoint]  # per source per hour
    per_hour: list[PeriodCounts]
    violations: list[dict]  # one row per violation event
    violations_csv: str
    first_day: date | None  # of the whole log, for the date filter
    last_day: date | None


def existing_log(text: str) -> Path | None:
    """The events file a reader typed (`~` expanded), or None when there is none yet (the page says how
    to start one); EventStoreError for a path the system refuses, a folder, or something that exists
    but is not a file (a device such as /dev/null, a pipe, a socket)."""
    path = user_path(text)
    if path is None or is_file(path):
        return path
    if path.is_dir():  # "no log yet, turn logging on" would send the reader away from a log in it
        raise EventStoreError(
            f"events path {path} is a folder; give the events file in it, such as {path}/events.sqlite"
        )
    if path.exists():  # "no log yet" for something that is there, and that no camera can ever write to
        raise EventStoreError(
            f"events path {path} is not a regular file (a device, pipe or socket); give an events .sqlite "
            "file written by the Live or Video page or by `python -m maskapp video`"
        )
    return None


def time_zone(name: str | None) -> tzinfo:
    """The IANA time zone a browser reports (e.g. 'Europe/Paris'); UTC when there is none or it is not one
    this machine knows (a warning: the page then says UTC)."""
    if not name:
        return UTC
    try:
        return parse_zone(name)
    except EventStoreError:
        logger.warning("unknown time zone %r: showing times in UTC", name)
        return UTC


def _day(stamp: str | None, zone: tzinfo) -> date | None:
    return None if stamp is None else datetime.fromisoformat(stamp).astimezone(zone).date()


def log_days(path: Path | str, zone: tzinfo = UTC) -> tuple[date | None, date | None]:
    """The first and last day of the whole log in `zone`, for the date filter: read by SQL alone, so a
    year-long log is not read whole before its range is chosen. (None, None) for an empty log, one a
    camera has only just created included."""
    if is_new_log(Path(path)):
        return None, None
    with EventLog(path) as log:
        first, last = log.time_span()
    return _day(first, zone), _day(last, zone)


def log_version(path: Path | str) -> tuple[tuple[int, int], ...]:
    """Size and modification time of the database and its write-ahead log: changes when a row is written
    (WAL mode writes to the -wal file first), so a view cached under it is never stale."""
    files = (Path(path), Path(f"{path}-wal"))
    return tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists())


def person_id(run: str, person: int) -> str:
    """A person as the violations table names them, 'f39e55fdd1de #1': their run (one per start of a
    camera or video) and their number in it, the two that tell one person from all others."""
    return f"{run} #{person}"


def time_column(zone: tzinfo) -> str:
    """The violations table's time header: the zone its times are in."""
    return f"time ({zone_name(zone)})"


def read_log(
    path: Path | str, start: date | None = None, end: date | None = None, zone: tzinfo = UTC
) -> LogView:
    """The log between `start` and `end` (days of `zone`, both included; None: open), its times shown in
    `zone`."""
    since, until = zoned_range(start, end, zone)
    shown = time_column(zone)
    with EventLog(path) as log:
        first, last = log.time_span()
        violations = log.violations(start=since, end=until)
        per_hour = log.people_per_hour(start=since, end=until, zone=zone)
        return LogView(
            summary=log.summary(start=since, end=until),
            compliance=compliance_points(per_hour),
            per_hour=per_hour,
            violations=[
                {  # what happened first: after a long source path, the label was off a 1000 px page
                    shown: local_time(v.time, zone),
                    # "verdict", as the page's "People by verdict per hour": "label" was the CSV's
                    # machine word beside verdicts named Mask and No mask (the CSV keeps it).
                    VERDICT_COLUMN: verdict_name(v.label),
                    # Run-qualified: numbers start at 1 in each run, so a bare 'person 1' stood on two
                    # cameras (or two runs of one) with nothing saying they were two people. The CSV keeps
                    # its run and person columns.
                    "person": person_id(v.run, v.person),
                    "source": v.source,
                    "frame": v.frame,
                }
                for v in violations
            ],
            violations_csv=csv_text(violations),
            first_day=_day(first, zone),
            last_day=_day(last, zone),
        )


# The violations table shows up to this many rows before it scrolls: Streamlit's default box (400 px) held
# about five rows of 72 px, so a day's 48 violations were read five at a time in a small box; a box of
# every row made the page endless.
VIOLATION_ROWS_SHOWN = 12
TABLE_HEADER_PX = 35  # Streamlit's header row, whatever the rows' height
TABLE_BORDER_PX = 2


def table_height(rows: int, row_height: int, most: int = VIOLATION_ROWS_SHOWN) -> int:
    """The pixel height of a table box that shows `rows` rows of `row_height` whole, up to `most`."""
    return TABLE_HEADER_PX + min(max(rows, 1), most) * row_height + TABLE_BORDER_PX


def source_rows(summary: LogSummary, zone: tzinfo = UTC) -> list[dict]:
    """One table row per source: people by verdict, violations, compliance of people, the time span.

    Every source has the same verdict columns, in the classes' order (with_mask first), 0 where nobody
    had that verdict: in the labels' alphabetical order, mask_worn_incorrectly came first, and a verdict
    only some sources had left the others' cells empty. Compliance is a percentage, as the page's
    figures above it."""
    name = zone_name(zone)
    labels = in_class_order({*CLASS_NAMES, *(label for s in summary.sources for label in s.by_verdict)})
    rows = []
    for source in summary.sources:
        rows.append(
            {
                "source": source.source,
                # Each figure named as the verdicts are (Mask, No mask) and as the page's figures above
                # (People, Compliance of people): 'people' and 'violations' beside 'Mask' mixed two styles.
                "People": source.people,
                **{verdict_name(label): source.by_verdict.get(label, 0) for label in labels},
                "Violations": source.violations if source.violations_logged else NOT_LOGGED,
                "Compliance of people": "n/a" if source.compliance is None else f"{source.compliance:.0%}",
                "Still present": source.still_present if source.still_present_logged else NOT_LOGGED,
                # As `events` says it: a stretch with no window is a camera sending no frame, not idle.
                "Aggregate windows": f"{source.aggregate_windows}{gaps_text(source.window_gaps)}",
                f"From ({name})": span_time(source.first_time, source.first_window, zone),
                f"To ({name})": span_time(source.last_time, source.last_window, zone),
            }
        )
    return rows


# The table of sources' columns are at least this wide (CSS, the cell's padding included): a date,
# '2026-11-27', on one line. A short name (lobby) gave its source a column so narrow that its From and To
# times took three lines each.
SOURCE_COLUMN_MIN_WIDTH = "calc(10ch + 1rem)"


def source_table(summary: LogSummary, zone: tzinfo = UTC) -> list[dict]:
    """source_rows turned on its side for the page: one row per figure, one column per source. With a
    row per source, the eleven columns of long unbreakable headers (mask_worn_incorrectly) and times
    ran past the page, hiding the last ones at 1400 px and all from 'violations' on at 1000 px; a site
    has a few cameras, so a column each stays narrow."""
    rows = source_rows(summary, zone)
    if not rows:
        return []
    # A camera's path or URL, one unbreakable word, pushed the next sources off the page.
    sources = [breakable(row["source"]) for row in rows]
    figures = [name for name in rows[0] if name != "source"]
    # Text throughout: a column of counts, a percentage and times is no column type Arrow can send.
    return [
        {"": figure, **{s: str(row[figure]) for s, row in zip(sources, rows, strict=True)}}
        for figure in figures
    ]


def violations_figure(summary: LogSummary, listed: int) -> ViolationsFigure:
    """The violations `listed` (those of the sources logged person by person), and, beside sources logged
    as counts alone, that it leaves them out: a bare '3' beside them read as every source's violations."""
    unlogged = summary.counts_only_sources
    if not unlogged:
        return ViolationsFigure(listed)
    if not summary.violations_logged:
        return ViolationsFigure("n/a", help=AGGREGATE_ONLY)
    counted = len(summary.sources) - len(unlogged)
    return ViolationsFigure(
        listed,
        note=f"counted at {counted} of {len(summary.sources)} sources",
        help=f"The violations of the sources logged person by person. Not logged at {', '.join(unlogged)}: "
        "'Aggregate counts only' stores the number of people by verdict per time window, no per-person "
        "row, so no violation either.",
    )


def unlogged_violations_note(summary: LogSummary) -> str | None:
    """Under a list of violations that leaves out sources logged as counts alone: which, and why."""
    unlogged = summary.counts_only_sources
    if not unlogged or not summary.violations_logged:
        return None
    # The CSV named too: once saved, nothing in it says whose violations it leaves out.
    return (
        f"Not listed, here or in the CSV: the violations at {', '.join(unlogged)}, logged with 'Aggregate "
        "counts only' (people by verdict per time window, no per-person row)."
    )


def violations_file_name(summary: LogSummary, start: date | None, end: date | None) -> str:
    """The violations download's name: beside aggregate-only sources, how many sources it holds
    ('violations_2026-11-24_2026-11-25_2_of_3_sources.csv'), as the Violations figure says; a bare name
    read, once saved, as every source's violations. No note inside: a non-data row breaks the CSV."""
    days = f"{start}_{end}"
    counted = sum(source.violations_logged for source in summary.sources)
    if counted == len(summary.sources):
        return f"violations_{days}.csv"
    return f"violations_{days}_{counted}_of_{len(summary.sources)}_sources.csv"


def flagged_then_compliant_note(summary: LogSummary) -> str | None:
    """Why a source can have more violations than non-compliant people (a real clip: 23 beside 22), or
    None when none was flagged and then judged compliant."""
    count = summary.flagged_then_compliant
    if not count:
        return None
    return (
        f"A violation is logged when a person is first judged non-compliant; the verdicts above are each "
        f"person's final one. {count} {'person was' if count == 1 else 'people were'} flagged and then "
        f"left compliant, so counted in the violations and as {verdict_name(WITH_MASK)}."
    )


def date_range(value) -> tuple[date | None, date | None]:
    """A date input's value (a date, or a tuple of one or two dates while a range is picked) -> (start,
    end), both included."""
    if isinstance(value, date):
        return value, value
    days = [day for day in (value or ()) if day is not None]
    if not days:
        return None, None
    return min(days), max(days)  # in either order: the range of days between them
