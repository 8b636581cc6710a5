"""Settings as frozen dataclasses whose fields (each with its reason) also build the command line:
TrainConfig for training, InferenceConfig for the pipeline that serves (weights, detector, threshold,
margin)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from maskapp import DEFAULT_WEIGHTS, PROJECT_ROOT
from maskapp.errors import ConfigError, DetectorError
from maskapp.labels import check_noncompliant_threshold

DEFAULT_DATA = (
    "../shared/datasets/face-mask-ilc",
    "../shared/datasets/maskedface-net-sample",
    "../shared/datasets/face-mask-2class",
    "../shared/datasets/face-mask-12k",
)


# Where a config's paths are: one rule for every field marked "path" in its metadata. A path typed on the
# command line is relative to the working directory, as in every other command and tool, so
# config_from_args makes it absolute (and runs record it so). A relative path held in a config is a
# default pointing into the project (../shared/datasets/..., runs) or the record of an older run, made
# from the project folder: it is read from there, whatever the working directory.
def project_path(path: str | Path) -> Path:
    """A config's path as a file system path: absolute as it stands, else from the project folder."""
    return PROJECT_ROOT / path  # an absolute `path` replaces the root


def from_working_directory(path: str) -> str:
    """A path typed on the command line, `~` expanded, made absolute against the working directory. ''
    stays '': it is "none" for --pack and --init-weights."""
    return str(home_expanded(path).absolute()) if path else path


def home_expanded(text: str) -> Path:
    """A typed path with `~` as the home folder. The shell leaves `--out=~/runs` and a quoted "~/runs" as
    they are; taken literally, they made a folder named '~' in the working directory."""
    try:
        return Path(text).expanduser()
    except RuntimeError as error:  # ~user of no such user, or no home directory
        raise ConfigError(f"cannot expand {text!r} ({error}); allowed: a path without ~, or ~/...") from None


