"""Classification metrics (what `python -m maskapp evaluate` prints, and training's metrics.json): face
crops from class folders or from a checkpoint's own seeded split -> the confusion matrix over the model's
classes, per-class figures for the classes present, the compliance view, the non-compliant
precision-recall curve and, on request, the covered-face check (occluders pasted on unmasked faces)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from maskapp import DEFAULT_WEIGHTS
from maskapp.config import FACE_MARGIN, TrainConfig
from maskapp.errors import DataError, ImageError
from maskapp.labels import (
    COMPLIANT_LABEL,
    LABEL_ALIASES,
    WITHOUT_MASK,
    WORN_INCORRECTLY,
    canonical_label,
    decide_labels,
    noncompliant_probability,
)
from maskapp.media.images import read_image
from maskapp.training.data import (
    SPLIT_FOLDER_NAMES,
    class_folders,
    require_data_folder,
    scan_class_folders,
    split_for,
)
from maskapp.training.occlude import OCCLUDERS
from maskapp.training.prepare import detector_cropper, prepare
from maskapp.training.runs import ClassMetrics, ComplianceMetrics, EvalMetrics, PrecisionRecallCurve
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.crops import crop_face
from maskapp.vision.model import Checkpoint, load_checkpoint
from maskapp.vision.presets import resize_square, to_model_input

logger = logging.getLogger(__name__)

EVAL_BATCH = 64  # large enough to amortise per-call overhead, small enough for any laptop's RAM
# The true label of a mask_worn_incorrectly face scored by a model without that class (a 2-class model,
# `--worn-incorrectly-as-noncompliant`): no row of the confusion matrix, but non-compliant truth in the
# compliance view, so that such a face called with_mask counts as a missed non-compliant face.
WORN_INCORRECTLY_OUTSIDE_MODEL = -1


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


def _share(part, whole) -> float | None:
    return float(part / whole) if whole else None


def compliance_metrics(
    true_labels: np.ndarray, decided: np.ndarray, class_names: tuple[str, ...]
) -> ComplianceMetrics | None:
    """Masked vs non-compliant (no mask or a badly worn one, called either); None without with_mask."""
    if COMPLIANT_LABEL not in class_names:
        return None
    compliant = class_names.index(COMPLIANT_LABEL)
    truly_masked, called_masked = true_labels == compliant, decided == compliant
    caught = int((~truly_masked & ~called_masked).sum())
    noncompliant_recall = _share(caught, int((~truly_masked).sum()))
    with_mask_recall = _share(int((truly_masked & called_masked).sum()), int(truly_masked.sum()))
    recalls = [r for r in (noncompliant_recall, with_mask_recall) if r is not None]
    return ComplianceMetrics(
        noncompliant_recall=noncompliant_recall,
        noncompliant_precision=_share(caught, int((~called_masked).sum())),
        with_mask_recall=with_mask_recall,
        balanced_accuracy=float(np.mean(recalls)) if recalls else None,
        noncompliant_support=int((~truly_masked).sum()),
        with_mask_support=int(truly_masked.sum()),
    )


# The thresholds on P(non-compliant) = 1 - P(with_mask) the precision-recall curve is taken at.
PR_THRESHOLDS = tuple(round(0.01 * step, 2) for step in range(1, 100))


def noncompliant_pr_curve(
    true_labels: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]
) -> PrecisionRecallCurve | None:
    """Non-compliant precision and recall at each threshold of PR_THRESHOLDS (a face is flagged once
    1 - P(with_mask) reaches it); None without with_mask or without non-compliant faces."""
    if COMPLIANT_LABEL not in class_names:
        return None
    compliant = class_names.index(COMPLIANT_LABEL)
    positive = true_labels != compliant
    if not positive.any():
        return None
    score = noncompliant_probability(probs, class_names)
    precision, recall = [], []
    for threshold in PR_THRESHOLDS:
        flagged = score >= threshold
        caught = int((flagged & positive).sum())
        precision.append(_share(caught, int(flagged.sum())))
        recall.append(caught / int(positive.sum()))
    return PrecisionRecallCurve(list(PR_THRESHOLDS), precision, recall)


def compute_metrics(
    true_labels: np.ndarray,
    probs: np.ndarray,
    class_names: tuple[str, ...],
    threshold: float | None = None,
    datasets: np.ndarray | None = None,
) -> EvalMetrics:
    """Figures of `probs` (N x classes) against true class indices, each face decided as serving decides
    it (`threshold`: the non-compliant threshold; None: the likeliest class). The confusion matrix covers
    the model's classes, per-class figures the classes present. `datasets`: each face's data set, for
    figures per data set too. A true label WORN_INCORRECTLY_OUTSIDE_MODEL counts in the compliance view
    (compliance, ROC AUC, precision-recall curve) only."""
    true_labels = np.asarray(true_labels, dtype=int)
    predicted = np.array(decide_labels(probs, class_names, threshold), dtype=int)
    known = true_labels != WORN_INCORRECTLY_OUTSIDE_MODEL
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (true_labels[known], predicted[known]), 1)
    per_class = {}
    for index, name in enumerate(class_names):
        support = int(confusion[index].sum())
        if support == 0:  # a class this data does not hold (face-mask-12k has no badly worn masks)
            continue
        true_positive = confusion[index, index]
        precision = true_positive / max(confusion[:, index].sum(), 1)
        recall = true_positive / support
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = ClassMetrics(float(precision), float(recall), float(f1), support)
    recalls = [m.recall for m in per_class.values()]
    auc = None
    if COMPLIANT_LABEL in class_names:
        compliant = class_names.index(COMPLIANT_LABEL)
        auc = roc_auc(probs[:, compliant], true_labels == compliant)
    per_dataset = {}
    if datasets is not None:
        datasets = np.asarray(datasets)
        per_dataset = {
            name: compute_metrics(
                true_labels[datasets == name], probs[datasets == name], class_names, threshold
            )
            for name in sorted(set(datasets.tolist()))
        }
    return EvalMetrics(
        accuracy=float((predicted[known] == true_labels[known]).mean()) if known.any() else 0.0,
        balanced_accuracy=float(np.mean(recalls)) if recalls else 0.0,
        labels=list(class_names),
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        roc_auc=auc,
        noncompliant_threshold=threshold,
        compliance=compliance_metrics(true_labels, predicted, class_names),
        noncompliant_pr=noncompliant_pr_curve(true_labels, probs, class_names),
        per_dataset=per_dataset,
        outside_model=outside_model_counts(predicted[~known], class_names),
    )


def outside_model_counts(predicted: np.ndarray, class_names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """The mask_worn_incorrectly faces a model without that class scored: how many, and how many it let
    through as with_mask (those are in the compliance view's missed non-compliant faces)."""
    if not len(predicted):
        return {}
    called_masked = int((predicted == class_names.index(COMPLIANT_LABEL)).sum())
    return {WORN_INCORRECTLY: {"faces": len(predicted), "called_with_mask": called_masked}}


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
    noncompliant_score = noncompliant_probability(probs, class_names)
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


# --- what is measured ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scored:
    """Faces put through a classifier."""

    labels: np.ndarray  # true class, as an index into the classifier's class_names
    probs: np.ndarray  # N x classes
    images: Sequence[np.ndarray]  # the RGB faces (any size): the covered-face check pastes onto them
    datasets: np.ndarray | None = None  # each face's data set, when figures per data set are wanted
    unreadable: int = 0


WORN_AS_NONCOMPLIANT_FLAG = "--worn-incorrectly-as-noncompliant"


def select_classes(
    found: Collection[str],
    model_classes: tuple[str, ...],
    only: Sequence[str] | None,
    where: str,
    worn_incorrectly_as_noncompliant: bool = False,
) -> set[str]:
    """The classes to evaluate: those found in the data, which the model must know. `only` (--classes)
    names them instead, and the faces of the other classes are left out. With
    `worn_incorrectly_as_noncompliant`, mask_worn_incorrectly is allowed for a model without it (its
    faces are non-compliant truth in the compliance view, WORN_INCORRECTLY_OUTSIDE_MODEL)."""
    allowed_classes = list(model_classes)
    if worn_incorrectly_as_noncompliant:
        if COMPLIANT_LABEL not in model_classes:
            raise DataError(f"{WORN_AS_NONCOMPLIANT_FLAG} needs a model with the {COMPLIANT_LABEL} class")
        allowed_classes += [WORN_INCORRECTLY] if WORN_INCORRECTLY not in model_classes else []
    allowed = ", ".join(allowed_classes)
    chosen = {canonical_label(name) for name in only} if only else set(found)
    unknown = sorted(chosen - set(allowed_classes))
    if unknown and only:
        raise DataError(f"--classes {','.join(unknown)}: the model does not know it; allowed: {allowed}")
    if unknown:
        known = [name for name in model_classes if name in set(found)]
        hint = f", or pass --classes {','.join(known)} to leave the others out" if known else ""
        if unknown == [WORN_INCORRECTLY]:
            hint += f" ({WORN_AS_NONCOMPLIANT_FLAG} counts them as non-compliant in the compliance view)"
        named = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(f"{where} has classes ({named}) the model does not know; allowed: {allowed}{hint}")
    if found and not chosen & set(model_classes):
        raise DataError(f"{where} has no faces of the model's classes; allowed: {', '.join(model_classes)}")
    return chosen


def true_index(label: str, model_classes: tuple[str, ...]) -> int:
    """A face's true class as an index into the model's classes; WORN_INCORRECTLY_OUTSIDE_MODEL for a
    badly worn mask the model has no class for (select_classes let it in)."""
    return model_classes.index(label) if label in model_classes else WORN_INCORRECTLY_OUTSIDE_MODEL


def score_folder(
    folder: Path,
    classifier: MaskClassifier,
    only: Sequence[str] | None = None,
    worn_incorrectly_as_noncompliant: bool = False,
) -> Scored:
    """Each image of the class folders is one face: cut at its box with the serving margin when the
    folder's manifest.csv gives one (face-mask-ilc), else taken whole (an already-cropped face).
    Unreadable files are skipped and counted. `worn_incorrectly_as_noncompliant`: see select_classes."""
    require_data_folder(folder)
    names = list(class_folders(folder))
    if names and set(names) <= set(SPLIT_FOLDER_NAMES):
        raise DataError(f"{folder} holds split folders {names}; give one of them, e.g. {folder / names[-1]}")
    found = {LABEL_ALIASES.get(name, name) for name in names}
    chosen = select_classes(
        found, classifier.class_names, only, str(folder), worn_incorrectly_as_noncompliant
    )
    samples = scan_class_folders(folder, folder.name, None, only=chosen)
    images, labels, unreadable = [], [], 0
    for sample in samples:
        try:
            image = read_image(sample.path)
        except ImageError as error:
            logger.warning("skipped %s", error)
            unreadable += 1
            continue
        if sample.face_box is not None:
            image = crop_face(image, sample.face_box, FACE_MARGIN)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        labels.append(true_index(sample.label, classifier.class_names))
    if not images:
        raise DataError(f"{folder} holds no readable images of the classes {sorted(chosen)}")
    return Scored(np.array(labels), predict_rgb(classifier, images), images, unreadable=unreadable)


def training_config(weights: Path, checkpoint: Checkpoint | None = None) -> TrainConfig:
    """The TrainConfig a checkpoint was trained with (its data folders, seed and split); `checkpoint`:
    the one at `weights`, when it is loaded already."""
    saved = (checkpoint or load_checkpoint(weights)).config
    if "data" not in saved:
        raise DataError(f"{weights} holds no training config; --split needs a checkpoint `train` wrote")
    fields = TrainConfig.__dataclass_fields__
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields}
    return TrainConfig(**config)


