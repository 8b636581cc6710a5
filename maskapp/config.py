"""Training settings: a frozen dataclass whose fields (with their reasons) also build the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field

from maskapp import PROJECT_ROOT

DEFAULT_DATA = ("../shared/datasets/face-mask-2class", "../shared/datasets/face-mask-12k")


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = field(
        default=DEFAULT_DATA, metadata={"help": "class folders (repeat --data); relative to the project root"}
    )
    model: str = field(default="mobilenet_v2", metadata={"help": "mobilenet_v2 (transfer) or cnn (baseline)"})
    epochs: int = field(default=12, metadata={"help": "the papers train 12 epochs"})
    batch_size: int = field(default=32, metadata={"help": "the papers' batch size"})
    optimizer: str = field(default="sgd", metadata={"help": "sgd (papers) or adam"})
    lr: float = field(default=0.001, metadata={"help": "the papers' SGD learning rate"})
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
        default=4, metadata={"help": "augmented views cached per training image when blocks are frozen"}
    )
    max_per_class: int = field(
        default=0, metadata={"help": "cap images per class and split (0: all); for smoke runs"}
    )
    workers: int = field(default=0, metadata={"help": "data-loading processes (0: in the main process)"})
    out: str = field(default="runs", metadata={"help": "where the run directory is written"})
    name: str = field(default="", metadata={"help": "run directory name (default: model and timestamp)"})

    def __post_init__(self):
        allowed = {"model": ("mobilenet_v2", "cnn"), "optimizer": ("sgd", "adam")}
        for key, choices in allowed.items():
            if getattr(self, key) not in choices:
                raise ValueError(f"invalid {key} {getattr(self, key)!r}; choose one of {', '.join(choices)}")
        if abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must add up to 1, got {self.split}")
        if self.epochs < 1 or self.batch_size < 1 or self.input_size < 32:
            raise ValueError("epochs and batch-size must be >= 1 and input-size >= 32")

    def data_paths(self):
        return [(PROJECT_ROOT / d).resolve() for d in self.data]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_config_arguments(parser: argparse.ArgumentParser, config_type=TrainConfig) -> None:
    """One --flag per field, typed from the annotation, with the field's reason as help."""
    hints = typing.get_type_hints(config_type)
    for item in dataclasses.fields(config_type):
        flag = "--" + item.name.replace("_", "-")
        hint = hints[item.name]
        help_text = f"{item.metadata.get('help', '')} (default: {item.default})"
        if typing.get_origin(hint) is tuple:
            element = typing.get_args(hint)[0]
            repeat = typing.get_args(hint)[-1] is Ellipsis
            action = {"action": "append"} if repeat else {"nargs": len(typing.get_args(hint))}
            parser.add_argument(flag, type=element, default=None, help=help_text, **action)
        else:
            parser.add_argument(flag, type=hint, default=None, help=help_text)


def config_from_args(args: argparse.Namespace, config_type=TrainConfig):
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_type)}
    return config_type(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    )
