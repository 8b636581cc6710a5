"""The Video page's work: an uploaded video file annotated into a browser-playable MP4, a network stream
watched frame by frame (no Streamlit here: the page draws what these return)."""

from __future__ import annotations

import hashlib
import math
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import av
import numpy as np

from maskapp.app.compliance_log import zone_name
from maskapp.app.live import PeoplePoint
from maskapp.app.plots import CountSample
from maskapp.config import STREAM_SCHEMES, STREAM_TIMEOUT_S
from maskapp.errors import EventStoreError, VideoError
from maskapp.events.session import EventSettings, PeopleLog, PeopleLogSummary, PeopleVideo, watch_people
from maskapp.events.store import SqliteEventStore
from maskapp.media.sources import redact_source
from maskapp.media.video import VideoSummary, open_file, open_source
from maskapp.vision.anonymize import anonymize_faces
from maskapp.vision.draw import annotate
from maskapp.vision.pipeline import MaskPipeline

VIDEO_SUFFIXES = ("mp4", "avi", "mov", "mkv", "webm", "mpeg", "mpg", "m4v")
# Each progress update is a message the browser redraws, each preview a frame drawn, JPEG-encoded and sent:
# sent for every frame, they cost the browser CPU that, with both on one small host, the pipeline lacked
# (README, The app). Seconds between them:
PROGRESS_INTERVAL_S = 0.25
PREVIEW_INTERVAL_S = 1.0


@dataclass(frozen=True)
class VideoRun:
    """A processed video file or stream: its summary, the source frame rate, the annotated H.264 video."""

    summary: VideoSummary
    fps: float
    video_mp4: bytes | None = None
    people: PeopleVideo | None = None  # people, their verdicts and events (tracked runs)
    # A stream's frames: the seconds since it was opened at which each was watched. Its frame rate is the
    # camera's claim or OpenCV's guess (25 for an MJPEG camera), and frames come as fast as they are
    # processed, so frame / fps drew a 20 s watch as 3 s. None (files): frame / fps, the video's time.
    frame_times: tuple[float, ...] | None = None

    def seconds(self, frame: int) -> float:
        return self.frame_times[frame] if self.frame_times is not None else frame / self.fps

    def people_points(self) -> list[PeoplePoint]:
        """People in view over video time, compliant or not (tracked runs; else empty)."""
        samples = self.people.samples if self.people is not None else ()
        return [PeoplePoint(self.seconds(s.frame), s.compliant, s.noncompliant) for s in samples]

    def samples(self) -> list[CountSample]:
        return [
            CountSample(self.seconds(c.frame), c.masked, c.unmasked, c.mask_worn_incorrectly)
            for c in self.summary.counts
        ]


@dataclass
class ProgressPacer:
    """Which frames of a file update the page while it is processed: at most one progress update per
    PROGRESS_INTERVAL_S and one preview per PREVIEW_INTERVAL_S of `clock`, and always the last frame (the
    bar ends full), so a long video sends a bounded number of messages a second however fast it runs."""

    clock: Callable[[], float] = time.monotonic
    _progress_at: float = field(default=-math.inf, init=False)
    _preview_at: float = field(default=-math.inf, init=False)

    def progress_due(self, last_frame: bool) -> bool:
        now = self.clock()
        if not last_frame and now - self._progress_at < PROGRESS_INTERVAL_S:
            return False
        self._progress_at = now
        return True

    def preview_due(self) -> bool:
        """Asked only on a frame whose progress is due (the same moment of the clock)."""
        if self._progress_at - self._preview_at < PREVIEW_INTERVAL_S:
            return False
        self._preview_at = self._progress_at
        return True


@dataclass(frozen=True)
class LoggedRun:
    """An earlier run that logged a video file's people to an events file, and how it dated them."""

    digest: str  # the file's bytes (LoggedClips)
    path: Path  # the events file, resolved
    run: str | None  # its run id; None: aggregate windows, which hold no run and cannot be told apart
    recorded_at: datetime | None  # the recording start that dated its rows (UTC); None: when analysed

    def dated(self, zone: tzinfo) -> str:
        if self.recorded_at is None:
            return "dated when analysed"
        start = self.recorded_at.astimezone(zone)
        return f"dated from the recording start {start:%Y-%m-%d %H:%M} ({zone_name(zone)})"


@dataclass(frozen=True)
class ShownVideo:
    """The Video page's last result, kept over reruns and visits to other pages."""

    key: tuple  # the upload and settings it was made with: other ones analyse the video again
    name: str  # the uploaded file's name
    run: VideoRun
    not_logged_again: str | None  # where an earlier run already logged its people (see LoggedClips)
    # The earlier run whose rows keep their dating though the recording start asked now differs (the
    # reader corrected it): the page offers to replace them (LoggedClips.replace).
    redate: LoggedRun | None = None


