"""The served checkpoint's card for the Home page: what it is, and how the run that made it scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskapp.training.runs import load_runs, run_for_weights
from maskapp.vision.model import load_checkpoint

ARCHITECTURE_NAMES = {"mobilenet_v2": "MobileNetV2", "cnn": "Baseline CNN"}


@dataclass(frozen=True)
class ModelCard:
    weights: str
    architecture: str
    class_names: tuple[str, ...]
    input_size: int
    run_name: str | None
    test_accuracy: float | None
    macro_f1: float | None
    # P(non-compliant) from which a face is called non-compliant, chosen on validation data when the
    # model was trained; None: the likeliest class wins.
    noncompliant_threshold: float | None = None

    @property
    def architecture_name(self) -> str:
        """The architecture as people write it (the checkpoint's name when it is not a known one)."""
        return ARCHITECTURE_NAMES.get(self.architecture, self.architecture)


def model_card(weights: str) -> ModelCard:
    """What the checkpoint is and how it scored (the run that made it, when one is found)."""
    checkpoint = load_checkpoint(weights)
    run = run_for_weights(Path(weights), load_runs().runs, checkpoint.config)
    metrics = run.metrics if run else None
    return ModelCard(
        weights=weights,
        architecture=checkpoint.architecture,
        class_names=checkpoint.class_names,
        input_size=checkpoint.input_spec.input_size,
        run_name=run.name if run else None,
        test_accuracy=metrics.accuracy if metrics else None,
        macro_f1=metrics.macro_f1 if metrics and metrics.per_class else None,
        noncompliant_threshold=checkpoint.config.get("noncompliant_threshold"),
    )
