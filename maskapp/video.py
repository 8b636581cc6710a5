"""Video files, cameras and network streams: `python -m maskapp video SOURCE`.

`open_source` gives a FrameSource (an iterator of BGR frames) that the live page reuses;
`process_video` runs the pipeline over it, writes the annotated video and per-frame counts, and stops
cleanly at the end of the stream or on Ctrl-C, keeping what was processed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
from tqdm import tqdm

from maskapp import DEFAULT_WEIGHTS
from maskapp.errors import VideoError

if TYPE_CHECKING:
    from maskapp.pipeline import MaskPipeline
    from maskapp.plots import CountSample

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
STREAM_TIMEOUT_S = 10.0
FALLBACK_FPS = 25.0  # containers and cameras that do not say their frame rate
ALLOWED_SOURCES = "a video file, a camera index such as 0, or an rtsp:// or http(s):// stream URL"


class FrameSource:
    """BGR frames from an opened cv2.VideoCapture. Iterate it once; close it (or use `with`)."""

    def __init__(self, capture: cv2.VideoCapture, source: str, is_stream: bool):
        self.capture = capture
        self.source = source
        self.is_stream = is_stream
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else FALLBACK_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 and not is_stream else None

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.capture.read()
            if not ok or frame is None:
                return
            yield frame

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


def _open_stream(url: str, timeout_s: float) -> FrameSource:
    timeout_ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"stream {url} could not be opened within {timeout_s:g} s (unreachable, refused or not a video); "
            "allowed: a reachable rtsp:// or http(s):// video stream"
        )
    return FrameSource(capture, url, is_stream=True)


def _open_file(path: Path) -> FrameSource:
    if not path.is_file():
        raise VideoError(f"video file {path} does not exist; allowed: {ALLOWED_SOURCES}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened() or not capture.grab():
        capture.release()
        raise VideoError(
            f"{path} is not a readable video; allowed: a video file OpenCV can decode (mp4, avi...)"
        )
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # undo the probing grab
    return FrameSource(capture, str(path), is_stream=False)


def open_source(source: str, timeout_s: float = STREAM_TIMEOUT_S) -> FrameSource:
    """A file path, a camera index ("0") or a stream URL; anything that cannot be read is a VideoError."""
    source = str(source).strip()
    if not source:
        raise VideoError(f"an empty video source was given; allowed: {ALLOWED_SOURCES}")
    if source.isdigit():
        return _open_camera(int(source))
    if source.lower().startswith(STREAM_SCHEMES):
        return _open_stream(source, timeout_s)
    if "://" in source:
        raise VideoError(f"unsupported stream scheme in {source}; allowed: {', '.join(STREAM_SCHEMES)}")
    return _open_file(Path(source))


@dataclass(frozen=True)
class FrameCounts:
    frame: int
    faces: int
    masked: int
    unmasked: int
    compliance: float | None
    latency_ms: float


@dataclass(frozen=True)
class VideoSummary:
    source: str
    frames: int
    counts: tuple[FrameCounts, ...]
    stopped_early: str | None  # None: the source ended; else why processing stopped
    processing_fps: float
    out_path: str | None

    def to_dict(self) -> dict:
        return asdict(self)


class _Writer:
    """An annotated-video writer opened on the first frame (its size is known only then)."""

    def __init__(self, path: Path | None, fps: float):
        self.path, self.fps, self.writer = path, fps, None

    def write(self, image: np.ndarray) -> None:
        if self.path is None:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                raise VideoError(f"cannot write video {self.path}; allowed: a writable .mp4 or .avi path")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _counts(index: int, result) -> FrameCounts:
    return FrameCounts(
        index,
        len(result.faces),
        result.masked_count,
        result.unmasked_count,
        result.compliance,
        result.timings.total_ms,
    )


def _early_end(frames: FrameSource, done: int) -> str | None:
    """Why a file ended before the frame count its header gives (truncated or damaged); None when it
    did not. A stream's end cannot be told from a drop: the caller reports how many frames it gave."""
    if not frames.is_stream and frames.frame_count is not None and 0 < done < frames.frame_count:
        return f"the video ended after {done} of {frames.frame_count} frames (truncated or damaged)"
    return None


