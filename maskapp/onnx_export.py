"""The classifier exported to ONNX and run by onnxruntime: about 2x faster than eager PyTorch on CPU.

The export runs in memory when a pipeline loads (a second or two), so it can never go stale against
the .pt weights. Without the `onnx` package (the exporter needs it) the PyTorch model is used as is.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings

import cv2
import numpy as np
import torch

from maskapp.classify import MaskClassifier, Prediction
from maskapp.detect import default_threads
from maskapp.presets import InputSpec, resize_center_crop

logger = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "crops", "logits"


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def export_onnx(classifier: MaskClassifier) -> bytes:
    """The classifier's network as ONNX bytes, with a free batch dimension."""
    size = classifier.spec.input_size
    example = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            classifier.model,
            example,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return buffer.getvalue()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class OnnxMaskClassifier(MaskClassifier):
    """Same preprocessing and outputs as MaskClassifier; the forward pass runs in onnxruntime.
    An onnxruntime session may be run from several threads at once."""

    def __init__(self, classifier: MaskClassifier, threads: int | None = None):
        super().__init__(classifier.model, classifier.class_names, classifier.spec, classifier.architecture)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or default_threads()
        # Idle onnxruntime workers spin by default, stealing the cores the other stage (and torch) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            export_onnx(classifier), options, providers=["CPUExecutionProvider"]
        )

    def probabilities(self, batch: torch.Tensor | np.ndarray) -> np.ndarray:
        array = batch.numpy() if isinstance(batch, torch.Tensor) else batch
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return _softmax(logits)

    def classify(self, crops_bgr: list[np.ndarray]) -> list[Prediction]:
        if not crops_bgr:
            return []
        return self.predictions_from(self.probabilities(crops_to_array(crops_bgr, self.spec)))


def crops_to_array(crops_bgr: list[np.ndarray], spec: InputSpec) -> np.ndarray:
    """`presets.bgr_crops_to_batch` in numpy. Torch's small ops run on an OpenMP pool that stalls badly
    when another process holds the cores (seen: 0.9 ms -> 200 ms for 5 crops during training)."""
    scale = np.float32(255.0)
    mean = np.asarray(spec.mean, np.float32) * scale
    std = np.asarray(spec.std, np.float32) * scale
    batch = np.empty((len(crops_bgr), 3, spec.input_size, spec.input_size), np.float32)
    for index, crop in enumerate(crops_bgr):
        square = resize_center_crop(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), spec)
        batch[index] = ((square.astype(np.float32) - mean) / std).transpose(2, 0, 1)
    return batch


def accelerate(classifier: MaskClassifier) -> MaskClassifier:
    """The ONNX-run classifier when the exporter is installed, else the classifier unchanged."""
    if not onnx_available():
        logger.info("package `onnx` not installed: the classifier runs in PyTorch (slower)")
        return classifier
    return OnnxMaskClassifier(classifier)
