"""Class folders -> labelled samples -> leakage-free seeded splits.

A data folder either has one subfolder per class (split it ourselves, seeded) or
train/, validation/ (or val/) and test/ subfolders that each hold the class subfolders (kept as given).
Near-duplicates (resized or re-encoded copies) are grouped by a perceptual hash, and a group
never straddles two splits.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskapp.config import SPLITS, TrainConfig
from maskapp.errors import DataError, ImageError
from maskapp.labels import CLASS_NAMES, LABEL_ALIASES, canonical_label, ordered_classes
from maskapp.media.images import list_images, read_image
from maskapp.outputs import why_not_there

logger = logging.getLogger(__name__)

SPLIT_FOLDER_NAMES = {"train": "train", "validation": "val", "val": "val", "test": "test"}


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    dataset: str
    given_split: str | None  # the split the data set ships with, if any
    source_photo: str | None = None  # crops of one photo must stay in one split
    face_box: tuple[int, int, int, int] | None = None  # the labelled face inside a crop with context


@dataclass(frozen=True)
class SplitSamples:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    class_names: tuple[str, ...]
    near_duplicate_groups: int  # groups with more than one member

    def of(self, split: str) -> list[Sample]:
        return getattr(self, split)

    def counts(self) -> dict:
        """{dataset: {split: {label: n}}} for config.json."""
        table: dict = {}
        for split in SPLITS:
            for sample in self.of(split):
                per_label = table.setdefault(sample.dataset, {}).setdefault(split, {})
                per_label[sample.label] = per_label.get(sample.label, 0) + 1
        return table


def class_folders(folder: Path) -> dict[str, Path]:
    """The subfolders that can be classes, by name. Hidden and system folders (.git, .ipynb_checkpoints,
    __MACOSX left by unzipping on a Mac) are not data."""
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith((".", "__"))}


@dataclass(frozen=True)
class ManifestEntry:
    source_photo: str | None
    face_box: tuple[int, int, int, int] | None


def read_manifest(folder: Path) -> dict[str, ManifestEntry]:
    """manifest.csv rows by relative file path, when the folder ships one with source photos or boxes."""
    path = folder / "manifest.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's "CSV UTF-8" too
            rows = list(csv.DictReader(handle))
        return {row["file"]: _manifest_entry(row) for row in rows}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError, OverflowError) as error:
        raise DataError(
            f"cannot read {path} ({type(error).__name__}: {error}); allowed: a UTF-8 CSV with a 'file' "
            "column (the image's path in the folder) and optional 'source_photo' and face_x1, face_y1, "
            "face_x2, face_y2 (a box in pixels), or no manifest.csv at all"
        ) from None


def _manifest_entry(row: dict) -> ManifestEntry:
    box_fields = [row.get(f"face_{k}") for k in ("x1", "y1", "x2", "y2")]
    box = tuple(int(float(v)) for v in box_fields) if all(box_fields) else None
    return ManifestEntry(row.get("source_photo") or None, box)


def scan_class_folders(
    folder: Path, dataset: str, given_split: str | None, only: Collection[str] | None = None
) -> list[Sample]:
    """`only`: the classes to read (canonical names); other folders, known or not, are left out."""
    classes = class_folders(folder)
    manifest = read_manifest(folder)
    if not classes:
        raise DataError(
            f"{folder} has no class subfolders; expected e.g. {folder}/with_mask/ and without_mask/"
        )
    samples = []
    for label, class_dir in classes.items():
        if only is not None and LABEL_ALIASES.get(label, label) not in only:
            continue
        paths = list_images(class_dir)
        if not paths:
            raise DataError(f"class folder {class_dir} holds no images (allowed: jpg, png, webp, bmp, ...)")
        canonical = canonical_label(label)
        for path in paths:
            entry = manifest.get(f"{label}/{path.name}", ManifestEntry(None, None))
            samples.append(Sample(path, canonical, dataset, given_split, entry.source_photo, entry.face_box))
    return samples


def require_data_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} {why_not_there(folder, 'folder')}; give a folder of class subfolders "
            f"({', '.join(CLASS_NAMES)} or some of them), e.g. ../shared/datasets/face-mask-ilc"
        )


def scan_dataset(folder: str | Path) -> list[Sample]:
    """All samples of one data folder, with the split it ships with when it has one."""
    folder = Path(folder)
    require_data_folder(folder)
    subfolders = class_folders(folder)
    given = {SPLIT_FOLDER_NAMES[n]: p for n, p in subfolders.items() if n in SPLIT_FOLDER_NAMES}
    if given and set(given.values()) == set(subfolders.values()):
        return [s for split, path in given.items() for s in scan_class_folders(path, folder.name, split)]
    return scan_class_folders(folder, folder.name, None)


HASH_SIDE = 16  # 256-bit dHash: 8x8 is too coarse for aligned faces, which all look alike at that size


def difference_hash(path: Path) -> np.ndarray | None:
    """256-bit dHash as 4 uint64 words: survives resizing and re-encoding, so copies of one photo collide."""
    try:
        gray = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2GRAY)
    except ImageError:
        return None
    small = cv2.resize(gray, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA)
    return np.packbits((small[:, 1:] > small[:, :-1]).flatten()).view(">u8").astype(np.uint64)


def group_near_duplicates(hashes: list[np.ndarray | None], max_distance: int) -> list[int]:
    """Union-find over pairs whose hashes differ in at most max_distance bits -> group id per item."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    valid = [i for i, h in enumerate(hashes) if h is not None]
    if not valid:
        return parent
    values = np.stack([hashes[i] for i in valid])
    for position, i in enumerate(valid):
        distances = np.bitwise_count(values[position + 1 :] ^ values[position]).sum(axis=1)
        for offset in np.nonzero(distances <= max_distance)[0]:
            parent[root(valid[position + 1 + offset])] = root(i)
    return [root(i) for i in range(len(hashes))]


