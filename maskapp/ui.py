"""What the pages share: cached model loaders, sidebar settings, error display, run loading.

The only library module that imports streamlit. Everything else here is a thin adapter between a
page and the library: models load once per process (`st.cache_resource`) and are shared by every
session; library errors (`MaskappError`) become one `st.error` sentence, never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import av
import cv2
import numpy as np
import streamlit as st

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT, WEIGHTS_DIR
from maskapp.crops import crop_face
from maskapp.detect import DEFAULT_DETECTOR, DETECTOR_NAMES, DETECTORS, LIVE_DETECTOR
from maskapp.draw import annotate
from maskapp.errors import CheckpointError, MaskappError, RunFormatError, VideoError
from maskapp.images import decode_image, encode_png
from maskapp.live import parse_ice_servers
from maskapp.model import load_checkpoint
from maskapp.pipeline import FrameResult, MaskPipeline, load_pipeline
from maskapp.plots import CountSample
from maskapp.runs import MODEL_FILE, Run, find_runs, load_run
from maskapp.video import STREAM_SCHEMES, VideoSummary, open_source, process_video

logger = logging.getLogger(__name__)

RUN_ROOTS = (WEIGHTS_DIR / "runs", PROJECT_ROOT / "runs")
# Extra folders holding run directories, separated by os.pathsep (e.g. runs kept on another disk).
RUN_DIRS_ENV = "MASKAPP_RUN_DIRS"
WEIGHTS_ENV = "MASKAPP_WEIGHTS"  # another classifier checkpoint for the app (default: the shipped one)
ICE_SERVERS_ENV = "MASKAPP_ICE_SERVERS"
ICE_SERVERS_SECRET = "ice_servers"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")


# --- errors and text -------------------------------------------------------------------------------
def plain(text: object) -> str:
    """Text from a file name, a path or an error message, shown literally in a markdown element."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def fail(error: Exception | str) -> NoReturn:
    """Show one clear sentence and end this page run (the traceback goes to the log, not the page)."""
    st.error(plain(error), icon=":material/error:")
    st.stop()


# --- models ----------------------------------------------------------------------------------------
def detector_names() -> tuple[str, ...]:

    return DETECTOR_NAMES


def default_threshold(detector: str) -> float:
    """The threshold a detector uses when none is given (its measured default)."""

    return float(inspect.signature(DETECTORS[detector]).parameters["threshold"].default)


@st.cache_resource(show_spinner="Loading the face detector and the mask classifier…", max_entries=4)
def get_pipeline(weights: str, detector: str, face_threshold: float | None) -> MaskPipeline:
    """One pipeline per (weights, detector, threshold) for the whole process; thread-safe, shared."""

    logger.info("loading pipeline weights=%s detector=%s threshold=%s", weights, detector, face_threshold)
    return load_pipeline(weights=Path(weights), detector=detector, face_threshold=face_threshold)


@dataclass(frozen=True)
class PipelineSettings:
    weights: str
    detector: str
    face_threshold: float

    def load(self) -> MaskPipeline:
        """The cached pipeline; a MaskappError (missing weights, bad detector) ends the page run."""
        try:
            return get_pipeline(self.weights, self.detector, self.face_threshold)
        except MaskappError as error:
            fail(error)


