"""Tiny-subset training of both models, end to end on real images, writes a complete run."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from maskapp.config import TrainConfig
from maskapp.training.runs import load_run
from maskapp.training.train import fit
from maskapp.vision.model import load_checkpoint
from tests.conftest import make_class_folders

pytestmark = pytest.mark.slow


def _tiny_config(data, out, model, **overrides) -> TrainConfig:
    settings = dict(
        data=(str(data),),
        model=model,
        epochs=2,
        batch_size=8,
        input_size=64,
        augment_views=1,
        out=str(out),
        name=model,
    )
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("tiny") / "data", per_class=24)


@pytest.mark.parametrize("model", ["mobilenet_v2", "cnn"])
def test_tiny_training_writes_a_complete_run(tiny_data, tmp_path, model):
    run_dir = fit(_tiny_config(tiny_data, tmp_path, model))
    run = load_run(run_dir)
    assert run.warnings == []
    assert [r.epoch for r in run.history] == [1, 2]
    assert len(run.system) >= 1 and run.system[-1].rss_mb > 0
    assert run.metrics is not None and sum(run.metrics.per_class[c].support for c in run.metrics.labels) > 0
    assert run.metrics.roc_auc is not None
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == model and config["seed"] == 42
    assert config["versions"]["torch"] and "data_counts" in config
    counts = config["data_counts"]["data"]
    assert sum(counts["train"].values()) + sum(counts["val"].values()) + sum(counts["test"].values()) == 48
    checkpoint = load_checkpoint(run_dir / "model.pt")
    assert checkpoint.class_names == ("with_mask", "without_mask")
    assert checkpoint.input_spec.input_size == 64
    assert checkpoint.architecture == model


def test_two_process_ddp_smoke_run(tiny_data, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "maskapp",
        "train",
        "--data",
        str(tiny_data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--input-size",
        "64",
        "--augment-views",
        "1",
        "--out",
        str(tmp_path),
        "--name",
        "ddp",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = load_run(tmp_path / "ddp")
    assert len(run.history) == 1 and run.metrics is not None
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2


def test_bad_settings_are_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "maskapp", "train", "--optimizer", "rmsprop", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: invalid optimizer 'rmsprop'; choose one of sgd, adam"


def test_folder_without_classes_exits_2(tmp_path):
    (tmp_path / "flat").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "maskapp", "train", "--data", str(tmp_path / "flat"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no class subfolders" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_with_an_unknown_class_name_exits_2_naming_the_allowed(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=2)
    (data / "with_mask").rename(data / "cats")
    result = subprocess.run(
        [sys.executable, "-m", "maskapp", "train", "--data", str(data), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown class name 'cats'")
    assert "allowed: with_mask, mask_worn_incorrectly, without_mask" in line
