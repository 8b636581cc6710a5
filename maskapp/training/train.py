"""`python -m maskapp train`: data folders -> seeded split -> augmentation -> training -> a run directory.

MobileNetV2 keeps its first `frozen_blocks` blocks frozen; their outputs for several augmented views
of each image are computed once, so each epoch only runs the last blocks and the head (what the
field does when compute is short). The baseline CNN trains end to end on augmented images.
Runs under torchrun as DistributedDataParallel (gloo on CPU, nccl on GPU). On a machine without the
data folders it trains from a pack (`pack-data`, then `train --pack`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as torch_dist
import torchvision
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, get_worker_info
from tqdm import tqdm

from maskapp import PROJECT_ROOT
from maskapp.config import SPLITS, TrainConfig, project_path
from maskapp.errors import CheckpointError, DataError
from maskapp.labels import WITHOUT_MASK
from maskapp.outputs import ensure_writable_file, ensure_writable_folder, require_new_folder
from maskapp.training.augment import AugmentConfig, augment
from maskapp.training.data import split_for
from maskapp.training.evaluate import ALL_FOLDERS, choose_noncompliant_threshold, compute_metrics, predict_rgb
from maskapp.training.pack import TrainingData, check_pack_settings, read_pack, training_data, write_pack
from maskapp.training.prepare import PreparedSet, detector_cropper, prepare
from maskapp.training.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SYSTEM_FILE,
    EpochRecord,
    append_jsonl,
    write_json,
)
from maskapp.training.sysmon import SystemMonitor
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.model import Checkpoint, build_model, load_checkpoint, save_checkpoint
from maskapp.vision.presets import InputSpec, to_model_input

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()


def setup_distributed() -> Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch_dist.init_process_group(backend)
    rank = torch_dist.get_rank()
    if backend == "nccl":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return Distributed(rank, world_size, torch.device("cuda", local_rank))
    return Distributed(rank, world_size, torch.device("cpu"))


def augmented_view(image: np.ndarray, spec: InputSpec, rng: np.random.Generator, occludable) -> torch.Tensor:
    """One random training view as the model takes it; `occludable`: an unmasked face that may get an
    object over its mouth."""
    return to_model_input(augment(image, AugmentConfig(), rng, may_occlude=bool(occludable)), spec)


def augmented_batch(
    images: np.ndarray, spec: InputSpec, rng: np.random.Generator, occludable: np.ndarray
) -> torch.Tensor:
    return torch.stack(
        [augmented_view(image, spec, rng, flag) for image, flag in zip(images, occludable, strict=True)]
    )


class AugmentedFaces(Dataset):
    """Training images, one augmented view per item: in the main process with the run's generator, or in
    DataLoader worker processes (threads stay bound by the GIL), each with its own generator."""

    def __init__(
        self, images: np.ndarray, labels: torch.Tensor, occludable: np.ndarray, spec: InputSpec, rng
    ):
        self.images, self.labels, self.occludable, self.spec = images, labels, occludable, spec
        self.rng = rng  # a worker's copy gets its own from seed_worker

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view = augmented_view(self.images[index], self.spec, self.rng, self.occludable[index])
        return view, self.labels[index]


def seed_worker(_worker_id: int) -> None:
    info = get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)


def worker_batches(
    dataset: AugmentedFaces, order: np.ndarray, batch_size: int, workers: int, seed: int
) -> DataLoader:
    """Batches of `dataset` in `order`, augmented by `workers` processes (0: in this one); the same seed
    gives the same batches."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order.tolist(),
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
    )


