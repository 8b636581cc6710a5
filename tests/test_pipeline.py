"""The per-frame pipeline with the shipped classifier: crops, labels, batching, threads, ONNX parity."""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from maskapp.config import DETECTOR_THRESHOLDS, FACE_MARGIN, InferenceConfig
from maskapp.errors import DetectorError
from maskapp.labels import CLASS_NAMES, WITH_MASK, WORN_INCORRECTLY
from maskapp.media.images import read_image
from maskapp.metrics.bench import (
    BENCH_SIZE,
    LIVE,
    LIVE_BASELINE,
    SOURCE,
    BaselineComparison,
    Latency,
    PipelineBench,
    bench_frame,
    run_bench,
    speedups,
    turn_order,
)
from maskapp.metrics.voc import compliance_label, load_annotations
from maskapp.results import FrameResult
from maskapp.vision.classify import MaskClassifier
from maskapp.vision.crops import clip_box, crop_face, expand_box
from maskapp.vision.detect import create_detector
from maskapp.vision.onnx_export import OnnxMaskClassifier
from maskapp.vision.pipeline import (
    MaskPipeline,
    load_pipeline,
    with_face_threshold,
    with_noncompliant_threshold,
)
from maskapp.vision.presets import bgr_crops_to_array, bgr_crops_to_batch, resize_center_crop
from tests.conftest import (
    DEV,
    ILC,
    THREE_CLASS_RUN,
    TWELVE_K,
    TWO_CLASS_WEIGHTS,
    WEIGHTS,
    best_iou,
    dev_annotation,
    dev_photo,
    real_images,
    run_cli,
    run_in_threads,
)

TWELVE_K_TEST = TWELVE_K / "test"
CLEAR_FACE_PX = 40


def clear_photos(count: int) -> list[str]:
    """Dev photos whose annotated faces are all big enough to judge (>= 40 px), first by name."""
    stems = []
    for annotation in load_annotations(DEV / "annotations"):
        if annotation.objects and all(obj.short_side >= CLEAR_FACE_PX for obj in annotation.objects):
            stems.append(Path(annotation.filename).stem)
    return stems[:count]


# --- crops ------------------------------------------------------------------------------------------
def test_clip_box_rounds_and_keeps_at_least_one_pixel_inside_the_frame():
    assert clip_box(-5.2, 3.6, 20.4, 9.5, 100, 50) == (0, 4, 20, 10)
    assert clip_box(120.0, 60.0, 130.0, 70.0, 100, 50) == (99, 49, 100, 50)
    assert clip_box(10.0, 10.0, 10.2, 10.1, 100, 50) == (10, 10, 11, 11)


def test_the_pipeline_is_built_from_the_inference_config(pipeline):
    assert pipeline.margin == FACE_MARGIN == InferenceConfig().margin
    assert pipeline.detector.name == InferenceConfig().detector
    custom = load_pipeline(InferenceConfig(detector="res10", face_threshold=0.7, margin=0.3))
    assert (custom.detector.name, custom.detector.threshold, custom.margin) == ("res10", 0.7, 0.3)


def test_expand_box_adds_the_margin_and_squares_the_box():
    x1, y1, x2, y2 = expand_box((100, 100, 140, 160), 0.25, 1000, 1000)
    assert x2 - x1 == y2 - y1 == 90  # long side 60 * (1 + 2 * 0.25)
    assert x1 <= 100 and y1 <= 100 and x2 >= 140 and y2 >= 160


@pytest.mark.parametrize(
    "box", [(0, 0, 30, 40), (600, 440, 640, 480), (-20, 200, 15, 260), (630, 0, 700, 20)]
)
def test_faces_cut_by_the_border_give_a_clipped_non_empty_crop(box):
    frame = cv2.resize(dev_photo(), (640, 480))
    x1, y1, x2, y2 = expand_box(box, FACE_MARGIN, 640, 480)
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    crop = crop_face(frame, box)
    assert crop.size > 0 and crop.shape[2] == 3


