"""The live webcam's worker side: frame callback, latest-result holder, debounced alert (no Streamlit).

Thread boundary: streamlit-webrtc calls the frame callback in its own worker thread, one per browser
session. The callback never touches `st.*`; what the page shows leaves that thread through a
`LatestResult` (a lock and the newest `LiveStats`), and settings reach it through `LiveProcessor.configure`,
which takes the same lock.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import wave
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import av
import numpy as np

from maskapp.errors import LiveConfigError, MaskappError
from maskapp.events.session import EventSettings, PeopleLog
from maskapp.events.store import Event
from maskapp.labels import CLASS_NAMES, WORN_INCORRECTLY, is_compliant
from maskapp.media.sources import redact_source
from maskapp.results import FrameResult
from maskapp.vision.anonymize import anonymize_faces, check_mode
from maskapp.vision.draw import annotate
from maskapp.vision.tracked import PeopleCounts, TrackedPipeline, TrackedResult

logger = logging.getLogger(__name__)

# ~0.7 s at 15 fps: long enough to ignore a one-frame misclassification, short enough to feel live.
DEFAULT_TRIGGER_FRAMES = 10
# An episode ends after this many frames in a row with no non-compliant face (a person who turns away
# for a frame or two does not start a new episode and a new sound).
DEFAULT_CLEAR_FRAMES = 15
DEFAULT_LIVE_FPS = 15.0  # a browser webcam over WebRTC; sets how long a missed face keeps its id (~1 s)
# No frame for this long ends a tracked stream's people (person_left): a browser gone without an end signal.
# Far above any frame's time (streamlit-webrtc itself gives up on a frame after 10 s).
DEFAULT_IDLE_END_S = 20.0
FPS_WINDOW = 30  # frames the FPS figure averages over
STALE_SECONDS = 2.0  # no new frame for this long: the panel says so (a slow or stalled stream)
NO_MASK_ALERT = "Please wear a face mask"
WORN_INCORRECTLY_ALERT = "Please wear your mask over your nose and mouth"


def alert_text(labels: Iterable[str]) -> str | None:
    """What the alert asks of the people in view: to put a mask on when anyone has none (that comes
    first), to pull it over nose and mouth when the only non-compliant faces wear one badly; None when
    every face is compliant."""
    noncompliant = {label for label in labels if not is_compliant(label)}
    if noncompliant - {WORN_INCORRECTLY}:
        return NO_MASK_ALERT
    return WORN_INCORRECTLY_ALERT if noncompliant else None


@dataclass(frozen=True)
class AlertState:
    active: bool  # an alert episode is going on
    started: bool  # this very frame started it
    episode: int  # episodes started so far; a new value means "play the sound once"


class AlertDebouncer:
    """A non-compliant face (no mask or a badly worn one) for `trigger_frames` consecutive frames -> one
    alert episode, until `clear_frames` consecutive frames without one end it. Not thread-safe by itself:
    `LiveProcessor` calls it under its lock."""

    def __init__(
        self, trigger_frames: int = DEFAULT_TRIGGER_FRAMES, clear_frames: int = DEFAULT_CLEAR_FRAMES
    ):
        self.trigger_frames = check_frames("trigger_frames", trigger_frames)
        self.clear_frames = check_frames("clear_frames", clear_frames)
        self.active = False
        self.episode = 0
        self._unmasked_run = 0
        self._clear_run = 0

    def update(self, unmasked_present: bool | None) -> AlertState:
        """`unmasked_present` None: the frame could not be processed (nobody was seen, which is not
        'nobody unmasked'); it neither clears nor extends the runs, and the state stays as it was."""
        if unmasked_present is None:
            return AlertState(self.active, False, self.episode)
        if unmasked_present:
            self._unmasked_run += 1
            self._clear_run = 0
        else:
            self._clear_run += 1
            self._unmasked_run = 0
        started = False
        if not self.active and self._unmasked_run >= self.trigger_frames:
            self.active, started = True, True
            self.episode += 1
            logger.info("alert episode %d started", self.episode)
        elif self.active and self._clear_run >= self.clear_frames:
            self.active = False
            logger.info("alert episode %d ended", self.episode)
        return AlertState(self.active, started, self.episode)

    def carry_on(self, active: bool) -> None:
        """Take over an alert that is on (or off) already, with no new episode: *Follow people* switched
        off while a person's alert was on (the same people in view made a new episode: a second chime)."""
        self.active = active
        self._unmasked_run = self.trigger_frames if active else 0
        self._clear_run = 0