@dataclass
class LoggedClips:
    """The video files whose people went to an events file or webhook in one browser session: analysed
    again (other settings, the log switched off and on), a file is shown again without its people going
    to the same events file, or the same webhook, a second time, where the Compliance log would count
    them twice and the gate hear of them twice. The file and the webhook are remembered apart: a new
    webhook does not log the people to the same file again, nor a new file tell the same gate again.
    A recording start corrected afterwards does not re-date the rows by itself: `replace` deletes the
    earlier run's rows, and the next run logs the people once more, dated afresh."""

    _files: dict[tuple[str, Path], LoggedRun] = field(default_factory=dict)
    _webhooks: set[tuple[str, str]] = field(default_factory=set)

    def settings_for(self, data: bytes, settings: EventSettings) -> EventSettings:
        """`settings` less the events file and the webhook this file already went to."""
        digest = self._digest(data)
        path = settings.path
        if path is not None and (digest, path.resolve()) in self._files:
            path = None
        webhook = settings.webhook_url
        if webhook and (digest, webhook) in self._webhooks:
            webhook = None
        if (path, webhook) == (settings.path, settings.webhook_url):
            return settings
        keep = path is not None  # the window and the days to keep belong to the file
        dated = keep or bool(webhook)  # a recording start dates the rows or the webhook's violations
        return EventSettings(
            path,
            settings.aggregate_minutes if keep else None,
            webhook,
            settings.keep_days if keep else None,
            settings.recorded_at if dated else None,
        )

    def dated_otherwise(self, data: bytes, settings: EventSettings) -> LoggedRun | None:
        """The earlier run that logged this file to `settings`' events file dated otherwise than
        `settings` asks (a recording start set, corrected or cleared since); None if there is none."""
        if settings.path is None:
            return None
        earlier = self._files.get((self._digest(data), settings.path.resolve()))
        if earlier is None or earlier.recorded_at == settings.recorded_at:
            return None
        return earlier

    def remember(self, data: bytes, settings: EventSettings, log: PeopleLogSummary | None = None) -> None:
        """`log`: the run's summary (its run id, its dating), for `replace`."""
        digest = self._digest(data)
        if settings.path is not None:
            path = settings.path.resolve()
            run = None if log is None or log.recorder.aggregate_minutes else log.recorder.run
            recorded_at = None if log is None else log.recorded_at
            self._files[(digest, path)] = LoggedRun(digest, path, run, recorded_at)
        if settings.webhook_url:
            self._webhooks.add((digest, settings.webhook_url))

    def replace(self, earlier: LoggedRun) -> int:
        """Delete `earlier`'s rows from its events file and forget it there, so that the next run logs
        the file's people to it again (once: the old rows are gone first). The webhook is not told again.
        The number of rows deleted. EventStoreError where they cannot be told apart (aggregate windows)
        or deleted; the file is then still remembered, and nobody is logged twice."""
        if earlier.run is None:
            raise EventStoreError(
                f"this video's counts in {earlier.path} are aggregate windows, which hold no run to tell "
                "them from other counts and cannot be replaced; allowed: a new events file, dated afresh"
            )
        with SqliteEventStore(earlier.path) as store:
            deleted = store.discard_run(earlier.run)
        if deleted is None:
            raise EventStoreError(
                f"the earlier rows of this video in {earlier.path} could not be deleted (see the server's "
                "log); they stay as first dated; allowed: an events file that can be written"
            )
        self._files.pop((earlier.digest, earlier.path), None)
        return deleted

    @staticmethod
    def _digest(data: bytes) -> str:
        # The bytes, not the upload's id: the same file uploaded again is the same people.
        return hashlib.sha256(data).hexdigest()


def not_logged_again(
    asked: EventSettings, used: EventSettings, earlier: LoggedRun | None = None, zone: tzinfo = UTC
) -> str | None:
    """What the page says when `used` (LoggedClips.settings_for) left out some of what was `asked`; with
    `earlier` (LoggedClips.dated_otherwise), that its rows keep their first dating, and how to re-date
    them: a corrected recording start silently changed nothing."""
    skipped = []
    if asked.path is not None and used.path is None:
        skipped.append(f"to {asked.path}")
    if asked.webhook_url and not used.webhook_url:
        skipped.append("to the webhook")
    if not skipped:
        return None
    said = (
        f"This video's people were logged {' and '.join(skipped)} by an earlier run in this session: "
        "shown again, not logged again there."
    )
    if earlier is None:
        return said
    if earlier.run is None:
        how = (
            "Its counts are aggregate windows, which cannot be replaced: a new events file dates them afresh."
        )
    else:
        how = "To re-date them, replace them (button below): they are deleted, then logged once, re-dated."
    return (
        f"{said} Its rows there stay {earlier.dated(zone)}: the 'Recording started at' set now does not "
        f"change them. {how}"
    )


