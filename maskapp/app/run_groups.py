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

from maskapp.app.text import plain
from maskapp.config import project_path
from maskapp.training.runs import MODEL_FILE, Run

# What a run's figures are on when metrics.json says its own test split, or says nothing (training wrote
# its figures on that split without a `source` before).
OWN_TEST_SPLIT = "its own test split"
EVERY_FOLDER = "all"  # evaluate.ALL_FOLDERS, not imported: that module loads torch


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
    # metrics.json's `source` read in words: another split, folder, run's split or class selection means
    # other faces, whatever the config says.
    measured_on: str = OWN_TEST_SPLIT

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
            measured_on(run),
        )


def measured_on(run: Run) -> str:
    """What metrics.json says its figures were measured on, in words; OWN_TEST_SPLIT for the run's own
    test split of all its training folders, or when it does not say (`metrics_unrecorded`)."""
    source = run.metrics_source or {}
    split, data, split_from = source.get("split"), source.get("data"), source.get("split_from")
    if not source or run.metrics is None:
        return OWN_TEST_SPLIT
    if not split:
        return f"the folder {data}"
    words = [] if split == "test" else [f"the {split} split, not test"]
    if split_from and not _is_file_of(split_from, run):
        words.append(f"the split of {split_from}")
    if data != EVERY_FOLDER:
        words.append(f"of {data} only")
    if source.get("classes"):
        words.append(f"classes {', '.join(map(str, source['classes']))} only")
    if source.get("worn_incorrectly_as_noncompliant"):
        words.append("badly worn masks counted as non-compliant")
    return "; ".join(words) or OWN_TEST_SPLIT


def _is_file_of(path: object, run: Run) -> bool:
    """Whether `path` (as metrics.json recorded it: absolute, or from the project folder) is the run's
    own checkpoint."""
    try:
        return project_path(str(path)).resolve() == (run.path / MODEL_FILE).resolve()
    except (OSError, ValueError):
        return False


def metrics_unrecorded(run: Run) -> bool:
    """Test figures whose metrics.json does not say what they were measured on."""
    return run.metrics is not None and run.metrics_source is None


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
        measured = "" if split.measured_on == OWN_TEST_SPLIT else f", measured on {split.measured_on}"
        return (
            f"{len(split.classes)} classes ({classes}). Every test figure below is on this group's test "
            f"split: {faces} faces, {share}{data}{seed}{measured}. Runs with other classes, or measured on "
            "other faces, are compared in their own group."
        )

    def unrecorded_note(self) -> str | None:
        """Which runs' metrics.json does not say what they were measured on, and what is assumed: markdown,
        the run names shown literally."""
        names = [plain(run.name) for run in self.runs if metrics_unrecorded(run)]
        if not names:
            return None
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return (
            f"The test figures of {listed} do not say which faces they were measured on (metrics.json "
            "has no `source`): they are grouped as if on each run's own test split, where training "
            "measures them. To be sure, measure again: `python -m maskapp evaluate --split test "
            "--weights RUN/model.pt --json RUN/metrics.json`."
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
    same_classes = [other for other in splits if other != split and other.classes == split.classes]
    if any(other.data != split.data for other in same_classes):
        label += f", {' + '.join(split.data) or 'unrecorded data'}"
    same_data = [other for other in same_classes if other.data == split.data]
    if any(other.seed != split.seed for other in same_data):
        label += f", seed {split.seed}"
    if any(other.measured_on != split.measured_on for other in same_data):
        label += f", {split.measured_on}"
    count = len(by_split[split])
    return f"{label} ({count} run{'s' if count != 1 else ''})"