def process_video(
    source: str | FrameSource,
    pipeline,
    out_path: str | Path | None = None,
    progress: bool = True,
    on_frame: Callable[[int, np.ndarray, object], bool | None] | None = None,
    max_frames: int | None = None,
) -> VideoSummary:
    """Run the pipeline on every frame. `on_frame(index, frame, result)` returning False stops early.
    Ctrl-C stops too; the frames done so far are kept (video written, counts returned)."""
    from maskapp.draw import annotate

    frames = source if isinstance(source, FrameSource) else open_source(source)
    writer = _Writer(Path(out_path) if out_path else None, frames.fps)
    counts, stopped, start = [], None, time.perf_counter()
    bar = tqdm(total=frames.frame_count, desc="video", unit="frame", disable=not progress)
    try:
        for index, frame in enumerate(frames):
            result = pipeline.process(frame)
            counts.append(_counts(index, result))
            writer.write(annotate(frame, result, overlay=f"{result.timings.total_ms:.0f} ms/frame"))
            bar.update()
            if on_frame is not None and on_frame(index, frame, result) is False:
                stopped = "stopped by the caller"
                break
            if max_frames is not None and index + 1 >= max_frames:
                stopped = f"reached the {max_frames}-frame limit"
                break
    except KeyboardInterrupt:
        stopped = "interrupted (Ctrl-C)"
    finally:
        bar.close()
        writer.close()
        frames.close()
    elapsed = time.perf_counter() - start
    if stopped is None:
        stopped = _early_end(frames, len(counts))
    fps = len(counts) / elapsed if elapsed > 0 else 0.0
    return VideoSummary(
        frames.source, len(counts), tuple(counts), stopped, fps, str(out_path) if out_path else None
    )