def event_log_caption(log: PeopleLogSummary, zone: tzinfo) -> str | None:
    """Where a run's people were logged and on which clock: the recording's hours (from its start, shown
    in `zone`, the clock it was typed on) or the moment of the analysis. The page said only where, and a
    reader of yesterday's recording could not tell which hours the Compliance log would show it on."""
    if log.path is None:
        return None
    recorder = log.recorder
    stored = (
        f"{recorder.windows_written} aggregate window(s)"
        if recorder.aggregate_minutes
        else f"{recorder.events_written} event(s)"
    )
    if log.recorded_at is not None:
        start = log.recorded_at.astimezone(zone)
        dated = (
            f"dated by the recording, from its start {start:%Y-%m-%d %H:%M} ({zone_name(zone)}) plus each "
            "frame's place in the video"
        )
    else:
        dated = (
            "dated when analysed, now ('Recording started at' in the sidebar dates a recording by its "
            "own hours)"
        )
    deleted = f" {log.rows_deleted} row(s) past the days to keep deleted." if log.rows_deleted else ""
    return f"Event log: {stored} written to {log.path}, {dated}; {recorder.violations} violation(s).{deleted}"


class BrowserVideoWriter:
    """The annotated video as every browser plays it, H.264 in MP4 (yuv420p; OpenCV writes MPEG-4 part 2,
    which browsers do not), encoded while the frames are processed, on a thread of its own. The page
    wrote an MJPG file and re-encoded it after the last frame: 0.83x the `video` command's rate end to end,
    0.91x now (README, The Video page's pace). PyAV lets go of the GIL while it encodes, so the encoder
    runs beside the detector. Opened on the first frame (its size is known only then); `close` finishes
    the file and keeps its bytes (`mp4`). Any failure of the encoder or the file is a VideoError."""

    # Frames waiting for the encoder: a bound, so a slow encoder holds back the loop, not memory. Eight
    # frames were 200 MB of 4K video: the bytes are bounded too, keeping at least one frame (2 of 4K, 8
    # of 1080p).
    QUEUE_FRAMES = 8
    QUEUE_BYTES = 64 * 2**20

    def __init__(self, path: Path, fps: float):
        self.path, self.rate = path, max(1, round(fps))
        self.mp4: bytes | None = None
        self._queue: queue.Queue[np.ndarray | None] | None = None  # sized by the first frame
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def wants_frames(self) -> bool:
        return True

    def write(self, image: np.ndarray) -> None:
        self._raise_failure()
        if self._thread is None:
            self._queue = queue.Queue(self.queue_frames(image.nbytes))
            self._thread = threading.Thread(
                target=self._encode, args=image.shape[:2], name="browser-mp4", daemon=True
            )
            self._thread.start()
        self._queue.put(image)

    @classmethod
    def queue_frames(cls, frame_bytes: int) -> int:
        """How many frames of `frame_bytes` may wait for the encoder: QUEUE_FRAMES, fewer for large frames."""
        return max(1, min(cls.QUEUE_FRAMES, cls.QUEUE_BYTES // max(1, frame_bytes)))

    def close(self) -> None:
        """Encode the frames still queued, finish the file and read it back. Idempotent."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self._raise_failure()
            try:
                self.mp4 = self.path.read_bytes()
            except OSError as exc:
                raise self._error(exc) from None

    def _encode(self, height: int, width: int) -> None:
        last_frame_taken = False
        try:
            with av.open(str(self.path), "w", options={"movflags": "faststart"}) as container:
                stream = container.add_stream("libx264", rate=self.rate)
                # yuv420p needs even sides: odd ones lose a pixel, a side of 1 pixel is doubled (not made 0)
                stream.width, stream.height = (max(2, side // 2 * 2) for side in (width, height))
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "crf": "23"}
                # One encoding thread keeps up with the pipeline (about 8 ms a 640x480 frame here) and
                # leaves the other cores to the detector, whose threads wait for their slowest one
                stream.codec_context.thread_count = 1
                while (image := self._queue.get()) is not None:
                    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                    frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                    container.mux(stream.encode(frame))
                last_frame_taken = True
                container.mux(stream.encode(None))
        except Exception as exc:  # FFmpeg's errors, a full disk: the loop raises them at its next frame
            self._failure = exc
            while not last_frame_taken:  # a writer waiting on a full queue goes on, to close
                last_frame_taken = self._queue.get() is None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._error(self._failure) from None

    def _error(self, cause: BaseException) -> VideoError:
        return VideoError(
            f"the annotated video could not be written ({cause}); allowed: a temporary folder with room "
            "for it (about a megabyte a minute of video)"
        )


def analyze_video(
    pipeline: MaskPipeline,
    data: bytes,
    name: str,
    on_progress=None,
    *,
    track: bool = True,
    log: PeopleLog | None = None,
    anonymize: str = "none",
    clock: Callable[[], float] = time.monotonic,
) -> VideoRun:
    """Run the pipeline over an uploaded video file; `on_progress(fraction, preview_bgr | None)`, paced by
    `clock` (ProgressPacer): every frame is processed, only some are shown. Tracked unless `track` is
    False; `log` (opened by the page) records the people; `anonymize` hides the faces in the annotated
    video and the previews. An exception out of `on_progress` (Streamlit stopping the page's run) leaves
    no row of this run in `log`'s events file (PeopleLog.discard): the next run logs everyone once.

    Raises VideoError (a MaskappError) for bytes that are not a readable video.
    """

    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix.lstrip(".") in VIDEO_SUFFIXES else ".mp4"
    with tempfile.TemporaryDirectory(prefix="maskapp-video-") as folder:
        upload = Path(folder, "upload" + suffix)
        upload.write_bytes(data)
        try:
            source = open_file(upload, shown=name)
        except VideoError:
            if log is not None:
                log.close()
            raise
        total = source.frame_count
        pacer = ProgressPacer(clock)

        def on_frame(index, frame, result):
            if on_progress is None or not pacer.progress_due(last_frame=index + 1 == total):
                return
            preview = (
                annotate(anonymize_faces(frame, result, anonymize), result) if pacer.preview_due() else None
            )
            on_progress(min(1.0, (index + 1) / total) if total else 0.0, preview)

        playable = BrowserVideoWriter(Path(folder, "annotated.mp4"), source.fps)
        people = watch_people(
            source,
            pipeline,
            writer=playable,
            track=track,
            anonymize=anonymize,
            keep_faces=False,
            on_frame=on_frame,
            log=log,
            # Stopped mid-file (a setting changed, Stop pressed), the page runs the video again from its
            # start: people kept from the stopped run would be in the log twice.
            keep_interrupted=False,
        )
        summary = people.summary
        if summary.frames == 0:
            raise VideoError(
                f"{name} has no video frame that could be decoded; allowed: a video with at least one frame"
            )
        return VideoRun(summary, source.fps, playable.mp4, people if track else None)


def watch_stream(
    pipeline,
    url: str,
    *,
    max_seconds: float,
    on_frame=None,
    timeout_s: float = STREAM_TIMEOUT_S,
    track: bool = True,
    log: PeopleLog | None = None,
    anonymize: str = "none",
    clock: Callable[[], float] = time.monotonic,
) -> VideoRun:
    """Run the pipeline over a network stream until it ends or `max_seconds` of `clock` pass.

    `on_frame(index, annotated_bgr, result)` sees every frame. Only rtsp/rtmp/http(s) URLs are accepted
    (never a local path or camera of the server). Tracked, `log` and `anonymize` as analyze_video; a
    stream that drops closes its people (person_left). Raises VideoError.
    """

    url = url.strip()
    try:
        if not url.lower().startswith(STREAM_SCHEMES):
            raise VideoError(
                f"{redact_source(url) or 'an empty URL'} is not a stream URL; "
                f"allowed: {', '.join(STREAM_SCHEMES)}"
            )
        source = open_source(url, timeout_s)
    except BaseException:
        if log is not None:
            log.close()
        raise
    start = clock()
    seen_at: list[float] = []
    timed_out = False

    def handle(index, frame, result):
        nonlocal timed_out
        now = clock()
        seen_at.append(now - start)
        if on_frame is not None:
            on_frame(index, annotate(anonymize_faces(frame, result, anonymize), result), result)
        timed_out = now - start >= max_seconds
        return not timed_out

    people = watch_people(
        source, pipeline, track=track, anonymize=anonymize, keep_faces=False, on_frame=handle, log=log
    )
    summary = people.summary
    if timed_out:  # the reader's own limit, not "stopped by the caller", which names nobody they know
        summary = replace(summary, stopped_early=f"reached the {max_seconds:g}-second limit")
    if summary.frames == 0:  # not "the stream ended after 0 frames" above a summary of zeros
        raise VideoError(
            f"no frame could be read from {source.source} (it ended, dropped or stayed silent at once); "
            f"allowed: a {', '.join(STREAM_SCHEMES)} stream that sends video frames"
        )
    return VideoRun(summary, source.fps, None, people if track else None, tuple(seen_at))
