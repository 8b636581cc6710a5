"""`evaluate` with the shipped weights on small real subsets, and its bad-input paths."""

import json

import numpy as np
import pytest

from maskapp.training.evaluate import compute_metrics, evaluate_folder, roc_auc
from maskapp.vision.classify import MaskClassifier
from tests.conftest import TWELVE_K, WEIGHTS, make_class_folders, run_cli


@pytest.fixture(scope="module")
def shipped():
    return MaskClassifier.from_checkpoint(WEIGHTS)


def test_shipped_model_is_highly_accurate_on_real_held_out_crops(tmp_path, shipped):
    data = make_class_folders(tmp_path / "crops", per_class=40, source=TWELVE_K / "test", start=100)
    metrics, skipped = evaluate_folder(data, shipped)
    assert skipped == 0
    assert metrics.accuracy >= 0.95
    assert sum(m.support for m in metrics.per_class.values()) == 80


def test_evaluate_json_schema(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=5, source=TWELVE_K / "test")
    result = run_cli("evaluate", str(data), "--json", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "m.json").read_text())
    assert set(figures) >= {"accuracy", "balanced_accuracy", "labels", "per_class", "confusion_matrix"}
    assert figures["labels"] == ["with_mask", "without_mask"]
    assert set(figures["per_class"]["with_mask"]) == {"precision", "recall", "f1", "support"}
    assert np.array(figures["confusion_matrix"]).sum() == 10
    assert "confusion matrix" in result.stdout


def test_unreadable_images_are_skipped_and_counted(tmp_path, shipped):
    data = make_class_folders(tmp_path / "crops", per_class=4, source=TWELVE_K / "test")
    (data / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    metrics, skipped = evaluate_folder(data, shipped)
    assert skipped == 1 and metrics.per_class["with_mask"].support == 4


def test_missing_weights_exit_2(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=1, source=TWELVE_K / "test")
    result = run_cli("evaluate", str(data), "--weights", str(tmp_path / "none.pt"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: weights file") and "Traceback" not in result.stderr


def test_folder_with_unknown_class_exit_2(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=1, source=TWELVE_K / "test")
    (data / "with_mask").rename(data / "masked_incorrectly")
    result = run_cli("evaluate", str(data))
    assert result.returncode == 2 and "the model does not know" in result.stderr


def test_metrics_against_hand_counts():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    truth = np.array([0, 0, 0, 1, 1])
    metrics = compute_metrics(truth, probs, ("with_mask", "without_mask"))
    assert metrics.confusion_matrix == [[2, 1], [1, 1]]
    assert metrics.accuracy == pytest.approx(3 / 5)
    assert metrics.per_class["with_mask"].precision == pytest.approx(2 / 3)
    assert metrics.per_class["without_mask"].recall == pytest.approx(1 / 2)
    assert metrics.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2) / 2)
    # with_mask scores 0.9, 0.8, 0.4 vs 0.3, 0.6: 5 of 6 pairs ranked right
    assert roc_auc(probs[:, 0], truth == 0) == pytest.approx(5 / 6)
