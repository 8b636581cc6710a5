"""People, not frames: a person id per face while it stays in view, and one steady verdict per person.

Small parts, combined by `PeopleTracker`:
- `FaceTracker`: SORT-style tracking — a constant-velocity Kalman filter per face box, greedy IoU
  association, a track confirmed as a person after `min_hits` detections of which one scored at least
  `confirm_score`, kept through misses of up to `max_missed_frames` (about a second) and then ended.
- `VerdictSmoother`: exponential smoothing of a person's class probabilities with hysteresis, so the
  label on screen changes only when another class has led clearly for several updates.
- `ReclassifyPolicy`: once a verdict has settled, classify the face again only every few frames or when
  its box changed a lot; this is where tracking saves classifier time.
- `MaskedFaceConfirmation`: a track the detector scores too low to confirm (masked faces score low)
  becomes a person once the classifier is sure it is a masked face.

Works with any tuple of class names (2 or 3 classes); numpy only. Chosen by measurement over the
`trackers` library (SORT, ByteTrack, OC-SORT) on the tracking clip: the same figures as its SORT, fewer
merged people than its ByteTrack, more coverage than its OC-SORT, and no scipy, supervision or
opencv-python (which clashes with our headless OpenCV) to install.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from maskapp.labels import WITH_MASK
from maskapp.vision.boxes import box_iou, greedy_match, iou_matrix

logger = logging.getLogger(__name__)

DEFAULT_FPS = 15.0
# A face the detector loses for longer than about a second is a new person (FaceTracker.for_fps for others).
DEFAULT_MAX_MISSED_FRAMES = round(DEFAULT_FPS * 1.0)


def as_boxes(boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 4) float x1, y1, x2, y2; raises ValueError naming the expected shape."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("boxes must be finite numbers")
    return array


def as_scores(scores: np.ndarray | Sequence[float] | None, count: int) -> np.ndarray:
    if scores is None:
        return np.ones(count)
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.shape[0] != count or not np.all(np.isfinite(array)):
        raise ValueError(f"scores must be {count} finite numbers, one per box; got {array.tolist()}")
    return array


class BoxKalman:
    """Constant-velocity Kalman filter on (cx, cy, w, h) and their velocities (per frame).

    Noise scales with the box height, as in ByteTrack: a 30 px face and a 200 px face jitter alike in
    relative terms.
    """

    POSITION_STD = 1 / 20  # of the box height, per measurement and per frame of motion
    VELOCITY_STD = 1 / 160

    def __init__(self, box: np.ndarray):
        x1, y1, x2, y2 = box
        self.mean = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0, 0, 0, 0], float)
        height = max(self.mean[3], 1.0)
        std = np.r_[[2 * self.POSITION_STD * height] * 4, [10 * self.VELOCITY_STD * height] * 4]
        self.covariance = np.diag(std**2)

    def predict(self, steps: int = 1) -> None:
        if steps <= 0:
            return
        motion = np.eye(8)
        motion[:4, 4:] = steps * np.eye(4)
        height = max(self.mean[3], 1.0)
        std = np.r_[[self.POSITION_STD * height] * 4, [self.VELOCITY_STD * height] * 4]
        self.mean = motion @ self.mean
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)  # a shrinking prediction never inverts the box
        self.covariance = motion @ self.covariance @ motion.T + steps * np.diag(std**2)

    def update(self, box: np.ndarray) -> None:
        x1, y1, x2, y2 = box
        measured = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        noise = np.diag(np.full(4, self.POSITION_STD * max(self.mean[3], 1.0)) ** 2)
        projected_cov = self.covariance[:4, :4] + noise
        gain = np.linalg.solve(projected_cov, self.covariance[:4, :]).T
        self.mean = self.mean + gain @ (measured - self.mean[:4])
        self.covariance = self.covariance - gain @ self.covariance[:4, :]

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.mean[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclass
class _Track:
    track_id: int
    kalman: BoxKalman
    first_frame: int
    last_hit_frame: int
    hits: int = 1
    best_score: float = 1.0  # the highest detector confidence seen on this track
    person: int | None = None  # given when the track is confirmed


@dataclass(frozen=True)
class TrackUpdate:
    """What one `FaceTracker.update` decided, aligned with the input boxes."""

    frame_index: int
    tracks: tuple[int, ...]  # internal track id per box (also for tracks not yet confirmed)
    persons: tuple[int | None, ...]  # person id per box; None until the track is confirmed
    ended: tuple[int, ...]  # person ids that ended this frame (missed for longer than allowed)
    removed_tracks: tuple[int, ...]  # every track id removed this frame, confirmed or not


class FaceTracker:
    """IoU + constant-velocity tracker for face boxes. Person ids count up from 1 in order of confirmation."""

    def __init__(
        self,
        max_missed_frames: int = DEFAULT_MAX_MISSED_FRAMES,
        iou_threshold: float = 0.3,
        # One sure detection makes a person: waiting for a second one hid 308 of the 410 people found on
        # tracking clips 0-9 for their first frame (coverage 88.0% -> 88.9% with 1, false people the same).
        min_hits: int = 1,
        confirm_score: float = 0.6,
    ):
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if not 0.0 <= confirm_score <= 1.0:
            raise ValueError(f"confirm_score must be in [0, 1], got {confirm_score}")
        self.max_missed_frames = max_missed_frames
        self.iou_threshold = iou_threshold
        self.min_hits = min_hits
        # Back-of-head and background false detections score low (median 0.46 vs 0.79 for faces on the
        # tracking clip): a track becomes a person only once one of its detections reaches this score.
        self.confirm_score = confirm_score
        self._tracks: list[_Track] = []
        self._next_track = 1
        self._next_person = 1
        self._last_frame: int | None = None

    @classmethod
    def for_fps(cls, fps: float, max_gap_s: float = 1.0, **settings) -> FaceTracker:
        """A tracker that keeps a person through misses of up to max_gap_s seconds at this frame rate."""
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return cls(max_missed_frames=round(fps * max_gap_s), **settings)

    def update(
        self,
        boxes: np.ndarray | Sequence[Sequence[float]],
        frame_index: int,
        scores: np.ndarray | Sequence[float] | None = None,
    ) -> TrackUpdate:
        """scores: the detector's confidence per box; None counts every box as sure."""
        boxes = as_boxes(boxes)
        scores = as_scores(scores, len(boxes))
        steps = self._advance_to(frame_index)
        for track in self._tracks:
            track.kalman.predict(steps)
        box_tracks = self._associate(boxes, scores, frame_index)
        removed = self._remove_lost(frame_index, matched={t.track_id for t in box_tracks})
        return TrackUpdate(
            frame_index=frame_index,
            tracks=tuple(t.track_id for t in box_tracks),
            persons=tuple(t.person for t in box_tracks),
            ended=tuple(t.person for t in removed if t.person is not None),
            removed_tracks=tuple(t.track_id for t in removed),
        )

    def close(self) -> tuple[int, ...]:
        """End every person (the stream stopped or dropped); returns their ids."""
        ended = tuple(t.person for t in self._tracks if t.person is not None)
        self._tracks = []
        return ended

    def confirm_if(self, track_id: int, min_hits: int, min_score: float) -> int | None:
        """Confirm a tentative track on evidence from outside the detector (see MaskedFaceConfirmation),
        provided it has at least `min_hits` detections and one scored `min_score`; its new person id, or
        None (no such tentative track, or not enough detector evidence)."""
        track = next((t for t in self._tracks if t.track_id == track_id and t.person is None), None)
        if track is None or track.hits < min_hits or track.best_score < min_score:
            return None
        return self._make_person(track)

    @property
    def in_doubt(self) -> bool:
        """After the latest update: a track not yet a person, or a person the detector missed."""
        return any(t.person is None or t.last_hit_frame != self._last_frame for t in self._tracks)

    @property
    def active_persons(self) -> tuple[int, ...]:
        return tuple(t.person for t in self._tracks if t.person is not None)

    def missed(self, frame_index: int, max_missed: int) -> list[tuple[int, np.ndarray]]:
        """(track id, predicted box) of each confirmed track without a detection on `frame_index` (the
        latest update) and missed for at most `max_missed` frames: what a caller may keep showing."""
        return [
            (t.track_id, t.kalman.box)
            for t in self._tracks
            if t.person is not None and 0 < frame_index - t.last_hit_frame <= max_missed
        ]

    def _advance_to(self, frame_index: int) -> int:
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(f"frame_index must increase: got {frame_index} after {self._last_frame}")
        steps = 1 if self._last_frame is None else frame_index - self._last_frame
        self._last_frame = frame_index
        return steps

    def _associate(self, boxes: np.ndarray, scores: np.ndarray, frame_index: int) -> list[_Track]:
        """The track of each box: matched to a predicted box, or a new track."""
        predicted = np.array([t.kalman.box for t in self._tracks]).reshape(-1, 4)
        pairs = greedy_match(iou_matrix(predicted, boxes), self.iou_threshold)
        box_tracks: list[_Track | None] = [None] * len(boxes)
        for row, col in pairs:
            track = self._tracks[row]
            track.kalman.update(boxes[col])
            track.hits += 1
            track.last_hit_frame = frame_index
            track.best_score = max(track.best_score, float(scores[col]))
            box_tracks[col] = track
        for col, track in enumerate(box_tracks):
            if track is None:
                box_tracks[col] = self._new_track(boxes[col], float(scores[col]), frame_index)
        for track in box_tracks:
            self._confirm_if_ready(track)
        return box_tracks

    def _new_track(self, box: np.ndarray, score: float, frame_index: int) -> _Track:
        track = _Track(self._next_track, BoxKalman(box), frame_index, frame_index, best_score=score)
        self._next_track += 1
        self._tracks.append(track)
        return track

    def _confirm_if_ready(self, track: _Track) -> None:
        if track.person is None and track.hits >= self.min_hits and track.best_score >= self.confirm_score:
            self._make_person(track)

    def _make_person(self, track: _Track) -> int:
        track.person = self._next_person
        self._next_person += 1
        return track.person

    def _remove_lost(self, frame_index: int, matched: set[int]) -> list[_Track]:
        """Unconfirmed tracks go at their first miss (low-scored one-frame detections never become people);
        confirmed ones after more than max_missed_frames frames without a detection."""
        removed, kept = [], []
        for track in self._tracks:
            missed = frame_index - track.last_hit_frame
            lost = track.track_id not in matched and (track.person is None or missed > self.max_missed_frames)
            (removed if lost else kept).append(track)
        self._tracks = kept
        return removed


