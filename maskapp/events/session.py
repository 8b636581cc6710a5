"""One stream's people bookkeeping: tracked frames -> events (log, aggregate windows, gate hook).

`PeopleLog(settings, source)` opens what the settings ask for before the stream starts (an error there is a
MaskappError: an events file that cannot be written, a corrupt or foreign database, a webhook URL of another
scheme, an aggregate window without an events file), then turns each `TrackedResult` into the recorder's
person observations. Without an events file it still decides violations (once per non-compliant person,
the Live page's alert), storing nothing.

`watch_people` is the `video` command's and the Video page's loop: a `TrackedPipeline` over the shared
pipeline, `process_video` for the frames, the annotated video (faces hidden when asked) and the people,
closed with `person_left` when the source ends, drops or is interrupted (the Video page's file analysis
stopped by Streamlit discards its run instead: `keep_interrupted`).

Event times are when each frame is processed, except for a video file given its recording start
(`EventSettings.recorded_at`): its events are then dated start + frame / the file's frame rate, so a
recording processed a day later lands on the hours it shows (`RecordingTime`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from maskapp.errors import EventStoreError
from maskapp.events.hooks import HookStats, WebhookNotifier, checked_url
from maskapp.events.recorder import (
    EndedPerson,
    EventRecorder,
    PersonObservation,
    RecorderSummary,
    window_length,
)
from maskapp.events.store import (
    AggregateWindow,
    Event,
    Retention,
    SqliteEventStore,
    StoreStats,
    retention_period,
    user_path,
    utc_now,
)
from maskapp.media.video import AnnotatedVideoWriter, FrameSource, VideoSummary, process_video
from maskapp.vision.track import PersonSummary
from maskapp.vision.tracked import PeopleCounts, TrackedPipeline, TrackedResult, frame_entries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventSettings:
    """What to record about people. All off: violations are still decided (for an alert), not stored."""

    path: Path | None = None  # the SQLite events file; None: no event log
    aggregate_minutes: float | None = None  # > 0: only people counts per window of this many minutes
    webhook_url: str | None = None  # POST each violation here (a gate)
    keep_days: float | None = None  # > 0: rows older than this are deleted (at the start, then hourly)
    # A video file's recording start (UTC; naive: local time): its events are dated start + frame / fps,
    # the hours the recording shows. None: the moment each frame is processed, as for a camera.
    recorded_at: datetime | None = None

    def __post_init__(self):
        """Every setting checked here, so that a bad one leaves no events file behind."""
        if self.path is not None:  # '~/log.sqlite' quoted on a command line: home, as a shell means it
            object.__setattr__(self, "path", user_path(str(self.path)))
        window_length(self.aggregate_minutes)
        if self.aggregate_minutes and self.path is None:
            raise EventStoreError(
                "aggregate-only mode stores counts in an events file: give one (--events FILE.sqlite)"
            )
        if retention_period(self.keep_days) and self.path is None:
            raise EventStoreError(
                "days to keep events apply to an events file: give one (--events FILE.sqlite)"
            )
        if self.webhook_url:
            checked_url(self.webhook_url)
        if self.recorded_at is not None:
            object.__setattr__(self, "recorded_at", self._checked_recording_start(self.recorded_at))

    def _checked_recording_start(self, start: datetime) -> datetime:
        """The recording start in UTC; EventStoreError where it dates nothing, lies ahead, or would date
        rows that the days to keep delete as soon as they are written."""
        if self.path is None and not self.webhook_url:
            raise EventStoreError(
                "a recording start dates the event log's rows and the webhook's violations, and neither is "
                "on: give an events file (--events FILE.sqlite) or a webhook (--on-violation URL)"
            )
        start = start.astimezone(UTC)  # a naive time is read on this machine's clock
        now = utc_now()
        if start > now:
            raise EventStoreError(
                f"recording start {start:%Y-%m-%d %H:%M:%S} UTC is in the future (now {now:%Y-%m-%d %H:%M:%S}"
                " UTC); allowed: the moment the recording started, up to now"
            )
        keep = retention_period(self.keep_days)
        if keep is not None and start < now - keep:
            age = (now - start) / timedelta(days=1)
            raise EventStoreError(
                f"a recording started {start:%Y-%m-%d %H:%M} UTC, {age:.1f} days ago, is older than the "
                f"{self.keep_days:g} days to keep: its rows would be deleted as soon as written; allowed: "
                f"days to keep above {age:.1f}, or none (keep every row)"
            )
        return start

    def for_stream(self) -> EventSettings:
        """These settings for a camera or stream, whose events are dated as its frames are watched: the
        recording start (for video files) left out."""
        return self if self.recorded_at is None else replace(self, recorded_at=None)


@dataclass(frozen=True)
class RecordingTime:
    """A video file's clock: the moment its recording started, plus a frame's place in the file."""

    start: datetime
    fps: float

    def at(self, frame: int) -> datetime:
        return self.start + timedelta(seconds=frame / self.fps)


def recording_start(text: str) -> datetime:
    """A recording start typed as ISO-8601 ('2026-11-28T08:00:00' on this machine's clock,
    '2026-11-28T07:00:00Z' or '...+01:00'), in UTC; EventStoreError naming what is allowed."""
    allowed = (
        "allowed: an ISO-8601 time such as 2026-11-28T08:00:00 (this machine's local time), "
        "2026-11-28T07:00:00Z or 2026-11-28T08:00:00+01:00"
    )
    try:
        return datetime.fromisoformat(text.strip()).astimezone(UTC)
    except (ValueError, OverflowError, OSError):  # not a time; a year out of the clock's range
        raise EventStoreError(f"recording start {text!r} is not a time; {allowed}") from None


def live_source_error(source: str) -> EventStoreError:
    """A recording start given for a camera or stream, whose frames are dated as they are watched."""
    return EventStoreError(
        f"{source} is a camera or stream: only a video file has a recording time; allowed: a recording "
        "start for a video file, or none (a camera's events are dated as its frames are watched)"
    )


class NullEventStore:
    """An EventStore that keeps nothing (no events file): the recorder still decides the events."""

    def write_events(self, events: Sequence[Event]) -> bool:
        return True

    def write_window(self, window: AggregateWindow) -> bool:
        return True

    def delete_before(self, moment: datetime) -> int | None:
        return 0

    def discard_run(self, run: str) -> int | None:
        return 0

    def stats(self) -> StoreStats:
        return StoreStats(0, 0, 0, 0)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class PeopleLogSummary:
    path: str | None
    recorder: RecorderSummary
    hook: HookStats | None
    rows_deleted: int = 0  # older than the days to keep (EventSettings.keep_days)
    recorded_at: datetime | None = None  # the recording start that dated the events (UTC); None: processed

    def to_dict(self) -> dict:
        recorder = asdict(self.recorder)
        return {
            "path": self.path,
            **recorder,
            "compliance": self.recorder.compliance,
            "webhook": None if self.hook is None else asdict(self.hook),
            "rows_deleted": self.rows_deleted,
        }


class PeopleLog:
    """A stream's EventRecorder with its store and hook; call `observe` and `close` from the stream's
    thread. `close` ends the people still present (person_left) and closes the store and the hook."""

    def __init__(
        self, settings: EventSettings | None, source: str, clock: Callable[[], datetime] = utc_now
    ) -> None:
        settings = settings or EventSettings()
        self.settings = settings
        self._clock = clock
        self._recording: RecordingTime | None = None  # set by date_by for a video file's recording start
        self._last_frame = 0
        self._store = NullEventStore() if settings.path is None else SqliteEventStore(settings.path)
        try:
            self._hook = None if not settings.webhook_url else WebhookNotifier(settings.webhook_url)
            self.recorder = EventRecorder(
                self._store,
                source,
                aggregate_minutes=settings.aggregate_minutes,
                hook=self._hook,
                clock=self._event_time,
            )
            keep = retention_period(settings.keep_days)
            # Now on the wall clock, not the recording's: rows older than N days before now go.
            self._retention = None if keep is None else Retention(self._store, keep, clock)
            self._apply_retention()
        except BaseException:
            self._close_outputs()
            raise
        self._summary: PeopleLogSummary | None = None

    def date_by(self, frames: FrameSource) -> None:
        """Date the events of `frames` (watch_people calls it as the source starts): with the settings'
        recorded_at, a video file's at start + frame / its frame rate; else when each frame is
        processed. EventStoreError for a recording start on a camera or stream."""
        start = self.settings.recorded_at
        if start is None:
            return
        if frames.is_stream:
            raise live_source_error(frames.source)
        self._recording = RecordingTime(start, frames.fps)

    def _event_time(self) -> datetime:
        """The recorder's clock: the recording's time of the frame being recorded, or now."""
        return self._clock() if self._recording is None else self._recording.at(self._last_frame)

    def writes_to(self, path: Path | None) -> bool:
        """Whether this log stores into the events file `path` (never when either has none)."""
        mine = self.settings.path
        return mine is not None and path is not None and mine.resolve() == path.resolve()

    def observe(self, result: TrackedResult) -> list[Event]:
        """The frame's people -> events (returned; stored unless there is no file or only aggregates)."""
        self._last_frame = result.frame_index
        self._apply_retention()
        observations = [
            PersonObservation(face.person, face.label, face.person in result.settled)
            for face in result.faces
            if face.person is not None and face.label is not None
        ]
        return self.recorder.observe(result.frame_index, observations, ended_people(result.ended))

    def leave(self, result: TrackedResult) -> list[Event]:
        """Only the frame's departures (person_left of the people this log holds): the log records
        nobody new meanwhile (the Live page with *Follow people* off)."""
        self._last_frame = result.frame_index
        return self.recorder.observe(result.frame_index, [], ended_people(result.ended))

    def hook_stats(self) -> HookStats | None:
        """The webhook's figures so far; None without a webhook."""
        return None if self._hook is None else self._hook.stats()

    def close(self, ended: Sequence[PersonSummary] = (), frame_index: int | None = None) -> PeopleLogSummary:
        """`ended`: the tracker's final summaries (TrackedPipeline.close()); anyone else still present
        leaves with their last label. Idempotent."""
        if self._summary is not None:
            return self._summary
        frame = self._last_frame = self._last_frame if frame_index is None else frame_index
        try:
            if ended:
                self.recorder.observe(frame, [], ended_people(ended))
            self.recorder.close(frame)
        finally:
            hook = self._close_outputs()
        self._summary = self._closed_summary(hook)
        return self._summary

    def discard(self) -> None:
        """Close the log leaving no trace of this run in the events file (EventRecorder.discard): a video
        file's analysis stopped before its end, which the reader runs again and expects to find each person
        of once. After close, nothing; a close after it returns its summary."""
        if self._summary is not None:
            return
        try:
            self.recorder.discard()
        finally:
            hook = self._close_outputs()
        self._summary = self._closed_summary(hook)

    def _closed_summary(self, hook) -> PeopleLogSummary:
        return PeopleLogSummary(
            None if self.settings.path is None else str(self.settings.path),
            self.recorder.summary(),
            hook,
            0 if self._retention is None else self._retention.deleted,
            None if self._recording is None else self._recording.start,
        )

    def _apply_retention(self) -> None:
        if self._retention is not None:
            self._retention.apply()

    def _close_outputs(self) -> HookStats | None:
        hook = getattr(self, "_hook", None)
        stats = None if hook is None else hook.close()
        self._store.close()
        return stats


