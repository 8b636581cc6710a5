"""Face tracking, verdict smoothing and the reclassification schedule.

The tracking tests run on a real clip: dev-set photos seen through a drifting, zooming camera window, with
their annotated boxes as the detections (jittered, some missed, some frames dropped). No model is mocked:
the detector is replaced by the ground truth, which is the point — ids must hold on real face layouts.
"""

from __future__ import annotations

import numpy as np
import pytest

from maskapp.metrics.tracking import (
    ClipSpec,
    DetectionNoise,
    PredictedFace,
    build_clip,
    evaluate_tracks,
    noisy_detections,
)
from maskapp.vision.track import (
    MASKED_FACE_CONFIRMATION,
    FaceTracker,
    MaskedFaceConfirmation,
    PeopleTracker,
    ReclassifyPolicy,
    SmoothingSettings,
    VerdictSmoother,
)

THREE_CLASSES = ("with_mask", "mask_worn_incorrectly", "without_mask")
TWO_CLASSES = ("with_mask", "without_mask")
SMALL_CLIP = ClipSpec(scenes=4, scene_frames=60, people=16, seed=3)


@pytest.fixture(scope="module")
def clip():
    return build_clip(SMALL_CLIP)


def one_hot(label: str, classes=THREE_CLASSES, sure: float = 0.9) -> np.ndarray:
    probs = np.full(len(classes), (1 - sure) / (len(classes) - 1))
    probs[classes.index(label)] = sure
    return probs


def track_clip(clip, detections, tracker: FaceTracker) -> list[list[PredictedFace]]:
    predictions = []
    for index, boxes in enumerate(detections):
        update = tracker.update(boxes, index)
        predictions.append(
            [PredictedFace(tuple(b), p, None) for b, p in zip(boxes, update.persons, strict=True)]
        )
    return predictions


# ---------------------------------------------------------------- ids on a real clip


def test_ids_hold_through_misses_jitter_and_drift_on_real_clip(clip):
    noise = DetectionNoise(jitter=0.04, miss_rate=0.05, gap_rate=0.01, gap_frames=8, dropped_frame_rate=0.02)
    report = evaluate_tracks(clip, track_clip(clip, noisy_detections(clip, noise), FaceTracker()))
    assert report.people == 16
    assert report.ids_per_person == 1.0
    assert report.id_switches == 0
    assert report.false_people == 0
    assert report.people_never_covered == 0
    # The detections themselves cover ~85% of person-frames (misses, gaps, dropped frames, jitter).
    assert report.coverage > 0.75


def test_a_gap_within_the_allowed_misses_keeps_the_id_and_a_longer_one_ends_it(clip):
    person = max(clip.people, key=lambda p: p.scored_frames)
    boxes = [[f.box for f in clip.ground_truth(i) if f.person == person.id] for i in range(len(clip))]
    frames = [i for i, b in enumerate(boxes) if b]
    start = frames[10]

    def ids_with_gap(gap: int) -> tuple[set[int], list[int]]:
        tracker, ids, ended = FaceTracker(max_missed_frames=15), set(), []
        for i in frames:
            if start <= i < start + gap:
                update = tracker.update(np.zeros((0, 4)), i)
            else:
                update = tracker.update(np.array(boxes[i]), i)
            ids.update(p for p in update.persons if p is not None)
            ended += update.ended
        return ids, ended

    assert ids_with_gap(15) == ({1}, [])  # 15 missed frames: the allowed second at 15 fps
    ids, ended = ids_with_gap(16)
    assert ids == {1, 2} and ended == [1]


def test_close_ends_everyone(clip):
    tracker = PeopleTracker(THREE_CLASSES)
    for index in range(5):
        faces = clip.ground_truth(index)
        tracker.update([f.box for f in faces], index, [one_hot(f.label) for f in faces])
    in_view = {f.person for f in clip.ground_truth(4)}
    ended = tracker.close()
    assert len(ended) == len(in_view) >= 2
    assert {p.id for p in ended} == {p.id for p in tracker.people()}
    assert all(p.last_frame == 4 and p.label in THREE_CLASSES for p in ended)
    assert tracker.tracker.active_persons == ()
    assert tracker.close() == ()  # nobody left to end