@dataclass(frozen=True)
class SmoothingSettings:
    alpha: float = 0.3  # weight of the newest probabilities in the running average
    margin: float = 0.15  # another class must lead the shown one by this much ...
    switch_after: int = 3  # ... for this many consecutive updates before the shown label changes
    settle_after: int = 3  # updates without change or challenge before the verdict counts as settled

    def __post_init__(self):
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        for name in ("switch_after", "settle_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Verdict:
    label: str  # the shown label
    probs: tuple[float, ...]  # smoothed, in class order
    settled: bool
    frame_label: str  # argmax of this update's raw probabilities


class VerdictSmoother:
    """One person's label: running average of class probabilities, switched only with hysteresis once the
    label has first settled."""

    def __init__(self, class_names: Sequence[str], settings: SmoothingSettings | None = None):
        if len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be at least 2 distinct names, got {tuple(class_names)}")
        self.class_names = tuple(class_names)
        self.settings = settings or SmoothingSettings()
        self._smoothed: np.ndarray | None = None
        self._shown: int | None = None
        self._challenger: int | None = None
        self._challenge_count = 0
        self._stable_updates = 0
        self._updates = 0
        self._ever_settled = False

    def update(self, probs: np.ndarray | Sequence[float], evidence: float = 1.0) -> Verdict:
        """`evidence` in (0, 1]: how much this view counts against the person's best one so far."""
        raw = self._check_probs(probs)
        self._updates += 1
        if self._smoothed is None:
            self._smoothed = raw
            self._shown = int(np.argmax(raw))
        else:
            # A plain mean over the first few updates (weight 1/n until it drops to alpha): one wrong first
            # classification is outvoted by the next two instead of lingering in the running average.
            weight = max(self.settings.alpha, 1.0 / self._updates) * min(max(evidence, 0.0), 1.0)
            self._smoothed = (1 - weight) * self._smoothed + weight * raw
            if self._ever_settled:
                self._apply_hysteresis()
            else:
                self._follow_leader()
        self._ever_settled = self._ever_settled or self.settled
        return Verdict(self.label, self.probs, self.settled, self.class_names[int(np.argmax(raw))])

    @property
    def label(self) -> str | None:
        return None if self._shown is None else self.class_names[self._shown]

    @property
    def probs(self) -> tuple[float, ...]:
        return () if self._smoothed is None else tuple(float(p) for p in self._smoothed)

    @property
    def score(self) -> float | None:
        """Smoothed probability of the shown label."""
        return None if self._shown is None else float(self._smoothed[self._shown])

    @property
    def settled(self) -> bool:
        """The shown label has held for settle_after updates and leads every other class by the margin."""
        if self._shown is None or self._stable_updates < self.settings.settle_after:
            return False
        others = np.delete(self._smoothed, self._shown)
        return bool(self._smoothed[self._shown] - others.max() >= self.settings.margin)

    def _follow_leader(self) -> None:
        """Until the label first settles it is provisional: a class that leads it by the margin takes over
        at once, without waiting switch_after updates, so a wrong first classification is short-lived."""
        leader = int(np.argmax(self._smoothed))
        if self._smoothed[leader] - self._smoothed[self._shown] >= self.settings.margin:
            self._shown, self._stable_updates = leader, 0
        else:
            self._stable_updates += 1

    def _apply_hysteresis(self) -> None:
        leader = int(np.argmax(self._smoothed))
        lead = self._smoothed[leader] - self._smoothed[self._shown]
        if leader == self._shown or lead < self.settings.margin:
            self._challenger, self._challenge_count = None, 0
            self._stable_updates += 1
            return
        # A challenge must be held by the same class: alternating noise resets it every other update.
        self._challenge_count = self._challenge_count + 1 if leader == self._challenger else 1
        self._challenger = leader
        self._stable_updates = 0
        if self._challenge_count >= self.settings.switch_after:
            self._shown, self._challenger, self._challenge_count = leader, None, 0

    def _check_probs(self, probs: np.ndarray | Sequence[float]) -> np.ndarray:
        raw = np.asarray(probs, dtype=np.float64).reshape(-1)
        if raw.shape[0] != len(self.class_names):
            raise ValueError(
                f"probs must have one value per class {self.class_names}; got {raw.shape[0]} values"
            )
        if not np.all(np.isfinite(raw)) or np.any(raw < 0) or raw.sum() <= 0:
            raise ValueError(f"probs must be finite, non-negative and not all zero; got {raw.tolist()}")
        return raw / raw.sum()


@dataclass(frozen=True)
class ReclassifyPolicy:
    """When a tracked face needs a fresh classification."""

    every_n: int = 5  # a settled person is classified again every this many frames (1: every frame)
    min_iou: float = 0.6  # ... or when its box overlaps the box of its last classification less than this
    max_size_change: float = 0.25  # ... or when its box side changed by more than this fraction

    def __post_init__(self):
        if self.every_n < 1:
            raise ValueError(f"every_n must be >= 1, got {self.every_n}")
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {self.min_iou}")
        if self.max_size_change < 0:
            raise ValueError(f"max_size_change must be >= 0, got {self.max_size_change}")

    def needs_classification(
        self, *, settled: bool, frames_since: int | None, box: np.ndarray, last_box: np.ndarray | None
    ) -> bool:
        if not settled or frames_since is None or last_box is None:
            return True
        return frames_since >= self.every_n or self.box_changed(box, last_box)

    def box_changed(self, box: np.ndarray, last_box: np.ndarray) -> bool:
        if box_iou(box, last_box) < self.min_iou:
            return True
        side = np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 0.0))
        last_side = np.sqrt(max((last_box[2] - last_box[0]) * (last_box[3] - last_box[1]), 1e-12))
        return abs(side / last_side - 1.0) > self.max_size_change


