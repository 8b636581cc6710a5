"""End-to-end detection metrics on PASCAL VOC annotations (what `python -m maskapp evaluate-detection`
computes): the AP maths, a pipeline run over annotated photos, and the detector/threshold sweep.

VOC-style average precision at IoU 0.5 with all-point interpolation, in the 2-class compliance view
(a mask worn incorrectly counts as no mask, in the annotations and in the predictions) and, on request,
in the three-class view (with_mask, mask_worn_incorrectly, without_mask), over all boxes and over boxes
with short side >= 32 px, plus face-only AP and recall (is there a face, whatever its label).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from maskapp.config import DETECTOR_NAMES
from maskapp.errors import DataError, MaskappError
from maskapp.labels import CLASS_NAMES
from maskapp.media.images import read_image
from maskapp.metrics.bench_results import bench_frame, time_calls
from maskapp.metrics.voc import Box, ImageAnnotation, as_compliance, load_annotations
from maskapp.outputs import why_not_there
from maskapp.results import MASK_LABEL, NO_MASK_LABEL, FrameResult
from maskapp.vision.boxes import iou
from maskapp.vision.detect import create_detector

logger = logging.getLogger(__name__)

IOU_THRESHOLD = 0.5
SMALL_FACE_PX = 32  # the `>= 32 px` view: faces below this short side are ignored, like VOC 'difficult'
FACE_LABEL = "face"
CLASSES = (MASK_LABEL, NO_MASK_LABEL)  # the 2-class compliance view
SIDES = (0, SMALL_FACE_PX)  # the views: all boxes, boxes >= 32 px


@dataclass(frozen=True)
class APResult:
    ap: float
    recall: float  # at the lowest score kept by the detector
    ground_truths: int  # not ignored
    detections: int  # not ignored

    @property
    def precision(self) -> float:
        """At the lowest score kept by the detector."""
        return self.recall * self.ground_truths / self.detections if self.detections else 0.0


@dataclass(frozen=True)
class ViewReport:
    """Figures over the boxes with short side >= min_short_side (0: all boxes)."""

    min_short_side: int
    classes: dict[str, APResult]  # per class of the view (2-class compliance or three-class)
    face: APResult  # face-only: every face, label ignored
    face_by_class: dict[str, APResult]  # face-only, counting the faces of one class (others ignored)

    @property
    def mean_ap(self) -> float:
        """Over the classes with ground truths in the view (a class nobody shows has no AP)."""
        aps = [result.ap for result in self.classes.values() if result.ground_truths]
        return float(np.mean(aps)) if aps else 0.0


@dataclass(frozen=True)
class DetectionReport:
    images: int
    views: tuple[ViewReport, ...]  # the 2-class compliance view
    settings: dict = field(default_factory=dict)
    three_class_views: tuple[ViewReport, ...] = ()  # when asked for

    def to_dict(self) -> dict:
        data = {"images": self.images, "settings": self.settings, "views": views_dict(self.views)}
        if self.three_class_views:
            data["three_class_views"] = views_dict(self.three_class_views)
        return data


def views_dict(views: tuple[ViewReport, ...]) -> list[dict]:
    return [{**asdict(view), "mAP": view.mean_ap, "name": view_name(view.min_short_side)} for view in views]


def view_name(min_short_side: int) -> str:
    return "all boxes" if min_short_side == 0 else f"boxes >= {min_short_side} px"


# --- average precision -----------------------------------------------------------------------------
def all_point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ AP: area under the precision envelope, summed where recall changes."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changes = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


@dataclass(frozen=True)
class _Truths:
    boxes: np.ndarray  # Nx4
    ignored: np.ndarray  # N bools


def match_detections(
    detections: list[tuple[str, Box]], truths: dict[str, _Truths], min_short_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy VOC matching by descending score -> (is_tp, counts) per detection (ignored ones count 0)."""
    detections = sorted(detections, key=lambda item: -item[1].score)
    used = {image: np.zeros(len(t.boxes), dtype=bool) for image, t in truths.items()}
    is_tp, counts = np.zeros(len(detections)), np.ones(len(detections))
    for i, (image, det) in enumerate(detections):
        overlaps = iou(det.box, truths[image].boxes)
        best = int(np.argmax(overlaps)) if len(overlaps) else -1
        if best >= 0 and overlaps[best] >= IOU_THRESHOLD:
            if truths[image].ignored[best]:
                counts[i] = 0  # a hit on an ignored face is neither right nor wrong
            elif not used[image][best]:
                is_tp[i], used[image][best] = 1, True
        elif det.short_side < min_short_side:
            counts[i] = 0  # an unmatched detection outside the size range, as COCO's area ranges treat it
    return is_tp, counts


