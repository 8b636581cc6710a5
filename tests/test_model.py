import pickle

import numpy as np
import pytest
import torch

from maskapp import PROJECT_ROOT
from maskapp.errors import CheckpointError
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.model import (
    IMAGENET_WEIGHTS_SHA256,
    BaselineCNN,
    MaskMobileNetV2,
    imagenet_weights_path,
    load_checkpoint,
    save_checkpoint,
)
from maskapp.vision.presets import InputSpec

CLASSES = ("with_mask", "without_mask")


def test_mobilenet_head_matches_the_papers():
    model = MaskMobileNetV2(2, pretrained=False)
    linear_layers = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear_layers] == [(1280, 128), (128, 2)]
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.head)
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)
    assert model(torch.zeros(1, 3, 128, 128)).shape == (1, 2)


def test_imagenet_backbone_comes_from_the_checked_package_file():
    import hashlib

    assert hashlib.sha256(imagenet_weights_path().read_bytes()).hexdigest() == IMAGENET_WEIGHTS_SHA256
    pretrained, random = MaskMobileNetV2(2), MaskMobileNetV2(2, pretrained=False)
    assert not torch.equal(pretrained.features[0][0].weight, random.features[0][0].weight)


def test_baseline_cnn_shape():
    model = BaselineCNN(2, input_size=224)
    conv = model.layers[0]
    assert conv.kernel_size == (7, 7) and conv.out_channels == 32 and conv.padding == (3, 3)
    assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 2)


def test_checkpoint_round_trip_keeps_classes_size_and_normalisation(tmp_path):
    spec = InputSpec(input_size=96)
    save_checkpoint(tmp_path / "m.pt", BaselineCNN(2, input_size=96), "cnn", CLASSES, spec, {"seed": 1})
    checkpoint = load_checkpoint(tmp_path / "m.pt", expected_classes=CLASSES)
    assert checkpoint.input_spec == spec and checkpoint.config == {"seed": 1}
    classifier = MaskClassifier.from_checkpoint(tmp_path / "m.pt")
    assert classifier.spec == spec and classifier.class_names == CLASSES


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable maskapp checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def foreign_bytes(kind: str) -> bytes:
    real = (PROJECT_ROOT / "weights" / "runs" / "cnn" / "model.pt").read_bytes()
    return {
        "a text file": b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
        "a truncated checkpoint": real[: len(real) // 3],
        "a png": (PROJECT_ROOT / "docs" / "screenshots" / "home.png").read_bytes()[:5000],
        "random bytes": np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
    }[kind]


@pytest.mark.parametrize("kind", ["a text file", "a truncated checkpoint", "a png", "random bytes"])
def test_any_file_given_as_weights_is_one_clear_error(tmp_path, kind):
    """`--weights /etc/passwd` once ended in an IndexError from torch's unpickler."""
    (tmp_path / "weights.pt").write_bytes(foreign_bytes(kind))
    with pytest.raises(CheckpointError, match=r"not a (readable )?maskapp checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")


class ArbitraryObject:
    """Unpickling this would run code of the file's choosing; weights_only must refuse it."""


def test_pickle_that_is_not_a_checkpoint_is_refused_by_weights_only(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump(ArbitraryObject(), handle)
    with pytest.raises(CheckpointError, match="not a readable maskapp checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    torch.save(BaselineCNN(2, input_size=64).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="not a maskapp checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")


def test_checkpoint_for_other_classes(tmp_path):
    save_checkpoint(
        tmp_path / "m.pt", BaselineCNN(3, input_size=64), "cnn", ("a", "b", "c"), InputSpec(64), {}
    )
    with pytest.raises(CheckpointError, match="trained for classes"):
        load_checkpoint(tmp_path / "m.pt", expected_classes=CLASSES)


def test_checkpoint_for_another_architecture(tmp_path):
    save_checkpoint(
        tmp_path / "m.pt", BaselineCNN(2, input_size=64), "mobilenet_v2", CLASSES, InputSpec(64), {}
    )
    with pytest.raises(CheckpointError, match="do not fit a mobilenet_v2 model") as raised:
        MaskClassifier.from_checkpoint(tmp_path / "m.pt")
    # one line that says why: torch's heading alone ("Error(s) in loading state_dict for X:") did not
    message = str(raised.value)
    assert "\n" not in message and "Error(s) in loading" not in message
    assert "Missing key" in message or "Unexpected key" in message or "size mismatch" in message, message
