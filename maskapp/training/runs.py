"""The run format on disk, written by training and read by the metrics page.

A run directory holds config.json, history.jsonl (one line per epoch), system.jsonl (resource
samples), metrics.json (test figures, as `evaluate --split test --json` writes them: confusion matrix,
per class, the compliance view, the non-compliant precision-recall curve, per data set) and model.pt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maskapp import PROJECT_ROOT, WEIGHTS_DIR
from maskapp.errors import RunFormatError
from maskapp.outputs import why_not_there

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"
SYSTEM_FILE = "system.jsonl"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"

RUN_ROOTS = (WEIGHTS_DIR / "runs", PROJECT_ROOT / "runs")
# Extra folders holding run directories, separated by os.pathsep (e.g. runs kept on another disk).
RUN_DIRS_ENV = "MASKAPP_RUN_DIRS"


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class SystemSample:
    seconds: float  # since the run started
    cpu_percent: float
    ram_percent: float
    rss_mb: float
    gpu_util_percent: float | None = None
    gpu_memory_mb: float | None = None


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ComplianceMetrics:
    """The view a site acts on: is a non-compliant face (no mask or a badly worn one) flagged, and is a
    masked face let through? None where the data holds no face of that side."""

    noncompliant_recall: float | None  # non-compliant faces called either non-compliant class
    noncompliant_precision: float | None  # faces called non-compliant that are
    with_mask_recall: float | None  # masked faces called with_mask
    balanced_accuracy: float | None  # mean of the two recalls present
    noncompliant_support: int
    with_mask_support: int

    @classmethod
    def from_dict(cls, data: dict) -> ComplianceMetrics:
        def number(key):
            return None if data.get(key) is None else float(data[key])

        return cls(
            number("noncompliant_recall"),
            number("noncompliant_precision"),
            number("with_mask_recall"),
            number("balanced_accuracy"),
            int(data["noncompliant_support"]),
            int(data["with_mask_support"]),
        )


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Non-compliant precision and recall when a face is flagged once 1 - P(with_mask) >= threshold;
    precision is None where no face is flagged."""

    thresholds: list[float]
    precision: list[float | None]
    recall: list[float]

    @classmethod
    def from_dict(cls, data: dict) -> PrecisionRecallCurve:
        curve = cls(
            [float(t) for t in data["thresholds"]],
            [None if p is None else float(p) for p in data["precision"]],
            [float(r) for r in data["recall"]],
        )
        if not len(curve.thresholds) == len(curve.precision) == len(curve.recall):
            raise ValueError("noncompliant_pr: thresholds, precision and recall differ in length")
        return curve