def eval_batch(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    return torch.stack([to_model_input(image, spec) for image in images])


def occludable_mask(prepared: PreparedSet, class_names: tuple[str, ...]) -> np.ndarray:
    if WITHOUT_MASK not in class_names:
        return np.zeros(len(prepared.labels), dtype=bool)
    return prepared.labels == class_names.index(WITHOUT_MASK)


def class_weights(labels: np.ndarray, n_classes: int, power: float) -> torch.Tensor:
    """1 / frequency^power, scaled to average 1 (TrainConfig.class_weight_power)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.maximum(counts, 1.0) ** -power
    return torch.tensor(weights * n_classes / weights.sum(), dtype=torch.float32)


class TailModel(nn.Module):
    """The trainable part of a MobileNetV2 whose first blocks' outputs are cached."""

    def __init__(self, model: nn.Module, first_block: int):
        super().__init__()
        self.model, self.first_block = model, first_block

    def forward(self, cached: torch.Tensor) -> torch.Tensor:
        return self.model.forward_from(cached.float(), self.first_block)


@torch.inference_mode()
def cache_block_outputs(
    model, first_block, images, occludable, spec, rng, views, batch_size, desc
) -> list[torch.Tensor]:
    """Outputs of model.features[:first_block] for `views` augmented views (0 views: the eval view)."""
    prefix = model.features[:first_block].eval()
    device = next(prefix.parameters()).device
    per_view = []
    for view in range(max(views, 1)):
        chunks = []
        for start in tqdm(range(0, len(images), batch_size), desc=f"{desc} view {view + 1}", leave=False):
            chunk = images[start : start + batch_size]
            if views:
                batch = augmented_batch(chunk, spec, rng, occludable[start : start + batch_size])
            else:
                batch = eval_batch(chunk, spec)
            chunks.append(prefix(batch.to(device)).half())
        per_view.append(torch.cat(chunks))
    return per_view


def make_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    trainable = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        trainable, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


@dataclass(frozen=True)
class EpochFigures:
    loss: float
    accuracy: float


def on_device(batches, device: torch.device):
    for inputs, targets in batches:
        yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def train_one_epoch(network, optimizer, batches, total, desc, show, weights) -> EpochFigures:
    network.train()
    loss_sum, correct, seen = 0.0, 0, 0
    progress = tqdm(batches, total=total, desc=desc, unit="batch", disable=not show, leave=False)
    for inputs, targets in on_device(progress, weights.device):
        optimizer.zero_grad(set_to_none=True)
        logits = network(inputs)
        loss = nn.functional.cross_entropy(logits, targets, weight=weights)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(targets)
        correct += (logits.argmax(1) == targets).sum().item()
        seen += len(targets)
        progress.set_postfix(loss=f"{loss.item():.4f}")
    return EpochFigures(loss_sum / max(seen, 1), correct / max(seen, 1))


@torch.inference_mode()
def evaluate_batches(network, batches, weights) -> EpochFigures:
    network.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, targets in on_device(batches, weights.device):
        logits = network(inputs)
        loss_sum += nn.functional.cross_entropy(logits, targets, weight=weights, reduction="sum").item()
        correct += (logits.argmax(1) == targets).sum().item()
        seen += len(targets)
    return EpochFigures(loss_sum / max(seen, 1), correct / max(seen, 1))


def batches_of(inputs, labels: torch.Tensor, batch_size: int, order: np.ndarray | None = None):
    order = np.arange(len(labels)) if order is None else order
    for start in range(0, len(order), batch_size):
        index = torch.from_numpy(order[start : start + batch_size])
        yield (inputs(index) if callable(inputs) else inputs[index]), labels[index]


@dataclass(frozen=True)
class TrainingSetup:
    """What both trainers start from."""

    model: nn.Module
    config: TrainConfig
    data: dict[str, PreparedSet]
    spec: InputSpec
    dist: Distributed
    rng: np.random.Generator
    class_names: tuple[str, ...]


def astuple_shallow(setup: TrainingSetup) -> tuple:
    return tuple(getattr(setup, item.name) for item in fields(setup))


class CachedTrainer:
    """MobileNetV2 with frozen early blocks: epochs run over cached block outputs."""

    def __init__(self, setup: TrainingSetup):
        model, config, data, spec, dist, rng, class_names = astuple_shallow(setup)
        first_block = config.frozen_blocks
        for parameter in model.features[:first_block].parameters():
            parameter.requires_grad = False
        shard = slice(dist.rank, None, dist.world_size)
        train = data["train"]
        self.train_views = cache_block_outputs(
            model,
            first_block,
            train.images[shard],
            occludable_mask(train, class_names)[shard],
            spec,
            rng,
            config.augment_views,
            config.batch_size,
            "cache train",
        )
        self.train_labels = torch.from_numpy(train.labels[shard])
        self.val_inputs = cache_block_outputs(
            model, first_block, data["val"].images, None, spec, rng, 0, config.batch_size, "cache val"
        )[0]
        self.val_labels = torch.from_numpy(data["val"].labels)
        self.tail = TailModel(model, first_block)
        self.network = DistributedDataParallel(self.tail) if dist.world_size > 1 else self.tail
        self.steps = -(-len(self.train_labels) // config.batch_size)

    def train_batches(self, epoch: int, batch_size: int, rng: np.random.Generator):
        view = self.train_views[epoch % len(self.train_views)]
        return batches_of(view, self.train_labels, batch_size, rng.permutation(len(self.train_labels)))

    def val_batches(self, batch_size: int):
        return batches_of(self.val_inputs, self.val_labels, batch_size)


class FullTrainer:
    """End-to-end training with augmentation on the fly (the baseline CNN)."""

    def __init__(self, setup: TrainingSetup):
        model, config, data, spec, dist, rng, class_names = astuple_shallow(setup)
        shard = slice(dist.rank, None, dist.world_size)
        self.spec = spec
        self.train_labels = torch.from_numpy(data["train"].labels[shard])
        occludable = occludable_mask(data["train"], class_names)[shard]
        self.dataset = AugmentedFaces(data["train"].images[shard], self.train_labels, occludable, spec, rng)
        self.val_images = data["val"].images
        self.val_labels = torch.from_numpy(data["val"].labels)
        self.network = DistributedDataParallel(model) if dist.world_size > 1 else model
        self.steps = -(-len(self.train_labels) // config.batch_size)
        self.workers = config.workers

    def train_batches(self, epoch: int, batch_size: int, rng: np.random.Generator):
        order = rng.permutation(len(self.train_labels))
        # Workers seed their generators from this; in-process loading keeps drawing from the run's.
        seed = int(rng.integers(2**62)) if self.workers else 0
        return worker_batches(self.dataset, order, batch_size, self.workers, seed)

    def val_batches(self, batch_size: int):
        return batches_of(
            lambda i: eval_batch(self.val_images[i.numpy()], self.spec), self.val_labels, batch_size
        )


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _runs_folder(config: TrainConfig) -> Path:
    return project_path(config.out)


def _new_run_path(config: TrainConfig) -> Path:
    """The run's folder, named or timestamped; a run of that name is not replaced (a shipped run could be
    lost with a typo)."""
    name = config.name or f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}"
    return require_new_folder(_runs_folder(config) / name, "this run")


def _split_of_pack(config: TrainConfig, split_settings: dict) -> TrainConfig:
    """The config with the split settings of the data it trained on; a pack's differ from the flags
    when they were given: said, since those flags then do nothing."""
    ignored = {k: getattr(config, k) for k, v in split_settings.items() if getattr(config, k) != v}
    if ignored and config.pack:
        shown = ", ".join(f"{k} {v!r} (the pack's: {split_settings[k]!r})" for k, v in ignored.items())
        logger.warning("--pack fixes the split: %s not used for it", shown)
    return replace(config, **split_settings)


def describe_run(config, data: TrainingData, dist, run_dir) -> dict:
    return {
        **config.to_dict(),
        "class_names": list(data.class_names),
        "data_counts": data.counts,
        "near_duplicate_groups": data.near_duplicate_groups,
        "prepared": {
            s: {
                "images": len(d.labels),
                "cropped_from_photo": d.cropped_from_photo,
                "unreadable": d.unreadable,
            }
            for s, d in data.prepared.items()
        },
        "face_cropper": data.face_cropper,
        "world_size": dist.world_size,
        "device": str(dist.device),
        "device_name": torch.cuda.get_device_name(dist.device) if dist.device.type == "cuda" else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "git_commit": _git_commit(),
        "started": datetime.now().isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }


def load_data(config: TrainConfig, spec: InputSpec, dist: Distributed) -> TrainingData:
    """The pack when one is given, else the data folders split and prepared here."""
    data = read_pack(project_path(config.pack), spec) if config.pack else prepare_data(config, spec, dist)
    for name in ("train", "val"):
        if name not in data.prepared:
            raise DataError(f"{config.pack} holds no {name} split; make it with pack-data --splits train val")
    for name, prepared in data.prepared.items():
        if len(prepared.labels) == 0:
            raise_empty(name, config)
    return data


def prepare_data(
    config: TrainConfig, spec: InputSpec, dist: Distributed, splits: Sequence[str] = SPLITS
) -> TrainingData:
    """The faces of `splits` of the seeded split, prepared (or read from the cache). Only the splits a
    command uses: averaging weights or packing val alone prepared the 15,000 training photos too, about
    50 minutes on a fresh clone's empty cache."""
    split = split_for(config)
    cropper = detector_cropper()
    data = {}
    for name in splits:
        if dist.is_main:  # one process fills the cache, the others read it
            data[name] = prepare(split.of(name), split.class_names, spec, cropper, desc=f"prepare {name}")
        dist.barrier()
        if not dist.is_main:
            data[name] = prepare(split.of(name), split.class_names, spec, cropper, desc=f"prepare {name}")
    return training_data(split, data, cropper[0], config)


def pack_data(config: TrainConfig, out: Path, splits: tuple[str, ...], quality: int) -> int:
    """`python -m maskapp pack-data`: the data folders, split and prepared here, into one file."""
    single = Distributed(0, 1, torch.device("cpu"))
    check_pack_settings(splits, quality)  # before minutes of preparing the data
    ensure_writable_file(out)
    data = prepare_data(config, InputSpec(config.input_size), single, splits)
    return write_pack(out, data, splits, quality)


def raise_empty(split_name: str, config: TrainConfig):
    given = config.pack or list(config.data)
    raise DataError(f"the {split_name} split of {given} is empty; give more images per class")


def validation_threshold(model, class_names, spec, val: PreparedSet) -> float | None:
    """The P(non-compliant) threshold the classifier ships with, chosen on validation data."""
    classifier = MaskClassifier(model.cpu().eval(), class_names, spec, "")
    probs = predict_rgb(classifier, val.images, desc="val")
    return choose_noncompliant_threshold(val.labels, probs, class_names)


def test_metrics(model, class_names, spec, test: PreparedSet, threshold: float | None) -> dict:
    """Test figures through the serving classifier and its non-compliant threshold, overall and per
    data folder: what `evaluate --split test` reports (the same compute_metrics)."""
    classifier = MaskClassifier(model.cpu().eval(), class_names, spec, "", threshold)
    probs = predict_rgb(classifier, test.images, desc="test")
    return compute_metrics(test.labels, probs, class_names, threshold, test.datasets).to_dict()


def write_test_metrics(run_dir, model, class_names, spec, test: PreparedSet | None, threshold) -> None:
    if test is None:  # a pack made without it: `python -m maskapp evaluate` measures the run
        logger.info("no test split; run written to %s", run_dir)
        return
    metrics = test_metrics(model, class_names, spec, test, threshold)
    # What `evaluate --split test` records: the run's own test split of all its training folders. The
    # Metrics page groups runs by it, and named every freshly trained run as one that did not say.
    weights = str(Path(run_dir) / MODEL_FILE)
    source = {"weights": weights, "data": ALL_FOLDERS, "split": "test", "split_from": weights}
    write_json(run_dir / METRICS_FILE, {**metrics, "source": source})
    logger.info("test accuracy %.4f, run written to %s", metrics["accuracy"], run_dir)


def starting_checkpoint(config: TrainConfig, spec: InputSpec) -> Checkpoint | None:
    """The run to train further (--init-weights), checked before any data is prepared."""
    if not config.init_weights:
        return None
    checkpoint = load_checkpoint(project_path(config.init_weights))
    # MobileNetV2 pools globally, so its weights carry over to another input size; the CNN's do not.
    given_spec = checkpoint.input_spec
    if config.model == "mobilenet_v2":
        given_spec = replace(given_spec, input_size=spec.input_size)
    if checkpoint.architecture != config.model or given_spec != spec:
        given = f"{checkpoint.architecture} at {checkpoint.input_spec.input_size} px"
        raise CheckpointError(
            f"{config.init_weights} is a {given}; this run trains a {config.model} at {spec.input_size} px: "
            "give --model and --input-size to match"
        )
    return checkpoint


def initial_model(config, class_names: tuple[str, ...], spec: InputSpec, start: Checkpoint | None):
    """ImageNet-initialised, or the weights of a previous run with the same classes."""
    if start is None:
        return build_model(config.model, len(class_names), input_size=spec.input_size)
    if start.class_names != class_names:
        raise CheckpointError(
            f"{config.init_weights} was trained for classes {list(start.class_names)}; "
            f"the data has {list(class_names)}"
        )
    if start.input_spec.input_size != spec.input_size:
        logger.info("carrying %s px weights over to %s px", start.input_spec.input_size, spec.input_size)
    return start.build().train()


def fit(config: TrainConfig) -> Path:
    dist = setup_distributed()
    ensure_writable_folder(_runs_folder(config))  # before minutes of data preparation, not after
    run_path = _new_run_path(config)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + dist.rank)
    spec = InputSpec(input_size=config.input_size)
    start = starting_checkpoint(config, spec)
    data = load_data(config, spec, dist)
    # A pack's run records the data and split the pack was made from (what `evaluate --split` re-makes);
    # the seed given still drew this run's augmentation and dropout, so it is kept beside them.
    training_seed = config.seed
    config = _split_of_pack(config, data.split_settings)
    class_names = data.class_names
    model = initial_model(config, class_names, spec, start).to(dist.device)
    run_dir = run_path if dist.is_main else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    description = describe_run(config, data, dist, run_dir) if dist.is_main else {}
    description["training_seed"] = training_seed  # == seed, unless a pack fixed the split's seed
    if dist.is_main:
        write_json(run_dir / CONFIG_FILE, description)
    trainer_type = (
        CachedTrainer if config.model == "mobilenet_v2" and config.frozen_blocks > 0 else FullTrainer
    )
    with SystemMonitor(run_dir / SYSTEM_FILE) if dist.is_main else contextlib.nullcontext():
        prepared = data.prepared
        trainer = trainer_type(TrainingSetup(model, config, prepared, spec, dist, rng, class_names))
        weights = class_weights(prepared["train"].labels, len(class_names), config.class_weight_power)
        best_state = train_epochs(trainer, model, config, dist, rng, run_dir, weights.to(dist.device))
    if dist.is_main:
        model.load_state_dict(best_state)
        # The best weights reach the disk before the threshold's pass over the validation split (minutes
        # on a busy CPU), so a run stopped then still leaves its model.
        save_checkpoint(run_dir / MODEL_FILE, model, config.model, class_names, spec, description)
        threshold = validation_threshold(model, class_names, spec, prepared["val"])
        description["noncompliant_threshold"] = threshold
        write_json(run_dir / CONFIG_FILE, description)
        save_checkpoint(run_dir / MODEL_FILE, model, config.model, class_names, spec, description)
        write_test_metrics(run_dir, model, class_names, spec, prepared.get("test"), threshold)
    if dist.world_size > 1:
        torch_dist.destroy_process_group()
    return run_dir


def train_epochs(trainer, model, config, dist, rng, run_dir, weights) -> dict:
    optimizer = make_optimizer(config, model.parameters())
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if config.lr_schedule == "cosine"
        else None
    )
    best_loss, best_state = float("inf"), copy.deepcopy(model.state_dict())
    run_started = time.monotonic()
    for epoch in range(config.epochs):
        started = time.monotonic()
        batches = trainer.train_batches(epoch, config.batch_size, rng)
        figures = train_one_epoch(
            trainer.network,
            optimizer,
            batches,
            trainer.steps,
            f"epoch {epoch + 1}/{config.epochs}",
            dist.is_main,
            weights,
        )
        val = evaluate_batches(trainer.network, trainer.val_batches(config.batch_size * 2), weights)
        if val.loss < best_loss:  # keep the best epoch by validation loss
            best_loss, best_state = val.loss, copy.deepcopy(model.state_dict())
        if dist.is_main:
            record = EpochRecord(
                epoch + 1,
                figures.loss,
                figures.accuracy,
                val.loss,
                val.accuracy,
                optimizer.param_groups[0]["lr"],
                round(time.monotonic() - started, 2),
            )
            append_jsonl(run_dir / HISTORY_FILE, record)
            logger.info(
                "epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                epoch + 1,
                figures.loss,
                figures.accuracy,
                val.loss,
                val.accuracy,
            )
        if schedule is not None:
            schedule.step()
        if epoch + 1 < config.epochs and out_of_time(config.max_minutes, run_started, dist):
            logger.warning(
                "stopping after epoch %d of %d: past --max-minutes %g",
                epoch + 1,
                config.epochs,
                config.max_minutes,
            )
            break
    return best_state


def out_of_time(max_minutes: float, run_started: float, dist: Distributed) -> bool:
    """Whether the run has passed its wall-time budget; rank 0's clock decides for every rank."""
    if not max_minutes:
        return False
    passed = torch.tensor(float(time.monotonic() - run_started > max_minutes * 60), device=dist.device)
    if dist.world_size > 1:
        torch_dist.broadcast(passed, src=0)
    return bool(passed.item())
