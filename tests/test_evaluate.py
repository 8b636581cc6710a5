"""`evaluate` with real models on small real subsets: class folders holding all or some of a model's
classes, a checkpoint's own seeded split (and another's), annotated photos cut as serving cuts faces,
covered faces; the figures against hand counts; and its bad-input paths."""

import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from maskapp.labels import CLASS_NAMES
from maskapp.training.evaluate import (
    OCCLUSION_SEED,
    PR_THRESHOLDS,
    WORN_INCORRECTLY_OUTSIDE_MODEL,
    compute_metrics,
    evaluate,
    noncompliant_pr_curve,
    roc_auc,
    score_folder,
    summarise,
)
from maskapp.training.occlude import OCCLUDERS
from maskapp.training.runs import EvalMetrics
from maskapp.vision.classify import MaskClassifier
from tests.conftest import DEV, ILC, TWELVE_K, TWO_CLASS_WEIGHTS, make_class_folders, run_cli

TWO = ("with_mask", "without_mask")
TWO_CLASS = ("--weights", str(TWO_CLASS_WEIGHTS))  # the 2-class MobileNetV2 run


@pytest.fixture(scope="module")
def shipped():
    return MaskClassifier.from_checkpoint(TWO_CLASS_WEIGHTS)


def run_json(tmp_path, *args) -> dict:
    out = tmp_path / "figures.json"
    done = run_cli("evaluate", *args, "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def assert_one_error_line(done, *fragments):
    """Exit 2 and one `error:` line, last (log lines of the work done before may precede it)."""
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:] and "Traceback" not in done.stderr, done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


# --- class folders ---------------------------------------------------------------------------------
def test_shipped_model_is_highly_accurate_on_real_held_out_crops(tmp_path, shipped):
    data = make_class_folders(tmp_path / "crops", per_class=40, source=TWELVE_K / "test", start=100)
    scored = score_folder(data, shipped)
    metrics = summarise(shipped, scored, {}).figures
    assert scored.unreadable == 0
    assert metrics.accuracy >= 0.95
    assert sum(m.support for m in metrics.per_class.values()) == 80


def test_evaluate_json_schema_of_a_2_class_model(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=5, source=TWELVE_K / "test")
    figures = run_json(tmp_path, str(data), *TWO_CLASS)
    assert set(figures) >= {"accuracy", "balanced_accuracy", "labels", "per_class", "confusion_matrix"}
    assert figures["labels"] == ["with_mask", "without_mask"]
    assert set(figures["per_class"]["with_mask"]) == {"precision", "recall", "f1", "support"}
    assert np.array(figures["confusion_matrix"]).sum() == 10
    assert figures["noncompliant_threshold"] is None  # a 2-class checkpoint: the likelier class wins
    assert figures["compliance"]["with_mask_support"] == figures["compliance"]["noncompliant_support"] == 5
    EvalMetrics.from_dict(figures)  # what the Metrics page reads