def average_precision(
    predictions: dict[str, list[Box]],
    annotations: list[ImageAnnotation],
    min_short_side: int,
    counts_as: Callable[[Box], bool],
    keeps: Callable[[Box], bool],
) -> APResult:
    """AP of the detections `keeps` selects against the ground truths `counts_as` selects; the other
    ground truths, and those below min_short_side, are ignored."""
    truths, detections = {}, []
    for annotation in annotations:
        objects = annotation.objects
        boxes = np.array([obj.box for obj in objects], dtype=float).reshape(-1, 4)
        ignored = np.array(
            [obj.short_side < min_short_side or not counts_as(obj) for obj in objects], dtype=bool
        )
        truths[annotation.filename] = _Truths(boxes, ignored)
        detections += [
            (annotation.filename, det) for det in predictions.get(annotation.filename, []) if keeps(det)
        ]
    positives = int(sum(int((~t.ignored).sum()) for t in truths.values()))
    is_tp, counts = match_detections(detections, truths, min_short_side)
    tp, seen = np.cumsum(is_tp), np.cumsum(counts)
    recall = tp / max(positives, 1)
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    kept = counts > 0
    ap = all_point_ap(recall[kept], precision[kept]) if positives else 0.0
    return APResult(ap, float(recall[-1]) if len(recall) else 0.0, positives, int(counts.sum()))


def view_report(
    predictions: dict[str, list[Box]],
    annotations: list[ImageAnnotation],
    min_side: int,
    class_names: tuple[str, ...] = CLASSES,
) -> ViewReport:
    """AP per class of `class_names` (boxes and annotations already carry the view's labels)."""
    classes = {
        name: average_precision(
            predictions,
            annotations,
            min_side,
            lambda obj, n=name: obj.label == n,
            lambda det, n=name: det.label == n,
        )
        for name in class_names
    }
    faces = {name: [as_face(det) for det in dets] for name, dets in predictions.items()}
    face = average_precision(faces, annotations, min_side, lambda _: True, lambda _: True)
    face_by_class = {
        name: average_precision(
            faces, annotations, min_side, lambda obj, n=name: obj.label == n, lambda _: True
        )
        for name in class_names
    }
    return ViewReport(min_side, classes, face, face_by_class)


def as_face(det: Box) -> Box:
    return Box(det.box, FACE_LABEL, det.score if det.face_score is None else det.face_score)


def compliance_view(
    predictions: dict[str, list[Box]], annotations: list[ImageAnnotation]
) -> tuple[dict[str, list[Box]], list[ImageAnnotation]]:
    """Predictions and annotations with 2-class labels: mask_worn_incorrectly is without_mask in both."""
    boxes = {name: [as_compliance(det) for det in dets] for name, dets in predictions.items()}
    return boxes, [annotation.compliance_view() for annotation in annotations]


def evaluate_predictions(
    predictions: dict[str, list[Box]],
    annotations: list[ImageAnnotation],
    settings: dict | None = None,
    *,
    three_class: bool = False,
) -> DetectionReport:
    """Both box ranges (all boxes, boxes >= SMALL_FACE_PX) of predictions keyed by image file name, in
    the 2-class compliance view and, with `three_class`, in the three-class view."""
    two_class = compliance_view(predictions, annotations)
    views = tuple(view_report(*two_class, min_side) for min_side in SIDES)
    three = ()
    if three_class:
        three = tuple(view_report(predictions, annotations, side, CLASS_NAMES) for side in SIDES)
    return DetectionReport(len(annotations), views, dict(settings or {}), three)


