"""Tracking figures on hand-checked cases, and the synthetic clip built from real dev-set photos."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from maskapp.cli import main
from maskapp.errors import OutputError
from maskapp.metrics import tracking
from maskapp.metrics.report import format_tracking_clips
from maskapp.metrics.tracking import (
    ClipSpec,
    ClipsTrackingReport,
    ClipTruth,
    GroundTruthFace,
    GroundTruthPerson,
    PipelineTrackingReport,
    PredictedFace,
    build_clip,
    evaluate_tracks,
    pool,
    run_evaluation,
    warp_box,
)

SMALL_CLIP = ClipSpec(scenes=3, scene_frames=40, people=10, seed=5)
FRAMES = 10
ALICE = (100.0, 100.0, 160.0, 170.0)  # with_mask
BOB = (300.0, 100.0, 360.0, 170.0)  # without_mask
SMALL = (500.0, 100.0, 520.0, 120.0)  # a 20 px face: ignored


@pytest.fixture(scope="module")
def clip():
    return build_clip(SMALL_CLIP)


def two_people(frames: int = FRAMES, with_small: bool = False) -> ClipTruth:
    """Alice (with_mask) and Bob (without_mask) in view for `frames` frames, boxes still."""
    faces = [GroundTruthFace(1, ALICE, "with_mask", True), GroundTruthFace(2, BOB, "without_mask", True)]
    if with_small:
        faces.append(GroundTruthFace(3, SMALL, "with_mask", False))
    people = (
        GroundTruthPerson(1, "with_mask", 0, "a.png", frames),
        GroundTruthPerson(2, "without_mask", 0, "a.png", frames),
    )
    return ClipTruth(people, tuple(tuple(faces) for _ in range(frames)))


def perfect(truth: ClipTruth) -> list[list[PredictedFace]]:
    return [[PredictedFace(f.box, f.person, f.label) for f in faces] for faces in truth.faces_by_frame]


def test_a_perfect_tracker_scores_perfectly():
    report = evaluate_tracks(two_people(), perfect(two_people()))
    assert report.coverage == 1.0
    assert report.ids_per_person == 1.0
    assert report.id_switches == 0
    assert report.label_agreement == 1.0
    assert report.verdict_accuracy == 1.0
    assert report.false_people == 0 and report.merged_tracks == 0
    assert all(report.checks().values())


def test_an_id_swap_counts_for_both_people():
    truth = two_people()
    predictions = perfect(truth)
    for frame in predictions[5:]:  # from frame 5 Alice's box carries Bob's id and the other way round
        frame[0], frame[1] = (
            PredictedFace(ALICE, 2, "with_mask"),
            PredictedFace(BOB, 1, "without_mask"),
        )
    report = evaluate_tracks(truth, predictions)
    assert report.id_switches == 2
    assert report.ids_per_person == 2.0
    assert report.merged_tracks == 2  # each id was on both people
    assert report.coverage == 1.0


def test_a_track_on_no_face_is_a_false_person_but_one_on_an_ignored_face_is_not():
    truth = two_people(with_small=True)
    predictions = perfect(two_people())
    for frame in predictions:
        frame.append(PredictedFace((10.0, 300.0, 60.0, 360.0), 7, "with_mask"))  # nothing there
        frame.append(PredictedFace(SMALL, 8, "without_mask"))  # a real, too-small face
    report = evaluate_tracks(truth, predictions)
    assert report.false_people == 1 and report.false_track_ids == (7,)
    assert report.false_people_per_45 == 22.5  # 1 false person among 2 people
    assert report.coverage == 1.0 and report.tracks == 4


def test_a_track_false_in_fewer_than_half_of_its_frames_is_not_a_false_person():
    truth = two_people()
    predictions = perfect(truth)
    for frame in predictions[:4]:  # 4 of Bob's 10 frames drift off his face
        frame[1] = PredictedFace((300.0, 300.0, 360.0, 370.0), 2, "without_mask")
    report = evaluate_tracks(truth, predictions)
    assert report.false_people == 0
    assert report.covered_person_frames == 16 and report.coverage == 0.8


def test_unconfirmed_boxes_cover_nothing_and_are_never_false():
    truth = two_people()
    predictions = [[PredictedFace(f.box, None, f.label) for f in faces] for faces in perfect(truth)]
    predictions[0].append(PredictedFace((10.0, 300.0, 60.0, 360.0), None, "with_mask"))
    report = evaluate_tracks(truth, predictions)
    assert report.coverage == 0.0 and report.people_never_covered == 2
    assert report.false_people == 0 and report.tracks == 0
    assert report.verdict_accuracy == 0.0  # a person never shown has no verdict


def test_flicker_and_verdict_follow_the_majority_shown_label():
    truth = two_people()
    predictions = perfect(truth)
    for index in (2, 5, 8):  # Alice shown without a mask in 3 of her 10 frames
        predictions[index][0] = PredictedFace(ALICE, 1, "without_mask")
    for index in range(6):  # Bob shown with a mask in 6 of 10: his verdict is wrong
        predictions[index][1] = PredictedFace(BOB, 2, "with_mask")
    report = evaluate_tracks(truth, predictions)
    alice, bob = report.per_person
    assert (alice.shown_label, alice.agreeing_frames, alice.verdict_right) == ("with_mask", 7, True)
    assert (bob.shown_label, bob.agreeing_frames, bob.verdict_right) == ("with_mask", 6, False)
    assert report.label_agreement == 13 / 20
    assert report.verdicts_right == 1


def test_mask_worn_incorrectly_is_not_compliant():
    truth = ClipTruth(
        (GroundTruthPerson(1, "mask_worn_incorrectly", 0, "a.png", 3),),
        tuple((GroundTruthFace(1, ALICE, "mask_worn_incorrectly", True),) for _ in range(3)),
    )
    shown_without = [[PredictedFace(ALICE, 1, "without_mask")] for _ in range(3)]
    shown_with = [[PredictedFace(ALICE, 1, "with_mask")] for _ in range(3)]
    assert evaluate_tracks(truth, shown_without).verdicts_right == 1  # both not compliant
    assert evaluate_tracks(truth, shown_with).verdicts_right == 0


def test_predictions_as_plain_triples_and_the_report_as_json():
    truth = two_people()
    triples = [[(list(f.box), f.person, f.label) for f in faces] for faces in truth.faces_by_frame]
    report = evaluate_tracks(truth, triples)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["coverage"] == 1.0 and data["targets"]["ids_per_person"] == {"target": 1.1, "met": True}
    assert len(data["per_person"]) == 2
    with pytest.raises(ValueError, match="one list per frame"):
        evaluate_tracks(truth, triples[:-1])


# ---------------------------------------------------------------- the clip


def a_clip_with_misses() -> tuple[ClipTruth, list[list[PredictedFace]]]:
    """Two people; Bob unseen from frame 5 on, and a track on no face at all (a false person)."""
    truth = two_people()
    predictions = perfect(truth)
    for index, frame in enumerate(predictions):
        if index >= 5:
            frame.pop()
        frame.append(PredictedFace((10.0, 300.0, 60.0, 360.0), 9, "with_mask"))
    return truth, predictions


def test_clips_pool_into_one_set_of_figures_where_every_person_counts_alike():
    perfect_clip = evaluate_tracks(two_people(), perfect(two_people()))
    missing = evaluate_tracks(*a_clip_with_misses())
    assert missing.coverage == 0.75 and missing.false_people == 1  # the case is what it says
    pooled = pool([perfect_clip, missing])
    assert pooled.people == 4 and pooled.frames == 2 * FRAMES
    assert pooled.coverage == (20 + 15) / 40
    assert pooled.verdicts_right == 4 and pooled.verdict_accuracy == 1.0
    assert pooled.false_people == 1 and pooled.false_people_per_45 == 45 / 4
    assert pooled.per_person == () and pooled.false_track_ids == ()
    alone = pool([missing])
    for name in ("coverage", "ids_per_person", "label_agreement", "verdict_accuracy", "false_people_per_45"):
        assert getattr(alone, name) == getattr(missing, name)
    with pytest.raises(ValueError, match="at least one"):
        pool([])


def test_several_clips_are_shown_side_by_side_with_the_pooled_figures():
    reports = (
        PipelineTrackingReport(
            evaluate_tracks(two_people(), perfect(two_people())), "centerface-fast", 20, 5, {"clip_seed": 0}
        ),
        PipelineTrackingReport(
            evaluate_tracks(*a_clip_with_misses()), "centerface-fast", 15, 5, {"clip_seed": 7}
        ),
    )
    report = ClipsTrackingReport(reports)
    text = format_tracking_clips(report)
    assert "| figure | target | clip 0 | clip 7 | pooled |" in text
    coverage = next(line for line in text.splitlines() if line.startswith("| person-frames covered"))
    assert coverage.split(" | ")[2:] == ["100.0%", "75.0% NO", "87.5% NO |"]
    assert "targets met per clip: 5, 3 of 5; pooled: 3" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["clip_seeds"] == [0, 7] and len(data["clips"]) == 2
    assert data["pooled"]["people"] == 4 and data["pooled"]["coverage"] == 0.875
    assert "per_person" not in data["pooled"] and data["clips"][1]["false_people"] == 1


def test_default_clip_is_900_frames_with_45_people_from_dev_photos():
    clip = build_clip()
    assert len(clip) == 900 and len(clip.people) == 45 and len(clip.scenes) == 10
    labels = {p.label for p in clip.people}
    assert labels <= {"with_mask", "mask_worn_incorrectly", "without_mask"} and len(labels) >= 2
    assert all(p.scored_frames >= 15 for p in clip.people)
    assert len({s.photo.image for s in clip.scenes}) == 10  # ten different photos


def test_clip_is_deterministic_per_seed(clip):
    again = build_clip(SMALL_CLIP)
    other = build_clip(ClipSpec(scenes=3, scene_frames=40, people=10, seed=6))
    assert [s.photo.image for s in again.scenes] == [s.photo.image for s in clip.scenes]
    assert again.truth == clip.truth
    assert [s.photo.image for s in other.scenes] != [s.photo.image for s in clip.scenes]


def test_ground_truth_boxes_stay_inside_the_frame(clip):
    spec = clip.spec
    for index in range(len(clip)):
        for face in clip.ground_truth(index):
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= spec.width and 0 <= y1 < y2 <= spec.height
            if face.scored:
                assert min(x2 - x1, y2 - y1) >= spec.min_face_px


def test_ground_truth_boxes_follow_the_warp(clip):
    """A face's box is its photo box through the camera warp, clipped to the frame; and the pixels under
    it are the photo's face, scaled, matching far better than the same box shifted by half a face."""
    size = [clip.spec.width, clip.spec.height] * 2
    compared = 0
    for index in range(0, len(clip), 13):
        scene = clip.scene_of(index)
        photo, frame = cv2.imread(str(scene.photo.image)), clip.frame(index)
        assert frame.shape == (clip.spec.height, clip.spec.width, 3)
        warped = [warp_box(f.box, clip.affine(index)) for f in scene.photo.faces]
        for face in clip.ground_truth(index):
            matches = [i for i, w in enumerate(warped) if np.allclose(np.clip(w, 0, size), face.box)]
            assert len(matches) == 1
            box = warped[matches[0]]
            if face.scored and np.all(box >= 0) and np.all(box <= size):  # wholly in view: compare pixels
                photo_box = scene.photo.faces[matches[0]].box
                here = _difference(frame, photo, face.box, photo_box, shift=0.0)
                # Measured: 0.5-3 grey levels (rounding to whole pixels) against 16-98 for the shifted box.
                assert here < 5 and here * 4 < _difference(frame, photo, face.box, photo_box, shift=0.5)
                compared += 1
    assert compared >= 10