def test_a_face_at_the_frame_border_is_found_and_classified(pipeline):
    photo = dev_photo()
    truth = dev_annotation().objects[0]  # the face at x 79-109
    left = int(truth.box[0] + (truth.box[2] - truth.box[0]) * 0.3)
    cut = np.ascontiguousarray(photo[:, left:])  # the frame border runs through the face
    result = pipeline.process(cut)
    for face in result.faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= cut.shape[1] and 0 <= y1 < y2 <= cut.shape[0]
    assert any(face.box[0] == 0 for face in result.faces)


# --- results --------------------------------------------------------------------------------------
def test_labels_match_the_annotations_on_clear_street_photos(pipeline):
    agree = found = 0
    for stem in clear_photos(8):
        result = pipeline.process(dev_photo(stem))
        for obj in dev_annotation(stem).objects:
            hits = [f for f in result.faces if best_iou(f.face, [obj.box]) >= 0.5]
            found += bool(hits)
            # In the compliance view: a 2-class model has no word for the dev set's badly worn masks.
            agree += bool(hits) and compliance_label(hits[0].label) == compliance_label(obj.label)
    assert found >= 6
    assert agree / found >= 0.8


def test_whole_image_classification_of_real_face_crops(pipeline):
    correct = total = 0
    for label in ("with_mask", "without_mask"):
        for path in sorted((TWELVE_K_TEST / label).iterdir())[:10]:
            result = pipeline.classify_whole(cv2.imread(str(path)))
            (face,) = result.faces
            assert face.box == (0, 0, result.frame_width, result.frame_height)
            assert result.timings.detect_ms == 0.0
            correct += face.label == label
            total += 1
    assert correct / total >= 0.8


