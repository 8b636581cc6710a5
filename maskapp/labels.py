"""The three mask states, their order and what counts as compliant (no torch: drawing and pages use it)."""

from __future__ import annotations

from maskapp.errors import DataError, MaskappError

WITH_MASK = "with_mask"
WORN_INCORRECTLY = "mask_worn_incorrectly"
WITHOUT_MASK = "without_mask"

# The order every model, metric table and page uses: from compliant to least compliant.
CLASS_NAMES = (WITH_MASK, WORN_INCORRECTLY, WITHOUT_MASK)
COMPLIANT_LABEL = WITH_MASK
COMPLIANT_LABELS = (COMPLIANT_LABEL,)  # the default set where a caller may widen what counts as compliant

# Each verdict as people read it: the pages, the boxes' captions, the charts' legends and the `events`
# summary (which printed with_mask beside a page saying Mask). CSV and JSON keep the labels above.
VERDICT_NAMES = {WITH_MASK: "Mask", WORN_INCORRECTLY: "Mask worn incorrectly", WITHOUT_MASK: "No mask"}

# Folder and annotation names other data sets use for the same states.
LABEL_ALIASES = {
    "mask_correct": WITH_MASK,
    "mask_incorrect": WORN_INCORRECTLY,
    "mask_weared_incorrect": WORN_INCORRECTLY,
}


def canonical_label(name: str) -> str:
    """A class folder or annotation name -> one of CLASS_NAMES; anything else is refused."""
    label = LABEL_ALIASES.get(name, name)
    if label not in CLASS_NAMES:
        allowed = ", ".join(CLASS_NAMES + tuple(LABEL_ALIASES))
        raise DataError(f"unknown class name {name!r}; allowed: {allowed}")
    return label


def ordered_classes(labels) -> tuple[str, ...]:
    """The given labels in the canonical order (a 2-class set keeps with_mask first)."""
    present = set(labels)
    return tuple(name for name in CLASS_NAMES if name in present)


def in_class_order(labels) -> list[str]:
    """The labels with the three states first, in their order, then any other (another model's) by name:
    alphabetically, mask_worn_incorrectly came before with_mask."""
    present = set(labels)
    return [name for name in CLASS_NAMES if name in present] + sorted(present - set(CLASS_NAMES))


def verdict_name(label: str) -> str:
    """A label as people read it ('No mask'); another model's label as it is."""
    return VERDICT_NAMES.get(label, label)


def is_compliant(label: str) -> bool:
    return label == COMPLIANT_LABEL


def noncompliant_probability(probs, class_names: tuple[str, ...]):
    """P(not wearing a mask properly) = 1 - P(with_mask) over the last axis of a numpy array of class
    probabilities: a number for one row, a column for an NxC array. A worn-incorrectly mask counts."""
    return 1.0 - probs[..., class_names.index(COMPLIANT_LABEL)]


def check_noncompliant_threshold(value: float | None, error: type[MaskappError] = DataError) -> float | None:
    """None (the likeliest class decides) or the threshold on P(non-compliant) as a float; `error` for a
    value outside (0, 1), where every face would be called one way."""
    if value is not None and not 0.0 < float(value) < 1.0:
        raise error(f"non-compliant threshold {value} is out of range; allowed: above 0 and below 1")
    return None if value is None else float(value)


def decide_labels(probs, class_names: tuple[str, ...], threshold: float | None) -> list[int]:
    """Class index per row. With a threshold, a face is non-compliant once P(non-compliant) reaches it
    (then the likelier non-compliant class wins); without one, the most likely class wins."""
    decided = []
    for row in probs:
        best = max(range(len(class_names)), key=lambda i: row[i])
        if threshold is not None and COMPLIANT_LABEL in class_names:
            compliant = class_names.index(COMPLIANT_LABEL)
            others = [i for i in range(len(class_names)) if i != compliant]
            noncompliant = noncompliant_probability(row, class_names)
            best = compliant if noncompliant < threshold else max(others, key=lambda i: row[i])
        decided.append(best)
    return decided
