"""Sample pictures for the Images page, composed at run time (no dataset image is copied into the repo).

Each sample is a collage the app builds from photos of the CC0 "Face Mask Detection" development
set in ../shared/datasets (single-person photos with large faces), or a picture generated here.
Where the datasets folder is absent, only the generated samples are offered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from maskapp import DEV_DATASET
from maskapp.errors import ImageError
from maskapp.media.opencv_paths import read_bgr

logger = logging.getLogger(__name__)

PHOTO_DIR = DEV_DATASET / "images"
TILE_HEIGHT = 360
GAP = 24
BACKGROUND = (235, 235, 235)


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    photos: tuple[str, ...] = ()  # file names under PHOTO_DIR; empty for a generated picture
    columns: int = 2

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(PHOTO_DIR / photo for photo in self.photos)

    @property
    def available(self) -> bool:
        return all(path.is_file() for path in self.paths)


SAMPLES = (
    Sample(
        "Mixed group",
        "four people: two wear a mask, two do not",
        ("maksssksksss313.png", "maksssksksss609.png", "maksssksksss635.png", "maksssksksss716.png"),
    ),
    Sample(
        "Everyone masked",
        "three people, all with masks",
        ("maksssksksss198.png", "maksssksksss643.png", "maksssksksss109.png"),
        columns=3,
    ),
    Sample("Nobody masked", "two people without masks", ("maksssksksss455.png", "maksssksksss236.png")),
    Sample("No faces", "a generated picture with no face in it"),
)


def available_samples() -> tuple[Sample, ...]:
    return tuple(sample for sample in SAMPLES if sample.available)


def _read(path: Path) -> np.ndarray:
    image = read_bgr(path)
    if image is None:
        raise ImageError(f"sample photo {path} cannot be read")
    return image


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    scale = height / image.shape[0]
    width = max(1, round(image.shape[1] * scale))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def collage(
    images: list[np.ndarray], columns: int, tile_height: int = TILE_HEIGHT, gap: int = GAP
) -> np.ndarray:
    """BGR images in a grid of `columns`, each scaled to `tile_height`, on a light background."""
    if not images:
        raise ValueError("a collage needs at least one image")
    tiles = [_fit_height(image, tile_height) for image in images]
    tile_width = max(tile.shape[1] for tile in tiles)
    rows = -(-len(tiles) // columns)
    canvas = np.full(
        (rows * tile_height + (rows + 1) * gap, columns * tile_width + (columns + 1) * gap, 3),
        BACKGROUND,
        dtype=np.uint8,
    )
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top = gap + row * (tile_height + gap)
        left = gap + column * (tile_width + gap) + (tile_width - tile.shape[1]) // 2
        canvas[top : top + tile_height, left : left + tile.shape[1]] = tile
    return canvas


def no_face_picture(width: int = 640, height: int = 400) -> np.ndarray:
    """A generated scene (sky, ground, a few shapes) in which no detector should find a face."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    sky = np.stack([235 - 60 * y, 200 - 40 * y, 140 + 0 * y], axis=-1)  # BGR gradient
    image = np.broadcast_to(sky, (height, width, 3)).astype(np.uint8).copy()
    horizon = int(height * 0.65)
    image[horizon:] = (70, 140, 90)
    cv2.rectangle(image, (80, horizon - 120), (220, horizon), (60, 60, 160), cv2.FILLED)
    cv2.rectangle(image, (120, horizon - 60), (160, horizon), (40, 70, 110), cv2.FILLED)
    cv2.circle(image, (width - 110, 80), 40, (80, 220, 250), cv2.FILLED)
    cv2.ellipse(image, (420, horizon - 10), (90, 40), 0, 180, 360, (50, 110, 60), cv2.FILLED)
    return image


def compose(sample: Sample) -> np.ndarray:
    """The sample picture as a BGR image."""
    if not sample.photos:
        return no_face_picture()
    if not sample.available:
        raise ImageError(f"sample {sample.name!r} needs photos from {PHOTO_DIR}, which is missing")
    return collage([_read(path) for path in sample.paths], sample.columns)


@cache
def sample_png(name: str) -> bytes:
    """PNG bytes of a sample, so it goes through the same decoding path as an upload."""
    by_name = {sample.name: sample for sample in SAMPLES}
    if name not in by_name:
        raise ImageError(f"unknown sample {name!r}; choose one of {', '.join(by_name)}")
    ok, encoded = cv2.imencode(".png", compose(by_name[name]))
    if not ok:
        raise ImageError(f"sample {name!r} could not be encoded")
    logger.debug("composed sample %s (%d bytes)", name, encoded.size)
    return encoded.tobytes()
