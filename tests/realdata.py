"""Small real data sets for tests: links to real photos from ../shared/datasets, never copies in git."""

from __future__ import annotations

from pathlib import Path

from maskapp import SHARED_DATASETS

TWO_CLASS = SHARED_DATASETS / "face-mask-2class"
TWELVE_K = SHARED_DATASETS / "face-mask-12k"
CLASSES = ("with_mask", "without_mask")


def real_images(source: Path, label: str, count: int, start: int = 0) -> list[Path]:
    return sorted((source / label).iterdir())[start : start + count]


def make_class_folders(root: Path, per_class: int, source: Path = TWO_CLASS, start: int = 0) -> Path:
    """root/with_mask/*.jpg and root/without_mask/*.jpg as symlinks to real images."""
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for image in real_images(source, label, per_class, start):
            (root / label / image.name).symlink_to(image)
    return root


def letterbox(image_bgr, width: int = 640, height: int = 480):
    """A photo scaled into a webcam-sized frame with dark bars, as a camera stream would carry it."""
    import cv2
    import numpy as np

    scale = min(width / image_bgr.shape[1], height / image_bgr.shape[0])
    resized = cv2.resize(image_bgr, (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)))
    frame = np.full((height, width, 3), 30, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return frame
