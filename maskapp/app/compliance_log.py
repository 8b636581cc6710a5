"""The Compliance log page's work: an events database read into what the page shows (no Streamlit here).

Everything is in UTC, as stored. A missing file is not an error here (the page says how to start one);
a file that is not a maskapp events log raises EventStoreError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from maskapp.events.report import (
    CompliancePoint,
    EventLog,
    LogSummary,
    PeriodCounts,
    compliance_points,
    csv_text,
)


@dataclass(frozen=True)
class LogView:
    summary: LogSummary  # in the date range
    compliance: list[CompliancePoint]  # per source per hour
    per_hour: list[PeriodCounts]
    violations: list[dict]  # one row per violation event
    violations_csv: str
    first_day: date | None  # of the whole log, for the date filter
    last_day: date | None


def _day(stamp: str | None) -> date | None:
    return None if stamp is None else datetime.fromisoformat(stamp).date()


def log_days(path: Path | str) -> tuple[date | None, date | None]:
    """The first and last day of the whole log, for the date filter: read by SQL alone, so a year-long
    log is not read whole before its range is chosen."""
    with EventLog(path) as log:
        first, last = log.time_span()
    return _day(first), _day(last)


def log_version(path: Path | str) -> tuple[tuple[int, int], ...]:
    """Size and modification time of the database and its write-ahead log: changes when a row is written
    (WAL mode writes to the -wal file first), so a view cached under it is never stale."""
    files = (Path(path), Path(f"{path}-wal"))
    return tuple((f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists())


def read_log(path: Path | str, start: date | None = None, end: date | None = None) -> LogView:
    """The log between `start` and `end` (days, both included; None: open)."""
    with EventLog(path) as log:
        first, last = log.time_span()
        violations = log.violations(start=start, end=end)
        per_hour = log.people_per_hour(start=start, end=end)
        return LogView(
            summary=log.summary(start=start, end=end),
            compliance=compliance_points(per_hour),
            per_hour=per_hour,
            violations=[
                {
                    "time (UTC)": v.time,
                    "source": v.source,
                    "run": v.run,
                    "person": v.person,
                    "label": v.label,
                    "frame": v.frame,
                }
                for v in violations
            ],
            violations_csv=csv_text(violations),
            first_day=_day(first),
            last_day=_day(last),
        )


def source_rows(summary: LogSummary) -> list[dict]:
    """One table row per source: people by verdict, violations, compliance of people, the time span."""
    rows = []
    for source in summary.sources:
        rows.append(
            {
                "source": source.source,
                "people": source.people,
                **{label: n for label, n in sorted(source.by_verdict.items())},
                "violations": source.violations,
                "compliance": source.compliance,
                "still present": source.still_present,
                "aggregate windows": source.aggregate_windows,
                "from (UTC)": source.first_time,
                "to (UTC)": source.last_time,
            }
        )
    return rows


def date_range(value) -> tuple[date | None, date | None]:
    """A date input's value (a date, or a tuple of one or two dates while a range is picked) -> (start,
    end), both included."""
    if isinstance(value, date):
        return value, value
    days = [day for day in (value or ()) if day is not None]
    if not days:
        return None, None
    return days[0], days[-1]