def score_split(
    classifier: MaskClassifier,
    split_name: str,
    split_weights: Path,
    folder: Path | None = None,
    only: Sequence[str] | None = None,
    worn_incorrectly_as_noncompliant: bool = False,
) -> Scored:
    """The faces of `split_name` of the seeded split `split_weights` was trained with (of one training
    folder, or of all), prepared as training prepared them (whole photos cut to the detected face).
    `worn_incorrectly_as_noncompliant`: see select_classes."""
    config = training_config(split_weights)
    dataset = None
    if folder is not None:
        matches = [path for path in config.data_paths() if path == folder.resolve()]
        if not matches:
            raise DataError(
                f"{folder} is not one of the training folders of {split_weights}: {list(config.data)}"
            )
        dataset = matches[0].name  # what the samples of that folder are tagged with
    split = split_for(config)
    # The whole split, as training prepared it (its cache), then the faces asked for.
    prepared = prepare(
        split.of(split_name), split.class_names, classifier.spec, detector_cropper(), split_name
    )
    names = np.array(split.class_names)[prepared.labels]
    rows = np.ones(len(names), dtype=bool) if dataset is None else prepared.datasets == dataset
    where = f"the {split_name} split of {split_weights}" + (f", {dataset}" if dataset else "")
    chosen = select_classes(
        set(names[rows].tolist()), classifier.class_names, only, where, worn_incorrectly_as_noncompliant
    )
    rows &= np.isin(names, sorted(chosen))
    if not rows.any():
        raise DataError(f"{where} has no faces of the classes {sorted(chosen)}")
    labels = np.array([true_index(name, classifier.class_names) for name in names[rows]], dtype=int)
    images = prepared.images[rows]
    probs = predict_rgb(classifier, images, desc=split_name)
    return Scored(labels, probs, images, prepared.datasets[rows], prepared.unreadable)