def typed_path(text: str) -> Path:
    """An argparse type for every path flag. Path("") and Path(" ") are the working directory, or a file
    named ' ' in it: an empty or blank argument (an unset shell variable, "$DIR") read or wrote there, so
    it is one error line instead; `~` is the home folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty; give a file or folder path")
    try:
        return home_expanded(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# The splits every data folder is cut into (or ships with).
SPLITS = ("train", "val", "test")
# The TrainConfig fields that decide which image lands in which split.
SPLIT_FIELDS = ("data", "seed", "split", "hash_distance", "max_per_class")
MOBILENET_BLOCKS = 19  # torchvision MobileNetV2's `features`: the stem, 17 inverted residuals, the last conv


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = field(
        default=DEFAULT_DATA,
        metadata={
            "help": "class folders (repeat --data; from the working directory, the defaults from the project "
            "folder): real badly worn masks (ilc), synthetic ones (maskedface-net, non-commercial licence) "
            "and the two 2-class sets",
            "path": True,
        },
    )
    model: str = field(default="mobilenet_v2", metadata={"help": "mobilenet_v2 (transfer) or cnn (baseline)"})
    epochs: int = field(default=12, metadata={"help": "the papers train 12 epochs"})
    batch_size: int = field(default=32, metadata={"help": "the papers' batch size"})
    optimizer: str = field(default="sgd", metadata={"help": "sgd (papers) or adam"})
    lr: float = field(default=0.001, metadata={"help": "the papers' SGD learning rate"})
    lr_schedule: str = field(
        default="constant",
        metadata={"help": "constant (papers) or cosine: decays to 0 over the epochs, for a finishing stage"},
    )
    momentum: float = field(default=0.85, metadata={"help": "the papers' SGD momentum"})
    weight_decay: float = field(
        default=1e-4, metadata={"help": "mild regularisation of the fine-tuned blocks"}
    )
    input_size: int = field(
        default=128,
        metadata={
            "help": "classifier input side; a third of the papers' 224 in compute, for live speed on CPU"
        },
    )
    seed: int = field(default=42, metadata={"help": "fixes the split, augmentation and initialisation"})
    split: tuple[float, float, float] = field(
        default=(0.65, 0.15, 0.20), metadata={"help": "train/val/test fractions, as the real-time paper"}
    )
    hash_distance: int = field(
        default=20,
        metadata={
            "help": "of 256 dHash bits; copies differ by < 20, distinct faces by > 30 on the shared data"
        },
    )
    frozen_blocks: int = field(
        default=14,
        metadata={
            "help": "MobileNetV2 blocks kept frozen with cached outputs (CPU budget); later blocks fine-tune"
        },
    )
    augment_views: int = field(
        default=3,
        metadata={"help": "augmented views cached per training image when blocks are frozen (CPU budget)"},
    )
    class_weight_power: float = field(
        default=0.5,
        metadata={
            "help": "loss weight per class = 1 / frequency^p: 0.5 lets the rare badly-worn class count more "
            "without swamping the rest; 1 balances the classes fully"
        },
    )
    init_weights: str = field(
        default="",
        metadata={
            "help": "start from this checkpoint (same model, input size and classes) instead of ImageNet; "
            "for a second, lower-rate stage",
            "path": True,
        },
    )
    pack: str = field(
        default="",
        metadata={
            "help": "train from this pack (python -m maskapp pack-data) instead of --data: on a machine "
            "without the data folders, e.g. a GPU box",
            "path": True,
        },
    )
    max_per_class: int = field(
        default=0, metadata={"help": "cap images per class and split (0: all); for smoke runs"}
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "augmentation processes for end-to-end training (0: in the main process, enough on a "
            "2-core CPU; a GPU needs several to stay busy)"
        },
    )
    max_minutes: float = field(
        default=0.0,
        metadata={
            "help": "stop after the first epoch that ends past this many minutes, keeping the best epoch "
            "(0: no limit); a lent GPU's time is fixed"
        },
    )
    out: str = field(
        default="runs",
        metadata={
            "help": "where the run directory is written (from the working directory; the default is the "
            "project's runs folder, which the Metrics page lists)",
            "path": True,
        },
    )
    name: str = field(default="", metadata={"help": "run directory name (default: model and timestamp)"})

    def __post_init__(self):
        allowed = {
            "model": ("mobilenet_v2", "cnn"),
            "optimizer": ("sgd", "adam"),
            "lr_schedule": ("constant", "cosine"),
        }
        for key, choices in allowed.items():
            if getattr(self, key) not in choices:
                raise ConfigError(f"invalid {key} {getattr(self, key)!r}; choose one of {', '.join(choices)}")
        self._check_split()
        if not 0.0 <= self.class_weight_power <= 1.0:
            raise ConfigError(f"class-weight-power must be in [0, 1], got {self.class_weight_power}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("input_size", 32)):
            if getattr(self, name) < low:
                flag = name.replace("_", "-")
                raise ConfigError(f"{flag} must be {low} or more, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr >= 0):  # 0: the weights stay as they start
            raise ConfigError(f"lr must be a number, 0 or more, got {self.lr}")
        if not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ConfigError(f"max-minutes must be 0 (no limit) or more, got {self.max_minutes}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight-decay must be 0 or more, got {self.weight_decay}")
        self._check_counts()
        self._check_name()

    def _check_name(self) -> None:
        """The run is written at out/name: a name with a separator, or '..', put it outside --out."""
        name = self.name
        plain = name not in (".", "..") and not any(c in name for c in "/\\\0")
        if name and not (plain and len(name.encode("utf-8", "surrogateescape")) <= 255):
            raise ConfigError(
                f"name {name!r} is not a plain folder name; allowed: one folder name (no '/' or '\\', "
                "not '.' or '..', up to 255 bytes), made inside --out"
            )

    def _check_split(self) -> None:
        fractions = tuple(self.split)
        in_range = len(fractions) == 3 and all(math.isfinite(f) and 0.0 <= f <= 1.0 for f in fractions)
        if not in_range or abs(sum(fractions) - 1.0) > 1e-6 or fractions[0] <= 0 or fractions[1] <= 0:
            raise ConfigError(
                "split fractions must be three numbers from 0 to 1 that add up to 1, train and val above 0 "
                f"(val picks the best epoch and the threshold), got {self.split}"
            )

    def _check_counts(self) -> None:
        ranges = {  # field: (lowest, highest, what the ends mean)
            "frozen_blocks": (
                0,
                MOBILENET_BLOCKS,
                f"0: every block trains, {MOBILENET_BLOCKS}: only the head",
            ),
            "augment_views": (1, None, "views per training image"),
            "workers": (0, None, "0: augment in the main process"),
            "hash_distance": (0, 256, "of 256 dHash bits; 0: only exact copies grouped"),
            "max_per_class": (0, None, "0: all images"),
        }
        for name, (low, high, meaning) in ranges.items():
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                allowed = f"{low} to {high}" if high is not None else f"{low} or more"
                flag = name.replace("_", "-")
                raise ConfigError(f"{flag} must be {allowed} ({meaning}), got {value}")

    def data_paths(self) -> list[Path]:
        return [project_path(d).resolve() for d in self.data]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- inference ---------------------------------------------------------------------------------------
# The face score each detector keeps by default, chosen on face-mask-detection-dev (docs/detection.md).
# These names are the detectors maskapp.vision.detect provides.
DETECTOR_THRESHOLDS: dict[str, float] = {"centerface": 0.4, "centerface-fast": 0.4, "res10": 0.5}
DETECTOR_NAMES: tuple[str, ...] = tuple(DETECTOR_THRESHOLDS)
# The sidebar slider's lowest face threshold per detector: the first 0.05 step above the best score each
# gives a blank or noise picture (res10 up to 0.14: about 100 "faces" on a grey picture at 0.05).
DETECTOR_MIN_THRESHOLDS: dict[str, float] = {"centerface": 0.05, "centerface-fast": 0.05, "res10": 0.15}
# Best mAP on face-mask-detection-dev: photos, the CLI and evaluation use it.
DEFAULT_DETECTOR = "centerface"
# For a live camera, where frame rate matters more than the smallest faces of a crowd.
LIVE_DETECTOR = "centerface-fast"
# The live detector's network quantized to int8 (`python -m maskapp quantize-detector` writes it): ours.
LIVE_DETECTOR_INT8 = PROJECT_ROOT / "weights" / "centerface_fast_int8.onnx"
# Fraction of the face box added on each side before classifying. Detector boxes run from brows to chin;
# the training crops show the whole head, so the classifier sees the mask edges and some context either way.
FACE_MARGIN = 0.15


@dataclass(frozen=True)
class QuantizeConfig:
    """How `quantize-detector` calibrates the live detector's int8 network (maskapp.training.quantize)."""

    data: str = field(
        default="../shared/datasets/face-mask-ilc",
        metadata={
            "help": "a data folder of real face photos (from the working directory, the default from the "
            "project folder), tiled into calibration frames; never face-mask-detection-dev, which scores "
            "detection",
            "path": True,
        },
    )
    frames: int = field(
        default=64,
        metadata={
            "help": "calibration frames; 64 kept the float network's AP on faces >= 32 px (README); "
            "onnxruntime holds every frame's activations: about 110 MB of memory each (7 GB for 64)"
        },
    )
    seed: int = field(default=0, metadata={"help": "fixes the photos and tilings: the same file every time"})

    def __post_init__(self):
        if not 1 <= self.frames <= 10_000:
            raise ConfigError(f"--frames {self.frames} is out of range; allowed: 1 to 10000")

    @property
    def data_path(self) -> Path:
        return project_path(self.data).resolve()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise DetectorError(f"face threshold {threshold} is out of range; allowed: 0 to 1")
    return float(threshold)