@dataclass(frozen=True)
class EvalMetrics:
    accuracy: float
    balanced_accuracy: float
    labels: list[str]  # the model's classes: the confusion matrix's rows and columns
    per_class: dict[str, ClassMetrics]  # the classes present in the data
    confusion_matrix: list[list[int]]
    roc_auc: float | None = None  # P(with_mask) separating masked from non-compliant faces
    # The decision rule the figures were taken with: None, the likeliest class wins.
    noncompliant_threshold: float | None = None
    compliance: ComplianceMetrics | None = None
    noncompliant_pr: PrecisionRecallCurve | None = None
    per_dataset: dict[str, EvalMetrics] = field(default_factory=dict)
    # Faces of a non-compliant class the model lacks (a 2-class model on badly worn masks), counted as
    # non-compliant in the compliance view only: {class: {"faces": n, "called_with_mask": m}}.
    outside_model: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def macro_f1(self) -> float:
        return sum(m.f1 for m in self.per_class.values()) / len(self.per_class)

    def to_dict(self) -> dict:
        data = asdict(self)
        for optional in ("roc_auc", "compliance", "noncompliant_pr"):
            if data[optional] is None:
                data.pop(optional)
        data["per_dataset"] = {name: figures.to_dict() for name, figures in self.per_dataset.items()}
        for optional in ("per_dataset", "outside_model"):  # absent when empty, as files before them
            if not data[optional]:
                data.pop(optional)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> EvalMetrics:
        """What training and `evaluate --json` write; files from before the compliance view still load."""
        return cls(
            accuracy=float(data["accuracy"]),
            balanced_accuracy=float(data["balanced_accuracy"]),
            labels=list(data["labels"]),
            per_class={k: ClassMetrics(**v) for k, v in data["per_class"].items()},
            confusion_matrix=[[int(c) for c in row] for row in data["confusion_matrix"]],
            roc_auc=None if data.get("roc_auc") is None else float(data["roc_auc"]),
            noncompliant_threshold=(
                None if data.get("noncompliant_threshold") is None else float(data["noncompliant_threshold"])
            ),
            compliance=(
                None if data.get("compliance") is None else ComplianceMetrics.from_dict(data["compliance"])
            ),
            noncompliant_pr=(
                None
                if data.get("noncompliant_pr") is None
                else PrecisionRecallCurve.from_dict(data["noncompliant_pr"])
            ),
            per_dataset={k: cls.from_dict(v) for k, v in (data.get("per_dataset") or {}).items()},
            outside_model={
                name: {key: int(n) for key, n in counts.items()}
                for name, counts in (data.get("outside_model") or {}).items()
            },
        )


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict
    history: list[EpochRecord]
    system: list[SystemSample]
    metrics: EvalMetrics | None
    warnings: list[str] = field(default_factory=list)
    # metrics.json's `source`: what the figures were measured on (weights, data, split, split_from, ...),
    # as `evaluate --json` and training record it; None where the file does not say.
    metrics_source: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def architecture(self) -> str:
        return str(self.config.get("model", "?"))


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def append_jsonl(path: Path, record) -> None:
    data = asdict(record) if hasattr(record, "__dataclass_fields__") else record
    with path.open("a") as handle:
        handle.write(json.dumps({k: _finite_or_none(v) for k, v in data.items()}) + "\n")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFormatError(f"{path.parent.name}: {path.name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFormatError(f"{path.parent.name}: {path.name} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise RunFormatError(f"{path.parent.name}: {path.name} must hold a JSON object")
    return data


def _is_number_or_none(value) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _read_jsonl(path: Path, record_type, warnings: list[str]) -> list:
    """Malformed lines are skipped with a warning, so one bad line does not hide a whole run."""
    if not path.is_file():
        warnings.append(f"{path.name} is missing")
        return []
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = record_type(**json.loads(line))
        except (json.JSONDecodeError, TypeError) as error:
            warnings.append(f"{path.name} line {number} skipped: {error}")
            continue
        wrong = [k for k, v in asdict(record).items() if not _is_number_or_none(v)]
        if wrong:
            warnings.append(f"{path.name} line {number} skipped: {', '.join(wrong)} must be numbers")
            continue
        records.append(record)
    return records


def load_run(path: str | Path) -> Run:
    """Read a run directory; raises RunFormatError when config.json is missing or malformed."""
    path = Path(path)
    if not path.is_dir():
        raise RunFormatError(
            f"run directory {path} {why_not_there(path, 'folder')}; give a folder `python -m maskapp "
            "train` wrote (e.g. weights/runs/mobilenet_v2_3class_soup)"
        )
    config = _read_json(path / CONFIG_FILE)
    warnings: list[str] = []
    history = _read_jsonl(path / HISTORY_FILE, EpochRecord, warnings)
    system = _read_jsonl(path / SYSTEM_FILE, SystemSample, warnings)
    metrics, source = None, None
    if (path / METRICS_FILE).is_file():
        try:
            data = _read_json(path / METRICS_FILE)
            metrics = EvalMetrics.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError, RunFormatError) as error:
            warnings.append(f"{METRICS_FILE} is malformed: {error}")
        else:
            source = data.get("source") if isinstance(data.get("source"), dict) else None
    else:
        warnings.append(f"{METRICS_FILE} is missing")
    return Run(path, config, history, system, metrics, warnings, source)


def find_runs(*roots: str | Path) -> list[Path]:
    """Run directories (those holding config.json) directly under each root, newest name last."""
    found = []
    for root in map(Path, roots):
        if root.is_dir():
            found.extend(sorted(p for p in root.iterdir() if (p / CONFIG_FILE).is_file()))
    return found


# --- the runs the app lists ------------------------------------------------------------------------
@dataclass(frozen=True)
class RunProblem:
    name: str
    message: str


@dataclass(frozen=True)
class RunListing:
    runs: tuple[Run, ...]
    problems: tuple[RunProblem, ...]


def run_roots() -> tuple[Path, ...]:
    """weights/runs/, runs/ and the folders named in MASKAPP_RUN_DIRS."""
    extra = [Path(p) for p in os.environ.get(RUN_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return (*RUN_ROOTS, *extra)


def load_runs(roots: Iterable[Path] | None = None) -> RunListing:
    """Every run under the roots; one that cannot be read becomes a problem, the others still load."""
    roots = run_roots() if roots is None else tuple(roots)
    runs, problems = [], []
    for path in find_runs(*roots):
        try:
            runs.append(load_run(path))
        except (RunFormatError, OSError) as error:
            logger.warning("run %s skipped: %s", path, error)
            problems.append(RunProblem(path.name, str(error)))
    return RunListing(tuple(runs), tuple(problems))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_for_weights(weights: Path, runs: Iterable[Run], checkpoint_config: dict | None = None) -> Run | None:
    """The run that made the served weights: its model.pt is byte-identical, or (for a checkpoint
    copied another way) its config.json is the config saved in the checkpoint."""
    runs = list(runs)
    if weights.is_file():
        size, digest = weights.stat().st_size, None
        for run in runs:
            candidate = run.path / MODEL_FILE
            if candidate.is_file() and candidate.stat().st_size == size:
                digest = digest or file_sha256(weights)
                if file_sha256(candidate) == digest:
                    return run
    if checkpoint_config:
        for run in runs:
            if run.config == json.loads(json.dumps(checkpoint_config, default=str)):
                return run
    return None