def _difference(frame, photo, frame_box, photo_box, shift: float) -> float:
    """Mean absolute grey-level difference between the frame's box (shifted right by `shift` widths)
    and the photo's face resized to it."""
    x1, y1, x2, y2 = (round(v) for v in frame_box)
    width = x2 - x1
    x1 = min(x1 + round(shift * width), frame.shape[1] - width)  # stays inside the frame
    x2 = x1 + width
    px1, py1, px2, py2 = (round(v) for v in photo_box)
    expected = cv2.resize(photo[py1:py2, px1:px2], (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(float)
    return float(np.abs(grey - cv2.cvtColor(expected, cv2.COLOR_BGR2GRAY).astype(float)).mean())


def test_run_evaluation_feeds_every_frame_to_analyze(clip):
    seen = []

    def analyze(frame_bgr, frame_index):
        seen.append((frame_index, frame_bgr.shape))
        return [(f.box, f.person, f.label) for f in clip.ground_truth(frame_index)]

    report = run_evaluation(analyze, clip)
    assert seen == [(i, (480, 640, 3)) for i in range(len(clip))]
    assert report.coverage == 1.0 and report.ids_per_person == 1.0 and report.false_people == 0
    assert report.analyze_seconds is not None and report.fps > 0


def test_the_clip_saved_as_a_video_file_reads_back_frame_for_frame(clip, tmp_path):
    """`evaluate-tracking --write-clip`: the file `video` is timed on holds the clip's frames (MJPG)."""
    path = tmp_path / "clip.avi"
    clip.save(path)
    capture = cv2.VideoCapture(str(path))
    read = []
    while (frame := capture.read()[1]) is not None:
        read.append(frame)
    capture.release()
    assert len(read) == len(clip)
    for index in (0, len(clip) // 2, len(clip) - 1):
        difference = np.abs(read[index].astype(np.int16) - clip.frame(index).astype(np.int16))
        assert read[index].shape == (480, 640, 3) and float(difference.mean()) < 4.0


def test_a_clip_path_that_cannot_be_written_is_refused(clip, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=r"cannot write .*clip\.avi \(.*/file is a file, not a"):
        clip.save(blocker / "clip.avi")


def evaluate_tracking(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maskapp", "evaluate-tracking", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_evaluate_tracking_measures_clips_of_other_seeds_and_pools_them(tmp_path):
    """`evaluate-tracking --clip-seed 3 4`: the real pipeline on other scenes, each clip and all pooled."""
    out = tmp_path / "tracking.json"
    result = evaluate_tracking("--clip-seed", "3", "4", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| clip 3 | clip 4 | pooled |" in result.stdout
    figures = json.loads(out.read_text())
    clip3, clip4 = figures["clips"]
    assert figures["clip_seeds"] == [3, 4] and [c["settings"]["clip_seed"] for c in figures["clips"]] == [
        3,
        4,
    ]
    assert clip3["frames"] == 900 and clip3["people"] == 45
    assert clip3["covered_person_frames"] > 0 and clip3["verdicts_right"] > 0
    for count in ("people", "person_frames", "covered_person_frames", "verdicts_right", "false_people"):
        assert figures["pooled"][count] == clip3[count] + clip4[count]
    default_clip_people = {p.id: p.label for p in build_clip().people}
    assert {p["id"]: p["label"] for p in clip3["per_person"]} != default_clip_people


def test_evaluate_tracking_refuses_bad_seeds_and_one_clip_file_for_several_clips(tmp_path):
    for args, message in (
        (["--clip-seed", "-1"], "'-1' is not a clip seed; give a whole number, 0 or more"),
        (["--clip-seed", "1", "2", "--write-clip", str(tmp_path / "c.avi")], "--write-clip writes one clip"),
    ):
        result = evaluate_tracking(*args)
        assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "c.avi").exists()


UNKNOWN_LABEL = (
    "<annotation><filename>a.png</filename><size><width>64</width><height>48</height></size>"
    "<object><name>hat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
    "</object></annotation>"
)


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("missing", "no PASCAL VOC annotations in {tmp}/missing/annotations; allowed: a folder with"),
        ("empty", "no PASCAL VOC annotations in {tmp}/empty/annotations; allowed: a folder with"),
        ("unknown", "unknown class name 'hat'; allowed: with_mask"),
    ],
)
def test_evaluate_tracking_on_a_bad_dataset_is_one_error_line_and_exit_2(
    tmp_path, monkeypatch, capsys, dataset, message
):
    (tmp_path / "empty" / "annotations").mkdir(parents=True)
    (tmp_path / "unknown" / "annotations").mkdir(parents=True)
    (tmp_path / "unknown" / "annotations" / "a.xml").write_text(UNKNOWN_LABEL)
    # The command has no dataset flag: point its default elsewhere. The data is read before the models.
    monkeypatch.setattr(tracking, "DEV_DATASET", tmp_path / dataset)
    assert main(["evaluate-tracking"]) == 2
    error_lines = capsys.readouterr().err.splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith("error: ")
    assert message.format(tmp=tmp_path) in error_lines[0]