@dataclass(frozen=True)
class PersonSummary:
    id: int
    label: str | None  # the verdict: the label shown for most of the person's frames
    first_frame: int
    last_frame: int
    frames: int  # frames with a box for this person (detected, not predicted)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.frames,
        }


@dataclass(frozen=True)
class TrackedFace:
    box: tuple[float, float, float, float]
    person: int | None  # None while the track is not yet confirmed
    label: str | None  # shown, smoothed label; None if this face was never classified
    score: float | None  # smoothed probability of `label`
    frame_label: str | None  # raw label of this frame's classification; None when not re-classified
    probs: tuple[float, ...]  # smoothed, in class order
    settled: bool = False  # the shown label has settled (see VerdictSmoother.settled)
    predicted: bool = False  # not detected this frame: the track's predicted box (PeopleTracker.coasting)

    @property
    def classified(self) -> bool:
        return self.frame_label is not None

    def to_dict(self) -> dict:
        return {
            "box": [round(v) for v in self.box],
            "label": self.label,
            "score": None if self.score is None else round(self.score, 4),
            "person": self.person,
            "frame_label": self.frame_label,
        }


@dataclass(frozen=True)
class TrackedFrame:
    frame_index: int
    faces: tuple[TrackedFace, ...]
    ended: tuple[PersonSummary, ...]  # people who left during this frame, with their final verdicts


