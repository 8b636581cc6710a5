"""Batched mask classification of face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from maskapp import DEFAULT_WEIGHTS
from maskapp.errors import CheckpointError
from maskapp.labels import check_noncompliant_threshold, decide_labels
from maskapp.results import Prediction
from maskapp.vision.model import load_checkpoint
from maskapp.vision.presets import InputSpec, bgr_crops_to_batch


class MaskClassifier:
    """A loaded checkpoint in eval mode. Safe to call from several threads (no per-call state)."""

    def __init__(
        self,
        model: torch.nn.Module,
        class_names: tuple[str, ...],
        spec: InputSpec,
        architecture: str,
        noncompliant_threshold: float | None = None,
    ):
        self.model = model.eval()
        self.class_names = class_names
        self.spec = spec
        self.architecture = architecture
        # None: the likeliest class wins; a value: non-compliant once 1 - P(with_mask) reaches it.
        self.noncompliant_threshold = check_noncompliant_threshold(noncompliant_threshold, CheckpointError)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path = DEFAULT_WEIGHTS, noncompliant_threshold: float | None = None
    ) -> MaskClassifier:
        """`noncompliant_threshold` None: the one the checkpoint was validated with, if any."""
        checkpoint = load_checkpoint(path)
        threshold = noncompliant_threshold
        if threshold is None:
            threshold = checkpoint.config.get("noncompliant_threshold")
        return cls(
            checkpoint.build(),
            checkpoint.class_names,
            checkpoint.input_spec,
            checkpoint.architecture,
            threshold,
        )

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
        decided = decide_labels(probs, self.class_names, self.noncompliant_threshold)
        for row, chosen in zip(probs, decided, strict=True):
            named = {name: float(p) for name, p in zip(self.class_names, row, strict=True)}
            predictions.append(Prediction(self.class_names[chosen], float(row[chosen]), named))
        return predictions
