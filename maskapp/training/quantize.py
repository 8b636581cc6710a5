"""The live detector's int8 network: CenterFace with weights and activations quantized to 8 bits (QDQ,
per-channel weights), the activation ranges calibrated on frames tiled from real face photos, fed exactly as
the live detector feeds its network (`CenterFaceDetector.network_input`).

Static int8 is onnxruntime's fast path on CPUs with 8-bit dot products (x86 AVX2 / AVX-512 VNNI, ARM
NEON): measured here 1.5x faster than float for one look and 1.6x for the second look's batch of two
(medians of three `bench` runs, README).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import psutil
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from maskapp.config import QuantizeConfig
from maskapp.errors import ConfigError, DataError, ImageError
from maskapp.media.images import read_image
from maskapp.outputs import ensure_writable_file, unwritable
from maskapp.training.data import scan_dataset
from maskapp.vision.detect import FastCenterFaceDetector, centerface_model

logger = logging.getLogger(__name__)

FRAME_SIZE = (640, 480)  # a live camera's frame, as in bench and the tracking clips
# Photos per frame, columns x rows: one face up close to a crowd of twenty small ones.
TILINGS = ((1, 1), (2, 2), (3, 2), (4, 3), (5, 4))
# DequantizeLinear takes a per-channel axis from opset 13; CenterFace ships as an older opset.
QDQ_OPSET = 13
# Activation ranges from the 99.999th percentile (onnxruntime's default): min-max ranges, stretched by a
# few extreme activations, cost 0.011 of the 2-class mAP on faces >= 32 px in a first trial; percentile
# ranges 0.002 there, 0.004 for the shipped file (README).
CALIBRATION = CalibrationMethod.Percentile
METADATA_KEY = "maskapp.quantize"
# onnxruntime's histogram calibration keeps every frame's activations until the end: 7.0 GB peak for 64
# frames of 640x480 measured here, so about this much per frame.
CALIBRATION_BYTES_PER_FRAME = 110e6


@dataclass(frozen=True)
class QuantizedDetector:
    """What `quantize_live_detector` wrote."""

    path: Path
    frames: int
    seconds: float
    size_bytes: int


def check_memory_for(frames: int, available_bytes: float) -> None:
    """ConfigError before any work when calibrating on `frames` would not fit in memory (the process
    would be killed, with no message)."""
    needed = frames * CALIBRATION_BYTES_PER_FRAME
    if needed > available_bytes:
        fitting = int(available_bytes // CALIBRATION_BYTES_PER_FRAME)
        raise ConfigError(
            f"calibrating on {frames} frames needs about {needed / 1e9:.1f} GB of memory and "
            f"{available_bytes / 1e9:.1f} GB is free; allowed: --frames {fitting} or fewer"
            + ("" if fitting else ", after freeing memory")
        )


def calibration_frames(config: QuantizeConfig) -> list[np.ndarray]:
    """`config.frames` BGR frames of FRAME_SIZE, each the photos of one tiling resized into its cells."""
    paths = [sample.path for sample in scan_dataset(config.data_path)]
    if not paths:
        raise DataError(
            f"{config.data_path} holds no images; allowed: a folder of class subfolders of photos."
        )
    rng = random.Random(config.seed)
    return [_tiled_frame(paths, rng) for _ in range(config.frames)]


def _tiled_frame(paths: list[Path], rng: random.Random) -> np.ndarray:
    """One frame of FRAME_SIZE: a tiling drawn from TILINGS, a photo drawn for each cell."""
    columns, rows = rng.choice(TILINGS)
    width, height = FRAME_SIZE
    frame = np.zeros((height, width, 3), np.uint8)
    cell_w, cell_h = width // columns, height // rows
    for row in range(rows):
        for column in range(columns):
            photo = _read(rng.choice(paths))
            if photo is not None:
                cell = cv2.resize(photo, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
                frame[row * cell_h : (row + 1) * cell_h, column * cell_w : (column + 1) * cell_w] = cell
    return frame


def _read(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except ImageError as error:
        logger.warning("calibration skips %s: %s", path, error)
        return None


class _NetworkInputs(CalibrationDataReader):
    """The calibration frames as the live detector's network sees them, one at a time."""

    def __init__(self, frames: list[np.ndarray], progress: bool):
        detector = FastCenterFaceDetector(int8=False)
        self._inputs = (
            {"input.1": detector.network_input(frame)[0]}
            for frame in tqdm(frames, desc="calibrate", unit="frame", disable=not progress)
        )

    def get_next(self) -> dict | None:
        return next(self._inputs, None)


def quantize_live_detector(config: QuantizeConfig, out: Path, *, progress: bool = True) -> QuantizedDetector:
    """Write the live detector's int8 network to `out`, with the config and the float model's sha256 in its
    metadata. DataError for a data folder without photos, OutputError for an `out` that cannot be written."""
    ensure_writable_file(out)
    check_memory_for(config.frames, psutil.virtual_memory().available)
    start = time.perf_counter()
    frames = calibration_frames(config)
    source = centerface_model()
    with tempfile.TemporaryDirectory(prefix="maskapp-quantize-") as work:
        float_path, prepared_path, int8_path = (Path(work) / name for name in ("float", "prepared", "int8"))
        onnx.save(version_converter.convert_version(onnx.load_from_string(source), QDQ_OPSET), float_path)
        quant_pre_process(str(float_path), str(prepared_path), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints its calibration settings
            quantize_static(
                str(prepared_path),
                str(int8_path),
                _NetworkInputs(frames, progress),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION,
            )
        model = onnx.load(int8_path)
    described = {**config.to_dict(), "float_sha256": hashlib.sha256(source).hexdigest()}
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(described, sort_keys=True)})
    partial = out.with_name(out.name + ".partial")  # the file in use stays whole until the new one is
    try:
        onnx.save(model, partial)
        partial.replace(out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise unwritable(out, error) from None
    seconds = time.perf_counter() - start
    logger.debug("wrote %s (%d calibration frames, %.0f s)", out, len(frames), seconds)  # the CLI says it
    return QuantizedDetector(out, len(frames), seconds, out.stat().st_size)