# --- running a pipeline over annotated images ------------------------------------------------------
def boxes_from(result: FrameResult) -> list[Box]:
    """A pipeline FrameResult -> the boxes AP is computed on."""
    return [Box(tuple(map(float, f.box)), f.label, f.score, f.face.score) for f in result.faces]


def predict_annotated(
    pipeline, annotations: list[ImageAnnotation], images_dir: Path, progress: bool = True
) -> tuple[dict[str, list[Box]], list[ImageAnnotation]]:
    """Run the pipeline on every annotated image; unreadable or missing images are logged and left out."""
    predictions, used = {}, []
    for annotation in tqdm(annotations, desc="evaluate-detection", unit="image", disable=not progress):
        try:
            frame = read_image(images_dir / annotation.filename)
        except MaskappError as error:
            logger.warning("skipped %s: %s", annotation.filename, error)
            continue
        predictions[annotation.filename] = boxes_from(pipeline.process(frame))
        used.append(annotation)
    if not used:
        raise DataError(f"none of the {len(annotations)} annotated images could be read from {images_dir}")
    return predictions, used


def evaluate_pipeline(
    pipeline, images_dir: str | Path, annotations_dir: str | Path, progress=True, *, three_class=False
):
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DataError(
            f"images folder {images_dir} {why_not_there(images_dir, 'folder')}; give the folder of the "
            "photos the annotations name, e.g. ../shared/datasets/face-mask-detection-dev/images"
        )
    annotations = load_annotations(annotations_dir)
    if not any(annotation.objects for annotation in annotations):  # every AP would be 0 of 0
        raise DataError(
            f"the annotations in {annotations_dir} hold no face at all; allowed: annotations with at least "
            "one <object>"
        )
    predictions, used = predict_annotated(pipeline, annotations, images_dir, progress)
    settings = {
        "detector": pipeline.detector.name,
        "face_threshold": pipeline.detector.threshold,
        "classes": list(pipeline.classifier.class_names),
        "noncompliant_threshold": pipeline.classifier.noncompliant_threshold,
        "classifier_input_size": pipeline.classifier.spec.input_size,
        "skipped_images": len(annotations) - len(used),
    }
    return evaluate_predictions(predictions, used, settings, three_class=three_class)


# --- choosing a face detector and its threshold ------------------------------------------------------
THRESHOLD_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class DetectorRow:
    detector: str
    threshold: float
    ms_per_frame: float  # p50 on a 640x480 frame
    views: tuple[ViewReport, ...]  # face figures only (labels are not involved)


def detect_faces_only(detector, annotations, images_dir: Path, progress: bool) -> dict[str, list[Box]]:
    predictions = {}
    for annotation in tqdm(annotations, desc=detector.name, unit="image", disable=not progress):
        frame = read_image(images_dir / annotation.filename)
        predictions[annotation.filename] = [
            Box(tuple(map(float, f.box)), FACE_LABEL, f.score) for f in detector.detect(frame)
        ]
    return predictions


def detector_ms(detector) -> float:
    frame = bench_frame(5).frame
    return float(np.median(time_calls(lambda: detector.detect(frame), 20)))


def compare_detectors(images_dir: Path, annotations_dir: Path, progress=True) -> list[DetectorRow]:
    """Every detector at every threshold of THRESHOLD_GRID: face AP and recall, and its speed.
    One run per detector at the lowest threshold; higher thresholds are that run filtered."""
    annotations = [annotation.compliance_view() for annotation in load_annotations(annotations_dir)]
    rows = []
    for name in DETECTOR_NAMES:
        detector = create_detector(name, min(THRESHOLD_GRID))
        predictions = detect_faces_only(detector, annotations, Path(images_dir), progress)
        ms = detector_ms(detector)
        for threshold in THRESHOLD_GRID:
            kept = {k: [b for b in v if b.score >= threshold] for k, v in predictions.items()}
            views = tuple(view_report(kept, annotations, side) for side in SIDES)
            rows.append(DetectorRow(name, threshold, ms, views))
    return rows
