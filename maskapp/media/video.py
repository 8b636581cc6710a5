"""Video files, cameras and network streams (what `python -m maskapp video SOURCE` and the Video page run).

`open_source` gives a FrameSource (an iterator of BGR frames); `process_video` runs the pipeline over
it, writes the annotated video and per-frame counts, and stops cleanly at the end of the stream or on
Ctrl-C, SIGTERM or SIGHUP (maskapp.errors.Terminated), keeping what was processed.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from maskapp.config import (
    ALLOWED_SOURCES,
    MAX_STREAM_TIMEOUT_S,
    STREAM_SCHEMES,
    STREAM_TIMEOUT_S,
    number_within,
)
from maskapp.errors import Terminated, VideoError
from maskapp.labels import CLASS_NAMES
from maskapp.media.images import PICTURE_FORMATS
from maskapp.media.opencv_paths import NOT_UTF8, opencv_path
from maskapp.media.sources import redact_source
from maskapp.outputs import ensure_writable_file, path_text, why_not_there, why_unwritable
from maskapp.vision.anonymize import anonymize_faces, check_mode
from maskapp.vision.draw import annotate

logger = logging.getLogger(__name__)

FALLBACK_FPS = 25.0  # containers and cameras that do not say their frame rate


class FrameSource:
    """BGR frames from an opened cv2.VideoCapture. Iterate it once; close it (or use `with`).
    `first_frame`: a frame already read from the capture (the probe of a file), given first."""

    def __init__(
        self, capture: cv2.VideoCapture, source: str, is_stream: bool, first_frame: np.ndarray | None = None
    ):
        self.capture = capture
        self.source = source
        self.is_stream = is_stream
        self._first_frame = first_frame
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else FALLBACK_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 and not is_stream else None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first_frame is not None:
            frame, self._first_frame = self._first_frame, None
            yield frame
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield frame

    def has_more_frames(self) -> bool:
        """Whether a file has a frame after the last one given (that frame is skipped); a stream always
        may: asking it would wait for its next frame, up to its timeout."""
        return self.is_stream or self.capture.grab()

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_camera(index: int) -> FrameSource:
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"camera {index} could not be opened; allowed: the index of a connected camera")
    return FrameSource(capture, str(index), is_stream=True)


def _check_stream_url(url: str) -> None:
    """A host and a well-formed port before FFmpeg is asked: its own failure says only 'not opened'."""
    example = "allowed: e.g. rtsp://camera.local:554/stream or http://camera.local/video.mjpg"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        raise VideoError(f"stream URL {redact_source(url)} is malformed ({exc}); {example}") from exc
    if not parts.hostname:
        raise VideoError(f"stream URL {redact_source(url)} has no host; {example}")


def _open_stream(url: str, timeout_s: float) -> FrameSource:
    _check_stream_url(url)
    timeout_ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    name = opencv_path(url)
    if name is None:
        raise VideoError(f"stream URL {redact_source(url)} cannot be used: {NOT_UTF8}")
    capture = cv2.VideoCapture(name, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"stream {redact_source(url)} could not be opened within {timeout_s:g} s (unreachable, refused "
            f"or not a video); allowed: a reachable {', '.join(STREAM_SCHEMES)} video stream"
        )
    return FrameSource(capture, redact_source(url), is_stream=True)  # a name to show: no password


def _opencv_name(path: Path, doing: str) -> str:
    """`path` as OpenCV's video I/O must get it; a VideoError where no name can reach it."""
    name = opencv_path(path)
    if name is None:
        raise VideoError(f"cannot {doing} {path_text(path)}: {NOT_UTF8}")
    return name


def _still_image_format(path: Path) -> str | None:
    """The format of a one-frame picture (PNG, JPEG...) whatever its name: FFmpeg would play it as a
    one-frame video, which answers a photo given by mistake with a video of one frame."""
    try:
        with Image.open(path, formats=PICTURE_FORMATS) as picture:  # not PIL's MPEG: a video stream
            return picture.format if getattr(picture, "n_frames", 1) == 1 else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # not a picture PIL knows: left to the video decoder


