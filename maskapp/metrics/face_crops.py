"""The classifier on the annotated faces of whole photos (PASCAL VOC: face-mask-detection-dev), each cut
as serving cuts a detected face (maskapp.vision.crops.crop_face, the serving margin): face crops from
cameras that no training set came from. `python -m maskapp evaluate DIR` when DIR holds annotations/
and images/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskapp import DEFAULT_WEIGHTS
from maskapp.config import FACE_MARGIN
from maskapp.errors import DataError, ImageError
from maskapp.media.images import read_image
from maskapp.metrics.voc import load_annotations
from maskapp.training.evaluate import (
    Evaluation,
    Scored,
    predict_rgb,
    select_classes,
    summarise,
    true_index,
)
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.crops import crop_face

# Short side in pixels below which an annotated face is left out: the detection figures' split, and
# about the smallest face the serving detector finds reliably (docs/detection.md).
MIN_FACE = 32


def is_voc_folder(folder: str | Path) -> bool:
    """A folder of photos with PASCAL VOC boxes (annotations/ and images/), not class folders."""
    folder = Path(folder)
    return (folder / "annotations").is_dir() and (folder / "images").is_dir()


def score_voc_faces(
    folder: Path,
    classifier: MaskClassifier,
    min_face: int = MIN_FACE,
    only: Sequence[str] | None = None,
    worn_incorrectly_as_noncompliant: bool = False,
) -> Scored:
    """Every annotated face with a short side of at least `min_face` px, cut with the serving margin.
    `worn_incorrectly_as_noncompliant`: see maskapp.training.evaluate.select_classes."""
    if min_face < 1:
        raise DataError(f"--min-face {min_face} is out of range; allowed: 1 pixel or more")
    annotations = load_annotations(folder / "annotations")
    found = {box.label for a in annotations for box in a.objects if box.short_side >= min_face}
    where = f"{folder} (faces of {min_face} px or more)"
    chosen = select_classes(found, classifier.class_names, only, where, worn_incorrectly_as_noncompliant)
    images, labels, unreadable = [], [], 0
    for annotation in annotations:
        boxes = [b for b in annotation.objects if b.short_side >= min_face and b.label in chosen]
        if not boxes:
            continue
        try:
            photo = read_image(folder / "images" / annotation.filename)
        except ImageError:
            unreadable += 1
            continue
        for box in boxes:
            crop = crop_face(photo, tuple(round(v) for v in box.box), FACE_MARGIN)
            images.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            labels.append(true_index(box.label, classifier.class_names))
    if not images:
        raise DataError(f"{where} has no readable faces of the classes {sorted(chosen)}")
    return Scored(np.array(labels), predict_rgb(classifier, images), images, unreadable=unreadable)


def evaluate_voc(
    folder: str | Path,
    weights: str | Path = DEFAULT_WEIGHTS,
    *,
    min_face: int = MIN_FACE,
    classes: Sequence[str] | None = None,
    noncompliant_threshold: float | None = None,
    occlude: bool = False,
    worn_incorrectly_as_noncompliant: bool = False,
) -> Evaluation:
    """The checkpoint on the annotated faces of a VOC folder, as `evaluate` reports class folders."""
    classifier = MaskClassifier.from_checkpoint(weights, noncompliant_threshold)
    worn = worn_incorrectly_as_noncompliant
    scored = score_voc_faces(Path(folder), classifier, min_face, classes, worn)
    source = {
        "weights": str(weights),
        "data": str(folder),
        "faces": "annotated boxes cut with the serving margin",
        "min_face": min_face,
        "margin": FACE_MARGIN,
    }
    if classes:
        source["classes"] = list(classes)
    if worn:
        source["worn_incorrectly_as_noncompliant"] = True
    return summarise(classifier, scored, source, occlude)