@dataclass(frozen=True)
class ChimeCue:
    """The alert sound as the page renders it on one refresh."""

    variant: int  # which of the two byte-different copies (`alert_wav(variant)`) to render
    autoplay: bool  # False: its chime was already played; the player shows, silent until pressed


class AlertChime:
    """When the page sounds the alert: once for each new alert episode (each new non-compliant person when
    following people), a new episode included that starts while the last one's alert is still on; never
    again for an episode already sounded, even when its alert goes off and on again.

    Why a cue and not a flag: a browser plays an autoplaying audio element once, when it is mounted or its
    source changes, so the page keeps the element unchanged while a chime is due no more, switches to the
    other copy of the sound for a new one, and renders it without autoplay when it would be remounted
    for an episode already sounded. Page side, one per browser session."""

    def __init__(self):
        self._sounded: int | None = None  # the episode last sounded (or consumed while muted)
        self._chimes = 0  # chimes due so far; its parity picks the copy, so each new one has a new source
        self._playing = False  # an autoplaying element is on the page for the last chime

    def update(self, alert: bool, episode: int, *, muted: bool = False) -> ChimeCue | None:
        """The sound to render on this refresh; None: none (no alert, or muted)."""
        new = alert and episode != self._sounded
        if new:
            self._sounded, self._chimes = episode, self._chimes + 1
        if not alert or muted:
            self._playing = False
            return None
        self._playing = new or self._playing
        return ChimeCue(self._chimes % 2, self._playing)

    def off(self) -> None:
        """This refresh shows no alert at all (camera off, no fresh frame): the element is gone, so an
        episode already sounded is shown silent when it comes back."""
        self._playing = False


def check_frames(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise LiveConfigError(f"{name} must be a whole number of frames >= 1, got {value!r}")
    return value


class IdleWatch:
    """Calls `on_idle` once when `touch` has not been called for `timeout_s` seconds; the next `touch`
    arms it again. A daemon thread runs only while armed, so a session whose frames stopped leaves none."""

    def __init__(self, timeout_s: float, on_idle: Callable[[], None]):
        self.timeout_s = timeout_s
        self._on_idle = on_idle
        self._lock = threading.Lock()
        self._last = 0.0
        self._thread: threading.Thread | None = None

    def touch(self) -> None:
        with self._lock:
            self._last = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="live-idle-watch", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        while True:
            with self._lock:
                left = self.timeout_s - (time.monotonic() - self._last)
                if left <= 0:
                    self._thread = None
                    break
            time.sleep(min(left, 1.0))
        logger.info("no live frame for %.0f s: the stream is taken as ended", self.timeout_s)
        try:
            self._on_idle()
        except Exception:  # a daemon thread's error would only reach stderr
            logger.exception("ending an idle live stream failed")


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = FPS_WINDOW, clock: Callable[[], float] = time.perf_counter):
        self._times: deque[float] = deque(maxlen=window)
        self._clock = clock

    def tick(self) -> float:
        self._times.append(self._clock())
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


@dataclass(frozen=True)
class PeoplePoint:
    """People in view at one moment of a live session, compliant or not."""

    seconds: float  # since the session's first frame
    compliant: int
    noncompliant: int


class PersonAlert:
    """The tracked alert: one episode per non-compliant person (at their violation event, once their
    verdict has settled), on while any such person is in view and still non-compliant; never repeated for
    a person who stays, even one who puts a mask on and takes it off again."""

    def __init__(self):
        self.episode = 0
        self._alerted: dict[int, str] = {}  # person -> current label, until the tracker ends them

    def update(self, result: TrackedResult, events: Iterable[Event]) -> AlertState:
        started = False
        for event in events:
            if event.kind == "violation" and event.person not in self._alerted:
                self._alerted[event.person] = event.label
                self.episode += 1
                started = True
        for person in result.ended:
            self._alerted.pop(person.id, None)
        for person, label in result.people_in_view().items():
            if person in self._alerted:
                self._alerted[person] = label
        return AlertState(bool(self.noncompliant_labels()), started, self.episode)

    def noncompliant_labels(self) -> list[str]:
        return [label for label in self._alerted.values() if not is_compliant(label)]

    def carry_on(self, people_in_view: Mapping[int, str]) -> None:
        """Take the non-compliant people in view as alerted on, with no new episode: *Follow people*
        switched back on while the frame alert was on for them (their violation made a new episode, so the
        chime sounded a second time for people it had sounded for)."""
        for person, label in people_in_view.items():
            if not is_compliant(label):
                self._alerted.setdefault(person, label)

    def reset(self) -> None:
        self._alerted.clear()


