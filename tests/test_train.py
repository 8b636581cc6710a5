"""Tiny-subset training of both models, end to end on real images, writes a complete run."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from maskapp import PROJECT_ROOT
from maskapp.cli import build_parser
from maskapp.config import DEFAULT_DATA, TrainConfig, config_from_args
from maskapp.errors import ConfigError, OutputError
from maskapp.training import prepare as prepare_module
from maskapp.training import train as train_module
from maskapp.training.data import Sample, split_for
from maskapp.training.evaluate import training_config
from maskapp.training.pack import read_pack
from maskapp.training.runs import load_run, load_runs
from maskapp.training.train import (
    AugmentedFaces,
    Distributed,
    class_weights,
    fit,
    prepare_data,
    worker_batches,
)
from maskapp.vision.model import load_checkpoint
from maskapp.vision.presets import InputSpec
from tests.conftest import make_class_folders, run_cli

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


# The command-line flags of the quickest real training run: one epoch of 64 px faces.
ONE_TINY_EPOCH = ("--epochs", "1", "--batch-size", "8", "--input-size", "64", "--augment-views", "1")


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


def test_a_second_stage_starts_from_the_given_weights_with_a_cosine_rate(tiny_data, tmp_path):
    first = fit(_tiny_config(tiny_data, tmp_path, "mobilenet_v2", epochs=1, name="first"))
    frozen_rate = _tiny_config(
        tiny_data, tmp_path, "mobilenet_v2", epochs=1, lr=0.0, frozen_blocks=0, name="same"
    )
    carried = fit(dataclasses.replace(frozen_rate, init_weights=str(first / "model.pt")))
    before, after = (load_checkpoint(run / "model.pt").state_dict for run in (first, carried))
    assert torch.equal(before["features.0.0.weight"], after["features.0.0.weight"])
    assert torch.equal(before["head.4.weight"], after["head.4.weight"])
    cosine = fit(
        dataclasses.replace(
            frozen_rate,
            lr=0.001,
            epochs=2,
            lr_schedule="cosine",
            init_weights=str(first / "model.pt"),
            name="cos",
        )
    )
    assert [record.lr for record in load_run(cosine).history] == pytest.approx([0.001, 0.0005])


def test_a_run_past_its_minutes_stops_after_that_epoch_and_still_saves_its_best(tiny_data, tmp_path):
    run_dir = fit(_tiny_config(tiny_data, tmp_path, "cnn", epochs=3, max_minutes=1e-6))
    run = load_run(run_dir)
    assert [r.epoch for r in run.history] == [1]
    assert load_checkpoint(run_dir / "model.pt").architecture == "cnn"
    assert run.metrics is not None


def test_a_run_stopped_in_its_threshold_pass_has_already_written_its_best_model(
    tiny_data, tmp_path, monkeypatch
):
    def stopped(*_args):  # Ctrl-C, or a lease ending, during the pass over the validation split
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "validation_threshold", stopped)
    with pytest.raises(KeyboardInterrupt):
        fit(_tiny_config(tiny_data, tmp_path, "cnn", epochs=1))
    checkpoint = load_checkpoint(tmp_path / "cnn" / "model.pt")
    assert checkpoint.architecture == "cnn" and checkpoint.input_spec.input_size == 64


def test_weights_of_another_model_are_refused_with_one_line(tiny_data, tmp_path):
    cnn = fit(_tiny_config(tiny_data, tmp_path, "cnn", epochs=1))
    result = run_cli(
        *("train", "--data", str(tiny_data), "--input-size", "64"),
        *("--init-weights", str(cnn / "model.pt"), "--out", str(tmp_path)),
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {cnn / 'model.pt'} is a cnn at 64 px; this run trains a mobilenet_v2 at 64 px: "
        "give --model and --input-size to match"
    ]


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
        *ONE_TINY_EPOCH,
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
    result = run_cli("train", "--optimizer", "rmsprop", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: invalid optimizer 'rmsprop'; choose one of sgd, adam"


def test_folder_without_classes_exits_2(tmp_path):
    (tmp_path / "flat").mkdir()
    result = run_cli("train", "--data", str(tmp_path / "flat"), "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert "no class subfolders" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_with_an_unknown_class_name_exits_2_naming_the_allowed(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=2)
    (data / "with_mask").rename(data / "cats")
    result = run_cli("train", "--data", str(data), "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown class name 'cats'")
    assert "allowed: with_mask, mask_worn_incorrectly, without_mask" in line


def test_weights_for_other_classes_are_refused_with_one_line(tiny_data, tmp_path):
    result = run_cli(
        *("train", "--data", str(tiny_data), "--out", str(tmp_path)),
        *("--init-weights", "weights/mask_classifier.pt", "--frozen-blocks", "0"),
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {PROJECT_ROOT / 'weights' / 'mask_classifier.pt'} was trained for classes "
        "['with_mask', 'mask_worn_incorrectly', 'without_mask']; the data has ['with_mask', 'without_mask']"
    )
    assert "Traceback" not in result.stderr


def test_class_weights_follow_the_power_of_the_class_frequencies():
    labels = np.array([0] * 400 + [1] * 25 + [2] * 100)
    square_root = class_weights(labels, 3, power=TrainConfig().class_weight_power).numpy()  # 0.5
    balanced = class_weights(labels, 3, power=1.0).numpy()
    uniform = class_weights(labels, 3, power=0.0).numpy()
    assert square_root[1] / square_root[0] == pytest.approx(4.0)  # sqrt(400 / 25)
    assert balanced[1] / balanced[0] == pytest.approx(16.0)
    assert balanced * np.array([400, 25, 100]) == pytest.approx(np.full(3, balanced[0] * 400))
    assert uniform.tolist() == pytest.approx([1.0, 1.0, 1.0])
    for weights in (square_root, balanced, uniform):
        assert weights.mean() == pytest.approx(1.0)


def test_a_class_weight_power_outside_0_to_1_is_one_error_line(tmp_path):
    result = run_cli("train", "--class-weight-power", "2", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: class-weight-power must be in [0, 1], got 2.0"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--lr", "-1"), "lr must be a number, 0 or more, got -1.0"),
        (("--lr", "nan"), "lr must be a number, 0 or more, got nan"),
        (("--momentum", "1"), "momentum must be in [0, 1), got 1.0"),
        (("--weight-decay", "-0.1"), "weight-decay must be 0 or more, got -0.1"),
        (("--max-minutes", "-1"), "max-minutes must be 0 (no limit) or more, got -1.0"),
    ],
)
def test_an_optimiser_setting_out_of_range_is_refused_before_any_data_is_read(flags, message):
    with pytest.raises(ConfigError) as raised:
        TrainConfig(**{flags[0][2:].replace("-", "_"): float(flags[1])})
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"split": (float("nan"), 0.5, 0.5)}, "split fractions must be three numbers from 0 to 1"),
        ({"split": (1.0, 0.0, 0.0)}, "train and val above 0"),
        ({"split": (1.5, -0.25, -0.25)}, "split fractions must be three numbers from 0 to 1"),
        ({"frozen_blocks": -1}, "frozen-blocks must be 0 to 19"),
        ({"frozen_blocks": 99}, "frozen-blocks must be 0 to 19"),
        ({"augment_views": 0}, "augment-views must be 1 or more"),
        ({"workers": -1}, "workers must be 0 or more"),
        ({"hash_distance": 300}, "hash-distance must be 0 to 256"),
        ({"max_per_class": -1}, "max-per-class must be 0 or more"),
    ],
)
def test_a_data_setting_out_of_range_is_refused_before_any_data_is_read(setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(**setting)


def test_a_nan_split_is_one_error_line(tmp_path):
    result = run_cli("train", "--split", "nan", "0.5", "0.5", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: split fractions must be three numbers")
    assert len(result.stderr.splitlines()) == 1


def _pack_data(tiny_data, out, *flags) -> subprocess.CompletedProcess:
    return run_cli(
        *("pack-data", str(out), "--data", str(tiny_data)),
        *("--input-size", "64", *flags),
        timeout=300,
    )


def test_a_pack_trains_like_the_data_folders_it_was_made_from(tiny_data, tmp_path, caplog):
    pack = tmp_path / "tiny.npz"
    result = _pack_data(tiny_data, pack, "--splits", "train", "val")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"wrote {pack} (")
    here = _tiny_config(tiny_data, tmp_path, "cnn", epochs=1, name="here")
    from_folders = json.loads((fit(here) / "config.json").read_text())
    # The pack is read from anywhere: the data folders given to train are ignored.
    packed_config = dataclasses.replace(
        here, data=("no/such/folder",), pack=str(pack), workers=2, name="p", seed=here.seed + 1
    )
    with caplog.at_level("WARNING"):
        packed = fit(packed_config)
    assert "--pack fixes the split: data ('no/such/folder',)" in caplog.text  # said, not silently dropped
    from_pack = json.loads((packed / "config.json").read_text())
    assert from_pack["training_seed"] == here.seed + 1  # what drew its augmentation: kept in the record
    for key in ("class_names", "near_duplicate_groups", "face_cropper", "data", "seed", "split"):
        assert from_pack[key] == from_folders[key]
    for split in ("train", "val"):
        assert from_pack["prepared"][split] == from_folders["prepared"][split]
    assert "test" not in from_pack["prepared"] and from_pack["pack"] == str(pack)
    assert not (packed / "metrics.json").exists()  # no test split packed: `evaluate` measures it
    assert load_run(packed).history[0].train_accuracy > 0


def test_a_pack_keeps_its_squares_up_to_the_webp_loss_and_resizes_them_for_another_input(tiny_data, tmp_path):
    pack = tmp_path / "tiny.npz"
    assert _pack_data(tiny_data, pack, "--quality", "95").returncode == 0
    config = _tiny_config(tiny_data, tmp_path, "cnn")
    single = Distributed(0, 1, torch.device("cpu"))
    original = prepare_data(config, InputSpec(64), single).prepared
    unpacked = read_pack(pack, InputSpec(64)).prepared
    for split in ("train", "val", "test"):
        assert np.array_equal(unpacked[split].labels, original[split].labels)
        difference = np.abs(unpacked[split].images.astype(int) - original[split].images).mean()
        assert 0 < difference < 4  # lossy, but the same faces
    larger = read_pack(pack, InputSpec(96)).prepared["val"].images
    assert larger.shape[1:] == (InputSpec(96).resize_size,) * 2 + (3,)


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04" + b"\x00" * 200])  # the second: cut short
def test_a_file_that_is_not_a_pack_is_one_error_line(tmp_path, content):
    not_a_pack = tmp_path / "photo.npz"
    not_a_pack.write_bytes(content)
    result = run_cli("train", "--pack", str(not_a_pack), "--out", str(tmp_path), timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot read {not_a_pack} as a training pack")
    assert line.endswith("allowed: a file written by `python -m maskapp pack-data`")


def test_augmentation_in_worker_processes_is_seeded_and_follows_the_order():
    images = np.stack([np.full((74, 74, 3), value, np.uint8) for value in range(0, 240, 20)])
    labels = torch.arange(len(images))
    never = np.zeros(len(images), dtype=bool)
    faces = AugmentedFaces(images, labels, never, InputSpec(64), np.random.default_rng(0))
    order = np.random.default_rng(0).permutation(len(images))

    def epoch(seed):
        return list(worker_batches(faces, order, batch_size=4, workers=2, seed=seed))

    first, again, other = epoch(7), epoch(7), epoch(8)
    assert [len(targets) for _, targets in first] == [4, 4, 4]
    assert torch.cat([targets for _, targets in first]).tolist() == order.tolist()
    assert first[0][0].shape == (4, 3, 64, 64)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])
    # Each view is its own image: brightness jitter is at most 25%, so the order of brightness holds.
    means = torch.cat([inputs.mean(dim=(1, 2, 3)) for inputs, _ in first])
    darkest, brightest = int(np.argmin(order)), int(np.argmax(order))
    assert means[darkest] < means[brightest]


def test_mobilenet_weights_carry_over_to_another_input_size(tiny_data, tmp_path):
    first = fit(_tiny_config(tiny_data, tmp_path, "mobilenet_v2", epochs=1, name="small"))
    larger = _tiny_config(
        tiny_data, tmp_path, "mobilenet_v2", epochs=1, input_size=96, lr=0.0, frozen_blocks=0, name="large"
    )
    carried = fit(dataclasses.replace(larger, init_weights=str(first / "model.pt")))
    before, after = (load_checkpoint(run / "model.pt") for run in (first, carried))
    assert after.input_spec.input_size == 96
    assert torch.equal(before.state_dict["head.4.weight"], after.state_dict["head.4.weight"])


def test_averaged_runs_are_a_run_with_the_mean_weights_and_their_own_threshold(tiny_data, tmp_path):
    first = fit(_tiny_config(tiny_data, tmp_path, "mobilenet_v2", epochs=1, frozen_blocks=0, name="a"))
    second_config = _tiny_config(tiny_data, tmp_path, "mobilenet_v2", epochs=1, frozen_blocks=0, name="b")
    second = fit(dataclasses.replace(second_config, init_weights=str(first / "model.pt"), lr=0.01))
    train_cache = _prepared_cache_of(second_config, "train")
    train_cache.unlink()  # averaging needs val and test only: it must not prepare the training faces again
    result = run_cli(
        "average-weights",
        *(str(first / "model.pt"), str(second / "model.pt"), "--out", str(tmp_path / "soup")),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = load_run(tmp_path / "soup")
    assert run.warnings == [] and run.history == [] and run.metrics is not None
    assert [source["weights"] for source in run.config["averaged_from"]] == [
        str(first / "model.pt"),
        str(second / "model.pt"),
    ]
    assert run.config["noncompliant_threshold"] is not None
    runs = (first, second, tmp_path / "soup")
    a, b, mean = (load_checkpoint(path / "model.pt").state_dict for path in runs)
    key = "features.18.0.weight"
    assert not torch.equal(a[key], b[key])
    assert torch.allclose(mean[key], (a[key] + b[key]) / 2)
    assert not train_cache.exists()


def _prepared_cache_of(config: TrainConfig, split_name: str):
    """The cache file `prepare` writes for one split of `config`'s seeded split."""
    samples = split_for(config).of(split_name)
    spec = InputSpec(config.input_size)
    return prepare_module._cache_path(samples, spec, prepare_module.detector_cropper()[0])