def ended_people(people: Sequence[PersonSummary]) -> list[EndedPerson]:
    return [EndedPerson(p.id, p.label) for p in people if p.label is not None]


# --- a video file, camera or stream with people ---------------------------------------------------------


@dataclass(frozen=True)
class PeopleSample:
    """People in view on one frame (tracked faces), compliant or not."""

    frame: int
    compliant: int
    noncompliant: int


@dataclass(frozen=True)
class PeopleVideo:
    summary: VideoSummary
    tracked: bool
    people: tuple[PersonSummary, ...]  # () when untracked
    samples: tuple[PeopleSample, ...]  # () when untracked
    faces_by_frame: tuple[list[dict], ...] | None  # None unless kept
    events: PeopleLogSummary | None
    second_looks: int = 0  # frames also detected on their mirror image (tracked, a face in doubt)

    @property
    def counts(self) -> PeopleCounts:
        return PeopleCounts.of_people(self.people)

    def to_dict(self) -> dict:
        """`video --json`: the VideoSummary keys, then people, faces_by_frame and the event log's figures."""
        data = {
            **self.summary.to_dict(),
            "tracked": self.tracked,
            "second_looks": self.second_looks,
            "people": [person.to_dict() for person in self.people],
            "people_summary": self.counts.to_dict() if self.tracked else None,
        }
        if self.faces_by_frame is not None:
            data["faces_by_frame"] = list(self.faces_by_frame)
        data["events"] = None if self.events is None else self.events.to_dict()
        return data


