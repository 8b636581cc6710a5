"""One frame in, every face with its mask label out: detect -> crop -> one batched classify."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from maskapp import DEFAULT_WEIGHTS
from maskapp.classify import MaskClassifier, Prediction
from maskapp.crops import FACE_MARGIN, crop_face
from maskapp.detect import DEFAULT_DETECTOR, Face, FaceDetector, Res10Detector, check_frame, create_detector


@dataclass(frozen=True)
class StageTimings:
    detect_ms: float
    classify_ms: float  # cropping, preprocessing and the batched forward pass
    total_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"detect_ms": self.detect_ms, "classify_ms": self.classify_ms, "total_ms": self.total_ms}


@dataclass(frozen=True)
class FaceResult:
    face: Face
    prediction: Prediction

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.face.box

    @property
    def label(self) -> str:
        return self.prediction.label

    @property
    def probability(self) -> float:
        return self.prediction.probability

    @property
    def masked(self) -> bool:
        return self.prediction.masked

    @property
    def score(self) -> float:
        """Ranks detections for average precision: a sure face with a sure label ranks first."""
        return self.face.score * self.prediction.probability

    def to_dict(self) -> dict:
        """One entry of the `detect --json` output."""
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "score": float(self.score),
            "face_score": float(self.face.score),
            "probs": {name: float(p) for name, p in self.prediction.probs.items()},
        }


@dataclass(frozen=True)
class FrameResult:
    faces: tuple[FaceResult, ...]
    timings: StageTimings
    frame_width: int
    frame_height: int

    @property
    def masked_count(self) -> int:
        return sum(1 for face in self.faces if face.masked)

    @property
    def unmasked_count(self) -> int:
        return len(self.faces) - self.masked_count

    @property
    def compliance(self) -> float | None:
        """Fraction of faces wearing a mask; None when there is no face to judge."""
        return self.masked_count / len(self.faces) if self.faces else None

    def to_json(self) -> list[dict]:
        return [face.to_dict() for face in self.faces]


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class MaskPipeline:
    """Detector + classifier. Holds no per-call state, so many threads may call `process` at once
    (the detectors guard their own non-thread-safe parts)."""

    def __init__(
        self, detector: FaceDetector, classifier: MaskClassifier, margin: float = FACE_MARGIN, *, batched=True
    ):
        self.detector = detector
        self.classifier = classifier
        self.margin = margin
        self.batched = batched  # False: one forward pass per face, as the source write-ups do

    def process(self, frame_bgr: np.ndarray) -> FrameResult:
        width, height = check_frame(frame_bgr)
        start = time.perf_counter()
        faces = self.detector.detect(frame_bgr)
        detect_ms = _ms_since(start)
        classify_start = time.perf_counter()
        crops = [crop_face(frame_bgr, face.box, self.margin) for face in faces]
        # One forward pass for all faces of the frame: far cheaper than one call per face.
        if self.batched:
            predictions = self.classifier.classify(crops)
        else:
            predictions = [pred for crop in crops for pred in self.classifier.classify([crop])]
        timings = StageTimings(detect_ms, _ms_since(classify_start), _ms_since(start))
        results = tuple(FaceResult(face, pred) for face, pred in zip(faces, predictions, strict=True))
        return FrameResult(results, timings, width, height)

    def classify_whole(self, image_bgr: np.ndarray) -> FrameResult:
        """The image is one face (an already cropped face): no detection, the box is the whole image."""
        width, height = check_frame(image_bgr)
        start = time.perf_counter()
        (prediction,) = self.classifier.classify([image_bgr])
        elapsed = _ms_since(start)
        face = FaceResult(Face((0, 0, width, height), 1.0), prediction)
        return FrameResult((face,), StageTimings(0.0, elapsed, elapsed), width, height)


def load_pipeline(
    weights: str | Path = DEFAULT_WEIGHTS,
    detector: str = DEFAULT_DETECTOR,
    face_threshold: float | None = None,
) -> MaskPipeline:
    from maskapp.onnx_export import accelerate

    classifier = accelerate(MaskClassifier.from_checkpoint(weights))
    return MaskPipeline(create_detector(detector, face_threshold), classifier)


SOURCE_CLASSIFIER_SIZE = 224


def load_source_pipeline(weights: str | Path = DEFAULT_WEIGHTS) -> MaskPipeline:
    """The source write-ups' pipeline, for comparison: ResNet-10 SSD at 300x300 with their 0.5 face
    threshold, the bare face box, MobileNetV2 at 224 one face at a time. Their Keras classifier needs
    TensorFlow, which this project does not ship, so our MobileNetV2 weights stand in for it."""
    ours = MaskClassifier.from_checkpoint(weights)
    spec = replace(ours.spec, input_size=SOURCE_CLASSIFIER_SIZE)
    classifier = MaskClassifier(ours.model, ours.class_names, spec, ours.architecture)
    return MaskPipeline(Res10Detector(threshold=0.5, input_size=300), classifier, margin=0.0, batched=False)
