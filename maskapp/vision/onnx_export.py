"""The classifier exported to ONNX and run by onnxruntime: about 2x faster than eager PyTorch on CPU.

The export runs in memory when a pipeline loads (a second or two), so it can never go stale against
the .pt weights.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import torch

from maskapp.results import Prediction
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.onnx_runtime import new_session
from maskapp.vision.presets import bgr_crops_to_array

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "crops", "logits"
# torch.onnx.export keeps a process-wide "exporting" flag and fails with an AssertionError when a second
# thread starts while one runs: two pages (or one page rerun while its models load) loading pipelines.
_EXPORT_LOCK = threading.Lock()


def export_onnx(classifier: MaskClassifier) -> bytes:
    """The classifier's network as ONNX bytes, with a free batch dimension."""
    size = classifier.spec.input_size
    example = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    with _EXPORT_LOCK, warnings.catch_warnings():
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
        super().__init__(
            classifier.model,
            classifier.class_names,
            classifier.spec,
            classifier.architecture,
            classifier.noncompliant_threshold,
        )
        self.session = new_session(export_onnx(classifier), threads)

    def probabilities(self, batch: torch.Tensor | np.ndarray) -> np.ndarray:
        array = batch.numpy() if isinstance(batch, torch.Tensor) else batch
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return _softmax(logits)

    def classify(self, crops_bgr: list[np.ndarray]) -> list[Prediction]:
        if not crops_bgr:
            return []
        return self.predictions_from(self.probabilities(bgr_crops_to_array(crops_bgr, self.spec)))