def open_file(path: Path, shown: str | None = None) -> FrameSource:
    """A video file; its errors name it `shown` when given (an upload's own name, not its temporary path)."""
    shown = shown or str(path)
    if not path.is_file():
        raise VideoError(f"video file {shown} {why_not_there(path, 'file')}; allowed: {ALLOWED_SOURCES}")
    allowed = "allowed: a video file OpenCV can decode (mp4, avi...)"
    if path.stat().st_size == 0:  # said to be "not a readable video", as if its format were the matter
        raise VideoError(f"{shown} is empty (0 bytes); {allowed}")
    picture_format = _still_image_format(path)
    if picture_format:
        raise VideoError(
            f"{shown} is a still {picture_format} picture, not a video; {allowed}. "
            "Pictures go to `python -m maskapp detect` or the Images page"
        )
    capture = cv2.VideoCapture(_opencv_name(path, "read video"))
    opened = capture.isOpened()
    # The probe reads the first frame and keeps it: seeking back to frame 0 is unreliable across codecs
    # (on a one-frame mp4 it loses the only frame).
    ok, first = capture.read() if opened else (False, None)
    if not ok or first is None:
        capture.release()
        reason = "has no frame that can be read (empty or damaged)" if opened else "is not a readable video"
        raise VideoError(f"{shown} {reason}; {allowed}")
    return FrameSource(capture, str(path), is_stream=False, first_frame=first)


def is_live_source(source: str) -> bool:
    """Whether open_source would read `source` as a camera index or a stream URL: frames as they happen."""
    source = str(source).strip()
    return source.isdigit() or source.lower().startswith(STREAM_SCHEMES)


def open_source(source: str, timeout_s: float = STREAM_TIMEOUT_S) -> FrameSource:
    """A file path, a camera index ("0") or a stream URL; anything that cannot be read is a VideoError."""
    if not number_within(timeout_s, MAX_STREAM_TIMEOUT_S):
        raise VideoError(
            f"stream timeout must be a number of seconds above 0 and up to {MAX_STREAM_TIMEOUT_S:g}, "
            f"got {timeout_s!r}"
        )
    source = str(source).strip()
    if not source:
        raise VideoError(f"an empty video source was given; allowed: {ALLOWED_SOURCES}")
    if source.isdigit():
        return _open_camera(int(source))
    if source.lower().startswith(STREAM_SCHEMES):
        return _open_stream(source, timeout_s)
    if "://" in source:
        raise VideoError(
            f"unsupported stream scheme in {redact_source(source)}; allowed: {', '.join(STREAM_SCHEMES)}"
        )
    return open_file(Path(source))


@dataclass(frozen=True)
class FrameCounts:
    frame: int
    faces: int
    masked: int  # compliant: with_mask
    unmasked: int  # not compliant: mask_worn_incorrectly + without_mask
    compliance: float | None
    latency_ms: float
    # Faces per class (0 for a class the model lacks).
    with_mask: int = 0
    mask_worn_incorrectly: int = 0
    without_mask: int = 0

    @property
    def label_counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in CLASS_NAMES}


@dataclass(frozen=True)
class VideoSummary:
    source: str
    frames: int
    counts: tuple[FrameCounts, ...]
    stopped_early: str | None  # None: the source ended; else why processing stopped
    processing_fps: float
    out_path: str | None

    @property
    def faces_seen(self) -> int:
        """Faces over all frames (a person in view for 10 frames counts 10 times)."""
        return sum(c.faces for c in self.counts)

    @property
    def masked_seen(self) -> int:
        return sum(c.masked for c in self.counts)

    @property
    def label_counts_seen(self) -> dict[str, int]:
        """Faces over all frames per class."""
        return {name: sum(getattr(c, name) for c in self.counts) for name in CLASS_NAMES}

    @property
    def compliance(self) -> float | None:
        """Share of the faces seen that wore a mask; None when no face was seen."""
        return self.masked_seen / self.faces_seen if self.faces_seen else None

    def to_dict(self) -> dict:
        """The `video --json` output: every field, then the totals over all frames per class."""
        totals = {"faces_seen": self.faces_seen, "label_counts": self.label_counts_seen}
        return {**asdict(self), **totals, "compliance": self.compliance}


