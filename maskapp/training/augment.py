"""Training augmentation on prepared RGB squares; every view then goes through presets.to_model_input."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskapp.training.occlude import occlude


@dataclass(frozen=True)
class AugmentConfig:
    flip_probability: float = 0.5  # faces are left-right symmetric
    max_rotation_degrees: float = 15.0  # heads tilt; detectors return upright-ish boxes
    max_shear: float = 0.1  # off-axis camera angles
    zoom_range: tuple[float, float] = (0.85, 1.15)  # detector boxes vary in tightness
    brightness: float = 0.25  # indoor/outdoor lighting
    contrast: float = 0.25  # cheap webcams and overcast street photos flatten contrast
    blur_probability: float = 0.2  # motion and focus blur from webcams
    # face-mask-12k ties class to resolution (masked crops upscaled, unmasked ~105 px): degrade
    # resolution at random so "blurry means no mask" cannot be learned.
    downscale_probability: float = 0.5
    downscale_min_side: int = 16  # the smallest faces a detector hands over (the dev set's are ~20 px)
    # Share of unmasked training views with a hand, phone, paper, ... over the mouth (still unmasked).
    occlude_probability: float = 0.3


def _random_affine(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Rotation, shear and zoom about the image centre, as one warp."""
    size = image.shape[0]
    angle = np.radians(rng.uniform(-config.max_rotation_degrees, config.max_rotation_degrees))
    scale = rng.uniform(*config.zoom_range)
    shear = rng.uniform(-config.max_shear, config.max_shear)
    rotate_zoom = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotate_zoom @ np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([size / 2, size / 2])
    matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
    return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)


def _downscale_upscale(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    side = int(rng.integers(config.downscale_min_side, max(config.downscale_min_side + 1, size)))
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def _photometric(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    alpha = 1.0 + rng.uniform(-config.contrast, config.contrast)
    beta = 255.0 * rng.uniform(-config.brightness, config.brightness)
    mean = image.mean()
    return np.clip((image.astype(np.float32) - mean) * alpha + mean + beta, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray, config: AugmentConfig, rng: np.random.Generator, *, may_occlude: bool = False
) -> np.ndarray:
    """One random view of a square RGB uint8 image, same size. `may_occlude`: an unmasked face, which
    may get a hand or an object over its mouth and stays unmasked."""
    if may_occlude and rng.random() < config.occlude_probability:
        image = occlude(image, rng)
    if rng.random() < config.flip_probability:
        image = image[:, ::-1]
    image = _random_affine(np.ascontiguousarray(image), config, rng)
    if rng.random() < config.downscale_probability:
        image = _downscale_upscale(image, config, rng)
    if rng.random() < config.blur_probability:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.5, 1.5))
    return _photometric(image, config, rng)