def test_frame_result_counts_compliance_and_json(pipeline):
    result = pipeline.process(dev_photo("maksssksksss104"))
    assert result.faces
    assert result.masked_count + result.unmasked_count == len(result.faces)
    assert result.compliance == pytest.approx(result.masked_count / len(result.faces))
    assert (result.frame_width, result.frame_height) == (400, 267)
    t = result.timings
    assert 0 < t.detect_ms <= t.total_ms and 0 < t.classify_ms <= t.total_ms
    for face, entry in zip(result.faces, result.to_json(), strict=True):
        assert set(entry) == {"box", "label", "score", "face_score", "probs", "compliant"}
        assert entry["box"] == list(face.box)
        assert entry["label"] in pipeline.classifier.class_names
        assert entry["compliant"] == (entry["label"] == WITH_MASK)
        threshold, probs = pipeline.classifier.noncompliant_threshold, entry["probs"]
        if threshold is None:  # the likeliest class wins
            assert entry["label"] == max(probs, key=probs.get)
        else:  # non-compliant once P(non-compliant) reaches the threshold, then the likelier of those
            assert entry["compliant"] == (1 - probs[WITH_MASK] < threshold)
            others = {name: p for name, p in probs.items() if name != WITH_MASK}
            assert entry["compliant"] or entry["label"] == max(others, key=others.get)
        assert entry["score"] == pytest.approx(entry["face_score"] * entry["probs"][entry["label"]])
        assert sum(entry["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_a_frame_without_faces(pipeline):
    result = pipeline.process(np.ascontiguousarray(dev_photo()[200:]))
    assert result.faces == () and result.compliance is None
    assert result.masked_count == result.unmasked_count == 0 and result.to_json() == []


def test_bad_frames_are_clear_errors(pipeline):
    with pytest.raises(DetectorError):
        pipeline.process(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(DetectorError):
        pipeline.classify_whole(np.zeros((5, 5), np.uint8))


# --- batching, threads, ONNX --------------------------------------------------------------------------
def assert_same_results(first: FrameResult, second: FrameResult):
    assert [f.face for f in first.faces] == [f.face for f in second.faces]
    for a, b in zip(first.faces, second.faces, strict=True):
        assert a.label == b.label
        for name in a.prediction.probs:
            assert a.prediction.probs[name] == pytest.approx(b.prediction.probs[name], abs=1e-4)


def test_one_batch_per_frame_equals_one_face_at_a_time(pipeline):
    one_by_one = MaskPipeline(pipeline.detector, pipeline.classifier, pipeline.margin, batched=False)
    frame = dev_photo("maksssksksss104")
    batched = pipeline.process(frame)
    assert len(batched.faces) >= 3
    assert_same_results(batched, one_by_one.process(frame))


def test_the_classifier_judges_the_crop_at_the_detectors_own_box(pipeline):
    """The reported box follows the hand-drawn convention; the crop is cut where training cut it."""
    frame = dev_photo("maksssksksss104")
    result = pipeline.process(frame)
    assert any(f.face.crop_box is not None for f in result.faces)
    crops = [crop_face(frame, f.face.classifier_box, pipeline.margin) for f in result.faces]
    expected = pipeline.classifier.classify(crops)
    assert [f.prediction.probs for f in result.faces] == [p.probs for p in expected]


def test_the_pipeline_is_thread_safe(pipeline):
    """The live page calls one pipeline from several worker threads: same results as in sequence."""
    for name in ("res10", "centerface"):
        shared = MaskPipeline(create_detector(name), pipeline.classifier)
        frames = [dev_photo(stem) for stem in ("maksssksksss0", "maksssksksss104", "maksssksksss105")]
        expected = [shared.process(frame) for frame in frames]
        results = []

        def work(worker: int, shared=shared, frames=frames, results=results):
            for round_ in range(3):
                index = (worker + round_) % len(frames)
                results.append((index, shared.process(frames[index])))

        run_in_threads(work, [(w,) for w in range(4)])
        assert len(results) == 12
        for index, result in results:
            assert_same_results(result, expected[index])


def test_pipelines_load_in_several_threads_at_once(pipeline):
    """Two pages (or one page rerun while its models load) loading pipelines at the same moment: each
    loads, with its own threshold (the second ONNX export failed with an AssertionError, shown on the
    page as a traceback, before)."""
    thresholds = (0.2, 0.3, 0.4)
    loaded = {}

    def load(threshold: float) -> None:
        loaded[threshold] = load_pipeline(InferenceConfig(noncompliant_threshold=threshold))

    run_in_threads(load, [(t,) for t in thresholds])
    photo = dev_photo()
    expected = pipeline.process(photo)
    for threshold in thresholds:
        assert loaded[threshold].classifier.noncompliant_threshold == threshold
        result = loaded[threshold].process(photo)
        assert [f.face for f in result.faces] == [f.face for f in expected.faces]
        for got, want in zip(result.faces, expected.faces, strict=True):
            assert got.prediction.probs == pytest.approx(want.prediction.probs, abs=1e-4)


def test_onnx_classifier_matches_pytorch_on_real_crops():
    torch_classifier = MaskClassifier.from_checkpoint(WEIGHTS)
    onnx_classifier = OnnxMaskClassifier(torch_classifier)
    crops = [
        cv2.imread(str(p))
        for label in ("with_mask", "without_mask")
        for p in sorted((TWELVE_K_TEST / label).iterdir())[:4]
    ]
    for a, b in zip(torch_classifier.classify(crops), onnx_classifier.classify(crops), strict=True):
        assert a.label == b.label
        for name in a.probs:
            assert a.probs[name] == pytest.approx(b.probs[name], abs=1e-4)


def test_numpy_preprocessing_is_bit_identical_to_the_torch_ops_the_weights_were_trained_with():
    """Serving (ONNX) and training/evaluation (torch) share presets.normalize; it must give exactly what
    the torch ops the shipped weights were trained with gave."""
    spec = MaskClassifier.from_checkpoint(WEIGHTS).spec
    photo = dev_photo()
    crops = [photo[100:150, 80:110], photo[:300, :200], photo[90:145, 320:365], photo[:1, :1]]
    mean, std = torch.tensor(spec.mean).view(3, 1, 1), torch.tensor(spec.std).view(3, 1, 1)
    squares = [resize_center_crop(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), spec) for crop in crops]
    torch_ops = [(torch.from_numpy(s).permute(2, 0, 1).float() / 255.0 - mean) / std for s in squares]
    expected = torch.stack(torch_ops).numpy()
    np.testing.assert_array_equal(bgr_crops_to_array(crops, spec), expected)
    np.testing.assert_array_equal(bgr_crops_to_batch(crops, spec).numpy(), expected)


# --- bench helpers (the full `bench` is a measurement, not a test) -------------------------------------
def test_bench_frames_are_real_photos_with_the_faces_asked_for(pipeline):
    for faces in (1, 5):
        frame = bench_frame(faces)
        assert frame.frame.shape == (BENCH_SIZE[1], BENCH_SIZE[0], 3) and frame.annotated_faces == faces
        assert len(pipeline.process(frame.frame).faces) == faces


def test_bench_latency_and_speedups():
    latency = Latency.of([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert latency.p50_ms == 30.0 and latency.fps == pytest.approx(1000 / 30)
    assert latency.p95_ms > latency.p50_ms
    rows = [PipelineBench("ours", 5, 5, Latency.of([20.0])), PipelineBench(SOURCE, 5, 4, Latency.of([60.0]))]
    assert speedups(rows) == {"ours, 5 face(s)": pytest.approx(3.0)}


def test_the_live_budget_against_the_baseline_classifier():
    rows = [
        PipelineBench(LIVE, 5, 5, Latency.of([22.0])),
        PipelineBench(LIVE_BASELINE, 5, 5, Latency.of([20.0])),
    ]
    comparison = BaselineComparison.of(TWO_CLASS_WEIGHTS, ["with_mask", "without_mask"], rows)
    assert comparison.p50_ratio == {"5 face(s)": pytest.approx(1.1)} and comparison.budget_met
    slower = [rows[0], PipelineBench(LIVE_BASELINE, 5, 5, Latency.of([19.0]))]
    assert not BaselineComparison.of(TWO_CLASS_WEIGHTS, [], slower).budget_met  # 22 / 19 > 1.10
    over = [
        PipelineBench(LIVE, 5, 5, Latency.of([34.0])),
        PipelineBench(LIVE_BASELINE, 5, 5, Latency.of([33.0])),
    ]
    assert not BaselineComparison.of(TWO_CLASS_WEIGHTS, [], over).budget_met  # over 33 ms


def test_the_compared_pair_trades_places_every_other_round():
    names = ["ours", LIVE, LIVE_BASELINE, SOURCE]
    assert turn_order(names, 0, (LIVE, LIVE_BASELINE)) == names
    assert turn_order(names, 1, (LIVE, LIVE_BASELINE)) == ["ours", LIVE_BASELINE, LIVE, SOURCE]
    assert turn_order(names, 1, None) == names


def test_bench_times_the_baseline_classifier_in_the_same_run(tmp_path):
    """A quick real `bench`: the live pipeline with the 2-class classifier (the default baseline) beside
    the shipped one, on both frames, and their p50 ratio in the report and the JSON."""
    out = tmp_path / "bench.json"
    done = run_cli("bench", "--repeats", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = {(row["pipeline"], row["faces_in_frame"]) for row in data["pipelines"]}
    assert {(LIVE_BASELINE, 1), (LIVE_BASELINE, 5), (LIVE, 5)} <= rows
    baseline = data["baseline"]
    assert baseline["weights"] == str(TWO_CLASS_WEIGHTS) and baseline["classes"] == [
        "with_mask",
        "without_mask",
    ]
    assert set(baseline["p50_ratio"]) == {"1 face(s)", "5 face(s)"}
    for frame, ratio in baseline["p50_ratio"].items():
        assert ratio == pytest.approx(baseline["shipped_p50_ms"][frame] / baseline["baseline_p50_ms"][frame])
    assert "live p50, shipped / baseline classifier" in done.stdout and "live budget" in done.stdout
    assert data["tracked"]  # the full bench keeps its tracked rows
    int8 = {row["looks"]: row for row in data["int8"]}  # the live detector's int8 network against float
    assert set(int8) == {"one look", "with the mirror look"}
    for row in int8.values():
        assert row["speedup"] == pytest.approx(row["float32"]["p50_ms"] / row["int8"]["p50_ms"])
    assert "int8 / float network" in done.stdout


def test_the_baseline_flag_is_refused_in_the_tracked_mode():
    done = run_cli("bench", "--tracked", "--baseline-weights", str(TWO_CLASS_WEIGHTS))
    assert done.returncode == 2 and done.stderr.startswith("error: --baseline-weights"), done.stderr


# --- three classes on real faces ---------------------------------------------------------------------
@cache
def ilc_face_boxes() -> dict[str, tuple[int, int, int, int]]:
    """face-mask-ilc image ('class/file.jpg') -> its labelled face's box inside the image."""
    with open(ILC / "manifest.csv", newline="") as manifest:
        keys = ("face_x1", "face_y1", "face_x2", "face_y2")
        return {row["file"]: tuple(int(row[k]) for k in keys) for row in csv.DictReader(manifest)}


def ilc_face(path: Path) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    return read_image(path), ilc_face_boxes()[f"{path.parent.name}/{path.name}"]


@pytest.mark.parametrize("label", CLASS_NAMES)
def test_real_photos_of_each_class_through_a_three_class_pipeline(three_class_pipeline, label):
    """Real face-mask-ilc photos (badly worn masks included): the labelled face is found, and every
    face gets one of the three labels, a probability for each of the three classes and its verdict."""
    found = 0
    paths = real_images(ILC, label, 8)
    for path in paths:
        image, box = ilc_face(path)
        result = three_class_pipeline.process(image)
        found += any(best_iou(face.face, [box]) >= 0.3 for face in result.faces)
        assert sum(result.label_counts.values()) == len(result.faces)
        for face in result.faces:
            assert face.label in CLASS_NAMES and tuple(face.prediction.probs) == CLASS_NAMES
            assert sum(face.prediction.probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert face.compliant == (face.label == WITH_MASK)
            assert face.to_dict()["compliant"] == face.compliant
    assert found >= len(paths) - 3, f"{label}: the labelled face found in {found} of {len(paths)}"


def test_the_three_class_model_flags_real_badly_worn_and_missing_masks(three_class_pipeline):
    """Cut as serving cuts them (the labelled box and the serving margin), real badly worn masks and bare
    faces are mostly called non-compliant, and masks worn properly mostly compliant. A guard against a
    broken model, not the benchmark (the run's own figures are in its metrics.json): the shipped
    MobileNetV2 gets 18, 18 (17 of them 'mask_worn_incorrectly') and 19 of these 20 per class."""
    assert (THREE_CLASS_RUN / "metrics.json").is_file(), "the 3-class MobileNetV2 run is missing"
    for label in CLASS_NAMES:
        crops = [crop_face(*ilc_face(path), FACE_MARGIN) for path in real_images(ILC, label, 20)]
        labels = [three_class_pipeline.classify_whole(crop).faces[0].label for crop in crops]
        if label == WITH_MASK:
            assert labels.count(WITH_MASK) >= 15, labels
        else:
            assert len(labels) - labels.count(WITH_MASK) >= 12, labels
        if label == WORN_INCORRECTLY:
            assert labels.count(WORN_INCORRECTLY) >= 10, labels


def test_a_two_class_checkpoint_still_runs_in_the_pipeline():
    """The 2-class MobileNetV2: labels from its two classes; the three-class counts name all three."""
    pipeline = load_pipeline(InferenceConfig(weights=TWO_CLASS_WEIGHTS))
    assert pipeline.classifier.class_names == ("with_mask", "without_mask")
    result = pipeline.process(dev_photo("maksssksksss104"))
    assert result.faces and set(result.label_counts) == set(CLASS_NAMES)
    assert result.label_counts[WORN_INCORRECTLY] == 0
    assert all(set(face.prediction.probs) == {"with_mask", "without_mask"} for face in result.faces)


def test_bench_runs_with_a_three_class_checkpoint(three_class_weights):
    """Per-frame times for every pipeline, the detectors and the classifier, as with two classes."""
    report = run_bench(three_class_weights, repeats=1, progress=False)
    assert report.settings["classes"] == list(CLASS_NAMES)
    assert len(report.pipelines) == 6 and {row.faces_in_frame for row in report.pipelines} == {1, 5}
    assert all(row.latency.p50_ms > 0 and row.faces_found >= 1 for row in report.pipelines)
    assert len(report.speedup) == 4 and all(value > 0 for value in report.speedup.values())
    assert set(report.classifier_ms_per_face) == {
        f"{engine} batch {batch}" for engine in ("pytorch", "onnxruntime") for batch in (1, 8)
    }


def test_a_pipeline_with_another_non_compliant_threshold_shares_its_models(pipeline):
    strict = with_noncompliant_threshold(pipeline, 0.03)
    assert strict.detector is pipeline.detector and strict.classifier.session is pipeline.classifier.session
    photo = read_image(DEV / "images" / "maksssksksss156.png")
    base, flagged = pipeline.process(photo), strict.process(photo)
    assert len(base.faces) == len(flagged.faces)
    assert flagged.label_counts[WITH_MASK] < base.label_counts[WITH_MASK]  # more faces called non-compliant
    assert pipeline.classifier.noncompliant_threshold != 0.03  # the shared pipeline is unchanged


FACE_THRESHOLD_PHOTOS = ("maksssksksss156", "maksssksksss223", "maksssksksss250", "maksssksksss0")


@pytest.mark.parametrize(("detector", "threshold"), [("centerface", 0.15), ("res10", 0.2), ("res10", 0.9)])
def test_a_pipeline_with_another_face_threshold_shares_its_models(pipeline, detector, threshold):
    """Each step of the Face confidence threshold slider loaded the detector and the classifier again: a
    new threshold shares them, and finds exactly the faces of a detector built at that threshold."""
    loaded = MaskPipeline(create_detector(detector), pipeline.classifier, pipeline.margin)
    moved = with_face_threshold(loaded, threshold)
    network = "session" if detector == "centerface" else "net"
    assert getattr(moved.detector, network) is getattr(loaded.detector, network)
    assert moved.classifier is loaded.classifier and moved.detector.threshold == threshold
    fresh = MaskPipeline(create_detector(detector, threshold), pipeline.classifier, pipeline.margin)
    photos = [dev_photo(stem) for stem in FACE_THRESHOLD_PHOTOS]
    moved_results, fresh_results = ([p.process(photo) for photo in photos] for p in (moved, fresh))
    assert [r.faces for r in moved_results] == [r.faces for r in fresh_results]  # boxes, scores, labels
    faces_moved = sum(len(r.faces) for r in moved_results)
    assert faces_moved != sum(len(loaded.process(photo).faces) for photo in photos)  # the threshold acts
    assert loaded.detector.threshold == DETECTOR_THRESHOLDS[detector]  # the shared pipeline is unchanged


def test_pipelines_at_several_face_thresholds_share_one_net_safely(pipeline):
    """Sessions on the page at different face thresholds call one res10 net (not safe from two threads at
    once) from their own threads: each gets the results it gets alone."""
    loaded = MaskPipeline(create_detector("res10"), pipeline.classifier, pipeline.margin)
    pipelines = [loaded, with_face_threshold(loaded, 0.2)]
    frames = [dev_photo(stem) for stem in FACE_THRESHOLD_PHOTOS]
    expected = [[p.process(frame) for frame in frames] for p in pipelines]
    results = []

    def work(worker: int) -> None:
        for round_ in range(len(frames)):
            index = (worker + round_) % len(frames)
            results.append((worker % 2, index, pipelines[worker % 2].process(frames[index])))

    run_in_threads(work, [(w,) for w in range(4)])
    assert len(results) == 4 * len(frames)
    for which, index, result in results:
        assert_same_results(result, expected[which][index])
