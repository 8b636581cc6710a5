"""What the tests share: real data from ../shared/datasets (links, never copies in git), the shipped
weights, the command line in a fresh interpreter, webcam-sized frames, threads, and one loaded pipeline.

Test files import the constants and helpers from here (`from tests.conftest import ...`) and get the
fixtures by name; no test file imports another.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest
import torch

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT, SHARED_DATASETS
from maskapp.app import samples
from maskapp.cli import main
from maskapp.events.recorder import EndedPerson, EventRecorder, PersonObservation
from maskapp.events.store import SqliteEventStore
from maskapp.metrics.voc import ImageAnnotation, parse_annotation
from maskapp.results import Face
from maskapp.vision.boxes import iou

if TYPE_CHECKING:  # Streamlit is imported by the page tests' fixture only: ~4 s on every other run
    from streamlit.testing.v1 import AppTest

# --- real data and weights -------------------------------------------------------------------------
DEV = SHARED_DATASETS / "face-mask-detection-dev"  # street and crowd photos with VOC-annotated faces
TWO_CLASS = SHARED_DATASETS / "face-mask-2class"
TWELVE_K = SHARED_DATASETS / "face-mask-12k"
CLASSES = ("with_mask", "without_mask")
# A street photo, 512x366, with three annotated faces of 30 px or more (1 masked, 2 not).
PHOTO = "maksssksksss0"
WEIGHTS = DEFAULT_WEIGHTS  # the shipped classifier
CNN_WEIGHTS = PROJECT_ROOT / "weights" / "runs" / "cnn" / "model.pt"  # the shipped baseline run
# The 2-class MobileNetV2 (with_mask, without_mask): older checkpoints must keep working everywhere.
TWO_CLASS_WEIGHTS = PROJECT_ROOT / "weights" / "runs" / "mobilenet_v2" / "model.pt"
# The 3-class MobileNetV2 run; used by `three_class_weights` once its run is complete.
THREE_CLASS_RUN = PROJECT_ROOT / "weights" / "runs" / "mobilenet_v2_3class_soup"  # the shipped run
# Real web photos, each image centred on one labelled face, with real badly worn masks.
ILC = SHARED_DATASETS / "face-mask-ilc"


@cache
def dev_photo(stem: str = PHOTO) -> np.ndarray:
    """A photo of face-mask-detection-dev, read-only (a test that draws on it must copy it)."""
    image = cv2.imread(str(DEV / "images" / f"{stem}.png"))
    assert image is not None, f"dataset photo {stem} is missing"
    image.flags.writeable = False
    return image


def dev_annotation(stem: str = PHOTO) -> ImageAnnotation:
    return parse_annotation(DEV / "annotations" / f"{stem}.xml")


def best_iou(face: Face, boxes: list[tuple[float, ...]]) -> float:
    """The IoU of the face box with the best-matching box, 0 when there is none."""
    return float(iou(face.box, np.array(boxes, dtype=float)).max()) if boxes else 0.0


def real_images(source: Path, label: str, count: int, start: int = 0) -> list[Path]:
    return sorted((source / label).iterdir())[start : start + count]


def make_class_folders(
    root: Path, per_class: int, source: Path = TWO_CLASS, start: int = 0, classes: tuple[str, ...] = CLASSES
) -> Path:
    """root/with_mask/*.jpg and root/without_mask/*.jpg (or the folders of `classes`) as symlinks to
    real images."""
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for image in real_images(source, label, per_class, start):
            (root / label / image.name).symlink_to(image)
    return root


def letterbox_placement(image_shape: tuple[int, ...], width: int = 640, height: int = 480):
    """(scale, left, top, scaled width, scaled height) of a photo letterboxed into a width x height frame."""
    scale = min(width / image_shape[1], height / image_shape[0])
    scaled_w, scaled_h = round(image_shape[1] * scale), round(image_shape[0] * scale)
    return scale, (width - scaled_w) // 2, (height - scaled_h) // 2, scaled_w, scaled_h


def letterbox(image_bgr: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """A photo scaled into a webcam-sized frame with dark bars, as a camera stream would carry it."""
    _, left, top, scaled_w, scaled_h = letterbox_placement(image_bgr.shape, width, height)
    frame = np.full((height, width, 3), 30, np.uint8)
    frame[top : top + scaled_h, left : left + scaled_w] = cv2.resize(image_bgr, (scaled_w, scaled_h))
    return frame


def arriving_person_frames(alphas: Iterable[float], width: int = 640, height: int = 480) -> list[np.ndarray]:
    """The app's "Nobody masked" sample (two real people without masks) as webcam frames: the left person
    always in view, the right one faded in by each alpha (0: away). Gradual, so that no frame is a scene
    cut, which would end the left person's track too."""
    sample = next(sample for sample in samples.SAMPLES if sample.name == "Nobody masked")
    left, right = (cv2.imread(str(path)) for path in sample.paths)
    away = np.full_like(right, samples.BACKGROUND)
    pictures = (samples.collage([left, cv2.addWeighted(right, a, away, 1 - a, 0)], 2) for a in alphas)
    return [letterbox(picture, width, height) for picture in pictures]


# Scenes of a camera clip with people (issue 9): a street with 3 faces (2 without a mask, 1 with), then
# one unmasked face, then one masked face; each face >= 50 px, found by both detectors.
PEOPLE_SCENES = ("maksssksksss0", "maksssksksss609", "maksssksksss313")
PEOPLE_IN_SCENES = {"maksssksksss0": ("without_mask", "without_mask", "with_mask")}
PEOPLE_IN_SCENES |= {"maksssksksss609": ("without_mask",), "maksssksksss313": ("with_mask",)}


def drifting_frames(image_bgr: np.ndarray, count: int, step_px: float = 1.5) -> list[np.ndarray]:
    """A photo in a 640x480 frame, panned `step_px` further each frame: people standing in front of a
    camera that drifts slowly."""
    frame = letterbox(image_bgr)
    shifts = [np.float32([[1, 0, step_px * i], [0, 1, step_px * i / 2]]) for i in range(count)]
    return [cv2.warpAffine(frame, m, (640, 480), borderMode=cv2.BORDER_REPLICATE) for m in shifts]


def write_people_clip(
    path: Path, stems: tuple[str, ...] = PEOPLE_SCENES, frames_per_scene: int = 15, fps: float = 15.0
) -> Path:
    """An mp4 (or MJPG .avi) of drifting dev-set photos, one scene per photo, in `stems` order."""
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (640, 480))
    for stem in stems:
        for frame in drifting_frames(dev_photo(stem), frames_per_scene):
            writer.write(frame)
    writer.release()
    return path


# --- floating-point state -----------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def ieee_subnormals():
    """Each test starts with subnormal floats on. onnxruntime flushes denormals to zero on the thread that
    runs a session (session.set_denormal_as_zero, which keeps the classifier fast), and that state stays
    with the thread: hypothesis then refuses to draw floats, so a test's result would depend on the order."""
    torch.set_flush_denormal(False)


# --- processes and threads -------------------------------------------------------------------------
# A machine with no UTF-8 locale (a bare container, LANG=C) and Python's UTF-8 mode off: every non-ASCII
# file name reaches the program as a str with surrogates.
ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


def run_cli(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess:
    """The real command line in a fresh interpreter, so a traceback would show on stderr; `env`: variables
    set on top of this process's; `cwd`: the working directory (maskapp found through PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "maskapp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": with_project_on_path(), **(env or {})},
    )


def with_project_on_path() -> str:
    """PYTHONPATH with the project first: a command run from another folder still imports this maskapp."""
    return os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))


@contextmanager
def write_lock_held_elsewhere(database: Path) -> Iterator[sqlite3.Connection]:
    """Another program's connection holding the write lock of `database` in a rollback journal (non-WAL)
    mode, where that lock keeps readers out too, until the block ends."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
        other.execute("BEGIN EXCLUSIVE")
        yield other
        other.execute("ROLLBACK")
    finally:
        other.close()


def free_port() -> int:
    """A local TCP port nobody listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def http_folder(folder: Path) -> Iterator[str]:
    """A local HTTP server over `folder` (a network camera or stream URL serving a video file), on a
    real socket; yields its base URL, e.g. http://127.0.0.1:PORT/ + a file name."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_in_threads(work: Callable[..., object], arguments: Iterable[tuple]) -> None:
    """`work(*args)` in one thread per argument tuple, all at once; the first exception raised in any
    thread is raised here once all have ended (an assert in a thread otherwise only prints)."""
    errors: list[BaseException] = []

    def guarded(*args):
        try:
            work(*args)
        except BaseException as error:  # surfaced in the calling thread below
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_three_class_weights(tmp_path_factory) -> Path:
    """A small 3-class CNN trained here with this code for one epoch on 30 real face-mask-ilc crops per
    class and split (about a minute): a real model, if a weak one, whose seeded split is quick to redo."""
    out = tmp_path_factory.mktemp("three_class")
    done = run_cli(
        "train", "--model", "cnn", "--epochs", "1", "--max-per-class", "30", "--data", str(ILC),
        "--out", str(out), "--name", "cnn3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "cnn3" / "model.pt"


@pytest.fixture(scope="session")
def three_class_weights(request) -> Path:
    """A 3-class checkpoint (with_mask, mask_worn_incorrectly, without_mask): the MobileNetV2 run once
    it is complete (its metrics.json is written last), else `tiny_three_class_weights`."""
    if (THREE_CLASS_RUN / "metrics.json").is_file():
        return THREE_CLASS_RUN / "model.pt"
    return request.getfixturevalue("tiny_three_class_weights")


@pytest.fixture(scope="session")
def three_class_pipeline(three_class_weights):
    """The serving pipeline (default detector) around the 3-class checkpoint, loaded once."""
    from maskapp.config import InferenceConfig
    from maskapp.vision.pipeline import load_pipeline

    return load_pipeline(InferenceConfig(weights=three_class_weights))


@pytest.fixture(scope="session")
def pipeline():
    """The serving pipeline with the shipped weights and the default detector, loaded once."""
    # Imported here, not at the top: torch and onnxruntime take seconds, and the test files that
    # never touch a model (events, hooks, images...) should not wait for them.
    from maskapp.vision.pipeline import load_pipeline

    return load_pipeline()


APP = PROJECT_ROOT / "streamlit_app.py"
APP_TIMEOUT = 300  # first runs load the models on a busy 2-core machine


@pytest.fixture
def app(monkeypatch) -> AppTest:
    """The app as `streamlit run` starts it, without deployment settings from the environment."""
    import streamlit_webrtc.component
    from streamlit.testing.v1 import AppTest

    from maskapp.app import ui
    from maskapp.training.runs import RUN_DIRS_ENV

    for name in (ui.ICE_SERVERS_ENV, RUN_DIRS_ENV):
        monkeypatch.delenv(name, raising=False)
    # AppTest runs pages against a stand-in Runtime without the session manager that streamlit-webrtc
    # looks up; answer as outside a live server (its own fallback). The browser test runs the real one.
    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)
    return AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def open_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(page).run()
    assert_no_exception(at)
    return at


def signal_once(child: subprocess.Popen, ready: Callable[[], bool], stop_signal: int, waiting_for: str):
    """Send stop_signal to the child once ready() holds (within 5 minutes); its (stdout, stderr)."""
    try:
        deadline = time.monotonic() + 300
        while not ready():
            assert child.poll() is None and time.monotonic() < deadline, f"{waiting_for} in time"
            time.sleep(0.2)
        child.send_signal(stop_signal)
        return child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()


# --- event logs ----------------------------------------------------------------------------------
DAY = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def record_people(recorder: EventRecorder, people: list[tuple[int, str]]) -> None:
    """(person, label) pairs in view for three frames, settled from the second on, then gone; the run ends."""
    for frame in range(3):
        recorder.observe(frame, [PersonObservation(p, label, frame > 0) for p, label in people])
    recorder.observe(3, [], [EndedPerson(p, label) for p, label in people])
    recorder.close(3)


def record_day(path: Path, door: str = "door", hall: str = "hall") -> Path:
    """Two doors over two days: `door` 4 people (2 without a mask, 1 badly worn), `hall` 2 (compliant)."""
    with SqliteEventStore(path) as store:
        plan = {
            door: [
                ("without_mask", 0),
                ("with_mask", 0),
                ("mask_worn_incorrectly", 1),
                ("without_mask", 1),
            ],
            hall: [("with_mask", 0), ("with_mask", 1)],
        }
        for source, people in plan.items():
            for day in (0, 1):
                day_moments = iter(DAY + timedelta(days=day, minutes=7 * i) for i in range(1000))
                recorder = EventRecorder(store, source, clock=lambda it=day_moments: next(it))
                mine = [(i + 1, label) for i, (label, d) in enumerate(people) if d == day]
                record_people(recorder, mine)
    return path


def record_counts_only(path: Path, source: str = "gate") -> Path:
    """An aggregate-only run ('Aggregate counts only', `video --aggregate-minutes`): 2 of 3 people
    non-compliant, stored as counts per 5-minute window, no per-person row."""
    moments = iter(DAY + timedelta(minutes=i) for i in range(1000))
    with SqliteEventStore(path) as store:
        recorder = EventRecorder(store, source, aggregate_minutes=5, clock=lambda: next(moments))
        record_people(recorder, [(1, "with_mask"), (2, "without_mask"), (3, "mask_worn_incorrectly")])
    return path


FOUR_CAMERAS = {  # source: (people per hour, of them non-compliant); None: aggregate-only
    "rtsp://cam-entrance-north.site.local:554/Streaming/Channels/101": (4, 1),  # 75%
    "rtsp://cam-loading-dock-east.site.local:554/Streaming/Channels/102": (4, 3),  # 25%
    "lobby": (8, 4),  # 50%
    "gate": (4, 0),  # 100%, counts per 15-minute window only
}
FOUR_CAMERAS_HOURS = 6  # 08:00 to 14:00 of DAY: 8 violations an hour, 48 in all


def record_four_cameras(path: Path, day: datetime = DAY) -> Path:
    """A day from four cameras, each at its own compliance every hour (their points never meet): two with
    long RTSP names, a short one, and an aggregate-only gate (15-minute windows); from 08:00 of `day`."""
    with SqliteEventStore(path) as store:
        for source, (people, noncompliant) in FOUR_CAMERAS.items():
            now = [day]
            aggregate = 15 if source == "gate" else None
            recorder = EventRecorder(store, source, aggregate_minutes=aggregate, clock=lambda now=now: now[0])
            frame = 0
            for hour in range(FOUR_CAMERAS_HOURS):
                now[0] = day + timedelta(hours=hour, minutes=10)
                ids = range(hour * people + 1, (hour + 1) * people + 1)
                mine = [(p, "without_mask" if i < noncompliant else "with_mask") for i, p in enumerate(ids)]
                for step in range(3):
                    recorder.observe(frame, [PersonObservation(p, label, step > 0) for p, label in mine])
                    frame += 1
                recorder.observe(frame, [], [EndedPerson(p, label) for p, label in mine])
                frame += 1
            recorder.close(frame)
    return path


# --- the gate webhook's local server, and the command line in this process -----------------
class Gate:
    """A local HTTP server that records what it receives and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, hold: threading.Event | None = None) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.statuses = list(statuses or [])
        self.hold = hold  # when set: each request waits on it (a slow gate)
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gate.received.append(json.loads(body))
                gate.headers.append(dict(self.headers))
                if gate.hold is not None:
                    gate.hold.wait(10)
                status = gate.statuses.pop(0) if gate.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/violation"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def no_proxy():
    """A proxy from the environment must not capture requests to 127.0.0.1."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            patch.delenv(name, raising=False)
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        yield


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


# --- training runs for the Metrics page -------------------------------------------------------------
NEAR_ONE = 0.9996  # reads 1.000 to three decimals, as the served run's ROC AUC did


def nearly_perfect_run(folder: Path, name: str = "nearly-perfect") -> Path:
    """A copy of the shipped cnn_3class run whose every score is just below 1 (0.9996) and each of whose
    true classes has one face of 2500 called another: what a chart rounding to three decimals reads as
    perfect."""
    shipped = PROJECT_ROOT / "weights" / "runs" / "cnn_3class"
    run = folder / name
    run.mkdir(parents=True)
    for file in ("config.json", "system.jsonl"):
        shutil.copy(shipped / file, run / file)
    history = [json.loads(line) for line in (shipped / "history.jsonl").read_text().splitlines() if line]
    for record in history:
        record.update(train_accuracy=NEAR_ONE, val_accuracy=NEAR_ONE, train_loss=0.0004, val_loss=0.0004)
    (run / "history.jsonl").write_text("".join(json.dumps(record) + "\n" for record in history))
    metrics = json.loads((shipped / "metrics.json").read_text())
    metrics.update(accuracy=NEAR_ONE, balanced_accuracy=NEAR_ONE, roc_auc=NEAR_ONE)
    metrics["confusion_matrix"] = [[2499, 1, 0], [0, 2499, 1], [1, 0, 2499]]
    for figures in metrics["per_class"].values():
        figures.update(precision=NEAR_ONE, recall=NEAR_ONE, f1=NEAR_ONE, support=2500)
    metrics["compliance"].update(
        {key: NEAR_ONE for key, value in metrics["compliance"].items() if isinstance(value, float)}
    )
    curve = metrics["noncompliant_pr"]
    curve["precision"] = [NEAR_ONE] * len(curve["thresholds"])
    curve["recall"] = [NEAR_ONE] * len(curve["thresholds"])
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run
