"""VOC AP on hand-checked cases, annotation parsing, and the evaluate-detection command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskapp.cli import main
from maskapp.errors import DataError
from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.metrics.detection import SMALL_FACE_PX, all_point_ap, evaluate_predictions
from maskapp.metrics.report import format_detection
from maskapp.metrics.voc import Box, load_annotations, parse_annotation
from tests.conftest import CNN_WEIGHTS, DEV, TWO_CLASS_WEIGHTS, dev_photo, run_cli

VOC = """<annotation><filename>{name}</filename><size><width>400</width><height>300</height></size>{objects}
</annotation>"""
OBJECT = (
    "<object><name>{label}</name><bndbox><xmin>{0}</xmin><ymin>{1}</ymin><xmax>{2}</xmax><ymax>{3}</ymax>"
    "</bndbox></object>"
)


def write_voc(folder, name, objects):
    folder.mkdir(exist_ok=True)
    body = "".join(OBJECT.format(*box, label=label) for label, box in objects)
    (folder / f"{name}.xml").write_text(VOC.format(name=f"{name}.png", objects=body))


def test_all_point_ap_by_hand():
    # 2 faces; ranked: hit, miss, hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1 up to recall 1/2, then 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3.
    ap = all_point_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(0.5 + 1 / 3)
    assert all_point_ap(np.array([]), np.array([])) == 0.0


@pytest.fixture
def hand_case(tmp_path):
    """Two images, checked by hand:
    a.png: masked face A (big), incorrectly worn mask B (big -> without_mask), unmasked face C (20 px).
    b.png: unmasked face D (big).
    """
    folder = tmp_path / "annotations"
    write_voc(
        folder,
        "a",
        [
            ("with_mask", (10, 10, 60, 70)),
            ("mask_weared_incorrect", (100, 10, 150, 70)),
            ("without_mask", (200, 200, 220, 222)),
        ],
    )
    write_voc(folder, "b", [("without_mask", (50, 50, 110, 120))])
    predictions = {
        "a.png": [
            Box((12, 12, 60, 70), "with_mask", 0.9, 0.95),  # A, right label
            Box((100, 12, 150, 70), "with_mask", 0.6, 0.9),  # B, wrong label
            Box((201, 200, 220, 222), "without_mask", 0.8, 0.85),  # C (small), right label
            Box((300, 100, 350, 160), "without_mask", 0.7, 0.5),  # nothing there: false positive
        ],
        "b.png": [Box((50, 50, 110, 118), "without_mask", 0.5, 0.8)],  # D, right label
    }
    return load_annotations(folder), predictions


def test_hand_checked_case_over_all_boxes(hand_case):
    annotations, predictions = hand_case
    view = evaluate_predictions(predictions, annotations).views[0]
    assert view.min_short_side == 0
    # with_mask: 1 truth (A); detections A 0.9 (hit), B 0.6 (miss) -> AP 1.
    assert view.classes["with_mask"].ap == pytest.approx(1.0)
    assert view.classes["with_mask"].ground_truths == 1
    # without_mask: truths B, C, D; ranked C 0.8 hit, FP 0.7, D 0.5 hit -> P 1, 1/2, 2/3 at R 1/3, 1/3, 2/3.
    assert view.classes["without_mask"].ap == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    assert view.classes["without_mask"].recall == pytest.approx(2 / 3)
    assert view.mean_ap == pytest.approx((1 + 1 / 3 + 2 / 9) / 2)
    # faces, ranked by face score: A .95 hit, B .9 hit, C .85 hit, D .8 hit, FP .5 -> AP 1, recall 1.
    assert view.face.ap == pytest.approx(1.0) and view.face.recall == pytest.approx(1.0)
    assert view.face_by_class["with_mask"].ground_truths == 1
    assert view.face_by_class["without_mask"].recall == pytest.approx(1.0)


def test_hand_checked_case_over_big_boxes_ignores_the_small_face(hand_case):
    annotations, predictions = hand_case
    view = evaluate_predictions(predictions, annotations).views[1]
    assert view.min_short_side == SMALL_FACE_PX
    # C is ignored, and so is the detection on it: ranked FP 0.7, D 0.5 hit -> P 0, 1/2 at R 0, 1/2.
    without = view.classes["without_mask"]
    assert without.ground_truths == 2 and without.detections == 2
    assert without.ap == pytest.approx(0.5 * 0.5)
    assert view.face.ground_truths == 3


def test_duplicate_detections_count_once():
    annotations = [parse_annotation_text("c", [("with_mask", (0, 0, 50, 50))])]
    twice = {"c.png": [Box((0, 0, 50, 50), "with_mask", 0.9), Box((1, 1, 50, 50), "with_mask", 0.8)]}
    result = evaluate_predictions(twice, annotations).views[0].classes["with_mask"]
    assert result.recall == 1.0 and result.ap == pytest.approx(1.0) and result.detections == 2


def parse_annotation_text(name, objects):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        write_voc(Path(folder), name, objects)
        return parse_annotation(Path(folder) / f"{name}.xml")


@pytest.mark.parametrize(
    ("box", "message"),
    [((50, 10, 20, 40), "is not xmin < xmax"), ((10, 10, "nan", 40), "in finite pixels")],
)
def test_an_inverted_or_nan_box_is_a_clear_error_not_a_changed_ap(tmp_path, box, message):
    write_voc(tmp_path, "a", [(WITH_MASK, box)])
    with pytest.raises(DataError, match=rf"a\.xml .*{message}"):
        load_annotations(tmp_path)


def test_two_annotations_of_one_image_are_a_clear_error(tmp_path):
    write_voc(tmp_path, "a", [(WITH_MASK, (10, 10, 50, 50))])
    (tmp_path / "copy_of_a.xml").write_text((tmp_path / "a.xml").read_text())
    with pytest.raises(DataError, match=r"a\.xml and copy_of_a\.xml both describe image a\.png"):
        load_annotations(tmp_path)


def test_annotations_without_any_face_are_refused_not_scored_zero(tmp_path, capsys):
    write_voc(tmp_path / "annotations", "a", [])
    (tmp_path / "images").mkdir()
    dev_photo_path = DEV / "images" / "maksssksksss0.png"
    (tmp_path / "images" / "a.png").write_bytes(dev_photo_path.read_bytes())
    argv = [
        "evaluate-detection",
        "--images",
        str(tmp_path / "images"),
        "--annotations",
        str(tmp_path / "annotations"),
    ]
    assert main(argv) == 2
    assert "hold no face at all" in capsys.readouterr().err


def test_bad_annotations_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_annotations(tmp_path / "missing")
    with pytest.raises(DataError, match="no PASCAL VOC"):
        load_annotations(tmp_path)
    (tmp_path / "x.xml").write_text("<annotation><object><name>hat</name></object></annotation>")
    with pytest.raises(DataError, match=r"x\.xml"):
        load_annotations(tmp_path)
    (tmp_path / "x.xml").unlink()
    (tmp_path / "folder.xml").mkdir()  # an entry named .xml that cannot be read as a file
    with pytest.raises(
        DataError, match=r"cannot read annotation .*folder\.xml \(Is a directory\); give a folder"
    ):
        load_annotations(tmp_path)


# A real photo with a hand-edited annotation (its real boxes, two changed on purpose), the figures worked
# out by hand from the boxes the pipeline (centerface, the 2-class MobileNetV2) returns on it:
#   D1 (319, 83, 362, 139) without_mask, class score .808, face score .854: on U (IoU .69)
#   D2 (78, 101, 110, 139) without_mask, class score .830, face score .847: its face's truth is left out
#   D3 (183, 97, 225, 143) with_mask,    class score .764, face score .765: on M (IoU .85)
HAND_PHOTO = "maksssksksss0"
HAND_TRUTHS = [
    ("with_mask", (185, 100, 226, 144)),  # M: found (41 px)
    ("without_mask", (325, 90, 360, 141)),  # U: found (35 px)
    ("with_mask", (400, 200, 460, 260)),  # E: added, nobody there, missed (60 px)
    ("with_mask", (20, 20, 40, 40)),  # T: added, missed, below 32 px
]  # and the real truth under D2 is left out: D2 is a false positive
HAND_FIGURES = {
    # all boxes. with_mask: D3 hit of M, E, T -> AP 1/3. without_mask: D2 .830 miss, D1 .808 hit of U ->
    # P 0, 1/2 at R 0, 1 -> AP 1/2. Faces by face score: D1 hit, D2 miss, D3 hit of 4 -> P 1, 1/2, 2/3 at
    # R 1/4, 1/4, 1/2 -> AP 1/4 + 1/4 * 2/3 = 5/12.
    "all boxes": {"with_mask": 1 / 3, "without_mask": 1 / 2, "mAP": 5 / 12, "face": 5 / 12, "recall": 1 / 2},
    # >= 32 px: T is ignored. with_mask AP 1/2; without_mask the same; faces: 3 truths -> 1/3 + 1/3 * 2/3.
    "boxes >= 32 px": {
        "with_mask": 1 / 2,
        "without_mask": 1 / 2,
        "mAP": 1 / 2,
        "face": 5 / 9,
        "recall": 2 / 3,
    },
}


@pytest.fixture
def hand_voc(tmp_path):
    """The hand-checked case as a VOC folder: annotations/ here, the photo from the dev set."""
    write_voc(tmp_path / "annotations", HAND_PHOTO, HAND_TRUTHS)
    return ["--images", str(DEV / "images"), "--annotations", str(tmp_path / "annotations")]


def test_the_pipeline_still_returns_the_boxes_the_hand_case_was_worked_out_on():
    from maskapp.config import InferenceConfig
    from maskapp.vision.boxes import iou
    from maskapp.vision.pipeline import load_pipeline

    result = load_pipeline(InferenceConfig(weights=TWO_CLASS_WEIGHTS)).process(dev_photo(HAND_PHOTO))
    d1, d3, d2 = sorted(result.faces, key=lambda face: -face.box[0])  # right to left
    assert [face.label for face in (d1, d2, d3)] == ["without_mask", "without_mask", "with_mask"]
    truths = np.array([box for _, box in HAND_TRUTHS], dtype=float)
    assert iou(d1.box, truths).argmax() == 1 and iou(d1.box, truths).max() >= 0.5  # on U
    assert iou(d3.box, truths).argmax() == 0 and iou(d3.box, truths).max() >= 0.5  # on M
    assert iou(d2.box, truths).max() < 0.5  # on nothing annotated
    assert d2.score > d1.score and d1.face.score > d2.face.score > d3.face.score  # the ranks used


def test_evaluate_detection_command_gives_the_hand_checked_figures(tmp_path, hand_voc):
    out = tmp_path / "report.json"
    done = run_cli("evaluate-detection", *hand_voc, "--json", str(out), "--weights", str(TWO_CLASS_WEIGHTS))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["images"] == 1
    for view in report["views"]:
        expected = HAND_FIGURES[view["name"]]
        assert view["classes"]["with_mask"]["ap"] == pytest.approx(expected["with_mask"])
        assert view["classes"]["without_mask"]["ap"] == pytest.approx(expected["without_mask"])
        assert view["mAP"] == pytest.approx(expected["mAP"])
        assert view["face"]["ap"] == pytest.approx(expected["face"])
        assert view["face"]["recall"] == pytest.approx(expected["recall"])
    assert f"**{5 / 12:.3f}**" in done.stdout and "| boxes >= 32 px |" in done.stdout


def test_the_source_pipeline_runs_a_fixed_size_checkpoint_at_its_own_size(tmp_path, hand_voc):
    """The baseline CNN's head fits only its own input size: the source pipeline keeps it (and says so)
    instead of forcing the write-ups' 224 px; MobileNetV2, which pools globally, still runs at 224."""
    out = tmp_path / "cnn.json"
    done = run_cli(
        "evaluate-detection",
        *hand_voc,
        "--source-pipeline",
        "--weights",
        str(CNN_WEIGHTS),
        "--json",
        str(out),
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "the cnn checkpoint has a fixed input size" in done.stdout and "128 px" in done.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["classifier_input_size"] == 128 and report["settings"]["detector"] == "res10"
    from maskapp.vision.pipeline import SOURCE_CLASSIFIER_SIZE, load_source_pipeline

    assert load_source_pipeline(TWO_CLASS_WEIGHTS).classifier.spec.input_size == SOURCE_CLASSIFIER_SIZE == 224


@pytest.mark.parametrize(
    "flags", [["--detector", "centerface"], ["--face-threshold", "0.3"], ["--margin", "0.2"]]
)
def test_the_source_pipeline_refuses_the_settings_it_cannot_honour(hand_voc, capsys, flags):
    assert main(["evaluate-detection", *hand_voc, "--source-pipeline", *flags]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and flags[0] in errors[0] and "--source-pipeline" in errors[0]


def test_evaluate_detection_bad_folder_is_one_error_line(tmp_path):
    done = run_cli("evaluate-detection", "--images", str(tmp_path), "--annotations", str(tmp_path / "none"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# --- three classes ---------------------------------------------------------------------------------
def test_voc_names_become_the_three_class_names_and_their_compliance_view(hand_case):
    annotations, _ = hand_case
    labels = [obj.label for obj in annotations[0].objects]
    assert labels == [WITH_MASK, WORN_INCORRECTLY, WITHOUT_MASK]  # mask_weared_incorrect renamed
    compliance = [obj.label for obj in annotations[0].compliance_view().objects]
    assert compliance == [WITH_MASK, WITHOUT_MASK, WITHOUT_MASK]


@pytest.fixture
def three_class_predictions():
    """The hand case's faces, each given its right label (B as a badly worn mask), plus the same false
    positive."""
    return {
        "a.png": [
            Box((12, 12, 60, 70), WITH_MASK, 0.9, 0.95),  # A
            Box((100, 12, 150, 70), WORN_INCORRECTLY, 0.6, 0.9),  # B
            Box((201, 200, 220, 222), WITHOUT_MASK, 0.8, 0.85),  # C (small)
            Box((300, 100, 350, 160), WITHOUT_MASK, 0.7, 0.5),  # nothing there
        ],
        "b.png": [Box((50, 50, 110, 118), WITHOUT_MASK, 0.5, 0.8)],  # D
    }


def test_three_class_view_by_hand(hand_case, three_class_predictions):
    annotations, _ = hand_case
    report = evaluate_predictions(three_class_predictions, annotations, three_class=True)
    everything, big = report.three_class_views
    assert list(everything.classes) == list(CLASS_NAMES)
    assert everything.classes[WITH_MASK].ap == pytest.approx(1.0)
    assert everything.classes[WORN_INCORRECTLY].ap == pytest.approx(1.0)
    assert everything.classes[WORN_INCORRECTLY].ground_truths == 1
    # without_mask: truths C, D; ranked C 0.8 hit, FP 0.7, D 0.5 hit -> P 1, 1/2, 2/3 at R 1/2, 1/2, 1.
    assert everything.classes[WITHOUT_MASK].ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert everything.mean_ap == pytest.approx((1 + 1 + 5 / 6) / 3)
    assert everything.face_by_class[WORN_INCORRECTLY].recall == pytest.approx(1.0)
    # >= 32 px: C and the detection on it are ignored; FP 0.7 then D 0.5 -> AP 1/2.
    assert big.classes[WITHOUT_MASK].ap == pytest.approx(0.5)
    assert big.classes[WORN_INCORRECTLY].ap == pytest.approx(1.0)
    # The 2-class view of the same predictions: B's badly worn mask is a right 'without_mask'.
    # Ranked C 0.8 hit, FP 0.7, B 0.6 hit, D 0.5 hit of B, C, D -> P 1, 1/2, 2/3, 3/4 at R 1/3 .. 1.
    two_class = report.views[0]
    assert list(two_class.classes) == [WITH_MASK, WITHOUT_MASK]
    assert two_class.classes[WITHOUT_MASK].ap == pytest.approx(1 / 3 + 2 / 3 * 3 / 4)
    assert two_class.classes[WITHOUT_MASK].ground_truths == 3


def test_a_class_nobody_shows_is_left_out_of_the_mean(hand_case, three_class_predictions):
    annotations, _ = hand_case
    only_b = [annotation for annotation in annotations if annotation.filename == "b.png"]
    view = evaluate_predictions(three_class_predictions, only_b, three_class=True).three_class_views[0]
    assert view.classes[WORN_INCORRECTLY].ground_truths == 0 and view.classes[WITH_MASK].ground_truths == 0
    assert view.mean_ap == pytest.approx(view.classes[WITHOUT_MASK].ap)


def test_three_class_report_json_and_markdown(hand_case, three_class_predictions):
    annotations, _ = hand_case
    without = evaluate_predictions(three_class_predictions, annotations)
    assert "three_class_views" not in without.to_dict() and "three-class" not in format_detection(without)
    report = evaluate_predictions(three_class_predictions, annotations, three_class=True)
    data = json.loads(json.dumps(report.to_dict()))
    assert [view["name"] for view in data["three_class_views"]] == ["all boxes", "boxes >= 32 px"]
    assert set(data["three_class_views"][0]["classes"]) == set(CLASS_NAMES)
    text = format_detection(report)
    assert "| AP mask_worn_incorrectly |" in text and text.count("| boxes >= 32 px |") == 2


# Dev photos with badly worn masks among masked and unmasked faces (9 faces of 33 px or more).
THREE_CLASS_STEMS = ("maksssksksss387", "maksssksksss250", "maksssksksss132", "maksssksksss0")


def evaluate_three_class(tmp_path, weights) -> tuple[dict, str]:
    annotations = tmp_path / "annotations"
    annotations.mkdir(exist_ok=True)
    for stem in THREE_CLASS_STEMS:
        if not (annotations / f"{stem}.xml").exists():
            (annotations / f"{stem}.xml").symlink_to(DEV / "annotations" / f"{stem}.xml")
    out = tmp_path / f"{weights.stem}.json"
    done = run_cli(
        "evaluate-detection", "--images", str(DEV / "images"), "--annotations", str(annotations),
        "--three-class", "--json", str(out), "--weights", str(weights),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def test_evaluate_detection_three_class_on_real_photos(tmp_path, three_class_weights):
    report, stdout = evaluate_three_class(tmp_path, three_class_weights)
    assert report["images"] == len(THREE_CLASS_STEMS)
    assert report["settings"]["classes"] == list(CLASS_NAMES)
    assert [set(view["classes"]) for view in report["views"]] == [{WITH_MASK, WITHOUT_MASK}] * 2
    for view in report["three_class_views"]:
        assert list(view["classes"]) == list(CLASS_NAMES)
        assert view["classes"][WORN_INCORRECTLY]["ground_truths"] >= 3
        assert all(0.0 <= result["ap"] <= 1.0 for result in view["classes"].values())
        assert 0.0 <= view["mAP"] <= 1.0
    assert "three-class view" in stdout and "AP mask_worn_incorrectly" in stdout


def test_evaluate_detection_three_class_with_a_two_class_checkpoint(tmp_path):
    """A 2-class model never says 'mask_worn_incorrectly': that AP is 0, the command still runs."""
    report, _ = evaluate_three_class(tmp_path, TWO_CLASS_WEIGHTS)
    assert report["settings"]["classes"] == [WITH_MASK, WITHOUT_MASK]
    for view in report["three_class_views"]:
        incorrect = view["classes"][WORN_INCORRECTLY]
        assert incorrect["ap"] == 0.0 and incorrect["detections"] == 0 and incorrect["ground_truths"] >= 3
    assert report["views"][1]["mAP"] > 0.5
