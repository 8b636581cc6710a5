"""Batched mask classification of face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from maskapp import DEFAULT_WEIGHTS
from maskapp.results import Prediction
from maskapp.vision.model import load_checkpoint
from maskapp.vision.presets import InputSpec, bgr_crops_to_batch


class MaskClassifier:
    """A loaded checkpoint in eval mode. Safe to call from several threads (no per-call state)."""

    def __init__(
        self, model: torch.nn.Module, class_names: tuple[str, ...], spec: InputSpec, architecture: str
    ):
        self.model = model.eval()
        self.class_names = class_names
        self.spec = spec
        self.architecture = architecture

    @classmethod
    def from_checkpoint(cls, path: str | Path = DEFAULT_WEIGHTS) -> MaskClassifier:
        checkpoint = load_checkpoint(path)
        return cls(checkpoint.build(), checkpoint.class_names, checkpoint.input_spec, checkpoint.architecture)

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """Preprocessed Nx3xSxS batch -> NxC softmax probabilities."""
        return torch.softmax(self.model(batch), dim=1).numpy()

    def classify(self, crops_bgr: list[np.ndarray]) -> list[Prediction]:
        """All crops in one forward pass; an empty list costs nothing."""
        if not crops_bgr:
            return []
        return self.predictions_from(self.probabilities(bgr_crops_to_batch(crops_bgr, self.spec)))

    def predictions_from(self, probs: np.ndarray) -> list[Prediction]:
        predictions = []
        for row in probs:
            best = int(np.argmax(row))
            named = {name: float(p) for name, p in zip(self.class_names, row, strict=True)}
            predictions.append(Prediction(self.class_names[best], float(row[best]), named))
        return predictions