@dataclass(frozen=True)
class FramePlan:
    """Phase one of a frame: which boxes the caller must classify before `PeopleTracker.commit`."""

    frame_index: int
    boxes: np.ndarray = field(compare=False, repr=False)
    tracks: tuple[int, ...]
    persons: tuple[int | None, ...]
    classify: tuple[int, ...]  # indices into boxes, in increasing order


@dataclass(frozen=True)
class MaskedFaceConfirmation:
    """CenterFace learned faces before masks were common and scores masked faces lower: on the tracking
    clips, 26 of the 30 people it never confirmed wear a mask. A track whose detections stay under the
    tracker's confirm_score still becomes a person once the classifier is sure it is a masked face."""

    label: str = WITH_MASK  # the class that vouches for a face
    min_probability: float = 0.97  # the track's smoothed probability of `label`
    min_hits: int = 4  # detections of the track (a plain track needs 1); 5: 2 of 450 verdicts fewer right
    min_score: float = 0.4  # its best detector score (a plain track needs confirm_score)

    def __post_init__(self):
        if not 0.0 < self.min_probability <= 1.0:
            raise ValueError(f"min_probability must be in (0, 1], got {self.min_probability}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")

    def vouches(self, class_names: tuple[str, ...], smoothed: tuple[float, ...]) -> bool:
        return (
            self.label in class_names
            and bool(smoothed)
            and smoothed[class_names.index(self.label)] >= self.min_probability
        )