def weights_path() -> Path:
    """The classifier checkpoint the app serves: MASKAPP_WEIGHTS, else weights/mask_classifier.pt."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def _remembered(key: str, default):
    """A sidebar value kept across pages (widget state is dropped when a page does not draw it)."""
    return st.session_state.get(f"saved_{key}", default)


def _remember(key: str, value) -> None:
    st.session_state[f"saved_{key}"] = value


def pipeline_sidebar(*, live: bool = False) -> PipelineSettings:
    """Detector and threshold in the sidebar; the live page defaults to the faster detector and
    remembers its own choice."""
    default, scope = (LIVE_DETECTOR, "live") if live else (DEFAULT_DETECTOR, "photo")
    names = detector_names()
    with st.sidebar:
        st.header("Detection settings")
        saved = _remembered(f"{scope}_detector", default)
        detector = st.selectbox(
            "Face detector",
            names,
            index=names.index(saved) if saved in names else 0,
            help="centerface finds small and turned faces; centerface-fast runs it at 320 px for live video "
            "(misses the smallest faces); res10 is the detector of the original write-ups.",
        )
        threshold = st.slider(
            "Face confidence threshold",
            min_value=0.05,
            max_value=0.95,
            value=float(_remembered(f"{scope}_threshold_{detector}", default_threshold(detector))),
            step=0.05,
            help="Detections below this score are ignored. Lower finds more faces and more false ones.",
        )
    _remember(f"{scope}_detector", detector)
    _remember(f"{scope}_threshold_{detector}", threshold)
    return PipelineSettings(str(weights_path()), detector, float(threshold))


# --- images ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAnalysis:
    """One analysed image: the decoded frame, the pipeline result, the annotated copy, face crops."""

    name: str
    image: np.ndarray
    result: FrameResult
    annotated: np.ndarray
    crops: tuple[np.ndarray, ...] = field(default_factory=tuple)


def analyze_image(pipeline: MaskPipeline, data: bytes, name: str, *, one_face: bool = False) -> ImageAnalysis:
    """Decode uploaded bytes, run the pipeline (or classify the whole image as one face), annotate.

    Raises ImageError (a MaskappError) for bytes that are not a usable image.
    """
    image = decode_image(data, name=name)
    result = pipeline.classify_whole(image) if one_face else pipeline.process(image)
    crops = tuple(image if one_face else crop_face(image, face.box) for face in result.faces)
    return ImageAnalysis(name, image, result, annotate(image, result), crops)


def png_data_url(image_bgr: np.ndarray, max_side: int = 96) -> str:
    """A small PNG thumbnail as a data: URL, for an image column of a table."""

    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width, 1))
    if scale < 1.0:
        image_bgr = cv2.resize(
            image_bgr,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
    return "data:image/png;base64," + base64.b64encode(encode_png(image_bgr)).decode("ascii")


def face_rows(analysis: ImageAnalysis) -> list[dict]:
    """One table row per face: thumbnail, label, probability, detector score, box."""
    rows = []
    for index, (face, crop) in enumerate(zip(analysis.result.faces, analysis.crops, strict=True), start=1):
        rows.append(
            {
                "face": index,
                "crop": png_data_url(crop),
                "label": face.label,
                "probability": round(float(face.probability), 4),
                "face score": round(float(face.face.score), 4),
                "box (x1, y1, x2, y2)": ", ".join(str(int(v)) for v in face.box),
            }
        )
    return rows


def detection_json(analysis: ImageAnalysis) -> dict:
    """The JSON of one image, in the schema of `python -m maskapp detect --json`."""
    return {"images": {analysis.name: analysis.result.to_json()}}


def shown_path(path: str | Path) -> str:
    """A path relative to the project when it is inside it (shorter on screen), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def stem(name: str) -> str:
    """A safe download file name stem from an uploaded file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:80] or "image"


# --- video ---------------------------------------------------------------------------------------
VIDEO_SUFFIXES = ("mp4", "avi", "mov", "mkv", "webm", "mpeg", "mpg", "m4v")
PREVIEW_EVERY = 10  # frames between preview images while a file is processed


@dataclass(frozen=True)
class VideoRun:
    """A processed video file or stream: its summary, the source frame rate, the annotated H.264 video."""

    summary: VideoSummary
    fps: float
    video_mp4: bytes | None = None

    def samples(self) -> list[CountSample]:

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


# --- runs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunProblem:
    name: str
    message: str


@dataclass(frozen=True)
class RunListing:
    runs: tuple[Run, ...]
    problems: tuple[RunProblem, ...]


def run_roots() -> tuple[Path, ...]:
    """weights/runs/, runs/ and the folders named in MASKAPP_RUN_DIRS."""
    extra = [Path(p) for p in os.environ.get(RUN_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return (*RUN_ROOTS, *extra)


def load_runs(roots: Iterable[Path] | None = None) -> RunListing:
    """Every run under the roots; one that cannot be read becomes a problem, the others still load."""
    roots = run_roots() if roots is None else tuple(roots)
    runs, problems = [], []
    for path in find_runs(*roots):
        try:
            runs.append(load_run(path))
        except (RunFormatError, OSError) as error:
            logger.warning("run %s skipped: %s", path, error)
            problems.append(RunProblem(path.name, str(error)))
    return RunListing(tuple(runs), tuple(problems))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_for_weights(weights: Path, runs: Iterable[Run], checkpoint_config: dict | None = None) -> Run | None:
    """The run that made the served weights: its model.pt is byte-identical, or (for a checkpoint
    copied another way) its config.json is the config saved in the checkpoint."""
    runs = list(runs)
    if weights.is_file():
        size, digest = weights.stat().st_size, None
        for run in runs:
            candidate = run.path / MODEL_FILE
            if candidate.is_file() and candidate.stat().st_size == size:
                digest = digest or _sha256(weights)
                if _sha256(candidate) == digest:
                    return run
    if checkpoint_config:
        for run in runs:
            if run.config == json.loads(json.dumps(checkpoint_config, default=str)):
                return run
    return None


@dataclass(frozen=True)
class ModelCard:
    weights: str
    architecture: str
    class_names: tuple[str, ...]
    input_size: int
    run_name: str | None
    test_accuracy: float | None
    macro_f1: float | None


@st.cache_data(show_spinner=False, max_entries=8)
def model_card(weights: str, modified: float) -> ModelCard:
    """What the shipped checkpoint is and how it scored; `modified` invalidates the cache."""

    checkpoint = load_checkpoint(weights)
    run = run_for_weights(Path(weights), load_runs().runs, checkpoint.config)
    metrics = run.metrics if run else None
    return ModelCard(
        weights=weights,
        architecture=checkpoint.architecture,
        class_names=checkpoint.class_names,
        input_size=checkpoint.input_spec.input_size,
        run_name=run.name if run else None,
        test_accuracy=metrics.accuracy if metrics else None,
        macro_f1=metrics.macro_f1 if metrics and metrics.per_class else None,
    )


def load_model_card() -> ModelCard:
    """The served checkpoint's card; raises CheckpointError when it is missing or unreadable."""

    weights = weights_path()
    if not weights.is_file():
        raise CheckpointError(f"weights file {weights} does not exist")
    return model_card(str(weights), weights.stat().st_mtime)


# --- live ------------------------------------------------------------------------------------------
def rtc_configuration() -> dict:
    """ICE servers for WebRTC: env MASKAPP_ICE_SERVERS (JSON), else st.secrets, else none (localhost)."""

    text = os.environ.get(ICE_SERVERS_ENV)
    if text:
        return parse_ice_servers(text)
    try:
        servers = st.secrets.get(ICE_SERVERS_SECRET)
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        servers = None
    if servers:
        return parse_ice_servers(json.dumps(_plain_data(servers)))
    return {"iceServers": []}


def _plain_data(value):
    """st.secrets values (AttrDict) as plain lists and dicts."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v) for v in value]
    return value
