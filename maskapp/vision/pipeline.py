"""One frame in, every face with its mask label out: detect -> crop -> one batched classify."""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from maskapp import DEFAULT_WEIGHTS
from maskapp.config import FACE_MARGIN, InferenceConfig
from maskapp.errors import ConfigError
from maskapp.labels import check_noncompliant_threshold
from maskapp.results import Face, FaceResult, FrameResult, StageTimings
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.crops import crop_face
from maskapp.vision.detect import (
    FaceDetector,
    Res10Detector,
    check_frame,
    create_detector,
    default_threshold,
)
from maskapp.vision.onnx_export import OnnxMaskClassifier


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
        crops = [crop_face(frame_bgr, face.classifier_box, self.margin) for face in faces]
        # One forward pass for all faces of the frame: far cheaper than one call per face.
        if self.batched:
            predictions = self.classifier.classify(crops)
        else:
            predictions = [pred for crop in crops for pred in self.classifier.classify([crop])]
        timings = StageTimings(detect_ms, _ms_since(classify_start), _ms_since(start))
        results = tuple(FaceResult(face, pred) for face, pred in zip(faces, predictions, strict=True))
        return FrameResult(results, timings, width, height)

    def classify_whole(self, image_bgr: np.ndarray) -> FrameResult:
        """The image is one face (an already cropped face): no detection, the box is the whole image and
        there is no face score (it read 1.00, a detector's certainty no detector gave)."""
        width, height = check_frame(image_bgr)
        start = time.perf_counter()
        (prediction,) = self.classifier.classify([image_bgr])
        elapsed = _ms_since(start)
        face = FaceResult(Face((0, 0, width, height), None), prediction)
        return FrameResult((face,), StageTimings(0.0, elapsed, elapsed), width, height)


def with_noncompliant_threshold(pipeline: MaskPipeline, threshold: float | None) -> MaskPipeline:
    """The same detector and classifier (models and sessions shared, nothing loaded) calling faces
    non-compliant from `threshold` (None: the likeliest class wins). Raises ConfigError outside (0, 1)."""
    classifier = copy.copy(pipeline.classifier)
    classifier.noncompliant_threshold = check_noncompliant_threshold(threshold, ConfigError)
    return MaskPipeline(pipeline.detector, classifier, pipeline.margin, batched=pipeline.batched)


def with_face_threshold(pipeline: MaskPipeline, threshold: float | None) -> MaskPipeline:
    """The same detector network and classifier (sessions shared, nothing loaded) keeping the faces that
    score above `threshold` (None: the detector's measured default). Raises DetectorError outside 0 to 1."""
    # A shallow copy shares the network and, with it, the lock that guards a cv2 net (res10): the two
    # pipelines still take turns on the one net, as two threads on one pipeline do.
    detector = copy.copy(pipeline.detector)
    detector.threshold = default_threshold(detector.name, threshold)
    return MaskPipeline(detector, pipeline.classifier, pipeline.margin, batched=pipeline.batched)


def load_serving_classifier(
    weights: str | Path = DEFAULT_WEIGHTS, noncompliant_threshold: float | None = None
) -> OnnxMaskClassifier:
    """A checkpoint's classifier as serving runs it: onnxruntime, the checkpoint's threshold unless given."""
    return OnnxMaskClassifier(MaskClassifier.from_checkpoint(weights, noncompliant_threshold))


def load_pipeline(config: InferenceConfig | None = None) -> MaskPipeline:
    """The serving pipeline: the configured detector, the checkpoint's classifier run by onnxruntime."""
    config = config or InferenceConfig()
    classifier = load_serving_classifier(config.weights, config.noncompliant_threshold)
    return MaskPipeline(create_detector(config.detector, config.face_threshold), classifier, config.margin)


SOURCE_CLASSIFIER_SIZE = 224


def load_source_pipeline(weights: str | Path = DEFAULT_WEIGHTS) -> MaskPipeline:
    """The source write-ups' pipeline, for comparison: ResNet-10 SSD at 300x300 with their 0.5 face
    threshold, the bare face box, MobileNetV2 at 224 one face at a time. Their Keras classifier needs
    TensorFlow, which this project does not ship, so our MobileNetV2 weights stand in for it."""
    ours = MaskClassifier.from_checkpoint(weights)
    # MobileNetV2 pools globally, so it runs at the write-ups' 224; the baseline CNN's head needs its own.
    size = SOURCE_CLASSIFIER_SIZE if ours.architecture == "mobilenet_v2" else ours.spec.input_size
    spec = replace(ours.spec, input_size=size)
    classifier = MaskClassifier(
        ours.model, ours.class_names, spec, ours.architecture, ours.noncompliant_threshold
    )
    return MaskPipeline(Res10Detector(threshold=0.5, input_size=300), classifier, margin=0.0, batched=False)
