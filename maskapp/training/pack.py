"""Prepared training data as one portable file: `python -m maskapp pack-data OUT`, then `train --pack OUT`.

The split, the near-duplicate grouping and the detector crops are made once, where the data folders
and the detector are; the pack then trains on a machine that has neither (a GPU box). Squares are
stored WebP-encoded, so ~17k faces fit in ~45 MB.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from maskapp.config import SPLIT_FIELDS, SPLITS, TrainConfig
from maskapp.errors import DataError
from maskapp.outputs import unwritable
from maskapp.training.data import SplitSamples
from maskapp.training.prepare import DAMAGED_NPZ_ERRORS, PreparedSet
from maskapp.vision.presets import InputSpec, resize_square

logger = logging.getLogger(__name__)

# 2: the split settings travel with the pack
PACK_FORMAT = "maskapp-pack/2"


@dataclass(frozen=True)
class TrainingData:
    """What training starts from, whether prepared here or read from a pack."""

    class_names: tuple[str, ...]
    prepared: dict[str, PreparedSet]  # by split name; a pack may leave out test
    counts: dict  # {dataset: {split: {label: n}}}
    near_duplicate_groups: int
    face_cropper: str
    split_settings: dict  # the SPLIT_FIELDS of the TrainConfig that made the split


def training_data(
    split: SplitSamples, prepared: dict[str, PreparedSet], face_cropper: str, config: TrainConfig
) -> TrainingData:
    settings = {name: getattr(config, name) for name in SPLIT_FIELDS}
    return TrainingData(
        split.class_names, prepared, split.counts(), split.near_duplicate_groups, face_cropper, settings
    )


def _encode(images: np.ndarray, quality: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """RGB squares -> (all WebP bytes end to end, the end offset of each image)."""
    blobs = []
    for image in tqdm(images, desc=desc, unit="img", leave=False):
        ok, blob = cv2.imencode(".webp", image[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise DataError(f"{desc}: WebP encoding failed")
        blobs.append(blob.ravel())
    ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
    return (np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)), ends


def _decode(blob: np.ndarray, ends: np.ndarray, spec: InputSpec, desc: str) -> np.ndarray:
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    squares = []
    for start, end in tqdm(zip(starts, ends, strict=True), total=len(ends), desc=desc, leave=False):
        bgr = cv2.imdecode(blob[start:end], cv2.IMREAD_COLOR)
        # A pack made for another input size is resized as serving would (resize_square).
        squares.append(resize_square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), spec))
    size = spec.resize_size
    return np.stack(squares) if squares else np.zeros((0, size, size, 3), np.uint8)


def check_pack_settings(splits: tuple[str, ...], quality: int) -> None:
    """DataError for a split or WebP quality a pack cannot have: checked before the data is prepared."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise DataError(f"unknown split {sorted(unknown)}; allowed: {', '.join(SPLITS)}")
    if not 1 <= quality <= 100:
        raise DataError(f"WebP quality {quality} is out of range; allowed: 1 to 100")


def write_pack(path: Path, data: TrainingData, splits: tuple[str, ...], quality: int) -> int:
    """The named splits of `data` into one .npz at `path`; returns its size in bytes."""
    check_pack_settings(splits, quality)
    arrays: dict[str, np.ndarray] = {}
    for split in splits:
        prepared = data.prepared[split]
        arrays[f"{split}_webp"], arrays[f"{split}_ends"] = _encode(prepared.images, quality, f"pack {split}")
        arrays[f"{split}_labels"] = prepared.labels
        arrays[f"{split}_datasets"] = prepared.datasets.astype(str)
        arrays[f"{split}_counts"] = np.array([prepared.cropped_from_photo, prepared.unreadable])
    meta = {
        "format": PACK_FORMAT,
        "class_names": list(data.class_names),
        "counts": data.counts,
        "near_duplicate_groups": data.near_duplicate_groups,
        "face_cropper": data.face_cropper,
        "split_settings": data.split_settings,
        "splits": list(splits),
        "webp_quality": quality,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    except OSError as error:
        raise unwritable(path, error) from None
    return path.stat().st_size


def _unpack(stored, path: Path, spec: InputSpec) -> TrainingData:
    meta = json.loads(stored["meta"].tobytes())
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path} is a {meta.get('format')!r} file; expected {PACK_FORMAT}: make it again")
    prepared = {
        split: PreparedSet(
            _decode(stored[f"{split}_webp"], stored[f"{split}_ends"], spec, f"unpack {split}"),
            stored[f"{split}_labels"],
            stored[f"{split}_datasets"],
            *stored[f"{split}_counts"].tolist(),
        )
        for split in meta["splits"]
    }
    return TrainingData(
        tuple(meta["class_names"]),
        prepared,
        meta["counts"],
        int(meta["near_duplicate_groups"]),
        meta["face_cropper"],
        {name: tuple(v) if isinstance(v, list) else v for name, v in meta["split_settings"].items()},
    )


def read_pack(path: str | Path, spec: InputSpec) -> TrainingData:
    """A pack written by write_pack, its squares at spec.resize_size; DataError when it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            data = _unpack(stored, path, spec)
    except (*DAMAGED_NPZ_ERRORS, TypeError) as error:
        raise DataError(
            f"cannot read {path} as a training pack ({error}); "
            "allowed: a file written by `python -m maskapp pack-data`"
        ) from None
    logger.info("read %s: %s", path, {split: len(p.labels) for split, p in data.prepared.items()})
    return data