def check_face_threshold_floor(config: InferenceConfig) -> InferenceConfig:
    """The config, when its face threshold is at least its detector's floor (DETECTOR_MIN_THRESHOLDS, the
    sidebar slider's lowest). Below it a detector keeps noise: res10 at 0.05 finds about 100 "faces" in a
    blank picture. The library takes any threshold from 0 to 1 (detector sweeps measure the low ones);
    the command line and the pages hold to the floor."""
    lowest = DETECTOR_MIN_THRESHOLDS[config.detector]
    if config.face_threshold is not None and config.face_threshold < lowest:
        raise DetectorError(
            f"face threshold {config.face_threshold:g} is below the {config.detector} detector's lowest "
            f"(under it, it finds faces in a blank picture); allowed with {config.detector}: {lowest:g} to 1"
        )
    return config


def check_detector(name: str) -> str:
    if name not in DETECTOR_THRESHOLDS:
        raise DetectorError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    return name


@dataclass(frozen=True)
class InferenceConfig:
    """What a serving pipeline is built from (maskapp.vision.pipeline.load_pipeline)."""

    weights: Path = field(
        default=DEFAULT_WEIGHTS, metadata={"help": "classifier checkpoint; the default is the shipped model"}
    )
    detector: str = field(
        default=DEFAULT_DETECTOR,
        metadata={
            "help": "face detector; centerface has the best mAP on street photos",
            "choices": DETECTOR_NAMES,
        },
    )
    face_threshold: float | None = field(
        default=None,
        metadata={
            "help": "face score threshold, from the detector's lowest ("
            + ", ".join(f"{name} {value}" for name, value in DETECTOR_MIN_THRESHOLDS.items())
            + ") to 1; none: the detector's measured one ("
            + ", ".join(f"{name} {value}" for name, value in DETECTOR_THRESHOLDS.items())
            + ")"
        },
    )
    margin: float = field(
        default=FACE_MARGIN,
        metadata={"help": "share of the face box added on each side of a crop, as training cut them"},
    )
    noncompliant_threshold: float | None = field(
        default=None,
        metadata={
            "help": "call a face non-compliant once P(no mask or badly worn) reaches this (0-1); lower "
            "catches more people; none: the checkpoint's, chosen on validation data"
        },
    )

    def __post_init__(self):
        check_detector(self.detector)
        if self.face_threshold is not None:
            check_threshold(self.face_threshold)
        if not 0.0 <= self.margin <= 2.0:
            raise DetectorError(f"face margin {self.margin} is out of range; allowed: 0 to 2")
        check_noncompliant_threshold(self.noncompliant_threshold, DetectorError)

    @property
    def threshold(self) -> float:
        """The face threshold in use: the given one, else the detector's default."""
        return DETECTOR_THRESHOLDS[self.detector] if self.face_threshold is None else self.face_threshold


