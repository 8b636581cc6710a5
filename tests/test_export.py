"""`python -m maskapp export`: the exported ONNX classifier, run by plain onnxruntime with the README's
preprocessing written out here independently (numpy and OpenCV), gives the library's labels on real
crops of each class; the face detector file runs; an export folder that cannot be made is one error line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from maskapp.labels import CLASS_NAMES
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.detect import FastCenterFaceDetector
from tests.conftest import ILC, TWELVE_K, TWO_CLASS_WEIGHTS, dev_photo, letterbox, run_cli

FILES = {"classifier.onnx", "model.json", "centerface.onnx", "centerface_live_int8.onnx", "README.md"}


def real_crops() -> list[np.ndarray]:
    """Real faces of each class: face-mask-ilc photos (badly worn masks included) and 12k crops."""
    paths = [path for label in CLASS_NAMES for path in sorted((ILC / label).iterdir())[:6]]
    paths += [
        path
        for label in ("with_mask", "without_mask")
        for path in sorted((TWELVE_K / "test" / label).iterdir())[:3]
    ]
    return [cv2.imread(str(path)) for path in paths]


def export(tmp_path, weights) -> tuple[dict, str]:
    out = tmp_path / "edge"
    done = run_cli("export", str(out), "--weights", str(weights))
    assert done.returncode == 0, done.stderr[-2000:]
    assert {path.name for path in out.iterdir()} == FILES
    return json.loads((out / "model.json").read_text()), str(out)


# --- what the README says, written out here ----------------------------------------------------------
def preprocess(crop_bgr: np.ndarray, classifier: dict) -> np.ndarray:
    size, short_side = classifier["input_size"], classifier["resize_size"]
    rgb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    scale = short_side / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    square = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    normalised = (square - np.float32(classifier["mean"])) / np.float32(classifier["std"])
    return normalised.transpose(2, 0, 1).astype(np.float32)


def decide(probs: np.ndarray, description: dict) -> list[str]:
    names, threshold = description["class_names"], description["noncompliant_threshold"]
    compliant = names.index(description["compliant_label"])
    labels = []
    for row in probs:
        if threshold is None:
            labels.append(names[int(np.argmax(row))])
        elif 1.0 - row[compliant] < threshold:
            labels.append(names[compliant])
        else:
            others = [i for i in range(len(names)) if i != compliant]
            labels.append(names[max(others, key=lambda i: row[i])])
    return labels


def run_exported(folder: str, description: dict, crops: list[np.ndarray]) -> np.ndarray:
    classifier = description["classifier"]
    session = ort.InferenceSession(f"{folder}/{classifier['file']}", providers=["CPUExecutionProvider"])
    batch = np.stack([preprocess(crop, classifier) for crop in crops])
    (logits,) = session.run([classifier["output_name"]], {classifier["input_name"]: batch})
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# --- tests ---------------------------------------------------------------------------------------------
def test_the_exported_3_class_model_gives_the_library_labels_on_real_crops(tmp_path, three_class_weights):
    description, folder = export(tmp_path, three_class_weights)
    library = MaskClassifier.from_checkpoint(three_class_weights)
    assert description["class_names"] == list(CLASS_NAMES) == list(library.class_names)
    assert description["noncompliant_threshold"] == library.noncompliant_threshold
    assert description["classifier"]["input_size"] == library.spec.input_size
    crops = real_crops()
    probs = run_exported(folder, description, crops)
    expected = library.classify(crops)
    assert decide(probs, description) == [p.label for p in expected]
    library_probs = np.array([[p.probs[name] for name in CLASS_NAMES] for p in expected])
    np.testing.assert_allclose(probs, library_probs, atol=1e-4)
    readme = (tmp_path / "edge" / "README.md").read_text()
    size = description["classifier"]["input_size"]
    for fact in (
        f"short side is {description['classifier']['resize_size']} px",
        f"Centre-crop {size}×{size}",
        "0.485, 0.456, 0.406",
        "BGR → RGB",
        f"1 − P(with_mask) ≥ {description['noncompliant_threshold']}",
        "centerface.onnx",
    ):
        assert fact in readme, fact


def test_a_2_class_export_keeps_its_classes_and_the_likeliest_class_rule(tmp_path):
    description, folder = export(tmp_path, TWO_CLASS_WEIGHTS)
    assert description["class_names"] == ["with_mask", "without_mask"]
    assert description["noncompliant_threshold"] is None
    crops = real_crops()
    library = MaskClassifier.from_checkpoint(TWO_CLASS_WEIGHTS).classify(crops)
    assert decide(run_exported(folder, description, crops), description) == [p.label for p in library]


def test_the_exported_face_detector_runs_at_a_camera_size(tmp_path):
    _, folder = export(tmp_path, TWO_CLASS_WEIGHTS)
    session = ort.InferenceSession(f"{folder}/centerface.onnx", providers=["CPUExecutionProvider"])

    def heatmap_peak(frame_bgr: np.ndarray) -> float:
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
        heatmap = session.run(None, {"input.1": rgb.transpose(2, 0, 1)[None]})[0]
        return float(heatmap.max())

    assert heatmap_peak(letterbox(dev_photo())) > 0.4  # a street photo with faces, 640x480
    assert heatmap_peak(np.full((480, 640, 3), 128, np.uint8)) < 0.4


def test_the_export_carries_the_live_detectors_int8_network_and_says_how_to_feed_it(tmp_path):
    description, folder = export(tmp_path, TWO_CLASS_WEIGHTS)
    live = description["face_detector"]
    exported = Path(folder, live["live_file"]).read_bytes()
    assert exported == FastCenterFaceDetector.int8_file.read_bytes()
    session = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
    blob, _ = FastCenterFaceDetector().network_input(letterbox(dev_photo()))  # 320 px, sharpened
    assert float(session.run(None, {"input.1": blob})[0].max()) > 0.4
    readme = Path(folder, "README.md").read_text()
    assert live["live_file"] in readme and f"{live['live_long_side']} px long side" in readme


@pytest.mark.parametrize("where", ["below_a_file", "a_file"])
def test_an_export_folder_that_cannot_be_made_is_one_error_line(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    out = blocker / "edge" if where == "below_a_file" else blocker
    done = run_cli("export", str(out))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot create export folder {out}") and "allowed: a writable" in line
    assert f"({blocker} is a file, not a folder)" in line


def test_an_export_into_a_folder_of_other_files_is_refused_and_they_are_kept(tmp_path):
    """`export .` from the project would have replaced its README."""
    (tmp_path / "README.md").write_text("the project's own")
    (tmp_path / "notes.txt").write_text("kept")
    done = run_cli("export", str(tmp_path))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        f"error: {tmp_path} already holds notes.txt, which an export would replace or mix with; "
        "allowed: a new or empty folder"
    )
    assert (tmp_path / "README.md").read_text() == "the project's own"