def watch_people(
    frames: FrameSource,
    pipeline,
    *,
    out_path: str | Path | None = None,
    track: bool = True,
    events: EventSettings | None = None,
    anonymize: str = "none",
    max_frames: int | None = None,
    progress: bool = False,
    keep_faces: bool = True,
    on_frame: Callable[[int, np.ndarray, object], bool | None] | None = None,
    log: PeopleLog | None = None,
    second_look: bool = True,
    keep_interrupted: bool = True,
    writer: AnnotatedVideoWriter | None = None,
) -> PeopleVideo:
    """Every frame of `frames` through `pipeline` (tracked unless `track` is False; `second_look`: see
    TrackedPipeline); see the module docstring. `log`: an already opened PeopleLog (opened before the
    models load, so that a bad events path fails first); else one is opened from `events`.
    `on_frame(index, frame, result)` as in process_video. The log and the people are closed whatever
    happens; with `keep_interrupted` False, an exception out of the frame loop (the Video page's run
    stopped by Streamlit) discards the log's run instead (PeopleLog.discard), as the page runs it again.
    `writer` (process_video's) is closed inside the loop's scope: its failure counts as the loop's."""
    _require_tracking(track, log, events)
    log = log if log is not None else (PeopleLog(events, frames.source) if track else None)
    if log is not None:
        try:
            log.date_by(frames)
        except BaseException:
            log.discard()  # nothing recorded yet: no row, no empty window
            raise
    runner = TrackedPipeline(pipeline, frames.fps, second_look=second_look) if track else pipeline
    collected = _FrameCollector(log, keep_faces, on_frame)
    ended: tuple[PersonSummary, ...] = ()
    finished = False
    try:
        summary = process_video(
            frames,
            runner,
            out_path,
            progress=progress,
            on_frame=collected.handle,
            max_frames=max_frames,
            anonymize=anonymize,
            writer=writer,
        )
        finished = True  # Ctrl-C too: process_video keeps the frames done and returns
    finally:
        if track:
            ended = runner.close()  # the source ended, dropped or was stopped: everyone leaves
        if log is not None and not finished and not keep_interrupted:
            log.discard()
        events_summary = None if log is None else log.close(ended)
    people = runner.people() if track else ()
    return PeopleVideo(
        summary,
        track,
        people,
        tuple(collected.samples),
        tuple(collected.faces_by_frame) if keep_faces else None,
        events_summary,
        runner.second_looks if track else 0,
    )


def _require_tracking(track: bool, log: PeopleLog | None, events: EventSettings | None) -> None:
    if not track and (log is not None or (events and (events.path or events.webhook_url))):
        if log is not None:
            log.close()
        raise EventStoreError("the event log and the violation hook count people: they need tracking")


class _FrameCollector:
    """What watch_people keeps of each frame: its faces, people in view, and the log's observations."""

    def __init__(self, log: PeopleLog | None, keep_faces: bool, on_frame) -> None:
        self.log, self.keep_faces, self.on_frame = log, keep_faces, on_frame
        self.faces_by_frame: list[list[dict]] = []
        self.samples: list[PeopleSample] = []

    def handle(self, index: int, frame: np.ndarray, result) -> bool | None:
        if self.keep_faces:
            self.faces_by_frame.append(frame_entries(result))
        if isinstance(result, TrackedResult):
            in_view = PeopleCounts.of(result.people_in_view().values())
            self.samples.append(PeopleSample(index, in_view.compliant, in_view.noncompliant))
            if self.log is not None:
                self.log.observe(result)
        return None if self.on_frame is None else self.on_frame(index, frame, result)
