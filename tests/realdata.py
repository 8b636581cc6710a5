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