def test_three_class_json_schema_on_real_crops_of_each_class(tmp_path, three_class_weights):
    data = make_class_folders(tmp_path / "crops", per_class=6, source=ILC, classes=CLASS_NAMES)
    done = run_cli(
        "evaluate", str(data), "--weights", str(three_class_weights), "--json", str(tmp_path / "m.json")
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads((tmp_path / "m.json").read_text())
    assert figures["labels"] == list(CLASS_NAMES)
    assert list(figures["per_class"]) == list(CLASS_NAMES)
    assert np.array(figures["confusion_matrix"]).shape == (3, 3)
    assert np.array(figures["confusion_matrix"]).sum(axis=1).tolist() == [6, 6, 6]
    checkpoint_threshold = MaskClassifier.from_checkpoint(three_class_weights).noncompliant_threshold
    assert figures["noncompliant_threshold"] == checkpoint_threshold
    compliance = figures["compliance"]
    assert compliance["noncompliant_support"] == 12 and compliance["with_mask_support"] == 6
    assert set(compliance) >= {"noncompliant_recall", "with_mask_recall", "balanced_accuracy"}
    curve = figures["noncompliant_pr"]
    assert curve["thresholds"] == list(PR_THRESHOLDS)
    assert len(curve["precision"]) == len(curve["recall"]) == len(PR_THRESHOLDS)
    assert curve["recall"] == sorted(curve["recall"], reverse=True)  # a higher threshold flags fewer
    assert figures["source"]["data"] == str(data)
    for line in ("compliance: non-compliant recall", "mask_worn_incorrectly", "confusion matrix"):
        assert line in done.stdout


def test_a_folder_with_a_subset_of_the_classes_reports_on_those(tmp_path, three_class_weights):
    data = make_class_folders(tmp_path / "two", per_class=8, source=ILC, classes=TWO)
    figures = run_json(tmp_path, str(data), "--weights", str(three_class_weights))
    assert figures["labels"] == list(CLASS_NAMES)  # the confusion matrix spans the model's classes
    assert list(figures["per_class"]) == list(TWO)  # the figures, the classes present
    confusion = np.array(figures["confusion_matrix"])
    assert confusion.shape == (3, 3) and confusion[1].sum() == 0 and confusion.sum() == 16
    recalls = [figures["per_class"][name]["recall"] for name in TWO]
    assert figures["balanced_accuracy"] == pytest.approx(np.mean(recalls))


def test_the_non_compliant_threshold_flag_moves_the_decisions(tmp_path, three_class_weights):
    data = make_class_folders(tmp_path / "crops", per_class=6, source=ILC, classes=CLASS_NAMES)
    low = run_json(
        tmp_path, str(data), "--weights", str(three_class_weights), "--noncompliant-threshold", "0.01"
    )
    high = run_json(
        tmp_path, str(data), "--weights", str(three_class_weights), "--noncompliant-threshold", "0.99"
    )
    assert low["noncompliant_threshold"] == 0.01 and high["noncompliant_threshold"] == 0.99
    # Flagging almost every face catches at least as many non-compliant ones as flagging almost none.
    assert low["compliance"]["noncompliant_recall"] >= high["compliance"]["noncompliant_recall"]
    assert low["compliance"]["with_mask_recall"] <= high["compliance"]["with_mask_recall"]


def test_a_class_the_model_does_not_know_is_one_error_line_unless_left_out(tmp_path):
    data = make_class_folders(tmp_path / "three", per_class=3, source=ILC, classes=CLASS_NAMES)
    assert_one_error_line(
        run_cli("evaluate", str(data), *TWO_CLASS),
        "(mask_worn_incorrectly) the model does not know",
        "allowed: with_mask, without_mask",
        "--classes with_mask,without_mask",
    )
    figures = run_json(tmp_path, str(data), *TWO_CLASS, "--classes", "with_mask,without_mask")
    assert list(figures["per_class"]) == list(TWO) and np.array(figures["confusion_matrix"]).sum() == 6
    assert figures["source"]["classes"] == list(TWO)


def test_a_2_class_model_counts_badly_worn_masks_as_non_compliant_on_request(tmp_path):
    """The 2-class model's "before" figure: a badly worn mask it calls with_mask is a missed
    non-compliant face. The class figures stay those of its own two classes."""
    data = make_class_folders(tmp_path / "three", per_class=8, source=ILC, classes=CLASS_NAMES)
    assert_one_error_line(run_cli("evaluate", str(data), *TWO_CLASS), "--worn-incorrectly-as-noncompliant")
    two = run_json(tmp_path, str(data), *TWO_CLASS, "--classes", "with_mask,without_mask")
    done = run_cli(
        "evaluate",
        str(data),
        *TWO_CLASS,
        "--worn-incorrectly-as-noncompliant",
        "--json",
        str(tmp_path / "w.json"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    worn = json.loads((tmp_path / "w.json").read_text())
    for key in ("labels", "per_class", "confusion_matrix", "accuracy", "balanced_accuracy"):
        assert worn[key] == two[key], key
    assert worn["outside_model"].keys() == {"mask_worn_incorrectly"}
    outside = worn["outside_model"]["mask_worn_incorrectly"]
    assert outside["faces"] == 8 and 0 <= outside["called_with_mask"] <= 8
    compliance, own = worn["compliance"], two["compliance"]
    assert compliance["with_mask_recall"] == own["with_mask_recall"]
    assert compliance["noncompliant_support"] == own["noncompliant_support"] + 8
    caught = own["noncompliant_recall"] * own["noncompliant_support"] + 8 - outside["called_with_mask"]
    assert compliance["noncompliant_recall"] == pytest.approx(caught / compliance["noncompliant_support"])
    assert worn["source"]["worn_incorrectly_as_noncompliant"] is True
    assert (
        "mask_worn_incorrectly (not a class of the model, counted as non-compliant): 8 faces" in done.stdout
    )


def test_an_unknown_class_folder_names_the_allowed_classes(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=1, source=TWELVE_K / "test")
    (data / "with_mask").rename(data / "cats")
    done = run_cli("evaluate", str(data), *TWO_CLASS)
    assert_one_error_line(done, "(cats)", "allowed: with_mask, without_mask")
    assert_one_error_line(
        run_cli("evaluate", str(data), "--classes", "with_mask,cats"), "unknown class name 'cats'"
    )


def test_a_class_named_in_classes_that_the_model_lacks_is_refused(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=1, source=TWELVE_K / "test")
    assert_one_error_line(
        run_cli("evaluate", str(data), *TWO_CLASS, "--classes", "with_mask,mask_worn_incorrectly"),
        "--classes mask_worn_incorrectly",
        "allowed: with_mask, without_mask",
    )


def test_unreadable_images_are_skipped_and_counted(tmp_path, shipped):
    data = make_class_folders(tmp_path / "crops", per_class=4, source=TWELVE_K / "test")
    (data / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    scored = score_folder(data, shipped)
    metrics = summarise(shipped, scored, {}).figures
    assert scored.unreadable == 1 and metrics.per_class["with_mask"].support == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "none.pt"], "weights file"),
        ([], "give DATA_DIR"),
        (["--split-from", "x.pt"], "--split-from"),
        (["--noncompliant-threshold", "1.5"], "non-compliant threshold 1.5 is out of range"),
        # ignored on class folders, whatever its value, and so taken as a filter that had worked
        (["--min-face", "-5"], "--min-face leaves out small annotated faces of a VOC folder"),
        (["--min-face", "40"], "class folders of face crops have no face box to measure: drop --min-face"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, args, message):
    data = make_class_folders(tmp_path / "crops", per_class=1, source=TWELVE_K / "test")
    data_args = [] if message == "give DATA_DIR" else [str(data)]
    args = [str(tmp_path / a) if a.endswith(".pt") else a for a in args]
    assert_one_error_line(run_cli("evaluate", *data_args, *args), message)


def test_a_data_set_with_split_folders_says_which_to_give():
    done = run_cli("evaluate", str(TWELVE_K))
    assert_one_error_line(done, "holds split folders", str(TWELVE_K / "validation"))


# --- a checkpoint's own split ------------------------------------------------------------------------
def test_split_reproduces_the_test_figures_training_wrote(tmp_path, tiny_three_class_weights):
    run_dir = tiny_three_class_weights.parent
    figures = run_json(tmp_path, "--split", "test", "--weights", str(tiny_three_class_weights))
    written = json.loads((run_dir / "metrics.json").read_text())
    for key in ("labels", "confusion_matrix", "compliance", "noncompliant_pr", "noncompliant_threshold"):
        assert figures[key] == written[key], key
    assert figures["accuracy"] == pytest.approx(written["accuracy"])
    assert list(figures["per_dataset"]) == list(written["per_dataset"]) == ["face-mask-ilc"]
    assert figures["source"] == {
        "weights": str(tiny_three_class_weights),
        "data": "all",
        "split": "test",
        "split_from": str(tiny_three_class_weights),
    }
    assert written["source"] == figures["source"]  # training records what it measured, as evaluate does
    one_folder = run_json(tmp_path, str(ILC), "--split", "test", "--weights", str(tiny_three_class_weights))
    assert one_folder["confusion_matrix"] == figures["confusion_matrix"]


def test_a_2_class_model_on_another_checkpoints_test_split(tmp_path, tiny_three_class_weights):
    tiny = str(tiny_three_class_weights)
    done = run_cli("evaluate", "--split", "test", "--split-from", tiny, *TWO_CLASS)
    assert_one_error_line(done, "(mask_worn_incorrectly) the model does not know")
    figures = run_json(
        tmp_path, "--split", "test", "--split-from", tiny, *TWO_CLASS, "--classes", "with_mask,without_mask"
    )
    assert figures["labels"] == list(TWO)
    own = json.loads((tiny_three_class_weights.parent / "metrics.json").read_text())
    assert [figures["per_class"][n]["support"] for n in TWO] == [own["per_class"][n]["support"] for n in TWO]
    assert figures["source"]["split_from"] == tiny and figures["source"]["weights"] == str(TWO_CLASS_WEIGHTS)
    # The same test faces, badly worn ones included: the compliance view counts them as the 3-class one does.
    worn = run_json(
        tmp_path, "--split", "test", "--split-from", tiny, *TWO_CLASS, "--worn-incorrectly-as-noncompliant"
    )
    supports = ("noncompliant_support", "with_mask_support")
    assert [worn["compliance"][k] for k in supports] == [own["compliance"][k] for k in supports]
    assert (
        worn["outside_model"]["mask_worn_incorrectly"]["faces"]
        == own["per_class"]["mask_worn_incorrectly"]["support"]
    )


def test_a_folder_that_is_not_a_training_folder_of_the_split(tmp_path, tiny_three_class_weights):
    done = run_cli("evaluate", str(TWELVE_K), "--split", "test", "--weights", str(tiny_three_class_weights))
    assert_one_error_line(done, "is not one of the training folders", "face-mask-ilc")


def test_training_metrics_hold_the_compliance_view_and_the_curve(tiny_three_class_weights):
    written = json.loads((tiny_three_class_weights.parent / "metrics.json").read_text())
    metrics = EvalMetrics.from_dict(written)
    assert metrics.compliance is not None and metrics.noncompliant_pr is not None
    assert metrics.per_dataset["face-mask-ilc"].compliance is not None
    assert list(metrics.per_class) == list(CLASS_NAMES)


# --- annotated photos -----------------------------------------------------------------------------------
VOC_PHOTOS = ("maksssksksss0", "maksssksksss104", "maksssksksss609", "maksssksksss250", "maksssksksss132")


@pytest.fixture(scope="module")
def voc_folder(tmp_path_factory):
    """A few real face-mask-detection-dev photos with their VOC boxes."""
    folder = tmp_path_factory.mktemp("voc")
    for sub in ("annotations", "images"):
        (folder / sub).mkdir()
    for stem in VOC_PHOTOS:
        (folder / "annotations" / f"{stem}.xml").symlink_to(DEV / "annotations" / f"{stem}.xml")
        (folder / "images" / f"{stem}.png").symlink_to(DEV / "images" / f"{stem}.png")
    return folder


def annotated_faces(folder, min_face: int) -> dict[str, int]:
    """Annotated boxes with a short side of at least `min_face` px per class name, read here directly."""
    counts: dict[str, int] = {}
    for path in sorted((folder / "annotations").glob("*.xml")):
        for obj in ET.parse(path).getroot().iter("object"):
            x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            if min(x2 - x1, y2 - y1) >= min_face:
                name = obj.findtext("name").replace("mask_weared_incorrect", "mask_worn_incorrectly")
                counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_voc_folder_is_evaluated_on_its_annotated_faces(tmp_path, voc_folder, three_class_weights):
    expected = annotated_faces(voc_folder, 20)
    figures = run_json(tmp_path, str(voc_folder), "--weights", str(three_class_weights), "--min-face", "20")
    supports = {name: m["support"] for name, m in figures["per_class"].items()}
    assert supports == expected and expected["mask_worn_incorrectly"] >= 2
    assert figures["source"]["min_face"] == 20 and figures["source"]["margin"] == 0.15


def test_a_2_class_model_on_voc_faces_of_its_classes(tmp_path, voc_folder):
    expected = annotated_faces(voc_folder, 32)
    expected.pop("mask_worn_incorrectly", None)
    figures = run_json(tmp_path, str(voc_folder), *TWO_CLASS, "--classes", "with_mask,without_mask")
    assert {name: m["support"] for name, m in figures["per_class"].items()} == expected
    assert figures["accuracy"] >= 0.8


def test_a_2_class_model_on_voc_faces_with_badly_worn_masks_as_non_compliant(tmp_path, voc_folder):
    expected = annotated_faces(voc_folder, 20)
    flags = (*TWO_CLASS, "--min-face", "20", "--worn-incorrectly-as-noncompliant")
    figures = run_json(tmp_path, str(voc_folder), *flags)
    assert figures["outside_model"]["mask_worn_incorrectly"]["faces"] == expected["mask_worn_incorrectly"]
    assert figures["compliance"]["noncompliant_support"] == sum(expected.values()) - expected["with_mask"]


def test_a_bad_minimum_face_size_is_one_error_line(voc_folder):
    assert_one_error_line(run_cli("evaluate", str(voc_folder), "--min-face", "0"), "--min-face 0")


# --- covered faces ---------------------------------------------------------------------------------------
def test_occluders_on_unmasked_faces_are_counted_per_kind(tmp_path):
    data = make_class_folders(tmp_path / "crops", per_class=6, source=ILC, classes=TWO)
    done = run_cli("evaluate", str(data), *TWO_CLASS, "--occlude", "--json", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads((tmp_path / "m.json").read_text())
    occlusion = figures["occlusion"]
    assert occlusion["faces"] == 6 and list(occlusion["per_kind"]) == list(OCCLUDERS)
    assert occlusion["occluded_faces"] == 6 * len(OCCLUDERS)
    assert occlusion["occluded_called_with_mask"] == sum(
        k["called_with_mask"] for k in occlusion["per_kind"].values()
    )
    # Bare: the unmasked faces the confusion matrix shows as called with_mask.
    assert occlusion["bare_called_with_mask"] == figures["confusion_matrix"][1][0]
    assert "covered faces" in done.stdout and "dark_blur" in done.stdout
    assert occlusion["seed"] == OCCLUSION_SEED  # fixed, and not training's


# --- the figures against hand counts -------------------------------------------------------------------
def test_metrics_against_hand_counts():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    truth = np.array([0, 0, 0, 1, 1])
    metrics = compute_metrics(truth, probs, TWO)
    assert metrics.confusion_matrix == [[2, 1], [1, 1]]
    assert metrics.accuracy == pytest.approx(3 / 5)
    assert metrics.per_class["with_mask"].precision == pytest.approx(2 / 3)
    assert metrics.per_class["without_mask"].recall == pytest.approx(1 / 2)
    assert metrics.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2) / 2)
    # with_mask scores 0.9, 0.8, 0.4 vs 0.3, 0.6: 5 of 6 pairs ranked right
    assert roc_auc(probs[:, 0], truth == 0) == pytest.approx(5 / 6)
    assert metrics.roc_auc == pytest.approx(5 / 6)


# Rows: with_mask, mask_worn_incorrectly, without_mask probabilities; 1 - P(with_mask) is 0.1, 0.35, 0.6,
# 0.55, 0.3, 0.9.
THREE_PROBS = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.65, 0.3, 0.05],
        [0.4, 0.5, 0.1],
        [0.45, 0.1, 0.45],
        [0.7, 0.1, 0.2],
        [0.1, 0.2, 0.7],
    ]
)
THREE_TRUTH = np.array([0, 0, 1, 1, 2, 2])