def register(subparsers) -> None:
    from maskapp.detect import DEFAULT_DETECTOR, DETECTOR_NAMES

    parser = subparsers.add_parser(
        "video", help="annotate a video file, camera or stream", description=__doc__
    )
    parser.add_argument("source", metavar="SOURCE", help=ALLOWED_SOURCES)
    parser.add_argument("--out", type=Path, help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--json", type=Path, help="write per-frame counts here")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR, help="face detector")
    parser.add_argument("--face-threshold", type=float, default=None, help="face score threshold, 0 to 1")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="classifier checkpoint")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument(
        "--timeout", type=float, default=STREAM_TIMEOUT_S, help="stream open timeout, seconds"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskapp.pipeline import load_pipeline

    frames = open_source(args.source, args.timeout)  # fail fast, before loading models
    try:
        pipeline = load_pipeline(args.weights, args.detector, args.face_threshold)
    except BaseException:
        frames.close()
        raise
    summary = process_video(frames, pipeline, args.out, progress=True, max_frames=args.max_frames)
    if summary.frames == 0:
        raise VideoError(
            f"no frame could be read from {frames.source} (it ended, dropped or stayed silent at once); "
            f"allowed: {ALLOWED_SOURCES}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary.to_dict(), indent=2))
    masked = sum(c.masked for c in summary.counts)
    faces = sum(c.faces for c in summary.counts)
    print(
        f"{summary.frames} frames at {summary.processing_fps:.1f} FPS, {faces} faces seen, {masked} with mask"
    )
    if summary.stopped_early:
        print(f"stopped early: {summary.stopped_early}")
    elif frames.is_stream:
        print(f"the stream ended after {summary.frames} frames (it closed, dropped or went silent)")
    return 0


# --- the Video page ----------------------------------------------------------------------------------
# (the annotation and plot helpers are imported where used: they pull in torch and plotly, which the
# `video` command does not need before its models load)
VIDEO_SUFFIXES = ("mp4", "avi", "mov", "mkv", "webm", "mpeg", "mpg", "m4v")
PREVIEW_EVERY = 10  # frames between preview images while a file is processed


@dataclass(frozen=True)
class VideoRun:
    """A processed video file or stream: its summary, the source frame rate, the annotated H.264 video."""

    summary: VideoSummary
    fps: float
    video_mp4: bytes | None = None

    def samples(self) -> list[CountSample]:
        from maskapp.plots import CountSample

        return [CountSample(c.frame / self.fps, c.masked, c.unmasked) for c in self.summary.counts]


def to_browser_mp4(source: Path, target: Path, fps: float) -> None:
    """Re-encode a video as H.264 in MP4 (yuv420p), which every browser plays; OpenCV writes MPEG-4
    part 2, which browsers do not."""

    with (
        av.open(str(source)) as reader,
        av.open(str(target), "w", options={"movflags": "faststart"}) as writer,
    ):
        video = reader.streams.video[0]
        stream = writer.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height = video.width // 2 * 2, video.height // 2 * 2  # yuv420p: even sides
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for frame in reader.decode(video):
            image = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            image.pts = None
            writer.mux(stream.encode(image))
        writer.mux(stream.encode(None))


def analyze_video(pipeline: MaskPipeline, data: bytes, name: str, on_progress=None) -> VideoRun:
    """Run the pipeline over an uploaded video file; `on_progress(fraction, preview_bgr | None)`.

    Raises VideoError (a MaskappError) for bytes that are not a readable video.
    """
    from maskapp.draw import annotate

    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix.lstrip(".") in VIDEO_SUFFIXES else ".mp4"
    with tempfile.TemporaryDirectory(prefix="maskapp-video-") as folder:
        upload, annotated, playable = Path(folder, "upload" + suffix), Path(folder, "annotated.avi"), None
        upload.write_bytes(data)
        try:
            source = open_source(str(upload))
        except VideoError:
            raise VideoError(
                f"{name} is not a readable video; allowed: a video file such as "
                f"{', '.join(VIDEO_SUFFIXES[:4])}"
            ) from None
        total = source.frame_count

        def on_frame(index, frame, result):
            if on_progress is not None:
                preview = annotate(frame, result) if index % PREVIEW_EVERY == 0 else None
                on_progress(min(1.0, (index + 1) / total) if total else 0.0, preview)

        summary = process_video(source, pipeline, annotated, progress=False, on_frame=on_frame)
        if summary.frames == 0:
            raise VideoError(f"{name} has no video frame that could be decoded")
        playable = Path(folder, "annotated.mp4")
        to_browser_mp4(annotated, playable, source.fps)
        return VideoRun(summary, source.fps, playable.read_bytes())


def watch_stream(
    pipeline, url: str, *, max_seconds: float, on_frame=None, timeout_s: float = 10.0
) -> VideoRun:
    """Run the pipeline over a network stream until it ends or `max_seconds` pass.

    `on_frame(index, annotated_bgr, result)` sees every frame. Only rtsp/rtmp/http(s) URLs are accepted
    (never a local path or camera of the server). Raises VideoError.
    """
    from maskapp.draw import annotate

    url = url.strip()
    if not url.lower().startswith(STREAM_SCHEMES):
        raise VideoError(f"{url or 'an empty URL'} is not a stream URL; allowed: {', '.join(STREAM_SCHEMES)}")
    source = open_source(url, timeout_s)
    deadline = time.monotonic() + max_seconds

    def handle(index, frame, result):
        if on_frame is not None:
            on_frame(index, annotate(frame, result), result)
        return time.monotonic() < deadline

    summary = process_video(source, pipeline, None, progress=False, on_frame=handle)
    return VideoRun(summary, source.fps)