# On by default: on the tracking clips it confirmed 0 to 2 more people each and added no false person.
MASKED_FACE_CONFIRMATION = MaskedFaceConfirmation()


@dataclass
class _PersonState:
    smoother: VerdictSmoother
    first_frame: int
    last_frame: int = -1
    frames: int = 0
    person: int | None = None
    last_classified_frame: int | None = None
    last_classified_box: np.ndarray | None = None
    shown_counts: Counter = field(default_factory=Counter)
    last_shown: str | None = None
    best_side: float = 0.0  # the largest face side classified so far

    def evidence_of(self, box: np.ndarray) -> float:
        """A face seen smaller than the person's best view counts by its share of that view's pixels: a
        camera zooming out should not overturn what a closer look decided."""
        side = float(min(box[2] - box[0], box[3] - box[1]))
        self.best_side = max(self.best_side, side)
        return (side / self.best_side) ** 2 if self.best_side > 0 else 1.0

    def verdict(self) -> str | None:
        """Most-shown label; a tie goes to the label shown last (the person's latest state)."""
        if not self.shown_counts:
            return None
        top = max(self.shown_counts.values())
        leaders = [label for label, count in self.shown_counts.items() if count == top]
        return self.last_shown if self.last_shown in leaders else leaders[0]

    def summary(self) -> PersonSummary:
        return PersonSummary(self.person, self.verdict(), self.first_frame, self.last_frame, self.frames)