def join_source_photos(samples: list[Sample], groups: list[int]) -> list[int]:
    """Crops cut from one photo share a group, so a photo never straddles two splits."""
    parent = {group: group for group in groups}

    def root(group: int) -> int:
        while parent[group] != group:
            group = parent[group]
        return group

    anchor_of_photo: dict[tuple[str, str], int] = {}
    for sample, group in zip(samples, groups, strict=True):
        if sample.source_photo is not None:
            anchor = anchor_of_photo.setdefault((sample.dataset, sample.source_photo), group)
            parent[root(group)] = root(anchor)
    return [root(group) for group in groups]


def _assign_group_splits(samples, groups, fractions, seed) -> dict[int, str]:
    """A group takes the given split of any member (test wins over val over train), else a seeded draw."""
    members: dict[int, list[Sample]] = {}
    for sample, group in zip(samples, groups, strict=True):
        members.setdefault(group, []).append(sample)
    assignment = {}
    free_groups = []
    for group, group_samples in members.items():
        given = {s.given_split for s in group_samples} - {None}
        if given:
            assignment[group] = next(s for s in ("test", "val", "train") if s in given)
        else:
            free_groups.append(group)
    rng = random.Random(seed)
    rng.shuffle(free_groups)
    n_train = round(len(free_groups) * fractions[0])
    n_val = round(len(free_groups) * fractions[1])
    for index, group in enumerate(free_groups):
        assignment[group] = "train" if index < n_train else "val" if index < n_train + n_val else "test"
    return assignment


def split_samples(
    folders: list[str | Path], *, seed: int, fractions: tuple[float, float, float], max_hash_distance: int
) -> SplitSamples:
    samples = [s for folder in folders for s in scan_dataset(folder)]
    class_names = ordered_classes(s.label for s in samples)
    if len(class_names) < 2:
        raise DataError(
            f"need at least two classes, found {list(class_names)} in {[str(f) for f in folders]}"
        )
    hashes = [difference_hash(s.path) for s in samples]
    unreadable = sum(h is None for h in hashes)
    if unreadable:
        logger.warning("skipped %d unreadable images", unreadable)
    groups = join_source_photos(samples, group_near_duplicates(hashes, max_hash_distance))
    assignment = _assign_group_splits(samples, groups, fractions, seed)
    by_split: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for sample, group, image_hash in zip(samples, groups, hashes, strict=True):
        if image_hash is not None:
            by_split[assignment[group]].append(sample)
    duplicates = sum(1 for n in Counter(groups).values() if n > 1)
    logger.info(
        "split %s into %s (%d near-duplicate groups kept on one side)",
        [str(f) for f in folders],
        {k: len(v) for k, v in by_split.items()},
        duplicates,
    )
    return SplitSamples(by_split["train"], by_split["val"], by_split["test"], class_names, duplicates)


def cap_per_class(split: SplitSamples, limit: int, seed: int) -> SplitSamples:
    """At most `limit` samples per class in each split, drawn with `seed` (smoke runs)."""
    rng = np.random.default_rng(seed)

    def cap(samples):
        kept = []
        for label in split.class_names:
            of_label = [s for s in samples if s.label == label]
            picks = rng.permutation(len(of_label))[:limit]
            kept.extend(of_label[i] for i in sorted(picks))
        return kept

    return SplitSamples(
        cap(split.train), cap(split.val), cap(split.test), split.class_names, split.near_duplicate_groups
    )


def split_for(config: TrainConfig) -> SplitSamples:
    """The seeded split a training run with `config` uses, capped as it was: training builds it, and
    `evaluate --split` rebuilds it from the run's config, so both must come from here."""
    split = split_samples(
        config.data_paths(), seed=config.seed, fractions=config.split, max_hash_distance=config.hash_distance
    )
    return cap_per_class(split, config.max_per_class, config.seed) if config.max_per_class else split