# --- privacy -------------------------------------------------------------------------------------------
# How faces are hidden in what maskapp shows or writes (maskapp.vision.anonymize): fill is the safe choice
# for anything shared; blur can be partly undone by recognition models.
ANONYMIZE_MODES = ("none", "blur", "fill")


def number_within(value: object, high: float, *, low: float = 0.0) -> bool:
    """A finite int or float (a bool is not a number here) above `low` and up to `high`."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return number and low < value <= high


# --- video sources -------------------------------------------------------------------------------------
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
STREAM_TIMEOUT_S = 10.0  # an unreachable camera fails within this, not after the OS's TCP timeout
MAX_STREAM_TIMEOUT_S = 600.0  # a camera that takes longer to answer is down, for a person waiting on it
ALLOWED_SOURCES = "a video file, a camera index such as 0, or an rtsp:// or http(s):// stream URL"


# --- the command line ----------------------------------------------------------------------------------
def _flag_type(hint):
    """`float | None` -> float; other annotations as they are."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_type=TrainConfig,
    only: tuple[str, ...] | None = None,
    defaults: Mapping[str, object] | None = None,
) -> None:
    """One --flag per field (or per field named in `only`), typed from the annotation, with the field's
    reason as help. A flag not given stays None (the field's default applies), unless `defaults` gives
    it another one (a command whose use differs, e.g. the live detector for video)."""
    hints = typing.get_type_hints(config_type)
    defaults = defaults or {}
    for item in dataclasses.fields(config_type):
        if only is not None and item.name not in only:
            continue
        flag = "--" + item.name.replace("_", "-")
        hint = _flag_type(hints[item.name])
        shown_default = defaults.get(item.name, item.default)
        help_text = f"{item.metadata.get('help', '')} (default: {shown_default})"
        options = {"choices": item.metadata["choices"]} if "choices" in item.metadata else {}
        if hint is Path:  # --weights: the path flags' rules, `~` and blanks (a str "path" field: below)
            hint = typed_path
        if typing.get_origin(hint) is tuple:
            element = typing.get_args(hint)[0]
            repeat = typing.get_args(hint)[-1] is Ellipsis
            options.update({"action": "append"} if repeat else {"nargs": len(typing.get_args(hint))})
            hint = element
        parser.add_argument(flag, type=hint, default=defaults.get(item.name), help=help_text, **options)


def config_from_args(args: argparse.Namespace, config_type=TrainConfig):
    """The config with every flag given; fields without a flag, or not given, keep their default. The
    paths given are made absolute from the working directory (see project_path)."""
    given = {f: getattr(args, f.name, None) for f in dataclasses.fields(config_type)}
    return config_type(**{f.name: _field_value(f, v) for f, v in given.items() if v is not None})


def _field_value(item: dataclasses.Field, value):
    """A flag's value as its field holds it: a repeated flag as a tuple, a path absolute."""
    values = value if isinstance(value, list) else [value]
    if item.metadata.get("path"):
        values = [from_working_directory(_not_empty(item, v)) for v in values]
    return tuple(values) if isinstance(value, list) else values[0]


def _not_empty(item: dataclasses.Field, path: str) -> str:
    """An empty path (an unset shell variable, "$DIR") where the field has a default: read as the project
    folder, it trained on the project's own folders or wrote the run among its files. '' is "none" only
    for the fields whose default is none (--pack, --init-weights); a blank one (" ") is never a path: it
    was read as a file named ' ' in the working directory."""
    if not path.strip() and (path or item.default != ""):
        flag = "--" + item.name.replace("_", "-")
        raise ConfigError(
            f"{flag} is empty (an unset shell variable?); allowed: a path, or no {flag} for its default"
        )
    return path
