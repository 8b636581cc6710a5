"""Runs whose test figures may be compared: the same classes, judged on the same test split.

A 2-class run's accuracy is taken on its own test faces (two classes, two data sets); a 3-class run's on
others (three classes, four data sets). In one table the 2-class MobileNetV2 read 0.996 above the served
3-class model's 0.986, as if it were the better model for the site. The Metrics page compares one group
at a time and says which faces its figures are on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from maskapp.training.runs import Run


@dataclass(frozen=True)
class TestSplit:
    """What fixes a run's test faces: its classes, the data sets, and how they were split (training's
    `split` shares, the seed, the near-duplicate distance and the per-class cap)."""

    classes: tuple[str, ...]
    data: tuple[str, ...]  # data set folder names, as training listed them
    test_share: float | None
    seed: object = None
    hash_distance: object = None
    max_per_class: object = None

    @classmethod
    def of(cls, run: Run) -> TestSplit:
        config = run.config
        classes = config.get("class_names") or (run.metrics.labels if run.metrics else [])
        data = config.get("data") or []
        data = [data] if isinstance(data, str) else data
        split = config.get("split")
        test_share = split[-1] if isinstance(split, list) and split else None
        return cls(
            tuple(map(str, classes)),
            tuple(PurePath(str(path)).name for path in data),
            test_share if isinstance(test_share, int | float) else None,
            config.get("seed"),
            config.get("hash_distance"),
            config.get("max_per_class"),
        )


@dataclass(frozen=True)
class RunGroup:
    split: TestSplit
    runs: tuple[Run, ...]
    label: str  # the group's name in the page's picker

    @property
    def test_faces(self) -> list[int]:
        """The test faces each run's metrics count, each number once (one, for runs of one split)."""
        counts = {sum(m.support for m in run.metrics.per_class.values()) for run in self.runs if run.metrics}
        return sorted(counts)

    def description(self) -> str:
        """Which faces the group's test figures are on, in a sentence."""
        split = self.split
        classes = ", ".join(split.classes) or "classes not recorded"
        faces = " or ".join(str(count) for count in self.test_faces) or "no"
        share = f"{split.test_share:.0%} of " if split.test_share is not None else ""
        data = ", ".join(split.data) or "data sets not recorded"
        seed = f", seed {split.seed}" if split.seed is not None else ""
        return (
            f"{len(split.classes)} classes ({classes}). Every test figure below is on this group's test "
            f"split: {faces} faces, {share}{data}{seed}. Runs with other classes were tested on other "
            "faces, so they are compared in their own group."
        )


def group_runs(runs: Sequence[Run], served: str | None = None) -> list[RunGroup]:
    """Runs grouped by test split, in the order the runs came; the served run's group first."""
    by_split: dict[TestSplit, list[Run]] = {}
    for run in runs:
        by_split.setdefault(TestSplit.of(run), []).append(run)
    splits = sorted(by_split, key=lambda split: not any(run.name == served for run in by_split[split]))
    groups, labels = [], set()
    for split in splits:
        label = _label(split, splits, by_split)
        if label in labels:  # the same classes, data and seed, split another way
            label += f", split {len(groups) + 1}"
        labels.add(label)
        groups.append(RunGroup(split, tuple(by_split[split]), label))
    return groups


def _label(split: TestSplit, splits: list[TestSplit], by_split: dict[TestSplit, list[Run]]) -> str:
    """'3 classes (6 runs)'; with the data sets (and seed) where another group has the same classes."""
    label = f"{len(split.classes)} classes"
    if any(other.classes == split.classes for other in splits if other != split):
        label += f", {' + '.join(split.data) or 'unrecorded data'}"
        if any(
            other.classes == split.classes and other.data == split.data for other in splits if other != split
        ):
            label += f", seed {split.seed}"
    count = len(by_split[split])
    return f"{label} ({count} run{'s' if count != 1 else ''})"