@dataclass(frozen=True)
class LiveStats:
    """What the page shows beside the video; written by the callback thread, read by the page."""

    frame_index: int  # frames of the session, over every START
    faces: int
    masked: int  # compliant faces
    unmasked: int  # non-compliant faces: no mask or a badly worn one
    fps: float
    latency_ms: float  # pipeline + drawing for this frame
    alert: bool
    episode: int  # alert episodes of the session, over every START: a new value sounds the chime
    updated_at: float  # time.monotonic() when written
    error: str | None = None
    label_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASS_NAMES, 0))
    alert_text: str | None = None  # while the alert is on: what it asks (see `alert_text`)
    # Tracked sessions only (None / empty otherwise): people, not face-frames.
    people: PeopleCounts | None = None  # every person of the session so far, by verdict
    people_in_view: int = 0
    timeline: tuple[PeoplePoint, ...] = ()  # people in view, about once a second
    stream_frames: int = 0  # frames since this camera run's START (what the panel shows)
    stream_alerts: int = 0  # alert episodes since this camera run's START
    webhook_warning: str | None = None  # violations the gate did not get (see LivePeople.webhook_warning)

    @property
    def compliance(self) -> float | None:
        return self.masked / self.faces if self.faces else None

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.updated_at


class LatestResult:
    """A lock-protected slot holding the newest value: the writer never blocks on a slow reader and
    the reader never sees a half-written value. Old values are dropped, not queued."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value: LiveStats | None = None

    def put(self, value: LiveStats) -> None:
        with self._lock:
            self._value = value

    def get(self) -> LiveStats | None:
        with self._lock:
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


PanelMode = Literal["off", "connecting", "waiting", "stale", "live"]


def panel_mode(
    stats: LiveStats | None, playing: bool, now: float | None = None, *, connecting: bool = False
) -> PanelMode:
    """What the Live page's panel shows: "off" (camera stopped), "connecting" (START pressed, the stream
    not up yet: `connecting` is the component's signalling), "waiting" (no frame yet in this stream),
    "stale" (the last frame's counts, older than STALE_SECONDS; no alert), "live" (counts and alert).

    Stale counts stay on screen: on a busy machine (two sessions on two cores) a session's frames can come
    slower than one per STALE_SECONDS while its video still shows the last annotated frame, and hiding the
    counts then left that page's panel empty for as long as the machine stayed busy."""
    if not playing:
        # "The camera is off. Press START." under a START just pressed read as if the press was lost.
        return "connecting" if connecting else "off"
    if stats is None:
        return "waiting"
    return "stale" if stats.age(now) > STALE_SECONDS else "live"


def since_start_text(stats: LiveStats) -> str:
    """The panel's line under the counts, in words that agree with their numbers ('1 alert')."""
    frames, alerts = stats.stream_frames, stats.stream_alerts
    return (
        f"Since START: {frames} frame{'' if frames == 1 else 's'} processed · "
        f"{alerts} alert{'' if alerts == 1 else 's'}"
    )


def live_video_caption(playing: bool) -> str:
    """The line under the video. While it streams, "Press START" was stale, and nothing said that STOP
    or a visit to another page ends the stream, so that the next START counts the people in view again."""
    if not playing:
        return "Press START and allow the camera. Top left: counts, FPS and latency."
    return (
        "Top left: counts, FPS and latency. STOP, or a visit to another page, ends the stream: the next "
        "START counts the people in view again."
    )


def overlay_text(fps: float, latency_ms: float) -> str:
    return f"{fps:4.1f} FPS  {latency_ms:4.0f} ms"


TIMELINE_POINTS = 600  # people-in-view points kept for the chart: one a second for the first ten minutes
LIVE_SOURCE = "live webcam"  # the source name of a live session's events


class PeopleTimeline:
    """People in view over a whole stream, for its chart, in at most `max_points` points: one a second
    at first; once full, every other point goes and the spacing doubles. So the chart always starts at
    the stream's start: a deque of the last 600 points drew a run of an hour from its 50th minute on,
    its time axis shorter than the run."""

    def __init__(self, max_points: int = TIMELINE_POINTS):
        self.max_points = max_points
        self.spacing = 1.0  # seconds between points
        self._points: list[PeoplePoint] = []

    def due(self, seconds: float) -> bool:
        """Whether a point at `seconds` (since the stream's first frame) is to be added."""
        return not self._points or seconds - self._points[-1].seconds >= self.spacing

    def add(self, point: PeoplePoint) -> None:
        self._points.append(point)
        if len(self._points) >= self.max_points:
            thinned = self._points[::2]
            if thinned[-1] is not point:  # the chart still ends at the latest moment
                thinned.append(point)
            self._points = thinned
            self.spacing *= 2

    def clear(self) -> None:
        self._points.clear()
        self.spacing = 1.0

    def __iter__(self):
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)