# --- a covered face is not a masked face ---------------------------------------------------------------
# Not training's seed (TrainConfig.seed, 42, plus the process rank): the check sees fresh occluders.
OCCLUSION_SEED = 2027


@dataclass(frozen=True)
class OcclusionReport:
    """Unmasked faces called with_mask: bare, and with each training occluder over the mouth."""

    seed: int
    faces: int  # without_mask faces checked
    bare_called_masked: int
    called_masked: dict[str, int]  # per occluder kind, each pasted on every one of the faces

    @property
    def occluded_faces(self) -> int:
        return self.faces * len(self.called_masked)

    @property
    def occluded_called_masked(self) -> int:
        return sum(self.called_masked.values())

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "faces": self.faces,
            "bare_called_with_mask": self.bare_called_masked,
            "bare_share": _share(self.bare_called_masked, self.faces),
            "occluded_faces": self.occluded_faces,
            "occluded_called_with_mask": self.occluded_called_masked,
            "occluded_share": _share(self.occluded_called_masked, self.occluded_faces),
            "per_kind": {
                kind: {"faces": self.faces, "called_with_mask": n, "share": _share(n, self.faces)}
                for kind, n in self.called_masked.items()
            },
        }


def _called_masked(classifier: MaskClassifier, probs: np.ndarray) -> int:
    decided = decide_labels(probs, classifier.class_names, classifier.noncompliant_threshold)
    return sum(1 for index in decided if classifier.class_names[index] == COMPLIANT_LABEL)


