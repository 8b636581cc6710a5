"""`python -m maskapp average-weights`: runs fine-tuned from one another, averaged into one model.

Weights fine-tuned from a common start sit in one basin of the loss, so their mean is a model too,
often better than either ("model soups", Wortsman et al., 2022). The result is a run directory like
train's: its threshold chosen on the validation split and its figures on the test split of the data
the runs were trained on, with no epochs of its own.
"""

from __future__ import annotations

import logging
import platform
from datetime import datetime
from pathlib import Path

import torch

from maskapp.config import SPLIT_FIELDS
from maskapp.errors import CheckpointError
from maskapp.outputs import require_new_folder
from maskapp.training.evaluate import training_config
from maskapp.training.runs import CONFIG_FILE, HISTORY_FILE, MODEL_FILE, SYSTEM_FILE, file_sha256, write_json
from maskapp.training.sysmon import SystemMonitor
from maskapp.training.train import Distributed, prepare_data, validation_threshold, write_test_metrics
from maskapp.vision.model import Checkpoint, load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


def _check_compatible(paths: list[Path], checkpoints: list[Checkpoint]) -> None:
    first = checkpoints[0]
    for path, checkpoint in zip(paths[1:], checkpoints[1:], strict=True):
        for what in ("architecture", "class_names", "input_spec"):
            if getattr(checkpoint, what) != getattr(first, what):
                raise CheckpointError(
                    f"{path} has {what} {getattr(checkpoint, what)}, {paths[0]} has {getattr(first, what)}; "
                    "allowed: runs of one model, classes and input size"
                )
    configs = [training_config(path, checkpoint) for path, checkpoint in zip(paths, checkpoints, strict=True)]
    if len({tuple(getattr(config, k) for k in SPLIT_FIELDS) for config in configs}) > 1:
        raise CheckpointError(
            f"the runs were trained on different data or splits ({', '.join(SPLIT_FIELDS)}); "
            "allowed: runs of one data split"
        )


def average_state_dicts(checkpoints: list[Checkpoint]) -> dict[str, torch.Tensor]:
    """The mean of each floating-point tensor; counters (BatchNorm's batches seen) from the first."""
    averaged = {}
    for key, first in checkpoints[0].state_dict.items():
        if first.is_floating_point():
            stacked = torch.stack([c.state_dict[key].float() for c in checkpoints])
            averaged[key] = stacked.mean(0).to(first.dtype)
        else:
            averaged[key] = first
    return averaged


def average_runs(weights: list[Path], out_dir: Path) -> Path:
    """The averaged model of `weights` (two or more checkpoints) as a run directory at `out_dir`."""
    if len(weights) < 2:
        raise CheckpointError(f"got {len(weights)} weights file; allowed: two or more to average")
    require_new_folder(out_dir, "the averaged run")  # an earlier run there, its inputs among them perhaps
    # Relative to the working directory, as --out is (they were taken from the project's folder).
    paths = [Path(path).absolute() for path in weights]
    if len({path.resolve() for path in paths}) < len(paths):
        raise CheckpointError(
            "a weights file is given twice (it would weigh double, or average to itself); allowed: two or "
            "more different checkpoints"
        )
    checkpoints = [load_checkpoint(path) for path in paths]
    _check_compatible(paths, checkpoints)
    first = checkpoints[0]
    model = first.build()
    model.load_state_dict(average_state_dicts(checkpoints))
    config = training_config(paths[0], first)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / HISTORY_FILE).write_text("")  # no epochs of its own
    (out_dir / SYSTEM_FILE).unlink(missing_ok=True)
    with SystemMonitor(out_dir / SYSTEM_FILE):
        # Its threshold is chosen on val and its figures read on test: the training split is not needed.
        single = Distributed(0, 1, torch.device("cpu"))
        data = prepare_data(config, first.input_spec, single, splits=("val", "test"))
        threshold = validation_threshold(model, first.class_names, first.input_spec, data.prepared["val"])
        description = {
            **{k: getattr(config, k) for k in (*SPLIT_FIELDS, "model", "input_size")},
            "averaged_from": [
                {"weights": str(given), "sha256": file_sha256(path)}
                for given, path in zip(weights, paths, strict=True)
            ],
            "class_names": list(first.class_names),
            "data_counts": data.counts,
            "face_cropper": data.face_cropper,
            "noncompliant_threshold": threshold,
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "started": datetime.now().isoformat(timespec="seconds"),
            "run_dir": str(out_dir),
        }
        write_json(out_dir / CONFIG_FILE, description)
        spec = first.input_spec
        save_checkpoint(out_dir / MODEL_FILE, model, first.architecture, first.class_names, spec, description)
        write_test_metrics(out_dir, model, first.class_names, spec, data.prepared.get("test"), threshold)
    return out_dir