class PeopleTracker:
    """Tracking + smoothed verdicts + reclassification schedule, one frame at a time.

    Two phases per frame: `plan(boxes, i)` tracks the boxes and says which need a classification;
    `commit(plan, probs)` takes the class probabilities of exactly those boxes (in plan.classify order)
    and returns the frame with person ids and shown labels. `update` does both when the caller already
    holds per-box probabilities (None for boxes not classified this frame).
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        tracker: FaceTracker | None = None,
        smoothing: SmoothingSettings | None = None,
        policy: ReclassifyPolicy | None = None,
        masked_confirmation: MaskedFaceConfirmation | None = MASKED_FACE_CONFIRMATION,
    ):
        VerdictSmoother(class_names, smoothing)  # validates the names once, at construction
        self.class_names = tuple(class_names)
        self.tracker = tracker or FaceTracker()
        self.smoothing = smoothing or SmoothingSettings()
        self.policy = policy or ReclassifyPolicy()
        self.masked_confirmation = masked_confirmation  # None: only the detector's scores confirm
        self._states: dict[int, _PersonState] = {}
        self._ended: list[PersonSummary] = []
        self._unreported_ended: list[PersonSummary] = []
        self._pending: FramePlan | None = None
        self._last_frame: int | None = None

    def plan(
        self,
        boxes: np.ndarray | Sequence[Sequence[float]],
        frame_index: int,
        scores: np.ndarray | Sequence[float] | None = None,
    ) -> FramePlan:
        """Track the boxes (scores: the detector's confidences, see FaceTracker.confirm_score)."""
        if self._pending is not None:
            logger.debug("frame %d was planned but never committed", self._pending.frame_index)
        boxes = as_boxes(boxes)
        update = self.tracker.update(boxes, frame_index, scores)
        self._last_frame = frame_index
        self._end_tracks(update.removed_tracks)
        classify = []
        for i, (track, person) in enumerate(zip(update.tracks, update.persons, strict=True)):
            state = self._state_for(track, frame_index)
            state.person = person  # set here so a person ended before any commit still gets a summary
            if self._needs_classification(state, boxes[i], frame_index):
                classify.append(i)
        self._pending = FramePlan(frame_index, boxes, update.tracks, update.persons, tuple(classify))
        return self._pending

    def commit(self, plan: FramePlan, probs: np.ndarray | Sequence[Sequence[float]] | None) -> TrackedFrame:
        """probs: one row per index in plan.classify (None or empty when nothing was to classify)."""
        rows = self._probability_rows(probs)
        if len(rows) != len(plan.classify):
            raise ValueError(
                f"commit needs {len(plan.classify)} probability rows (one per plan.classify), got {len(rows)}"
            )
        return self._commit(plan, dict(zip(plan.classify, rows, strict=True)))

    def _probability_rows(self, probs: np.ndarray | Sequence[Sequence[float]] | None) -> np.ndarray:
        width = len(self.class_names)
        rows = np.zeros((0, width)) if probs is None else np.asarray(probs, dtype=np.float64)
        if rows.size == 0:
            return np.zeros((0, width))
        if rows.ndim != 2 or rows.shape[1] != width:
            raise ValueError(
                f"probs must have shape (N, {width}) for classes {self.class_names}; got {rows.shape}"
            )
        return rows

    def update(
        self,
        boxes: np.ndarray | Sequence[Sequence[float]],
        frame_index: int,
        probs: Sequence[np.ndarray | Sequence[float] | None] | None = None,
        scores: np.ndarray | Sequence[float] | None = None,
    ) -> TrackedFrame:
        """One phase: probs per box, None where the box was not classified this frame."""
        plan = self.plan(boxes, frame_index, scores)
        probs = [None] * len(plan.boxes) if probs is None else list(probs)
        if len(probs) != len(plan.boxes):
            raise ValueError(f"probs must have one entry per box ({len(plan.boxes)}), got {len(probs)}")
        return self._commit(plan, {i: p for i, p in enumerate(probs) if p is not None})

    def close(self) -> tuple[PersonSummary, ...]:
        """End every person (end of video, dropped stream); returns their summaries."""
        self.tracker.close()
        self._pending = None
        self._end_tracks(tuple(self._states))
        ended, self._unreported_ended = tuple(self._unreported_ended), []
        return ended

    def coasting(self, max_missed: int) -> tuple[TrackedFace, ...]:
        """People with a shown label whose face was not detected on the latest frame, missed for at most
        `max_missed` frames: their predicted boxes and current verdicts (`predicted` True), so a display
        can keep showing a person through a short detector miss. Changes no state."""
        if self._last_frame is None or max_missed < 1:
            return ()
        faces = []
        for track, box in self.tracker.missed(self._last_frame, max_missed):
            state = self._states.get(track)
            if state is None or state.person is None or state.smoother.label is None:
                continue
            faces.append(
                TrackedFace(
                    tuple(float(v) for v in box),
                    state.person,
                    state.smoother.label,
                    state.smoother.score,
                    None,
                    state.smoother.probs,
                    settled=state.smoother.settled,
                    predicted=True,
                )
            )
        return tuple(faces)

    def people(self) -> tuple[PersonSummary, ...]:
        """Every confirmed person so far, ended or still in view, by id."""
        active = [s.summary() for s in self._states.values() if s.person is not None]
        return tuple(sorted(self._ended + active, key=lambda p: p.id))

    def _state_for(self, track: int, frame_index: int) -> _PersonState:
        if track not in self._states:
            self._states[track] = _PersonState(VerdictSmoother(self.class_names, self.smoothing), frame_index)
        return self._states[track]

    def _needs_classification(self, state: _PersonState, box: np.ndarray, frame_index: int) -> bool:
        since = None if state.last_classified_frame is None else frame_index - state.last_classified_frame
        return self.policy.needs_classification(
            settled=state.smoother.settled, frames_since=since, box=box, last_box=state.last_classified_box
        )

    def _commit(self, plan: FramePlan, probs_by_index: dict[int, np.ndarray]) -> TrackedFrame:
        if plan is not self._pending:
            raise ValueError("commit takes the plan returned by the latest plan() call, once")
        self._pending = None
        faces = tuple(self._face(plan, i, probs_by_index.get(i)) for i in range(len(plan.boxes)))
        ended, self._unreported_ended = tuple(self._unreported_ended), []
        return TrackedFrame(plan.frame_index, faces, ended)

    def _face(self, plan: FramePlan, index: int, probs: np.ndarray | None) -> TrackedFace:
        state = self._states[plan.tracks[index]]
        box = plan.boxes[index]
        frame_label = None
        if probs is not None:
            frame_label = state.smoother.update(probs, state.evidence_of(box)).frame_label
            state.last_classified_frame, state.last_classified_box = plan.frame_index, box.copy()
        if state.person is None:  # also between classifications: a settled tentative track is seen less often
            state.person = self._confirm_masked_face(plan.tracks[index], state)
        state.frames += 1
        state.last_frame = plan.frame_index
        label = state.smoother.label
        if label is not None:
            state.shown_counts[label] += 1
            state.last_shown = label
        return TrackedFace(
            tuple(float(v) for v in box),
            state.person,
            label,
            state.smoother.score,
            frame_label,
            state.smoother.probs,
            settled=state.smoother.settled,
        )

    def _confirm_masked_face(self, track: int, state: _PersonState) -> int | None:
        rule = self.masked_confirmation
        if rule is None or not rule.vouches(self.class_names, state.smoother.probs):
            return None
        return self.tracker.confirm_if(track, rule.min_hits, rule.min_score)

    def _end_tracks(self, tracks: Sequence[int]) -> None:
        for track in tracks:
            state = self._states.pop(track, None)
            if state is not None and state.person is not None:
                summary = state.summary()
                self._ended.append(summary)
                self._unreported_ended.append(summary)
