"""`python -m maskapp detect`: the JSON schema, annotated copies, and bad input."""

from __future__ import annotations

import json

import cv2
import pytest

from maskapp.cli import main
from maskapp.results import MASK_LABEL, NO_MASK_LABEL
from tests.conftest import DEV, WEIGHTS, run_cli

PHOTOS = ("maksssksksss0.png", "maksssksksss104.png")


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        (folder / name).symlink_to(DEV / "images" / name)
    return folder


def check_entry(entry: dict, width: int, height: int):
    assert set(entry) == {"box", "label", "score", "face_score", "probs"}
    x1, y1, x2, y2 = entry["box"]
    assert all(isinstance(v, int) for v in entry["box"])
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert entry["label"] in (MASK_LABEL, NO_MASK_LABEL)
    assert set(entry["probs"]) == {MASK_LABEL, NO_MASK_LABEL}
    assert 0.0 <= entry["face_score"] <= 1.0
    assert entry["score"] == pytest.approx(entry["face_score"] * entry["probs"][entry["label"]])


def test_folder_with_a_bad_file_gives_json_and_annotated_copies(photo_folder, tmp_path):
    (photo_folder / "notes.jpg").write_text("not an image")
    out, annotated = tmp_path / "out" / "detections.json", tmp_path / "annotated"
    done = run_cli(
        "detect",
        str(photo_folder),
        "--json",
        str(out),
        "--annotate",
        str(annotated),
        "--weights",
        str(WEIGHTS),
    )
    assert done.returncode == 0, done.stderr
    assert "notes.jpg" in done.stderr and "Traceback" not in done.stderr
    images = json.loads(out.read_text())["images"]
    assert set(images) == set(PHOTOS)
    for name, entries in images.items():
        height, width = cv2.imread(str(DEV / "images" / name)).shape[:2]
        assert entries, f"no face found in {name}"
        for entry in entries:
            check_entry(entry, width, height)
        written = cv2.imread(str(annotated / name))
        assert written is not None and written.shape == (height, width, 3)
    assert f"{PHOTOS[0]}: {len(images[PHOTOS[0]])} faces" in done.stdout


def test_detector_and_threshold_options(photo_folder, tmp_path):
    out = tmp_path / "res10.json"
    done = run_cli(
        "detect",
        str(photo_folder / PHOTOS[1]),
        "--detector",
        "res10",
        "--face-threshold",
        "0.9",
        "--json",
        str(out),
        "--weights",
        str(WEIGHTS),
    )
    assert done.returncode == 0, done.stderr
    for entry in json.loads(out.read_text())["images"][PHOTOS[1]]:
        assert entry["face_score"] >= 0.9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "does not exist"),
        (["{tmp}/empty"], "has no images"),
        (["{tmp}/bad.png"], "none of the 1 files could be read"),
        (["{photo}", "--face-threshold", "1.5"], "out of range; allowed: 0 to 1"),
        (["{photo}", "--weights", "{tmp}/missing.pt"], "does not exist"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, photo_folder, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    filled = [a.format(tmp=tmp_path, photo=photo_folder / PHOTOS[0]) for a in args]
    if "--weights" not in filled:
        filled += ["--weights", str(WEIGHTS)]
    assert main(["detect", *filled]) == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_a_bad_input_run_prints_no_traceback(tmp_path):
    done = run_cli("detect", str(tmp_path / "missing.jpg"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
