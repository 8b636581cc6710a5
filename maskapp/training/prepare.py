"""Samples -> the square RGB images training sees, cached on disk outside git.

Whole photos are cut to the face the project's detector finds, with the margin serving uses,
so the classifier trains on what it will see at inference; tight crops are kept as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from maskapp import PROJECT_ROOT
from maskapp.config import DEFAULT_DETECTOR, FACE_MARGIN
from maskapp.errors import ImageError
from maskapp.media.images import read_image
from maskapp.training.data import Sample
from maskapp.vision.boxes import box_iou
from maskapp.vision.crops import crop_face
from maskapp.vision.detect import create_detector
from maskapp.vision.presets import InputSpec, resize_square

logger = logging.getLogger(__name__)

# What np.load raises for an .npz that is not one, or was cut short (a copy or a write interrupted).
DAMAGED_NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

CACHE_DIR = PROJECT_ROOT / ".cache" / "prepared"
# A face covering less than this share of the image means a whole photo, not a tight crop.
WHOLE_PHOTO_FACE_SHARE = 0.4
# Smaller images are face crops already (face-mask-12k's are <= 224 px): no detector run needed.
WHOLE_PHOTO_MIN_SIDE = 256

# (image, the labelled face box if the data gives one) -> the face crop, or None to keep the image whole
FaceCropper = Callable[[np.ndarray, tuple[int, int, int, int] | None], np.ndarray | None]
# A detection must overlap the labelled box this much to stand in for it.
MIN_LABELLED_BOX_IOU = 0.3


@dataclass(frozen=True)
class PreparedSet:
    images: np.ndarray  # N x S x S x 3 RGB uint8, S = spec.resize_size
    labels: np.ndarray  # N int64 indices into class_names
    datasets: np.ndarray  # N str: which data folder each came from
    cropped_from_photo: int
    unreadable: int


def detector_cropper(detector_name: str | None = None) -> tuple[str, FaceCropper]:
    """The serving detector and margin. A labelled face is cut where the detector sees it (the box
    shape serving will give), or at its label when the detector misses it; whole photos without a
    label are cut to their largest face."""
    detector = create_detector(detector_name or DEFAULT_DETECTOR)

    def crop_labelled(image_bgr: np.ndarray, face_box) -> np.ndarray:
        overlaps = [
            (box_iou(f.classifier_box, face_box), f.classifier_box) for f in detector.detect(image_bgr)
        ]
        best_iou, best_box = max(overlaps, default=(0.0, face_box))
        return crop_face(image_bgr, best_box if best_iou >= MIN_LABELLED_BOX_IOU else face_box, FACE_MARGIN)

    def crop(image_bgr: np.ndarray, face_box) -> np.ndarray | None:
        if face_box is not None:
            return crop_labelled(image_bgr, face_box)
        height, width = image_bgr.shape[:2]
        if max(height, width) < WHOLE_PHOTO_MIN_SIDE:
            return None
        faces = detector.detect(image_bgr)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.width * f.height)
        if face.width * face.height >= WHOLE_PHOTO_FACE_SHARE * width * height:
            return None
        return crop_face(image_bgr, face.classifier_box, FACE_MARGIN)

    return f"{detector.name}@{detector.threshold}/margin{FACE_MARGIN}/labelled-boxes", crop


def _prepare_one(sample: Sample, spec: InputSpec, cropper: FaceCropper | None) -> tuple[np.ndarray, bool]:
    image = read_image(sample.path)
    cropped = cropper(image, sample.face_box) if cropper is not None else None
    chosen = cropped if cropped is not None else image
    return resize_square(cv2.cvtColor(chosen, cv2.COLOR_BGR2RGB), spec), cropped is not None


def _cache_path(samples: list[Sample], spec: InputSpec, cropper_key: str) -> Path:
    digest = hashlib.sha1()
    for sample in samples:
        digest.update(f"{sample.path}|{sample.label}|{sample.given_split}\n".encode())
    digest.update(f"{spec.resize_size}|{cropper_key}".encode())
    return CACHE_DIR / f"{digest.hexdigest()[:16]}.npz"


def prepare(
    samples: list[Sample],
    class_names: tuple[str, ...],
    spec: InputSpec,
    cropper: tuple[str, FaceCropper] | None = None,
    desc: str = "prepare",
) -> PreparedSet:
    cropper_key, crop = cropper if cropper else ("none", None)
    cache = _cache_path(samples, spec, cropper_key)
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    images, labels, datasets, cropped_count, unreadable = [], [], [], 0, 0
    for sample in tqdm(samples, desc=desc, unit="img", leave=False):
        try:
            square, was_cropped = _prepare_one(sample, spec, crop)
        except ImageError as error:
            logger.warning("skipped %s", error)
            unreadable += 1
            continue
        images.append(square)
        labels.append(class_names.index(sample.label))
        datasets.append(sample.dataset)
        cropped_count += was_cropped
    if unreadable:
        logger.warning("%s: skipped %d unreadable images", desc, unreadable)
    size = spec.resize_size
    prepared = PreparedSet(
        np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
        np.array(labels, dtype=np.int64),
        np.array(datasets),
        cropped_count,
        unreadable,
    )
    _write_cache(cache, prepared)
    return prepared


def _write_cache(cache: Path, prepared: PreparedSet) -> None:
    """Keep `prepared` for the next run. A cache that cannot be written (a read-only checkout, a full
    disk) is a warning: it only saves time, and the images prepared for this run are already in memory."""
    partial = cache.with_name(cache.name + ".partial")  # Ctrl-C or a full disk leaves no half cache
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            np.savez(
                handle,
                images=prepared.images,
                labels=prepared.labels,
                datasets=prepared.datasets,
                counts=np.array([prepared.cropped_from_photo, prepared.unreadable]),
            )
        os.replace(partial, cache)
    except OSError as error:
        logger.warning(
            "cannot keep the prepared images in %s (%s): they will be prepared again next run",
            cache.parent,
            error.strerror or error,
        )
        with contextlib.suppress(OSError):  # an unwritable folder has no partial file to remove
            partial.unlink(missing_ok=True)


def _read_cache(cache: Path) -> PreparedSet | None:
    """The cached squares, or None when there are none or the file is damaged (then it is made again)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            return PreparedSet(
                stored["images"], stored["labels"], stored["datasets"], *stored["counts"].tolist()
            )
    except DAMAGED_NPZ_ERRORS as error:
        logger.warning("prepared-image cache %s is damaged (%s): preparing the images again", cache, error)
        return None