def test_people_leaving_are_reported_once_with_their_verdict():
    tracker = PeopleTracker(TWO_CLASSES, tracker=FaceTracker(max_missed_frames=3, min_hits=2))
    box = [100, 100, 160, 170]
    for index in range(6):
        tracker.update([box], index, [one_hot("without_mask", TWO_CLASSES)])
    ended_frames = [tracker.update([], index) for index in range(6, 12)]
    reported = [p for frame in ended_frames for p in frame.ended]
    assert [p.to_dict() for p in reported] == [
        {"id": 1, "label": "without_mask", "first_frame": 0, "last_frame": 5, "frames": 6}
    ]
    assert list(ended_frames[3].ended) == reported  # frame 9: more than 3 frames missed since frame 5


def test_a_one_frame_false_detection_never_becomes_a_person():
    tracker = FaceTracker(min_hits=2)
    assert tracker.update([[10, 10, 50, 50]], 0).persons == (None,)
    update = tracker.update([], 1)
    assert update.ended == () and len(update.removed_tracks) == 1


def test_by_default_one_sure_detection_makes_a_person_and_one_doubtful_one_does_not():
    sure, doubtful = FaceTracker(), FaceTracker()
    assert sure.update([[10, 10, 50, 50]], 0, [0.8]).persons == (1,)
    assert doubtful.update([[10, 10, 50, 50]], 0, [0.5]).persons == (None,)
    assert doubtful.update([], 1).removed_tracks == (1,) and doubtful.active_persons == ()


def test_a_low_confidence_track_is_not_confirmed_until_a_sure_detection():
    tracker = FaceTracker(min_hits=2, confirm_score=0.6)
    box = [[10, 10, 50, 50]]
    persons = [tracker.update(box, i, [0.45]).persons[0] for i in range(5)]
    assert persons == [None] * 5
    assert tracker.update(box, 5, [0.8]).persons == (1,)


def persons_of_a_low_scored_track(label: str, score: float, rule=MASKED_FACE_CONFIRMATION) -> list:
    """Person ids of one box seen for 8 frames, its detections scored `score`, classified `label`."""
    tracker = PeopleTracker(
        THREE_CLASSES, tracker=FaceTracker(min_hits=2, confirm_score=0.6), masked_confirmation=rule
    )
    box = [[100, 100, 160, 170]]
    return [tracker.update(box, i, [one_hot(label, sure=0.99)], [score]).faces[0].person for i in range(8)]


def test_a_sure_masked_face_is_confirmed_under_the_detectors_confirm_score():
    rule = MASKED_FACE_CONFIRMATION
    persons = persons_of_a_low_scored_track("with_mask", 0.5)
    assert persons == [None] * (rule.min_hits - 1) + [1] * (9 - rule.min_hits)


@pytest.mark.parametrize(
    ("label", "score", "rule"),
    [
        ("without_mask", 0.5, MASKED_FACE_CONFIRMATION),  # only a mask vouches for a face
        ("mask_worn_incorrectly", 0.5, MASKED_FACE_CONFIRMATION),
        ("with_mask", 0.35, MASKED_FACE_CONFIRMATION),  # under the rule's own detector score
        ("with_mask", 0.5, None),  # the rule switched off
    ],
)
def test_other_low_scored_tracks_stay_tentative(label, score, rule):
    assert persons_of_a_low_scored_track(label, score, rule) == [None] * 8


def test_masked_face_confirmation_settings_are_checked():
    with pytest.raises(ValueError, match="min_probability"):
        MaskedFaceConfirmation(min_probability=0.0)
    with pytest.raises(ValueError, match="min_hits"):
        MaskedFaceConfirmation(min_hits=0)
    assert not MaskedFaceConfirmation().vouches(("without_mask", "other"), (0.01, 0.99))


def test_the_allowed_gap_follows_the_frame_rate():
    assert FaceTracker.for_fps(15).max_missed_frames == 15
    assert FaceTracker.for_fps(30, max_gap_s=0.5, min_hits=3).max_missed_frames == 15
    with pytest.raises(ValueError, match="fps"):
        FaceTracker.for_fps(0)


