"""People, not frames: turn per-frame person observations (from the tracker) into events.

Rules, per person id of one run:
- `person_seen` once, on the first frame the person appears, settled or not: every person then has one
  `person_seen` and one `person_left`, even one who leaves before the verdict settles. Its label is the
  provisional one of that first frame; the final verdict is the `person_left` label.
- `violation` at most once, on the first frame whose *settled* verdict is non-compliant (compliant means a
  label in `compliant_labels`, `with_mask` only by default). Never per frame, never twice, and never for a
  person whose verdict did not settle.
- `person_left` when the tracker ends the person, or on `close()` (end of stream, stream dropped), with the
  final label. `discard()` instead ends a run stopped before its end that is to be run again: its rows
  are deleted, its open window dropped.

Per-person mode writes every event, one transaction per frame. Aggregate mode (`aggregate_minutes` > 0)
writes no per-person row at all: only the number of people by final verdict per N-minute window (UTC,
aligned to the epoch), each person counted once, in the window in which they left (or on close). Every
window in which frames arrived gets a row, zero people included, so a gap in the log means "not running".

The hook, when given, is called for every violation event in both modes (a gate needs the signal in real
time; the event holds no image). `observe` also returns the frame's events, stored or not, for an
on-screen alert. One recorder serves one frame loop: call it from that loop's thread only.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from maskapp.events.store import (
    AggregateWindow,
    Event,
    EventStore,
    floor_time,
    iso_utc,
    optional_duration,
    utc_now,
)
from maskapp.labels import COMPLIANT_LABELS
from maskapp.media.sources import redact_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonObservation:
    person: int
    label: str  # the person's shown (smoothed) label on this frame
    settled: bool  # whether that label has settled (hysteresis passed)


@dataclass(frozen=True)
class EndedPerson:
    person: int
    label: str  # final verdict


class ViolationHook(Protocol):
    """Anything told about violations, e.g. maskapp.events.hooks.WebhookNotifier. Must not block."""

    def notify(self, event: Event) -> object: ...


@dataclass(frozen=True)
class RecorderSummary:
    source: str
    run: str
    aggregate_minutes: float | None  # None: per-person events
    people_seen: int
    people_present: int  # seen and not ended yet
    people_by_verdict: dict[str, int]  # people who left, by final verdict
    compliant_people: int  # of those who left
    violations: int  # violation events emitted (stored or not)
    events_written: int
    windows_written: int
    dropped_writes: int  # writes the store gave up (logged)
    hook_errors: int  # hook calls that raised (logged)

    @property
    def people_left(self) -> int:
        return sum(self.people_by_verdict.values())

    @property
    def compliance(self) -> float | None:
        """Share of people (who left) with a compliant verdict; None before anyone left."""
        return self.compliant_people / self.people_left if self.people_left else None


@dataclass
class _Person:
    label: str
    violated: bool = False
    counted_elsewhere: bool = False  # seen and counted by the recorder this one follows (other mode)


@dataclass
class _Window:
    start: datetime
    counts: Counter[str] = field(default_factory=Counter)


class EventRecorder:
    def __init__(
        self,
        store: EventStore,
        source: str,
        *,
        aggregate_minutes: float | None = None,
        hook: ViolationHook | None = None,
        clock: Callable[[], datetime] = utc_now,
        compliant_labels: Collection[str] = COMPLIANT_LABELS,
        run: str | None = None,
    ) -> None:
        self._store = store
        self.source = redact_source(source)  # no stream password or token in the log
        self.run = run or uuid.uuid4().hex[:12]
        self._window_length = window_length(aggregate_minutes)
        self._hook = hook
        self._clock = clock
        self._compliant = frozenset(compliant_labels)
        self._present: dict[int, _Person] = {}
        self._window: _Window | None = None
        self._by_verdict: Counter[str] = Counter()
        self._seen = self._violations = self._hook_errors = 0
        # Counted here, not read from the store: one store may serve several recorders (cameras).
        self._events_written = self._windows_written = self._dropped_writes = 0
        self._closed = False
        self._hook_told: set[int] = set()  # people the hook's gate already heard of (already_notified)
        self._carried_violators: set[int] = set()  # carried on by follow: for this hook at the next frame

    def already_notified(self, people: Iterable[int]) -> None:
        """People whose violation the hook is not to send again: the gate heard of them from the recorder
        this one replaces in the same stream (a live page's event settings changed while they stayed in
        view). Their violation rows are still stored."""
        self._hook_told.update(people)

    @property
    def hook_told(self) -> frozenset[int]:
        """People whose violation this recorder's hook was given, or who were already_notified."""
        return frozenset(self._hook_told)

    def follow(self, previous: EventRecorder) -> None:
        """Go on from `previous`, which wrote the same file for the same stream (its settings changed while
        people stayed in view): in the same mode, its run, people in view and open window carry on here;
        in the other mode (per-person or aggregate), `previous` counts its people in view when it closes,
        and they stay here uncounted. Else each person in view was counted twice in the file. Their
        violations are not recorded again, but a new gate hears of them (not one in already_notified).
        Call before `previous` closes."""
        if previous.aggregate_minutes == self.aggregate_minutes:
            self.run, self._present, self._window = previous.run, previous._present, previous._window
            previous._present, previous._window = {}, None
        else:
            self._present = {
                person: _Person(state.label, state.violated, counted_elsewhere=True)
                for person, state in previous._present.items()
            }
        self._carried_violators = {person for person, state in self._present.items() if state.violated}

    @property
    def aggregate(self) -> bool:
        return self._window_length is not None

    @property
    def aggregate_minutes(self) -> float | None:
        return None if self._window_length is None else self._window_length.total_seconds() / 60

    def observe(
        self,
        frame_index: int,
        observations: Sequence[PersonObservation],
        ended: Sequence[EndedPerson] = (),
    ) -> list[Event]:
        """Record one frame; returns its events (stored in per-person mode only)."""
        if self._closed:
            raise RuntimeError("EventRecorder.observe after close()")
        moment = self._clock()
        self._roll_window(moment)
        stamp = iso_utc(moment)
        events: list[Event] = []
        for seen in observations:
            events.extend(self._on_observation(seen, frame_index, stamp))
        for gone in ended:
            events.extend(self._on_ended(gone.person, gone.label, frame_index, stamp))
        self._emit(events)
        self._tell_hook_of_carried_violators(frame_index, stamp)
        return events

    def _tell_hook_of_carried_violators(self, frame_index: int, stamp: str) -> None:
        for person in self._carried_violators & set(self._present):
            self._call_hook(self._event(stamp, person, "violation", self._present[person].label, frame_index))
        self._carried_violators = set()

    def close(self, frame_index: int) -> list[Event]:
        """End everyone still present (end of stream or stream dropped) and write the open window.
        The store stays open: its owner closes it. A second close does nothing."""
        if self._closed:
            return []
        moment = self._clock()
        self._roll_window(moment)
        stamp = iso_utc(moment)
        events: list[Event] = []
        for person, state in list(self._present.items()):
            events.extend(self._on_ended(person, state.label, frame_index, stamp))
        self._emit(events)
        self._flush_window()
        self._closed = True
        return events

    def discard(self) -> int | None:
        """End the run as if it never happened, for a run stopped before its end that is to be run again
        from the start (the Video page's file analysis): its per-person rows are deleted in one
        transaction, and nobody still present leaves; in aggregate mode, the open window is dropped, not
        written. Windows already written stay: they hold no run to tell them apart. The hook's gate keeps
        what it was told. Returns the rows deleted (None: the delete was given up and logged); after
        close, nothing."""
        if self._closed:
            return 0
        self._closed = True
        self._present, self._window = {}, None
        deleted = self._store.discard_run(self.run)
        if deleted:
            logger.info("event log: %d row(s) of stopped run %s deleted", deleted, self.run)
        return deleted

    def summary(self) -> RecorderSummary:
        return RecorderSummary(
            source=self.source,
            run=self.run,
            aggregate_minutes=self.aggregate_minutes,
            people_seen=self._seen,
            people_present=len(self._present),
            people_by_verdict=dict(self._by_verdict),
            compliant_people=sum(n for label, n in self._by_verdict.items() if label in self._compliant),
            violations=self._violations,
            events_written=self._events_written,
            windows_written=self._windows_written,
            dropped_writes=self._dropped_writes,
            hook_errors=self._hook_errors,
        )

    # --- per person ---

    def _on_observation(self, seen: PersonObservation, frame: int, stamp: str) -> list[Event]:
        events = []
        state = self._present.get(seen.person)
        if state is None:
            state = self._present[seen.person] = _Person(seen.label)
            self._seen += 1
            events.append(self._event(stamp, seen.person, "person_seen", seen.label, frame))
        state.label = seen.label
        if seen.settled and not state.violated and seen.label not in self._compliant:
            state.violated = True
            events.append(self._event(stamp, seen.person, "violation", seen.label, frame))
        return events

    def _on_ended(self, person: int, label: str, frame: int, stamp: str) -> list[Event]:
        state = self._present.pop(person, None)
        if state is None:
            logger.debug("person %d ended but never observed (or ended twice): ignored", person)
            return []
        if state.counted_elsewhere:
            return []
        self._by_verdict[label] += 1
        if self._window is not None:
            self._window.counts[label] += 1
        return [self._event(stamp, person, "person_left", label, frame)]

    def _event(self, stamp: str, person: int, kind: str, label: str, frame: int) -> Event:
        return Event(stamp, self.source, self.run, int(person), kind, label, int(frame))

    def _emit(self, events: list[Event]) -> None:
        violations = [event for event in events if event.kind == "violation"]
        self._violations += len(violations)
        if events and not self.aggregate:
            if self._store.write_events(events):  # one transaction per frame; never raises
                self._events_written += len(events)
            else:
                self._dropped_writes += 1
        for event in violations:
            self._call_hook(event)

    def _call_hook(self, event: Event) -> None:
        if self._hook is None or event.person in self._hook_told:
            return
        self._hook_told.add(event.person)
        try:
            self._hook.notify(event)
        except Exception:  # a hook's bug must not stop the frame loop
            self._hook_errors += 1
            logger.warning(
                "violation hook failed for person %d; processing goes on", event.person, exc_info=True
            )

    # --- aggregate windows ---

    def _roll_window(self, moment: datetime) -> None:
        """Start the window holding `moment`, writing the previous one first. A clock that steps back keeps
        the current window (counts are never lost)."""
        if self._window_length is None:
            return
        start = floor_time(moment, self._window_length)
        if self._window is not None and start <= self._window.start:
            return
        self._flush_window()
        self._window = _Window(start)

    def _flush_window(self) -> None:
        if self._window is None or self._window_length is None:
            return
        window = AggregateWindow(
            window_start=iso_utc(self._window.start),
            window_end=iso_utc(self._window.start + self._window_length),
            source=self.source,
            counts=dict(self._window.counts),
        )
        if self._store.write_window(window):  # never raises
            self._windows_written += 1
        else:
            self._dropped_writes += 1
        self._window = None


MAX_WINDOW_MINUTES = 7 * 24 * 60  # longer windows say nothing a report's days cannot; and dates stay in range


def window_length(minutes: float | None) -> timedelta | None:
    """The aggregate window; None (0 or no minutes) for per-person events. EventStoreError otherwise."""
    rule = (
        f"aggregate window must be a positive number of minutes up to {MAX_WINDOW_MINUTES} (a week); "
        "0 or none: per-person events"
    )
    return optional_duration(minutes, "minutes", MAX_WINDOW_MINUTES, rule)
