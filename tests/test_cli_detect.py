"""`python -m maskapp detect`: the JSON schema (three classes, and a 2-class checkpoint), annotated
copies (faces hidden with --anonymize), and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskapp import PROJECT_ROOT
from maskapp.cli import main, summary_line
from maskapp.labels import CLASS_NAMES, WITH_MASK
from maskapp.media.photos import annotated_names, result_keys
from maskapp.results import MASK_LABEL, NO_MASK_LABEL
from maskapp.vision.anonymize import FILL_BGR, hidden_region
from maskapp.vision.draw import label_style
from tests.conftest import ASCII_LOCALE, DEV, TWO_CLASS_WEIGHTS, WEIGHTS, run_cli, signal_once

PHOTOS = ("maksssksksss0.png", "maksssksksss104.png")


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        (folder / name).symlink_to(DEV / "images" / name)
    return folder


def check_entry(entry: dict, width: int, height: int, classes=(MASK_LABEL, NO_MASK_LABEL)):
    """One face: its box inside the image, one of the model's classes, a probability for every class of
    the model, and whether it is compliant (with_mask only)."""
    assert set(entry) == {"box", "label", "score", "face_score", "probs", "compliant"}
    x1, y1, x2, y2 = entry["box"]
    assert all(isinstance(v, int) for v in entry["box"])
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert entry["label"] in classes
    assert list(entry["probs"]) == list(classes)
    assert sum(entry["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert entry["compliant"] is (entry["label"] == WITH_MASK)
    assert 0.0 <= entry["face_score"] <= 1.0
    assert entry["score"] == pytest.approx(entry["face_score"] * entry["probs"][entry["label"]])


def check_summary(summary: dict, entries: list[dict]):
    """Per image: faces, faces per class of the three (0 for a class the model lacks), compliance."""
    assert list(summary) == ["faces", *CLASS_NAMES, "compliance"]
    assert summary["faces"] == len(entries)
    for name in CLASS_NAMES:
        assert summary[name] == sum(entry["label"] == name for entry in entries)
    compliant = sum(entry["compliant"] for entry in entries)
    assert summary["compliance"] == (pytest.approx(compliant / len(entries)) if entries else None)


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
    data = json.loads(out.read_text())
    images = data["images"]
    assert set(images) == set(data["summary"]) == set(PHOTOS)
    for name, entries in images.items():
        height, width = cv2.imread(str(DEV / "images" / name)).shape[:2]
        assert entries, f"no face found in {name}"
        for entry in entries:
            check_entry(entry, width, height, tuple(data["classes"]))
        check_summary(data["summary"][name], entries)
        written = cv2.imread(str(annotated / name))
        assert written is not None and written.shape == (height, width, 3)
    assert f"{PHOTOS[0]}: {len(images[PHOTOS[0]])} faces" in done.stdout


def test_inputs_that_share_a_name_keep_their_own_key_and_annotated_copy(tmp_path):
    """a/x.png and b/x.png (two different photos) and b/x.jpg (a third): nothing overwrites anything.
    Inputs sharing a file name are all keyed by the path as given; the others by their file name."""
    inputs = {tmp_path / "a" / "x.png": PHOTOS[0], tmp_path / "b" / "x.png": PHOTOS[1]}
    for path, name in inputs.items():
        path.parent.mkdir(exist_ok=True)
        path.symlink_to(DEV / "images" / name)
    jpeg = tmp_path / "b" / "x.jpg"
    cv2.imwrite(str(jpeg), cv2.resize(cv2.imread(str(DEV / "images" / PHOTOS[0])), (300, 200)))
    out, annotated = tmp_path / "detections.json", tmp_path / "annotated"
    paths = [*map(str, inputs), str(jpeg)]
    done = run_cli(
        "detect", *paths, "--json", str(out), "--annotate", str(annotated), "--weights", str(WEIGHTS)
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    keys = [paths[0], paths[1], "x.jpg"]
    assert list(data["images"]) == keys
    assert sorted(path.name for path in annotated.iterdir()) == ["x-1.png", "x-2.png", "x-3.png"]
    assert data["annotated"] == {key: str(annotated / f"x-{n}.png") for n, key in enumerate(keys, start=1)}
    for key, path in zip(keys, paths, strict=True):
        written = cv2.imread(data["annotated"][key])
        assert written.shape == cv2.imread(path).shape, f"{key}: the annotated copy of another input"
        assert f"{key}: {len(data['images'][key])} face" in done.stdout  # 'face' or 'faces'


def test_numbered_copies_never_take_the_name_of_another_input():
    a, b, c, d = Path("a/x.png"), Path("b/x.png"), Path("c/x-1.png"), Path("y.jpg")
    assert annotated_names([a, b, c, d, a]) == {c: "x-1.png", d: "y.png", a: "x-2.png", b: "x-3.png"}
    assert result_keys([a, b, c, d]) == {a: "a/x.png", b: "b/x.png", c: "x-1.png", d: "y.jpg"}


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
        (["{photo}", "--noncompliant-threshold", "1.5"], "non-compliant threshold 1.5 is out of range"),
        (["{photo}", "--noncompliant-threshold", "0"], "allowed: above 0 and below 1"),
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


@pytest.mark.parametrize(
    "command",
    [
        ["detect", str(DEV / "images" / PHOTOS[0])],
        ["video", "missing.mp4"],
        ["evaluate-tracking"],
        ["evaluate-detection", "--images", str(DEV / "images"), "--annotations", str(DEV / "annotations")],
    ],
)
def test_a_face_threshold_under_the_detectors_floor_is_refused(command, capsys):
    """res10 at 0.05 finds about 100 "faces" in a blank picture; the pages' slider stops at 0.15
    (DETECTOR_MIN_THRESHOLDS), and the command line took anything from 0."""
    assert main([*command, "--detector", "res10", "--face-threshold", "0.1"]) == 2
    assert capsys.readouterr().err == (
        "error: face threshold 0.1 is below the res10 detector's lowest (under it, it finds faces in a "
        "blank picture); allowed with res10: 0.15 to 1\n"
    )


def test_a_bad_input_run_prints_no_traceback(tmp_path):
    done = run_cli("detect", str(tmp_path / "missing.jpg"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# --- three classes ---------------------------------------------------------------------------------
# Street photos with badly worn masks among masked and unmasked faces.
MIXED_PHOTOS = ("maksssksksss387.png", "maksssksksss250.png")


def detect_json(tmp_path, weights, *flags: str) -> dict:
    out = tmp_path / f"detect{len(list(tmp_path.iterdir()))}.json"
    paths = [str(DEV / "images" / name) for name in MIXED_PHOTOS]
    done = run_cli("detect", *paths, "--json", str(out), "--weights", str(weights), *flags)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()) | {"stdout": done.stdout}


def test_three_class_json_schema(tmp_path, three_class_weights):
    data = detect_json(tmp_path, three_class_weights)
    assert data["classes"] == list(CLASS_NAMES)
    for name in MIXED_PHOTOS:
        height, width = cv2.imread(str(DEV / "images" / name)).shape[:2]
        entries = data["images"][name]
        assert entries, f"no face found in {name}"
        for entry in entries:
            check_entry(entry, width, height, CLASS_NAMES)
        check_summary(data["summary"][name], entries)
        assert (
            f"{name}: {len(entries)} faces, {data['summary'][name]['with_mask']} with_mask, "
            in data["stdout"]
        )
    # Every image together: the sums of the per-image summaries, and the last line printed.
    total, every_entry = data["total"], [e for name in MIXED_PHOTOS for e in data["images"][name]]
    assert total["images"] == len(MIXED_PHOTOS) and list(total)[1:] == ["faces", *CLASS_NAMES, "compliance"]
    check_summary({key: total[key] for key in list(total)[1:]}, every_entry)
    last_line = data["stdout"].splitlines()[-1]
    assert last_line.startswith(f"all {len(MIXED_PHOTOS)} images: {len(every_entry)} faces")


def test_a_two_class_checkpoint_still_gives_the_schema_with_a_zero_for_the_missing_class(tmp_path):
    data = detect_json(tmp_path, TWO_CLASS_WEIGHTS)
    assert data["classes"] == [MASK_LABEL, NO_MASK_LABEL]
    for name in MIXED_PHOTOS:
        height, width = cv2.imread(str(DEV / "images" / name)).shape[:2]
        for entry in data["images"][name]:
            check_entry(entry, width, height, (MASK_LABEL, NO_MASK_LABEL))
        check_summary(data["summary"][name], data["images"][name])
        assert data["summary"][name]["mask_worn_incorrectly"] == 0


def test_a_lower_non_compliant_threshold_flags_at_least_as_many_faces(tmp_path, three_class_weights):
    strict = detect_json(tmp_path, three_class_weights, "--noncompliant-threshold", "0.01")
    lenient = detect_json(tmp_path, three_class_weights, "--noncompliant-threshold", "0.99")
    for name in MIXED_PHOTOS:
        a, b = strict["summary"][name], lenient["summary"][name]
        assert a["faces"] == b["faces"] and a["with_mask"] <= b["with_mask"]
        for entry in strict["images"][name]:
            assert entry["compliant"] == (1 - entry["probs"][WITH_MASK] < 0.01)


def test_a_photo_without_faces_gives_an_empty_result_not_an_error(tmp_path):
    street = tmp_path / "street.png"  # the street below the faces of a real photo: bodies, no face
    cv2.imwrite(str(street), cv2.imread(str(DEV / "images" / "maksssksksss0.png"))[200:, :])
    done = run_cli("detect", str(street), "--json", str(tmp_path / "out.json"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert json.loads((tmp_path / "out.json").read_text())["images"]["street.png"] == []
    assert "street.png: 0 faces" in done.stdout


# --- hiding faces in the annotated copies ----------------------------------------------------------
def annotated_run(tmp_path, mode: str) -> tuple[np.ndarray, list[dict]]:
    """`detect --annotate --anonymize MODE` on the street photo: its annotated copy and its faces."""
    out, folder = tmp_path / f"{mode}.json", tmp_path / mode
    args = [str(DEV / "images" / PHOTOS[0]), "--annotate", str(folder), "--json", str(out)]
    assert main(["detect", *args, "--anonymize", mode, "--weights", str(WEIGHTS)]) == 0
    return cv2.imread(str(folder / PHOTOS[0])), json.loads(out.read_text())["images"][PHOTOS[0]]


def test_anonymize_hides_the_faces_of_the_annotated_copy_and_keeps_box_and_verdict(tmp_path):
    photo = cv2.imread(str(DEV / "images" / PHOTOS[0]))
    shown, faces = annotated_run(tmp_path, "none")
    assert faces, "the street photo should have faces"
    hidden = np.zeros(photo.shape[:2], bool)
    for face in faces:
        left, top, right, bottom = hidden_region(face["box"], photo.shape)
        hidden[top:bottom, left:right] = True
    # The face pixels: in a hidden region and left as they were by the drawing of boxes and captions.
    undrawn = (shown == photo).all(axis=2)
    face_pixels = hidden & undrawn
    assert face_pixels.sum() > 0.5 * hidden.sum()  # none keeps the faces as the photo has them
    for mode in ("fill", "blur"):
        out, mode_faces = annotated_run(tmp_path, mode)
        assert mode_faces == faces  # hiding changes the picture, never the results
        assert np.array_equal(out[~hidden], shown[~hidden])  # nothing else changes
        for face in faces:  # the coloured box stays: its bottom edge, below any caption
            x1, _, x2, y2 = face["box"]
            assert tuple(out[y2 - 1, (x1 + x2) // 2]) == label_style(face["label"]).color
        if mode == "fill":  # not one original face pixel is left (unless the photo was that grey)
            assert (out[face_pixels] == FILL_BGR).all()
        else:
            kept = (out == photo).all(axis=2) & face_pixels
            assert kept.sum() < 0.1 * face_pixels.sum()


def test_anonymize_without_annotated_copies_is_refused(capsys):
    assert main(["detect", str(DEV / "images" / PHOTOS[0]), "--anonymize", "fill"]) == 2
    assert (
        "error: --anonymize hides faces in the annotated copies: add --annotate DIR"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("faces", "masked", "words"), [(0, 0, "0 faces"), (1, 1, "1 face,"), (2, 1, "2 faces")]
)
def test_a_summary_line_counts_faces_in_words(faces, masked, words):
    summary = {"faces": faces, **dict.fromkeys(CLASS_NAMES, 0), WITH_MASK: masked}
    summary["compliance"] = masked / faces if faces else None
    assert summary_line("a.png", summary).startswith(f"a.png: {words}")


@pytest.mark.parametrize("flag", ["--json", "--annotate"])
def test_a_result_over_an_input_photo_is_refused_and_the_photo_kept(tmp_path, capsys, flag):
    photos = tmp_path / "in"
    photos.mkdir()
    photo = photos / "street.png"
    photo.write_bytes((DEV / "images" / PHOTOS[0]).read_bytes())
    before = photo.read_bytes()
    target = photo if flag == "--json" else photos  # the annotated copy would be in/street.png
    assert main(["detect", str(photo), flag, str(target), "--weights", str(WEIGHTS)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {flag} ") and "is also this command's input" in line
    assert photo.read_bytes() == before


def test_a_file_name_the_terminal_cannot_show_is_escaped_not_a_crash(tmp_path):
    photo = tmp_path / "été.png"
    photo.write_bytes((DEV / "images" / PHOTOS[0]).read_bytes())
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskapp",
            "detect",
            str(photo),
            "--json",
            str(out),
            "--weights",
            str(WEIGHTS),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},  # a terminal that cannot show é
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"\\xe9t\\xe9.png: " in done.stdout and "été.png" in json.loads(out.read_text())["images"]


@pytest.mark.parametrize(
    ("name", "env", "json_key"),
    [(os.fsdecode(b"\xe9t\xe9.png"), None, "\\xe9t\\xe9.png"), ("été.png", ASCII_LOCALE, "été.png")],
    ids=["latin-1-name", "ascii-locale"],
)
def test_an_annotated_copy_of_a_name_opencv_cannot_take_is_written(tmp_path, name, env, json_key):
    """A Latin-1 name (from an old archive), or any non-ASCII name under an ASCII locale: cv2.imwrite
    crashed the process (a segmentation fault, no message, no JSON) on the annotated copy's name, and
    the JSON held lone surrogates, which strict parsers refuse."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / name).write_bytes((DEV / "images" / PHOTOS[0]).read_bytes())
    out, results = tmp_path / "annotés", tmp_path / "out.json"
    done = run_cli(
        "detect", str(photos), "--annotate", str(out), "--json", str(results), "--weights", str(WEIGHTS),
        env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (copy,) = out.iterdir()
    assert os.fsencode(copy.name) == os.fsencode(Path(name).stem + ".png")
    assert (
        cv2.imdecode(np.fromfile(copy, np.uint8), cv2.IMREAD_COLOR).shape
        == cv2.imread(str(DEV / "images" / PHOTOS[0])).shape
    )
    text = results.read_bytes().decode("ascii")
    assert "\\ud" not in text  # no lone surrogate escapes
    assert list(json.loads(text)["images"]) == [json_key]  # a Latin-1 name as `ls -b` shows it


def test_a_skipped_file_with_a_latin1_name_is_named_as_ls_shows_it(tmp_path):
    """The skipped line printed such a name with \\udcNN escapes, unlike the JSON keys beside it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "street.png").write_bytes((DEV / "images" / PHOTOS[0]).read_bytes())
    (photos / os.fsdecode(b"\xe9t\xe9.jpg")).write_bytes(b"not a picture")
    done = run_cli("detect", str(photos), "--weights", str(WEIGHTS), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (skipped,) = [line for line in done.stderr.splitlines() if line.startswith("skipped ")]
    assert "\\xe9t\\xe9.jpg: " in skipped and "\\udc" not in skipped
    # and so does its reason, which showed it as ?t?.jpg
    assert skipped.count("\\xe9t\\xe9.jpg") == 2 and "?" not in skipped


def test_an_error_line_names_a_latin1_path_as_ls_shows_it(tmp_path, capsys):
    """The error line showed such a name with \\udcNN escapes, unlike the skipped lines and the JSON."""
    missing = tmp_path / os.fsdecode(b"\xe9t\xe9.jpg")
    assert main(["detect", str(missing)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmp_path}/\\xe9t\\xe9.jpg does not exist; allowed: image files")


def test_json_dash_writes_the_json_to_stdout_and_the_report_to_stderr():
    """`--json -` wrote a file named - in the working directory, and the pipe got the text report."""
    dash = PROJECT_ROOT / "-"
    try:
        done = run_cli("detect", str(DEV / "images" / PHOTOS[0]), "--json", "-", "--weights", str(WEIGHTS))
        assert done.returncode == 0, done.stderr[-2000:]
        assert list(json.loads(done.stdout)["images"]) == [PHOTOS[0]]
        assert f"{PHOTOS[0]}: " in done.stderr
        assert not dash.exists()
    finally:
        dash.unlink(missing_ok=True)


def test_csv_dash_is_refused_not_a_file_named_dash(tmp_path, capsys):
    assert main(["events", str(tmp_path / "events.sqlite"), "--csv", "-"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "error: --csv - would write a file named -; allowed: a file path (only --json takes -)"
    assert not Path("-").exists()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_stopped_folder_run_keeps_the_results_of_the_files_done(tmp_path, stop_signal):
    """Ctrl-C on a folder of photos printed `interrupted` and wrote no JSON: the faces found in every
    file done were lost (their annotated copies alone were kept). Now they are written and printed, and
    the exit status still says the run was interrupted."""
    photos, copies, data = tmp_path / "photos", tmp_path / "annotated", tmp_path / "run.json"
    photos.mkdir()
    for number in range(200):
        (photos / f"street{number:03}.png").write_bytes((DEV / "images" / PHOTOS[0]).read_bytes())
    child = subprocess.Popen(
        [sys.executable, "-m", "maskapp", "detect", str(photos), "--json", str(data), "--annotate",
         str(copies), "--weights", str(WEIGHTS)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job (a CI runner) starts its children with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    out, err = signal_once(
        child, lambda: copies.is_dir() and len(list(copies.iterdir())) >= 2, stop_signal, "no photo was done"
    )
    assert child.returncode == 128 + stop_signal, err[-2000:]
    assert "Traceback" not in err and err.splitlines()[-1].startswith("interrupted")
    results = json.loads(data.read_text())
    done = len(results["images"])
    assert 2 <= done < 200 and set(results["images"]) <= set(results["annotated"])
    assert results["total"]["images"] == done
    assert done <= len(list(copies.iterdir())) <= done + 1  # a copy written as the signal came, at most
    name = "Ctrl-C" if stop_signal == signal.SIGINT else "SIGTERM"
    assert results["stopped_early"] == f"interrupted ({name})"
    assert out.splitlines()[-1].startswith(f"interrupted ({name}) after {done} of 200 files")


@pytest.mark.parametrize(
    "command",
    [
        ["video", "{tmp}/clip.avi", "--out", "{tmp}/result.avi", "--json", "{tmp}/result.avi"],
        ["events", "{tmp}/events.sqlite", "--csv", "{tmp}/result.txt", "--json", "{tmp}/result.txt"],
        ["detect", str(DEV / "images" / PHOTOS[0]), "--annotate", "{tmp}", "--json", f"{{tmp}}/{PHOTOS[0]}"],
    ],
    ids=lambda command: command[0],
)
def test_two_results_at_one_path_are_refused_before_any_work(tmp_path, capsys, command):
    """The JSON written last replaced the annotated video (or the CSV, or an annotated copy) at once."""
    assert main([arg.format(tmp=tmp_path) for arg in command]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "so one result would replace the other" in line
    assert line.endswith("allowed: a different path for each")
    assert list(tmp_path.iterdir()) == []
