"""VOC AP on hand-checked cases, annotation parsing, and the evaluate-detection command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskapp.errors import DataError
from maskapp.metrics.detection import SMALL_FACE_PX, all_point_ap, evaluate_predictions
from maskapp.metrics.voc import Box, load_annotations, parse_annotation
from tests.conftest import DEV, WEIGHTS, run_cli

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


def test_bad_annotations_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_annotations(tmp_path / "missing")
    with pytest.raises(DataError, match="no PASCAL VOC"):
        load_annotations(tmp_path)
    (tmp_path / "x.xml").write_text("<annotation><object><name>hat</name></object></annotation>")
    with pytest.raises(DataError, match=r"x\.xml"):
        load_annotations(tmp_path)


def test_evaluate_detection_command_on_real_photos(tmp_path):
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    for stem in ("maksssksksss0", "maksssksksss104", "maksssksksss107"):
        (annotations / f"{stem}.xml").symlink_to(DEV / "annotations" / f"{stem}.xml")
    out = tmp_path / "report.json"
    done = run_cli(
        "evaluate-detection",
        "--images",
        str(DEV / "images"),
        "--annotations",
        str(annotations),
        "--json",
        str(out),
        "--weights",
        str(WEIGHTS),
    )
    assert done.returncode == 0, done.stderr
    assert "mAP" in done.stdout and "boxes >= 32 px" in done.stdout
    report = json.loads(out.read_text())
    assert report["images"] == 3
    for view in report["views"]:
        assert 0.0 <= view["mAP"] <= 1.0
        assert set(view["classes"]) == {"with_mask", "without_mask"}
        assert 0.0 < view["face"]["recall"] <= 1.0


def test_evaluate_detection_bad_folder_is_one_error_line(tmp_path):
    done = run_cli("evaluate-detection", "--images", str(tmp_path), "--annotations", str(tmp_path / "none"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