def test_frame_index_must_increase():
    tracker = FaceTracker()
    tracker.update([], 3)
    with pytest.raises(ValueError, match="frame_index must increase"):
        tracker.update([], 3)


@pytest.mark.parametrize("boxes", [[[1, 2, 3]], [[0, 0, np.nan, 4]]])
def test_bad_boxes_are_refused(boxes):
    with pytest.raises(ValueError, match="boxes"):
        FaceTracker().update(boxes, 0)


# ---------------------------------------------------------------- verdict smoothing


def test_alternating_noise_never_flips_the_shown_label():
    smoother = VerdictSmoother(TWO_CLASSES)
    labels = set()
    for step in range(200):
        # The raw label flips every frame and half of the frames say "without_mask" with 0.9.
        verdict = smoother.update([0.9, 0.1] if step % 2 == 0 else [0.1, 0.9])
        labels.add(verdict.label)
        assert verdict.frame_label == ("with_mask" if step % 2 == 0 else "without_mask")
    assert labels == {"with_mask"}


def test_a_real_change_flips_after_the_hysteresis_and_not_before():
    smoother = VerdictSmoother(TWO_CLASSES, SmoothingSettings(alpha=0.3, margin=0.15, switch_after=3))
    for _ in range(20):
        smoother.update([0.95, 0.05])
    # By hand: after n updates of [0.05, 0.95], p(with_mask) = 0.05 + 0.9 * 0.7**n; "without_mask" leads
    # by >= 0.15 once that is <= 0.425, i.e. from n = 3; three such updates in a row -> the switch at n = 5.
    shown = [smoother.update([0.05, 0.95]).label for _ in range(6)]
    assert shown == ["with_mask"] * 4 + ["without_mask"] * 2


def test_a_smaller_view_moves_the_verdict_by_its_share_of_the_best_view():
    """Evidence 0.25 (a face seen at half the side of the person's best view): by hand, each update of
    [0.05, 0.95] now moves the average by 0.3 * 0.25, so "without_mask" leads by >= 0.15 only from n = 12,
    and the switch comes three updates later, at n = 14, instead of n = 5 at full evidence."""
    settings = SmoothingSettings(alpha=0.3, margin=0.15, switch_after=3)
    smoother = VerdictSmoother(TWO_CLASSES, settings)
    for _ in range(20):
        smoother.update([0.95, 0.05])
    shown = [smoother.update([0.05, 0.95], evidence=0.25).label for _ in range(15)]
    assert shown == ["with_mask"] * 13 + ["without_mask"] * 2


def test_a_face_counts_by_its_share_of_the_persons_best_view():
    tracker = PeopleTracker(TWO_CLASSES)
    sides = [64, 60, 56, 52, 48, 68]  # a camera zooming out, then a step closer: one track throughout
    evidence, tracks = [], set()
    for index, side in enumerate(sides):
        plan = tracker.plan([[200 - side / 2, 200 - side / 2, 200 + side / 2, 200 + side / 2]], index)
        tracks.add(plan.tracks[0])
        evidence.append(tracker._states[plan.tracks[0]].evidence_of(plan.boxes[0]))
        tracker.commit(plan, [one_hot("with_mask", TWO_CLASSES)] * len(plan.classify))
    assert len(tracks) == 1
    assert evidence == pytest.approx([1.0, (60 / 64) ** 2, (56 / 64) ** 2, (52 / 64) ** 2, 0.5625, 1.0])


def test_three_classes_switch_to_the_class_that_leads():
    smoother = VerdictSmoother(THREE_CLASSES)
    for _ in range(10):
        smoother.update(one_hot("with_mask"))
    shown = [smoother.update(one_hot("mask_worn_incorrectly")).label for _ in range(10)]
    assert shown[0] == "with_mask" and shown[-1] == "mask_worn_incorrectly"
    assert shown.count("without_mask") == 0


def test_settled_only_after_stable_updates_and_unsettled_during_a_challenge():
    smoother = VerdictSmoother(TWO_CLASSES, SmoothingSettings(settle_after=3))
    settled = [smoother.update([0.9, 0.1]).settled for _ in range(5)]
    assert settled == [False, False, False, True, True]  # first update sets, three stable ones settle
    # By hand: p(with_mask) drops to 0.63 (still leads by 0.26: settled), then 0.44 (no lead: unsettled).
    assert [smoother.update([0.0, 1.0]).settled for _ in range(2)] == [True, False]


