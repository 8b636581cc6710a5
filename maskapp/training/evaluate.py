"""Classification metrics (what `python -m maskapp evaluate` prints): class folders of face crops, or a
checkpoint's own test split, -> figures."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from maskapp import DEFAULT_WEIGHTS
from maskapp.config import TrainConfig
from maskapp.errors import DataError, ImageError
from maskapp.labels import COMPLIANT_LABEL
from maskapp.media.images import read_image
from maskapp.training.data import scan_class_folders, split_samples
from maskapp.training.prepare import detector_cropper, prepare
from maskapp.training.runs import ClassMetrics, EvalMetrics
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.model import load_checkpoint
from maskapp.vision.presets import to_model_input

logger = logging.getLogger(__name__)

EVAL_BATCH = 64  # large enough to amortise per-call overhead, small enough for any laptop's RAM


def roc_auc(positive_scores: np.ndarray, is_positive: np.ndarray) -> float | None:
    """Mann-Whitney form of ROC AUC (ties count half); None when one class is absent."""
    positives, negatives = positive_scores[is_positive], positive_scores[~is_positive]
    if len(positives) == 0 or len(negatives) == 0:
        return None
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    combined = np.concatenate([positives, negatives])
    for value in np.unique(combined):  # average ranks over ties
        tied = combined == value
        ranks[tied] = ranks[tied].mean()
    return float(
        (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2)
        / (len(positives) * len(negatives))
    )


def compute_metrics(true_labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]) -> EvalMetrics:
    predicted = probs.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (true_labels, predicted), 1)
    per_class = {}
    for index, name in enumerate(class_names):
        true_positive = confusion[index, index]
        precision = true_positive / max(confusion[:, index].sum(), 1)
        recall = true_positive / max(confusion[index].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = ClassMetrics(
            float(precision), float(recall), float(f1), int(confusion[index].sum())
        )
    recalls = [m.recall for m in per_class.values() if m.support > 0]
    auc = roc_auc(probs[:, 0], true_labels == 0) if n == 2 else None
    return EvalMetrics(
        accuracy=float((predicted == true_labels).mean()) if len(true_labels) else 0.0,
        balanced_accuracy=float(np.mean(recalls)) if recalls else 0.0,
        labels=list(class_names),
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        roc_auc=auc,
    )


# The threshold keeps at least this share of masked validation faces compliant...
THRESHOLD_MASKED_RECALL = 0.98
# ...and stays in this range, so that a small or easy validation set cannot push it to an extreme.
THRESHOLD_RANGE = (0.2, 0.5)


def choose_noncompliant_threshold(
    true_labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]
) -> float | None:
    """The lowest P(non-compliant) threshold (most non-compliant faces caught) that still keeps
    THRESHOLD_MASKED_RECALL of the masked faces compliant; None for a model without with_mask."""
    if COMPLIANT_LABEL not in class_names or len(true_labels) == 0:
        return None
    compliant = class_names.index(COMPLIANT_LABEL)
    masked = true_labels == compliant
    noncompliant_score = 1.0 - probs[:, compliant]
    for threshold in np.round(np.arange(THRESHOLD_RANGE[0], THRESHOLD_RANGE[1] + 1e-9, 0.01), 2):
        if not masked.any() or (noncompliant_score[masked] < threshold).mean() >= THRESHOLD_MASKED_RECALL:
            return float(threshold)
    return THRESHOLD_RANGE[1]


def predict_rgb(classifier: MaskClassifier, images_rgb, desc: str = "evaluate") -> np.ndarray:
    """Probabilities for RGB images of any size, through the serving transform."""
    chunks = []
    for start in tqdm(range(0, len(images_rgb), EVAL_BATCH), desc=desc, unit="batch", leave=False):
        batch = torch.stack(
            [to_model_input(img, classifier.spec) for img in images_rgb[start : start + EVAL_BATCH]]
        )
        chunks.append(classifier.probabilities(batch))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(classifier.class_names)))


def evaluate_folder(folder: Path, classifier: MaskClassifier) -> tuple[EvalMetrics, int]:
    """Every image is an already-cropped face; unreadable files are skipped and counted."""
    samples = scan_class_folders(folder, folder.name, None)
    unknown = {s.label for s in samples} - set(classifier.class_names)
    if unknown:
        raise DataError(
            f"{folder} has classes {sorted(unknown)} the model does not know; "
            f"allowed: {list(classifier.class_names)}"
        )
    images, labels, skipped = [], [], 0
    for sample in samples:
        try:
            images.append(cv2.cvtColor(read_image(sample.path), cv2.COLOR_BGR2RGB))
        except ImageError as error:
            logger.warning("skipped %s", error)
            skipped += 1
            continue
        labels.append(classifier.class_names.index(sample.label))
    if not images:
        raise DataError(f"{folder} holds no readable images")
    probs = predict_rgb(classifier, images)
    return compute_metrics(np.array(labels), probs, classifier.class_names), skipped


def evaluate_split(
    folder: Path, split_name: str, weights: Path, classifier: MaskClassifier
) -> tuple[EvalMetrics, int]:
    """The images of `folder` that fell in `split_name` of the checkpoint's own seeded split,
    prepared as training prepared them (whole photos cut to the detected face)."""
    saved = load_checkpoint(weights).config
    config = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__})
    split = split_samples(
        config.data_paths(),
        seed=config.seed,
        fractions=tuple(config.split),
        max_hash_distance=config.hash_distance,
    )
    chosen = [s for s in split.of(split_name) if s.path.is_relative_to(folder.resolve())]
    if not chosen:
        raise DataError(f"{folder} is not one of the model's training folders {list(config.data)}")
    prepared = prepare(chosen, classifier.class_names, classifier.spec, detector_cropper(), desc=split_name)
    probs = predict_rgb(classifier, prepared.images)
    return compute_metrics(prepared.labels, probs, classifier.class_names), prepared.unreadable


def evaluate(
    data_dir: str | Path, weights: str | Path = DEFAULT_WEIGHTS, split: str | None = None
) -> tuple[EvalMetrics, int]:
    """Figures of the checkpoint on DATA_DIR (or on its part of the checkpoint's `split`), and how many
    images could not be read."""
    classifier = MaskClassifier.from_checkpoint(weights)
    folder = Path(data_dir)
    if split:
        return evaluate_split(folder, split, Path(weights), classifier)
    return evaluate_folder(folder, classifier)