def test_three_class_compliance_view_and_threshold_against_hand_counts():
    likeliest = compute_metrics(THREE_TRUTH, THREE_PROBS, CLASS_NAMES)
    # argmax: 0, 0, 1, 0 (0.45 tie: the first), 0, 2
    assert likeliest.confusion_matrix == [[2, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert likeliest.compliance.noncompliant_recall == pytest.approx(2 / 4)
    assert likeliest.compliance.with_mask_recall == 1.0
    assert likeliest.compliance.noncompliant_precision == 1.0
    assert likeliest.compliance.balanced_accuracy == pytest.approx(0.75)
    flagged = compute_metrics(THREE_TRUTH, THREE_PROBS, CLASS_NAMES, threshold=0.3)
    # 1 - P(with_mask) >= 0.3 for rows 2-6: each takes its likelier non-compliant class.
    assert flagged.confusion_matrix == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert flagged.noncompliant_threshold == 0.3
    assert flagged.compliance.noncompliant_recall == 1.0
    assert flagged.compliance.with_mask_recall == pytest.approx(1 / 2)
    assert flagged.compliance.noncompliant_precision == pytest.approx(4 / 5)
    assert flagged.balanced_accuracy == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)


def test_the_precision_recall_curve_against_hand_counts():
    curve = noncompliant_pr_curve(THREE_TRUTH, THREE_PROBS, CLASS_NAMES)
    at = {t: (p, r) for t, p, r in zip(curve.thresholds, curve.precision, curve.recall, strict=True)}
    assert at[0.3] == (pytest.approx(4 / 5), 1.0)  # flags 0.35, 0.6, 0.55, 0.3, 0.9
    assert at[0.5] == (1.0, pytest.approx(3 / 4))  # flags 0.6, 0.55, 0.9
    assert at[0.95] == (None, 0.0)  # flags none: precision undefined
    assert noncompliant_pr_curve(np.array([0, 0]), THREE_PROBS[:2], CLASS_NAMES) is None


def test_badly_worn_faces_outside_the_model_count_in_the_compliance_view_only():
    """Two classes; the last two faces are badly worn masks, one called with_mask (missed), one not."""
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.8, 0.2], [0.2, 0.8]])
    truth = np.array([0, 1, 1, WORN_INCORRECTLY_OUTSIDE_MODEL, WORN_INCORRECTLY_OUTSIDE_MODEL])
    metrics = compute_metrics(truth, probs, TWO)
    assert metrics.confusion_matrix == [[1, 0], [1, 1]] and metrics.accuracy == pytest.approx(2 / 3)
    assert metrics.compliance.noncompliant_recall == pytest.approx(2 / 4)
    assert metrics.compliance.noncompliant_support == 4 and metrics.compliance.with_mask_recall == 1.0
    assert metrics.outside_model == {"mask_worn_incorrectly": {"faces": 2, "called_with_mask": 1}}
    # with_mask scores 0.9 vs 0.3, 0.6, 0.8, 0.2: every pair ranked right
    assert metrics.roc_auc == 1.0 and metrics.noncompliant_pr.recall[PR_THRESHOLDS.index(0.5)] == 0.5
    assert EvalMetrics.from_dict(json.loads(json.dumps(metrics.to_dict()))) == metrics
    assert "outside_model" not in compute_metrics(truth[:3], probs[:3], TWO).to_dict()