def test_probs_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="one value per class"):
        VerdictSmoother(THREE_CLASSES).update([0.5, 0.5])
    with pytest.raises(ValueError, match="class_names"):
        VerdictSmoother(("with_mask",))


# ---------------------------------------------------------------- reclassification


def test_reclassify_policy():
    policy = ReclassifyPolicy(every_n=5, min_iou=0.6, max_size_change=0.25)
    box = np.array([100.0, 100, 160, 160])

    def needs(settled=True, since=1, new_box=box, policy=policy):
        return policy.needs_classification(settled=settled, frames_since=since, box=new_box, last_box=box)

    assert needs(settled=False)
    assert not needs(since=4)
    assert needs(since=5)
    assert needs(new_box=np.add(box, [30, 0, 30, 0]))  # moved half a face: IoU 1/3
    assert not needs(new_box=np.add(box, [3, 3, 3, 3]))  # a few pixels of jitter
    # A zoom: the side grows 30% around the same centre; IoU 0.59 passes a 0.5 bound, the size check fires.
    assert needs(new_box=np.array([91.0, 91, 169, 169]), policy=ReclassifyPolicy(min_iou=0.5))
    assert policy.needs_classification(settled=True, frames_since=None, box=box, last_box=None)


def test_plan_asks_for_classification_until_settled_then_every_n_frames():
    tracker = PeopleTracker(TWO_CLASSES, policy=ReclassifyPolicy(every_n=5))
    box = [[100, 100, 160, 170]]
    asked = []
    for index in range(20):
        plan = tracker.plan(box, index)
        asked.append(bool(plan.classify))
        frame = tracker.commit(plan, [one_hot("with_mask", TWO_CLASSES)] if plan.classify else None)
        assert frame.faces[0].label == "with_mask"
        assert frame.faces[0].classified == bool(plan.classify)
    # Frames 0-3 settle the verdict (first update + 3 stable), then every 5th frame after the last one.
    assert [i for i, a in enumerate(asked) if a] == [0, 1, 2, 3, 8, 13, 18]


def test_commit_checks_its_plan_and_rows():
    tracker = PeopleTracker(THREE_CLASSES)
    plan = tracker.plan([[0, 0, 40, 40], [100, 0, 140, 40]], 0)
    assert plan.classify == (0, 1)
    with pytest.raises(ValueError, match="2 probability rows"):
        tracker.commit(plan, [one_hot("with_mask")])
    with pytest.raises(ValueError, match="shape"):
        tracker.commit(plan, np.full((2, 2), 0.5))
    frame = tracker.commit(plan, [one_hot("with_mask"), one_hot("without_mask")])
    assert [f.label for f in frame.faces] == ["with_mask", "without_mask"]
    with pytest.raises(ValueError, match="latest plan"):
        tracker.commit(plan, [one_hot("with_mask"), one_hot("without_mask")])


def test_tracked_clip_labels_do_not_flicker_and_verdicts_are_right(clip):
    """A classifier stand-in wrong on 15% of classifications: the shown labels still hold per person."""
    rng = np.random.default_rng(0)
    tracker = PeopleTracker(THREE_CLASSES)
    predictions = []
    for index, boxes in enumerate(noisy_detections(clip, DetectionNoise(seed=1))):
        plan = tracker.plan(boxes, index)
        probs = [noisy_probs(clip, index, boxes[i], rng) for i in plan.classify]
        frame = tracker.commit(plan, probs)
        predictions.append([PredictedFace(f.box, f.person, f.label) for f in frame.faces])
    report = evaluate_tracks(clip, predictions)
    assert report.label_agreement >= 0.98
    assert report.verdict_accuracy == 1.0


def noisy_probs(clip, index, box, rng, error_rate=0.15) -> np.ndarray:
    faces = clip.ground_truth(index)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    nearest = min(
        faces, key=lambda f: np.hypot(*(centre - [(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]))
    )
    label = nearest.label
    if rng.random() < error_rate:
        label = rng.choice([c for c in THREE_CLASSES if c != label])
    return one_hot(label, sure=0.8)