def _fourcc(path: Path) -> int:
    return cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))


def check_video_out(path: Path) -> Path:
    """`path` when an annotated video can be written there, else a MaskappError naming why: a folder, a
    folder that cannot be made or written, or a suffix OpenCV has no writer for (out.xyz, out.webm).
    These failed only at the first frame, after the models had loaded and the source had opened."""
    allowed = "allowed: a writable .mp4 or .avi path"
    if path.is_dir():
        raise VideoError(f"cannot write video {path_text(path)} (it is a folder); {allowed}")
    ensure_writable_file(path)
    # The container is tried in a scratch file: trying `path` itself would empty an earlier video there.
    # OpenCV's own warnings are silenced for the trial: the error below says what was wrong.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            trial = cv2.VideoWriter(str(Path(scratch) / f"check{path.suffix}"), _fourcc(path), 10, (16, 16))
            opened = trial.isOpened()
            trial.release()
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not opened:
        raise VideoError(
            f"cannot write video {path_text(path)}: OpenCV has no writer for the suffix "
            f"{path.suffix or '(none)'!r}; {allowed}"
        )
    return path


class AnnotatedVideoWriter(Protocol):
    """Where process_video sends its annotated frames: a file (VideoFileWriter) or the Video page's
    browser MP4 (maskapp.app.video.BrowserVideoWriter)."""

    @property
    def wants_frames(self) -> bool: ...

    def write(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


class VideoFileWriter:
    """A video file writer opened on the first frame (its size is known only then); .avi is MJPG."""

    def __init__(self, path: Path | None, fps: float):
        # The name and the path are checked before the work, not at the first frame.
        self.opencv_name = _opencv_name(path, "write video") if path is not None else None
        if path is not None:
            check_video_out(path)
        self.path, self.fps, self.writer = path, fps, None

    @property
    def wants_frames(self) -> bool:
        return self.path is not None

    def write(self, image: np.ndarray) -> None:
        if self.path is None:
            return
        if self.writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = why_unwritable(self.path.parent, exc)
                raise VideoError(
                    f"cannot write video {self.path} ({reason}); allowed: a writable .mp4 or .avi path"
                ) from None
            fourcc = _fourcc(self.path)
            size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(self.opencv_name, fourcc, self.fps, size)
            if not self.writer.isOpened():
                raise VideoError(f"cannot write video {self.path}; allowed: a writable .mp4 or .avi path")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _counts(index: int, result) -> FrameCounts:
    by_label = result.label_counts
    return FrameCounts(
        index,
        len(result.faces),
        result.masked_count,
        result.unmasked_count,
        result.compliance,
        result.timings.total_ms,
        **{name: by_label.get(name, 0) for name in CLASS_NAMES},
    )


def _early_end(frames: FrameSource, done: int) -> str | None:
    """Why a file ended before the frame count its header gives (truncated or damaged); None when it
    did not. A stream's end cannot be told from a drop: the caller reports how many frames it gave."""
    if not frames.is_stream and frames.frame_count is not None and 0 < done < frames.frame_count:
        return f"the video ended after {done} of {frames.frame_count} frames (truncated or damaged)"
    return None


def _close_after_loop(writer: AnnotatedVideoWriter, frames: FrameSource, loop_raised: bool) -> None:
    """Close the writer, then the source. After a loop that raised (Streamlit stopping the page's run, a
    failure), a writer failing too is logged, not raised: raised, it replaced Streamlit's stop, and the page
    showed an error about a video nobody would see in a run Streamlit meant to end."""
    try:
        writer.close()
    except Exception:
        if not loop_raised:
            raise
        logger.warning("the annotated video was not finished after the run ended early", exc_info=True)
    finally:
        frames.close()


def _opened(
    source: str | FrameSource,
    out_path: str | Path | None,
    writer: AnnotatedVideoWriter | None,
    anonymize: str,
    max_frames: int | None,
) -> tuple[FrameSource, AnnotatedVideoWriter]:
    """process_video's arguments checked, its source opened and its writer made; on any error the source
    and the writer given (or opened) are closed, as the loop would have: a caller that handed them over
    (the Video page: an uploaded file, a browser MP4 encoder) does not close them again."""
    frames = source if isinstance(source, FrameSource) else None
    try:
        check_mode(anonymize)
        if max_frames is not None and max_frames < 1:
            raise VideoError(f"the frame limit must be 1 or more, got {max_frames}")
        if writer is not None and out_path is not None:
            raise VideoError("an annotated video goes to one place: give out_path or a writer, not both")
        if frames is None:
            frames = open_source(source)
        if writer is None:
            writer = VideoFileWriter(Path(out_path) if out_path else None, frames.fps)
        return frames, writer
    except BaseException:
        try:
            if writer is not None:
                writer.close()
        finally:
            if frames is not None:
                frames.close()
        raise


def process_video(
    source: str | FrameSource,
    pipeline,
    out_path: str | Path | None = None,
    progress: bool = True,
    on_frame: Callable[[int, np.ndarray, object], bool | None] | None = None,
    max_frames: int | None = None,
    anonymize: str = "none",
    writer: AnnotatedVideoWriter | None = None,
) -> VideoSummary:
    """Run the pipeline on every frame. `on_frame(index, frame, result)` returning False stops early.
    Ctrl-C stops too; the frames done so far are kept (video written, counts returned).
    `anonymize` (none, blur, fill): how the faces are hidden in the annotated video. `writer`: where the
    annotated frames go instead of a file at `out_path` (the Video page's browser MP4). A FrameSource and a
    writer given are closed here whatever happens, a bad argument too: the writer after the last frame,
    so that its failure is the loop's."""
    frames, writer = _opened(source, out_path, writer, anonymize, max_frames)
    counts, stopped, start = [], None, time.perf_counter()
    bar = tqdm(total=frames.frame_count, desc="video", unit="frame", disable=not progress)
    loop_raised = True  # until the loop ends or Ctrl-C stops it: Streamlit's stop, a failure
    try:
        for index, frame in enumerate(frames):
            result = pipeline.process(frame)
            counts.append(_counts(index, result))
            if writer.wants_frames:  # drawing costs time: only for the video asked for
                shown = anonymize_faces(frame, result, anonymize)
                writer.write(annotate(shown, result, overlay=f"{result.timings.total_ms:.0f} ms/frame"))
            bar.update()
            if on_frame is not None and on_frame(index, frame, result) is False:
                stopped = "stopped by the caller"
                break
            if max_frames is not None and index + 1 >= max_frames:
                # A limit equal to the clip's length stopped nothing: only a frame left unread does.
                stopped = f"reached the {max_frames}-frame limit" if frames.has_more_frames() else None
                break
        loop_raised = False
    except KeyboardInterrupt as stop:
        stopped = f"interrupted ({stop.signal_name if isinstance(stop, Terminated) else 'Ctrl-C'})"
        loop_raised = False
    finally:
        bar.close()
        _close_after_loop(writer, frames, loop_raised)  # the browser MP4's last frames: inside the figure
    elapsed = time.perf_counter() - start
    if stopped is None:
        stopped = _early_end(frames, len(counts))
    fps = len(counts) / elapsed if elapsed > 0 else 0.0
    return VideoSummary(
        frames.source, len(counts), tuple(counts), stopped, fps, str(out_path) if out_path else None
    )