def test_runs_of_different_models_are_not_averaged(tiny_data, tmp_path):
    mobilenet = fit(_tiny_config(tiny_data, tmp_path, "mobilenet_v2", epochs=1))
    cnn = fit(_tiny_config(tiny_data, tmp_path, "cnn", epochs=1))
    result = run_cli(
        "average-weights",
        *(str(mobilenet / "model.pt"), str(cnn / "model.pt"), "--out", str(tmp_path / "soup")),
        timeout=300,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"error: {cnn / 'model.pt'} has architecture cnn, {mobilenet / 'model.pt'} has mobilenet_v2; "
        "allowed: runs of one model, classes and input size"
    )


def test_a_run_of_that_name_is_not_replaced(tiny_data, tmp_path):
    """A typo in --name must not wipe a shipped run: refused before any data is prepared."""
    taken = tmp_path / "cnn"
    taken.mkdir()
    (taken / "config.json").write_text("{}")
    with pytest.raises(OutputError, match=r"already holds config.json, which this run would replace"):
        fit(_tiny_config(tiny_data, tmp_path, "cnn", epochs=1))
    assert (taken / "config.json").read_text() == "{}"
    shipped = str(PROJECT_ROOT / "weights" / "runs" / "cnn_3class" / "model.pt")
    second = str(PROJECT_ROOT / "weights" / "runs" / "cnn" / "model.pt")
    result = run_cli("average-weights", shipped, second, "--out", str(taken), timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "already holds config.json, which the averaged run would replace" in line
    assert (taken / "config.json").read_text() == "{}"


def test_a_run_name_that_is_not_a_plain_folder_name_is_refused_before_any_work(tmp_path):
    """--name ../../x wrote the run two folders above --out."""
    out = tmp_path / "a" / "b" / "runs"
    result = run_cli("train", "--model", "cnn", "--out", str(out), "--name", "../../x", timeout=300)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: name '../../x' is not a plain folder name; allowed: one folder name")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == []
    for name in ("..", ".", "a/b", "/abs", "a\\b", "x\0y", "é" * 128):
        with pytest.raises(ConfigError, match="is not a plain folder name"):
            TrainConfig(name=name)
    assert TrainConfig(name="cnn 3class.v2").name == "cnn 3class.v2"


def test_a_damaged_cache_of_prepared_images_is_made_again(tmp_path, caplog):
    """Ctrl-C or a full disk while the cache was written: the next run prepares the images again."""
    cache = tmp_path / "cache.npz"
    np.savez(
        cache,
        images=np.zeros((2, 8, 8, 3), np.uint8),
        labels=np.zeros(2),
        datasets=np.array(["a", "b"]),
        counts=np.array([0, 0]),
    )
    assert prepare_module._read_cache(cache) is not None
    cache.write_bytes(cache.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        assert prepare_module._read_cache(cache) is None
    assert "is damaged" in caplog.text and "preparing the images again" in caplog.text


def test_a_cache_folder_that_cannot_be_written_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog):
    """A read-only checkout (or a full disk): training and `evaluate --split` stopped with a PermissionError
    traceback after all the images were prepared; the cache only saves time, so the run goes on."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    monkeypatch.setattr(prepare_module, "CACHE_DIR", a_file / "prepared")  # no folder can be made there
    folders = make_class_folders(tmp_path / "data", per_class=2)
    samples = [
        Sample(path, path.parent.name, "data", None) for path in sorted(folders.glob("*/*")) if path.is_file()
    ]
    spec = InputSpec(input_size=32)
    with caplog.at_level("WARNING"):
        prepared = prepare_module.prepare(samples, ("with_mask", "without_mask"), spec)
    assert prepared.images.shape == (4, spec.resize_size, spec.resize_size, 3)
    assert sorted(prepared.labels.tolist()) == [0, 0, 1, 1]
    assert "cannot keep the prepared images" in caplog.text and "prepared again next run" in caplog.text
    assert a_file.read_text() == "not a folder"


def test_one_checkpoint_given_twice_is_not_averaged(tmp_path):
    shipped = str(PROJECT_ROOT / "weights" / "runs" / "cnn_3class" / "model.pt")
    result = run_cli("average-weights", shipped, shipped, "--out", str(tmp_path / "soup"), timeout=120)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert (
        line.startswith("error: a weights file is given twice") and "allowed: two or more different" in line
    )


def test_average_weights_reads_relative_paths_from_the_working_directory(tmp_path):
    """Its --out was relative to the working directory but its inputs to the project's folder: run from
    elsewhere, two files right there 'did not exist' (or the project's files of those names were used)."""
    shutil.copy(PROJECT_ROOT / "weights" / "runs" / "cnn_3class" / "model.pt", tmp_path / "a.pt")
    (tmp_path / "b.pt").write_text("not a checkpoint")
    result = subprocess.run(
        [sys.executable, "-m", "maskapp", "average-weights", "a.pt", "b.pt", "--out", "soup"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(tmp_path / "b.pt") in line and "not a readable maskapp checkpoint" in line


@pytest.mark.parametrize("quality", ["0", "101", "-5"])
def test_a_pack_quality_out_of_range_is_refused_before_the_data_is_prepared(tmp_path, quality):
    """It was checked only when the pack was written: after minutes of preparing the shared data."""
    result = run_cli("pack-data", str(tmp_path / "p.npz"), "--quality", quality, timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"error: WebP quality {quality} is out of range; allowed: 1 to 100\n"
    assert not (tmp_path / "p.npz").exists()


# --- where relative paths go -------------------------------------------------------------------------
RELATIVE_PATH_CASES = {  # the command from a scratch working directory; what its error names there
    "init-weights": (["train", "--out", "runs", "--init-weights", "start.pt"], "{here}/start.pt is a cnn at"),
    "pack": (
        ["train", "--out", "runs", "--pack", "photo.npz"],
        "cannot read {here}/photo.npz as a training pack",
    ),
    "data": (["train", "--out", "runs", "--data", "flat"], "{here}/flat has no class subfolders"),
    "pack-data --data": (["pack-data", "p.npz", "--data", "flat"], "{here}/flat has no class subfolders"),
}


@pytest.mark.parametrize("case", list(RELATIVE_PATH_CASES))
def test_train_and_pack_data_read_relative_paths_from_the_working_directory(tmp_path, case):
    """They read --data, --pack and --init-weights, and wrote --out, from the project's folder while every
    other command used the working directory: `cd /tmp && train --out runs` wrote into the project, and
    files right there 'did not exist' (or the project's files of those names were used)."""
    shutil.copy(PROJECT_ROOT / "weights" / "runs" / "cnn_3class" / "model.pt", tmp_path / "start.pt")
    (tmp_path / "photo.npz").write_bytes(b"not a zip")
    (tmp_path / "flat").mkdir()
    args, error = RELATIVE_PATH_CASES[case]
    result = run_cli(*args, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: " + error.format(here=tmp_path))
    assert (tmp_path / "runs").is_dir() == ("--out" in args)  # made before the inputs are read


def test_a_run_trained_from_another_folder_records_its_paths_absolute(tmp_path):
    """Relative --data and --out from the working directory; the run lands there and its config.json says
    where, read back as the Metrics page reads runs."""
    make_class_folders(tmp_path / "data", per_class=8)
    flags = ("--model", "cnn", *ONE_TINY_EPOCH)
    result = run_cli(
        "train", "--data", "data", "--out", "runs", "--name", "r", *flags, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())
    assert config["data"] == [str(tmp_path / "data")] and config["out"] == str(tmp_path / "runs")
    assert config["run_dir"] == str(tmp_path / "runs" / "r")
    (run,) = load_runs([tmp_path / "runs"]).runs
    assert run.name == "r" and len(run.history) == 1 and run.metrics is not None


def test_the_defaults_point_into_the_project_from_any_working_directory(tmp_path, monkeypatch):
    """Only typed paths follow the working directory: the default data folders and runs folder, and the
    project-relative paths older runs recorded (what `evaluate --split` reads), stay the project's."""
    monkeypatch.chdir(tmp_path)
    default = config_from_args(build_parser().parse_args(["train"]), TrainConfig)
    assert default.data_paths() == [(PROJECT_ROOT / d).resolve() for d in DEFAULT_DATA]
    assert all(path.is_dir() for path in default.data_paths())
    assert train_module._runs_folder(default) == PROJECT_ROOT / "runs"
    recorded = training_config(PROJECT_ROOT / "weights" / "runs" / "cnn_3class" / "model.pt")
    assert recorded.data == DEFAULT_DATA and all(path.is_dir() for path in recorded.data_paths())
    typed = config_from_args(
        build_parser().parse_args(["train", "--data", "../x", "--out", "r"]), TrainConfig
    )
    assert (
        typed.data_paths() == [tmp_path.parent / "x"] and train_module._runs_folder(typed) == tmp_path / "r"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--out", "", "--pack", "photo.npz"],
        ["train", "--data", "", "--out", "runs"],
        ["pack-data", "p.npz", "--data", " "],
        ["quantize-detector", "--data", "", "--out", "live.onnx"],
    ],
)
def test_an_empty_path_with_a_default_is_one_error_line(tmp_path, args):
    """An empty --out or --data (an unset shell variable) was the project folder: the run went among the
    project's files, or its own folders (app_pages, maskapp, ...) were read as classes."""
    (tmp_path / "photo.npz").write_bytes(b"not a zip")
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    flag = args[args.index("") - 1] if "" in args else "--data"
    assert result.stderr == (
        f"error: {flag} is empty (an unset shell variable?); allowed: a path, or no {flag} for its default\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["photo.npz"]