class LivePeople:
    """A tracked live session's people: a TrackedPipeline over the shared pipeline, the session's event
    log (a PeopleLog: nothing stored unless an events file is set), the per-person alert and the
    people-in-view timeline. Used by LiveProcessor from the stream's worker thread, under its stream lock.
    """

    def __init__(
        self,
        pipeline,
        settings: EventSettings | None = None,
        fps: float = DEFAULT_LIVE_FPS,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeline_points: int = TIMELINE_POINTS,
    ):
        self.tracked = TrackedPipeline(pipeline, fps)
        self.settings = settings or EventSettings()
        self.log: PeopleLog | None = None  # opened at the first frame of a stream
        self.log_error: str | None = None  # why the events file could not be reopened (logged too)
        self.alert = PersonAlert()
        self.timeline = PeopleTimeline(timeline_points)
        self._clock = clock
        self._start: float | None = None
        self._in_view: dict[int, str] = {}  # the last frame's people and labels

    def process(self, frame_bgr: np.ndarray) -> tuple[TrackedResult, AlertState]:
        result = self.tracked.process(frame_bgr)
        events = self._open_log().observe(result)
        alert = self.alert.update(result, events)
        self._add_point(result)
        return result, alert

    def alert_people_in_view(self) -> None:
        """The frame alert is on as following comes back on: the non-compliant people in view are the ones
        it sounded for, so their violations start no new episode (`PersonAlert.carry_on`)."""
        self.alert.carry_on(self._in_view)

    def keep_up(self, frame_bgr: np.ndarray, untracked: FrameResult) -> None:
        """*Follow people* off: the tracker goes on from the frame's untracked result, and the log and the
        alert only hear who left. So when following comes back on, the people still in view are the
        people already counted, alerted, told to the gate and logged (a new tracker took them for new
        people: all of that happened again); the log records nobody new while following is off."""
        result = self.tracked.keep_up(frame_bgr, untracked)
        if self.log is not None:
            self.log.leave(result)
        self.alert.update(result, ())
        self._add_point(result)

    def _add_point(self, result: TrackedResult) -> None:
        self._in_view = result.people_in_view()
        now = self._clock()
        self._start = now if self._start is None else self._start
        seconds = now - self._start
        if self.timeline.due(seconds):
            in_view = PeopleCounts.of(result.people_in_view().values())
            self.timeline.add(PeoplePoint(seconds, in_view.compliant, in_view.noncompliant))

    def use_log(self, log: PeopleLog | None, settings: EventSettings) -> None:
        """Record into `log` from the next frame on (None: reopen from `settings` then); the old log ends
        the people it holds and is closed."""
        if log is not None and self.log is not None:
            # The same people stay in view: the same gate is not told of them again, nor the same file
            # (see EventRecorder.follow) counts them again.
            if log.settings.webhook_url == self.log.settings.webhook_url:
                log.recorder.already_notified(self.log.recorder.hook_told)
            if self.log.writes_to(log.settings.path):
                log.recorder.follow(self.log.recorder)
        if self.log is not None:
            self.log.close()
        self.log, self.settings, self.log_error = log, settings, None

    def end_stream(self) -> None:
        """The camera stopped: everyone leaves (person_left), the log is closed (reopened by the next
        frame), the alert and the timeline start again."""
        ended = self.tracked.close()
        if self.log is not None:
            self.log.close(ended)
            self.log = None
        self.alert.reset()
        # A fresh tracker: the closed one still counts its people, and the same people in view at the
        # next START would be counted again on top of them. The alert's episode count goes on (the
        # page's chime sounds for each new episode number).
        self.tracked = TrackedPipeline(self.tracked.pipeline, self.tracked.fps)
        self.timeline.clear()
        self._start = None
        self._in_view = {}

    def counts(self) -> PeopleCounts:
        return PeopleCounts.of_people(self.tracked.people())

    def webhook_warning(self) -> str | None:
        """How many of this log's violations never reached its gate (None: none): they are sent on a
        thread of their own, and a gate that was down or refused them only showed in the server log."""
        hook = None if self.log is None else self.log.hook_stats()
        lost = 0 if hook is None else hook.failed + hook.dropped
        if not lost:
            return None
        url = redact_source(self.log.settings.webhook_url)
        return (
            f"Webhook {url}: {lost} violation{'' if lost == 1 else 's'} not delivered (the gate did not "
            "answer, refused it or was too slow; details in the server log)"
        )

    def _open_log(self) -> PeopleLog:
        if self.log is None:
            try:
                self.log = PeopleLog(self.settings, LIVE_SOURCE)
            except MaskappError as error:  # the file went away or got locked since the page checked it
                logger.warning("live event log not reopened (%s); going on without it", error)
                self.log_error = f"event log off: {error}"
                self.log = PeopleLog(None, LIVE_SOURCE)
        return self.log


