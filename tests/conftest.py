"""What the tests share: real data from ../shared/datasets (links, never copies in git), the shipped
weights, the command line in a fresh interpreter, webcam-sized frames, threads, and one loaded pipeline.

Test files import the constants and helpers from here (`from tests.conftest import ...`) and get the
fixtures by name; no test file imports another.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT, SHARED_DATASETS
from maskapp.metrics.voc import ImageAnnotation, parse_annotation
from maskapp.results import Face

# --- real data and weights -------------------------------------------------------------------------
DEV = SHARED_DATASETS / "face-mask-detection-dev"  # street and crowd photos with VOC-annotated faces
TWO_CLASS = SHARED_DATASETS / "face-mask-2class"
TWELVE_K = SHARED_DATASETS / "face-mask-12k"
CLASSES = ("with_mask", "without_mask")
# A street photo, 512x366, with three annotated faces of 30 px or more (1 masked, 2 not).
PHOTO = "maksssksksss0"
WEIGHTS = DEFAULT_WEIGHTS  # the shipped classifier
CNN_WEIGHTS = PROJECT_ROOT / "weights" / "runs" / "cnn" / "model.pt"  # the shipped baseline run


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
    from maskapp.metrics.detection import iou  # imports torch: see `pipeline`

    return float(iou(face.box, np.array(boxes, dtype=float)).max()) if boxes else 0.0


def real_images(source: Path, label: str, count: int, start: int = 0) -> list[Path]:
    return sorted((source / label).iterdir())[start : start + count]


def make_class_folders(root: Path, per_class: int, source: Path = TWO_CLASS, start: int = 0) -> Path:
    """root/with_mask/*.jpg and root/without_mask/*.jpg as symlinks to real images."""
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for image in real_images(source, label, per_class, start):
            (root / label / image.name).symlink_to(image)
    return root


def letterbox(image_bgr: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """A photo scaled into a webcam-sized frame with dark bars, as a camera stream would carry it."""
    scale = min(width / image_bgr.shape[1], height / image_bgr.shape[0])
    resized = cv2.resize(image_bgr, (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)))
    frame = np.full((height, width, 3), 30, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return frame


# --- processes and threads -------------------------------------------------------------------------
def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command line in a fresh interpreter, so a traceback would show on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "maskapp", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A local TCP port nobody listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
def pipeline():
    """The serving pipeline with the shipped weights and the default detector, loaded once."""
    # Imported here, not at the top: torch and onnxruntime take seconds, and the test files that
    # never touch a model (events, hooks, images...) should not wait for them.
    from maskapp.vision.pipeline import load_pipeline

    return load_pipeline()