def occlusion_check(
    classifier: MaskClassifier, scored: Scored, seed: int = OCCLUSION_SEED
) -> OcclusionReport | None:
    """Every training occluder (maskapp.training.occlude) pasted on every without_mask face, on the
    square training pastes onto; None when the data holds no unmasked face."""
    if WITHOUT_MASK not in classifier.class_names or COMPLIANT_LABEL not in classifier.class_names:
        return None
    unmasked = np.flatnonzero(scored.labels == classifier.class_names.index(WITHOUT_MASK))
    if not len(unmasked):
        return None
    rng = np.random.default_rng(seed)
    squares = [resize_square(scored.images[i], classifier.spec) for i in unmasked]
    called = {}
    for kind, paste in OCCLUDERS.items():
        covered = [paste(np.ascontiguousarray(square), rng) for square in squares]
        called[kind] = _called_masked(classifier, predict_rgb(classifier, covered, desc=f"occlude {kind}"))
    bare = _called_masked(classifier, scored.probs[unmasked])
    return OcclusionReport(seed, len(unmasked), bare, called)


# --- the command -----------------------------------------------------------------------------------------
ALL_FOLDERS = "all"  # DATA_DIR with --split: every training folder of the checkpoint


@dataclass(frozen=True)
class Evaluation:
    figures: EvalMetrics
    unreadable: int
    source: dict  # what was measured: weights, data, split, ...
    occlusion: OcclusionReport | None = None

    def to_dict(self) -> dict:
        """The figures as metrics.json holds them, plus what was measured."""
        data = {**self.figures.to_dict(), "unreadable": self.unreadable, "source": self.source}
        if self.occlusion is not None:
            data["occlusion"] = self.occlusion.to_dict()
        return data


def summarise(classifier: MaskClassifier, scored: Scored, source: dict, occlude: bool = False) -> Evaluation:
    figures = compute_metrics(
        scored.labels,
        scored.probs,
        classifier.class_names,
        classifier.noncompliant_threshold,
        scored.datasets,
    )
    occlusion = occlusion_check(classifier, scored) if occlude else None
    return Evaluation(figures, scored.unreadable, source, occlusion)


def evaluate(
    data_dir: str | Path | None,
    weights: str | Path = DEFAULT_WEIGHTS,
    split: str | None = None,
    *,
    split_from: str | Path | None = None,
    classes: Sequence[str] | None = None,
    noncompliant_threshold: float | None = None,
    occlude: bool = False,
    worn_incorrectly_as_noncompliant: bool = False,
) -> Evaluation:
    """The checkpoint on the class folders of DATA_DIR, or on `split` of a checkpoint's own seeded split
    (`split_from`, default the evaluated one) of DATA_DIR or of all its training folders.
    `worn_incorrectly_as_noncompliant`: a model without mask_worn_incorrectly (2-class) is measured on
    those faces too, as non-compliant truth in the compliance view (select_classes)."""
    if split_from is not None and not split:
        raise DataError("--split-from names whose split to use; give --split train, val or test with it")
    every_folder = data_dir is None or str(data_dir) == ALL_FOLDERS
    if every_folder and not split:
        raise DataError(
            "give DATA_DIR (class folders of face crops), or --split to use the checkpoint's own split "
            "of all its training folders"
        )
    classifier = MaskClassifier.from_checkpoint(weights, noncompliant_threshold)
    source = {"weights": str(weights), "data": ALL_FOLDERS if every_folder else str(data_dir)}
    if split:
        split_weights = Path(split_from or weights)
        folder = None if every_folder else Path(data_dir)
        scored = score_split(
            classifier, split, split_weights, folder, classes, worn_incorrectly_as_noncompliant
        )
        source.update(split=split, split_from=str(split_weights))
    else:
        scored = score_folder(Path(data_dir), classifier, classes, worn_incorrectly_as_noncompliant)
    if classes:
        source["classes"] = list(classes)
    if worn_incorrectly_as_noncompliant:
        source["worn_incorrectly_as_noncompliant"] = True
    return summarise(classifier, scored, source, occlude)