def test_figures_per_data_set_and_the_json_round_trip():
    datasets = np.array(["a", "a", "b", "b", "b", "b"])
    metrics = compute_metrics(THREE_TRUTH, THREE_PROBS, CLASS_NAMES, 0.3, datasets)
    assert list(metrics.per_dataset) == ["a", "b"]
    assert list(metrics.per_dataset["a"].per_class) == ["with_mask"]
    assert metrics.per_dataset["b"].confusion_matrix == [[0, 0, 0], [0, 1, 1], [0, 0, 2]]
    again = EvalMetrics.from_dict(json.loads(json.dumps(metrics.to_dict())))
    assert again == metrics


def test_figures_written_before_the_compliance_view_still_load():
    old = {
        "accuracy": 0.9,
        "balanced_accuracy": 0.9,
        "labels": list(TWO),
        "per_class": {name: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10} for name in TWO},
        "confusion_matrix": [[9, 1], [1, 9]],
        "per_dataset": {},
    }
    metrics = EvalMetrics.from_dict(old)
    assert metrics.compliance is None and metrics.noncompliant_pr is None and metrics.per_dataset == {}


def test_evaluate_in_python_reads_a_subset_folder(tmp_path, three_class_weights):
    data = make_class_folders(tmp_path / "masked", per_class=4, source=ILC, classes=("with_mask",))
    result = evaluate(data, three_class_weights)
    assert list(result.figures.per_class) == ["with_mask"]
    assert result.figures.noncompliant_pr is None  # no non-compliant face: no recall to draw
    assert result.figures.compliance.noncompliant_recall is None


def test_hidden_and_system_folders_are_not_classes_and_a_long_list_of_unknown_ones_is_cut(tmp_path):
    data = make_class_folders(tmp_path / "two", per_class=3, source=TWELVE_K / "test", classes=TWO)
    for leftover in (".ipynb_checkpoints", "__MACOSX"):
        shutil.copytree(data / "with_mask", data / leftover)
    figures = run_json(tmp_path, str(data), *TWO_CLASS)
    assert list(figures["per_class"]) == list(TWO) and np.array(figures["confusion_matrix"]).sum() == 6
    for name in ("cats", "dogs", "cars", "trees", "boats", "birds", "shoes"):
        (data / name).mkdir()
    assert_one_error_line(
        run_cli("evaluate", str(data), *TWO_CLASS),
        "(birds, boats, cars, cats, dogs and 2 more) the model does not know",
    )
