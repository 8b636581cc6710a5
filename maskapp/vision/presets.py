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

    input_size: int = 224  # the size ImageNet backbones were trained at (the shipped model: 128)
    # The papers resize to 256 then center-crop 224: keep that ratio at any input size.
    resize_ratio: float = 256 / 224
    # The statistics the pretrained backbone's first layer expects.
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


def normalize(rgb_square: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 HxWx3 RGB -> normalized 3xHxW float32 array. The one definition of the model's input
    scale: the ONNX path uses it as is, torch wraps it."""
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    # /255 first, then mean and std, in float32: bit-identical to the torch ops the shipped weights
    # were trained and evaluated with.
    scaled = (rgb_square.astype(np.float32) / np.float32(255.0) - mean) / std
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def model_input_array(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The eval/serving transform: RGB uint8 image of any size -> normalized 3xSxS float32 array."""
    return normalize(resize_center_crop(rgb, spec), spec)


def to_model_input(rgb: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """`model_input_array` as a tensor (shares its memory)."""
    return torch.from_numpy(model_input_array(rgb, spec))


def bgr_crops_to_array(crops_bgr: list[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Serving: BGR face crops from OpenCV -> one Nx3xSxS float32 batch. numpy, not torch: torch's small
    ops run on an OpenMP pool that stalls badly when another process holds the cores (seen: 0.9 ms ->
    200 ms for 5 crops during training)."""
    batch = np.empty((len(crops_bgr), 3, spec.input_size, spec.input_size), np.float32)
    for index, crop in enumerate(crops_bgr):
        batch[index] = model_input_array(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), spec)
    return batch


def bgr_crops_to_batch(crops_bgr: list[np.ndarray], spec: InputSpec) -> torch.Tensor:
    """`bgr_crops_to_array` as a tensor (shares its memory)."""
    return torch.from_numpy(bgr_crops_to_array(crops_bgr, spec))
