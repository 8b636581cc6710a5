"""Preprocessing, defined once: training, evaluation and serving all end in `to_model_input`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """What a classifier expects; saved in every checkpoint so serving matches training."""

    input_size: int = 224
    # The papers resize to 256 then center-crop 224: keep that ratio at any input size.
    resize_ratio: float = 256 / 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def resize_size(self) -> int:
        # An even border keeps two successive centre crops (training's cached squares, then the
        # input crop) pixel-identical to serving's single crop.
        return self.input_size + 2 * round(self.input_size * (self.resize_ratio - 1) / 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        return cls(
            input_size=int(data["input_size"]),
            resize_ratio=float(data["resize_ratio"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
        )


def resize_center_crop(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize the short side to spec.resize_size, then center-crop a square of spec.input_size."""
    height, width = rgb.shape[:2]
    scale = spec.resize_size / min(height, width)
    new_w, new_h = max(spec.input_size, round(width * scale)), max(spec.input_size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - spec.input_size) // 2, (new_w - spec.input_size) // 2
    return resized[top : top + spec.input_size, left : left + spec.input_size]


def resize_square(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Training's cached image: serving's resize, centre-cropped to a resize_size square, so that
    augmentation has a border to work with and the eval view equals serving's crop."""
    return resize_center_crop(rgb, InputSpec(spec.resize_size, 1.0, spec.mean, spec.std))


def normalize(rgb_square: np.ndarray | torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 HxWx3 RGB (numpy) or 3xHxW float in [0, 1] (tensor) -> normalized 3xHxW float tensor."""
    if isinstance(rgb_square, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(rgb_square)).permute(2, 0, 1).float() / 255.0
    else:
        tensor = rgb_square.float()
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (tensor - mean) / std


def to_model_input(rgb: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """The eval/serving transform: RGB uint8 image of any size -> normalized 3xSxS tensor."""
    return normalize(resize_center_crop(rgb, spec), spec)


def bgr_crops_to_batch(crops_bgr: list[np.ndarray], spec: InputSpec) -> torch.Tensor:
    """Serving: BGR face crops from OpenCV -> one Nx3xSxS batch."""
    return torch.stack([to_model_input(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), spec) for crop in crops_bgr])