class LiveProcessor:
    """One browser session's live state: pipeline, alert debouncer, FPS meter and the latest stats.

    `process` runs in the webrtc worker thread; `configure` and `latest` run in the page's thread.
    A `LivePeople` holds the session's tracks, event log and per-person alert, behind a stream lock that
    the page's `configure(events=...)` and `end_stream()` take too. With `track=True` (*Follow people*)
    the page shows people and the per-person alert; with False every frame on its own and the frame
    debouncer's alert, while the people are still followed underneath (`LivePeople.keep_up`), so that
    switching back and forth mid-stream counts and alerts each person once.
    """

    def __init__(
        self,
        pipeline,
        *,
        trigger_frames: int = DEFAULT_TRIGGER_FRAMES,
        clear_frames: int = DEFAULT_CLEAR_FRAMES,
        track: bool = False,
        events: EventSettings | None = None,
        anonymize: str = "none",
        idle_end_s: float = DEFAULT_IDLE_END_S,
    ):
        self._lock = threading.Lock()
        self._pipeline = pipeline
        self._alert = AlertDebouncer(trigger_frames, clear_frames)
        self._fps = FpsMeter()
        self._frames = 0
        self._episode = 0  # the last frame's episode count
        self._stream_base = (0, 0)  # frames and episodes before this camera run's START
        self._alert_text: str | None = None  # what the latest frame with a non-compliant face asks
        self._anonymize = check_mode(anonymize)
        self._stream_lock = threading.Lock()  # one tracked frame at a time; the page waits for it
        self._people = LivePeople(pipeline, events)
        self._track = track
        self._idle = IdleWatch(idle_end_s, self.end_stream)
        self.results = LatestResult()

    def configure(
        self,
        *,
        pipeline=None,
        trigger_frames: int | None = None,
        anonymize: str | None = None,
        events: PeopleLog | EventSettings | None = None,
        track: bool | None = None,
    ) -> None:
        """Change the pipeline, the alert delay, the anonymising or *Follow people* between frames (from
        the page's thread). `events`: a PeopleLog the page opened (so that a bad file shows there), or
        settings with nothing to store."""
        if track is not None and track != self._track:
            with self._stream_lock, self._lock:
                # The alert on stays on, with no new episode and so no second chime for the same people.
                if not track:
                    self._alert.carry_on(bool(self._people.alert.noncompliant_labels()))
                elif self._alert.active:
                    self._people.alert_people_in_view()
                self._track = track
        with self._lock:
            if pipeline is not None:
                self._pipeline = pipeline
                self._people.tracked.pipeline = pipeline  # the tracks go on with the new models
            if trigger_frames is not None:
                self._alert.trigger_frames = check_frames("trigger_frames", trigger_frames)
            if anonymize is not None:
                self._anonymize = check_mode(anonymize)
        if events is not None:
            log = events if isinstance(events, PeopleLog) else None
            settings = events.settings if isinstance(events, PeopleLog) else events
            with self._stream_lock:
                self._people.use_log(log, settings)

    @property
    def tracks(self) -> bool:
        return self._track

    @property
    def event_settings(self) -> EventSettings:
        return self._people.settings

    def end_stream(self) -> None:
        """The camera stopped: the last stream's stats go (a new START shows none of them); tracked
        sessions: the people leave and the event log is closed. Also called when no frame came for
        `idle_end_s` seconds. Idempotent."""
        with self._stream_lock:
            self._people.end_stream()
            with self._lock:  # a pipeline configured meanwhile went to the tracker just replaced
                self._people.tracked.pipeline = self._pipeline
        with self._lock:
            self._alert.carry_on(False)
            self._stream_base = (self._frames, self._episode)
        self.results.clear()

    def on_ended(self) -> threading.Thread:
        """streamlit-webrtc's `on_video_ended`: the stream ended, by STOP, a closed tab or a dropped
        connection, whether or not the page runs again. It is called in the event-loop thread that every
        session's video shares, so the closing (SQLite writes, a webhook's last sends: up to seconds) runs
        on a thread of its own, returned."""
        thread = threading.Thread(target=self.end_stream, name="live-stream-end", daemon=True)
        thread.start()
        return thread

    @property
    def pipeline(self):
        with self._lock:
            return self._pipeline

    def latest(self) -> LiveStats | None:
        return self.results.get()

    def process(self, frame_bgr: np.ndarray) -> np.ndarray:
        """One frame in, its annotated copy out; the stats go to `results`. Never raises: a frame the
        pipeline refuses comes back unchanged with the reason in `LiveStats.error`."""
        self._idle.touch()
        if self.tracks:
            return self._process_people(frame_bgr)
        start = time.perf_counter()
        pipeline = self.pipeline
        try:
            result = pipeline.process(frame_bgr)
            with self._stream_lock:
                self._people.keep_up(frame_bgr, result)
        except Exception as error:  # a frame must never end the stream
            self._publish_failure(start, error)
            return frame_bgr
        with self._lock:
            fps = self._fps.tick()
        latency_ms = (time.perf_counter() - start) * 1000
        shown = anonymize_faces(frame_bgr, result, self._anonymize)
        annotated = annotate(shown, result, overlay=overlay_text(fps, latency_ms))
        latency_ms = (time.perf_counter() - start) * 1000
        self._publish(result.masked_count, result.unmasked_count, latency_ms, None, fps, result.label_counts)
        return annotated

    def _publish_failure(self, start: float, error: Exception) -> None:
        """A refused frame shows its reason; a bug keeps its traceback in the log and a generic reason."""
        if isinstance(error, MaskappError):
            reason = str(error)
        else:
            logger.exception("live frame processing failed")
            reason = "internal error; see the server log"
        self._publish(0, 0, (time.perf_counter() - start) * 1000, reason)

    def _process_people(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The tracked frame: people ids and verdicts, events, the per-person alert."""
        start = time.perf_counter()
        people = self._people
        try:
            with self._stream_lock:
                result, alert = people.process(frame_bgr)
                counts, timeline, log_error = people.counts(), tuple(people.timeline), people.log_error
                webhook_warning = people.webhook_warning()
                words = alert_text(people.alert.noncompliant_labels())
        except Exception as error:  # a frame must never end the stream
            self._publish_failure(start, error)
            return frame_bgr
        with self._lock:
            fps = self._fps.tick()
            mode = self._anonymize
        annotated = annotate(
            anonymize_faces(frame_bgr, result, mode),
            result,
            overlay=overlay_text(fps, (time.perf_counter() - start) * 1000),
        )
        latency_ms = (time.perf_counter() - start) * 1000
        with self._lock:
            self._frames += 1
            stats = self._stats(
                result.label_counts,
                result.masked_count,
                result.unmasked_count,
                fps,
                latency_ms,
                alert,
                log_error,
                words,
                people=counts,
                people_in_view=len(result.people_in_view()),
                timeline=timeline,
                webhook_warning=webhook_warning,
            )
            self.results.put(stats)
        return annotated

    def _publish(
        self,
        masked: int,
        unmasked: int,
        latency_ms: float,
        error: str | None,
        fps: float = 0.0,
        label_counts: dict[str, int] | None = None,
    ):
        counts = dict.fromkeys(CLASS_NAMES, 0) | (label_counts or {})
        with self._lock:
            self._frames += 1
            alert = self._alert.update(None if error is not None else unmasked > 0)
            if unmasked > 0:
                self._alert_text = alert_text(label for label, n in counts.items() if n) or self._alert_text
            stats = self._stats(counts, masked, unmasked, fps, latency_ms, alert, error, self._alert_text)
            # Under the lock: a thread that computed an older frame cannot publish it after a newer one.
            self.results.put(stats)

    def _stats(
        self,
        label_counts: dict[str, int],
        masked: int,
        unmasked: int,
        fps: float,
        latency_ms: float,
        alert: AlertState,
        error: str | None,
        words: str | None,
        **people,
    ) -> LiveStats:
        """This frame's stats (called under the lock, after counting the frame); `people`: the tracked
        session's fields."""
        # Both alerts' episodes: one count that only grows, whichever alert is shown, so a switch of
        # *Follow people* neither replays the chime of an episode sounded nor hides a new one.
        self._episode = self._alert.episode + self._people.alert.episode
        frames_before, episodes_before = self._stream_base
        return LiveStats(
            frame_index=self._frames,
            faces=masked + unmasked,
            masked=masked,
            unmasked=unmasked,
            fps=fps,
            latency_ms=latency_ms,
            alert=alert.active,
            episode=self._episode,
            updated_at=time.monotonic(),
            error=error,
            label_counts=dict.fromkeys(CLASS_NAMES, 0) | label_counts,
            alert_text=words if alert.active else None,
            stream_frames=self._frames - frames_before,
            stream_alerts=self._episode - episodes_before,
            **people,
        )

    def callback(self, frame):
        """The `video_frame_callback` for streamlit-webrtc: av.VideoFrame in, av.VideoFrame out."""
        annotated = self.process(frame.to_ndarray(format="bgr24"))
        out = av.VideoFrame.from_ndarray(annotated, format="bgr24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out


# --- alert sound -----------------------------------------------------------------------------------
@cache
def alert_wav(variant: int = 0, sample_rate: int = 8_000, volume: float = 0.5) -> bytes:
    """A short two-tone chime (high, low, high) as a 16-bit mono WAV, generated here (no asset file).
    `variant` adds that many silent samples at the end: the same sound in other bytes, which the page
    renders as another source so that the browser plays it again (see `AlertChime`). 8 kHz holds its
    tones (up to 880 Hz) and halves what the page sends on each refresh while the alert is on.
    Over a second long: the page's player counts whole seconds, and a 0.78 s chime read "0:00 / 0:00"
    before and after it played, as if the player held no sound."""
    notes = ((880.0, 0.25), (660.0, 0.25), (880.0, 0.50))
    parts = []
    for frequency, seconds in notes:
        t = np.arange(int(sample_rate * seconds)) / sample_rate
        envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.015)  # 15 ms fades: no clicks
        parts.append(np.sin(2 * np.pi * frequency * t) * envelope)
        parts.append(np.zeros(int(sample_rate * 0.04)))
    parts.append(np.zeros(variant))
    samples = (np.concatenate(parts) * volume * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# --- WebRTC configuration --------------------------------------------------------------------------
def parse_ice_servers(text: str) -> dict:
    """JSON of a list of ICE servers, or of {"iceServers": [...]} -> an RTCConfiguration dict.

    Each server needs "urls" (a string or a list of strings); TURN servers add "username" and
    "credential". Example: [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LiveConfigError(f"ICE server configuration is not valid JSON ({error})") from None
    servers = data.get("iceServers") if isinstance(data, dict) else data
    if not isinstance(servers, list):
        raise LiveConfigError('ICE server configuration must be a JSON list or {"iceServers": [...]}')
    for index, server in enumerate(servers):
        urls = server.get("urls") if isinstance(server, dict) else None
        if isinstance(urls, str):
            urls = [urls]
        if not urls or not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise LiveConfigError(f'ICE server {index} needs "urls": a string or a list of strings')
        allowed = ("stun:", "stuns:", "turn:", "turns:")
        for url in urls:
            if not url.startswith(allowed):
                raise LiveConfigError(f"ICE server URL {url!r} must start with one of {', '.join(allowed)}")
    return {"iceServers": servers}
