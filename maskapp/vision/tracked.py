"""The pipeline with people: detect -> track -> classify only the faces that need it -> smoothed verdicts.

`TrackedPipeline(pipeline, fps)` wraps a shared `MaskPipeline` for one stream (a video file, a camera, a
browser session): it holds that stream's tracks, so each stream needs its own, while the detector and the
classifier inside the `MaskPipeline` stay shared. `process(frame, frame_index)` returns a `TrackedResult`
(a `FrameResult`) whose faces carry the person id, the person's smoothed verdict as their prediction and
this frame's own label as `frame_label` (None when the face was not classified again this frame).

Where the speed comes from: once a person's verdict has settled, the face is cropped and classified only
every few frames or when its box changes a lot (`ReclassifyPolicy`); the other frames reuse the verdict.

Two additions to `PeopleTracker`, each kept because it measured better on the tracking clip
(`python -m maskapp evaluate-tracking`, README):
- coasting: a person whose face the detector misses for a frame or two stays on screen at the track's
  predicted box (`predicted=True` faces, score 0), instead of blinking out;
- scene cuts: a frame that differs abruptly from the previous one in layout and colour (a camera switch,
  the next clip of an edit) ends every track, so a new face where a lost one was predicted is not merged
  with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from maskapp.labels import CLASS_NAMES, COMPLIANT_LABEL, is_compliant
from maskapp.results import Face, FaceResult, FrameResult, Prediction, StageTimings
from maskapp.vision.crops import clip_box, crop_face
from maskapp.vision.detect import check_frame, detect_with_mirror
from maskapp.vision.track import (
    DEFAULT_FPS,
    MASKED_FACE_CONFIRMATION,
    FaceTracker,
    MaskedFaceConfirmation,
    PeopleTracker,
    PersonSummary,
    ReclassifyPolicy,
    SmoothingSettings,
    TrackedFace,
)

# A person missed by the detector stays on screen at its predicted box for up to this long (then the box
# disappears; the track itself lives on for the tracker's full allowed gap, about a second).
DEFAULT_COAST_S = 0.2


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def layout_correlation(grey: np.ndarray, other: np.ndarray) -> float:
    """Pearson correlation of two grey images' pixels: 1 for the same picture at any brightness or contrast;
    0 for a flat image (no layout to compare)."""
    a, b = grey - grey.mean(), other - other.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm else 0.0


class SceneCutDetector:
    """An abrupt change of the whole picture between two consecutive frames.

    The mean absolute difference of 32x24 grey thumbnails must be large, and then either the picture's
    layout (the correlation of the two thumbnails, blind to brightness and contrast) or its colours (the
    correlation distance of hue-saturation histograms, blind to brightness) must have changed, so an
    exposure change alone is no cut. Measured over tracking clips 0-9 (8,910 frame pairs within scenes,
    90 cuts): within a scene at most 9.9 grey levels, 0.044 colour distance and a layout correlation of
    at least 0.967; at the cuts at least 44.0 grey levels and a correlation of at most 0.457, while the
    colour distance of one cut was only 0.193 (two photos of similar colours: colour alone missed it).
    """

    def __init__(
        self,
        min_difference: float = 30.0,
        min_colour_change: float = 0.2,
        max_layout_correlation: float = 0.6,
    ):
        self.min_difference = min_difference
        self.min_colour_change = min_colour_change
        self.max_layout_correlation = max_layout_correlation
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, frame_bgr: np.ndarray) -> bool:
        small = cv2.resize(frame_bgr, (32, 24), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        histogram = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(histogram, histogram)
        previous, self._previous = self._previous, (grey, histogram)
        if previous is None:
            return False
        if float(np.mean(np.abs(grey - previous[0]))) < self.min_difference:
            return False
        if layout_correlation(grey, previous[0]) <= self.max_layout_correlation:
            return True
        return 1.0 - cv2.compareHist(previous[1], histogram, cv2.HISTCMP_CORREL) >= self.min_colour_change

    def reset(self) -> None:
        self._previous = None


@dataclass(frozen=True)
class TrackedResult(FrameResult):
    """A FrameResult with what tracking decided on this frame."""

    frame_index: int = 0
    settled: frozenset[int] = frozenset()  # people in this frame whose verdict has settled
    ended: tuple[PersonSummary, ...] = ()  # people who left on this frame, with their final verdicts
    classified: int = 0  # faces cropped and classified this frame
    predicted: int = 0  # faces shown at a predicted box (coasting), not detected this frame
    scene_cut: bool = False  # every track was ended before this frame

    def people_in_view(self) -> dict[int, str]:
        """Person id -> shown label, for the tracked faces of this frame."""
        return {face.person: face.label for face in self.faces if face.person is not None}


class TrackedPipeline:
    """One stream's tracked view of a shared MaskPipeline (see the module docstring).

    Not thread-safe: call `process` from one thread (the stream's loop). `pipeline` may be swapped between
    frames (a new detector on the Live page); the tracks go on.
    """

    def __init__(
        self,
        pipeline,
        fps: float = DEFAULT_FPS,
        *,
        max_gap_s: float = 1.0,
        coast_s: float = DEFAULT_COAST_S,
        scene_cuts: bool = True,
        smoothing: SmoothingSettings | None = None,
        policy: ReclassifyPolicy | None = None,
        masked_confirmation: MaskedFaceConfirmation | None = MASKED_FACE_CONFIRMATION,
        second_look: bool = True,
    ):
        self.pipeline = pipeline
        self.second_look = second_look
        self.fps = float(fps)
        self.coast_frames = max(0, round(coast_s * self.fps))
        self._people = PeopleTracker(
            pipeline.classifier.class_names,
            tracker=FaceTracker.for_fps(self.fps, max_gap_s),
            smoothing=smoothing,
            policy=policy,
            masked_confirmation=masked_confirmation,
        )
        self._cuts = SceneCutDetector() if scene_cuts else None
        self._next_index = 0
        self.classified_faces = 0  # crops classified so far (for the speed-up figures)
        self.detected_faces = 0
        self.second_looks = 0  # frames also detected on their mirror image

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._people.class_names

    def process(self, frame_bgr: np.ndarray, frame_index: int | None = None) -> TrackedResult:
        """One frame of the stream; `frame_index` counts on from the last one when not given."""
        pipeline = self.pipeline
        return self._track(
            frame_bgr,
            frame_index,
            lambda: self._detect(pipeline.detector, frame_bgr),
            lambda faces, chosen: self._classify(
                pipeline, frame_bgr, [faces[i].classifier_box for i in chosen]
            ),
        )

    def keep_up(self, frame_bgr: np.ndarray, result: FrameResult) -> TrackedResult:
        """Keep the tracks going from a frame the shared pipeline already detected and classified (the
        Live page with *Follow people* off): no model runs again, each face's own label feeds its person's
        verdict, so the people stay known, with their ids, for when following comes back on."""
        faces = [face.face for face in result.faces]
        return self._track(
            frame_bgr,
            None,
            lambda: faces,
            lambda _, chosen: self._decision_rows([result.faces[i].prediction for i in chosen]),
        )

    def _track(self, frame_bgr, frame_index, detect, classify) -> TrackedResult:
        """One frame: `detect()` gives its faces, `classify(faces, indices)` the probability rows of the
        faces the tracker asks for (see process)."""
        width, height = check_frame(frame_bgr)
        index = self._next_index if frame_index is None else int(frame_index)
        start = time.perf_counter()
        ended: tuple[PersonSummary, ...] = ()
        cut = self._cuts is not None and self._cuts(frame_bgr)
        if cut:
            ended = self._people.close()
        faces = detect()
        detect_ms = _ms_since(start)
        classify_start = time.perf_counter()
        plan = self._people.plan([f.box for f in faces], index, [f.score for f in faces])
        self._next_index = index + 1
        probs = classify(faces, plan.classify) if plan.classify else None
        tracked = self._people.commit(plan, probs)
        coasting = self._people.coasting(self.coast_frames)
        results = [
            self._face_result(face, tracked_face)
            for face, tracked_face in zip(faces, tracked.faces, strict=True)
        ]
        results += [self._coasted_result(face, width, height) for face in coasting]
        self.classified_faces += len(plan.classify)
        self.detected_faces += len(faces)
        timings = StageTimings(detect_ms, _ms_since(classify_start), _ms_since(start))
        settled = frozenset(
            f.person for f in (*tracked.faces, *coasting) if f.settled and f.person is not None
        )
        return TrackedResult(
            tuple(results),
            timings,
            width,
            height,
            frame_index=index,
            settled=settled,
            ended=ended + tracked.ended,
            classified=len(plan.classify),
            predicted=len(coasting),
            scene_cut=cut,
        )

    def _detect(self, detector, frame_bgr: np.ndarray) -> list[Face]:
        """The detector's faces; while a face is in doubt (not yet a person, or a person just missed), those
        of the frame and its mirror image merged: a second chance for a face the detector scores low."""
        if self.second_look and self._people.tracker.in_doubt:
            self.second_looks += 1
            return detect_with_mirror(detector, frame_bgr)
        return detector.detect(frame_bgr)

    def close(self) -> tuple[PersonSummary, ...]:
        """End every person (end of the video, the stream dropped or stopped); their final summaries.
        The pipeline may go on afterwards: new faces become new people."""
        if self._cuts is not None:
            self._cuts.reset()
        return self._people.close()

    def people(self) -> tuple[PersonSummary, ...]:
        """Every person so far, left or still in view, by id, with their verdict (the label shown most)."""
        return self._people.people()

    def _classify(self, pipeline, frame_bgr: np.ndarray, boxes: list) -> np.ndarray | None:
        """Class probabilities, one row per box, in the tracker's class order; one batched call."""
        if not boxes:
            return None
        crops = [crop_face(frame_bgr, box, pipeline.margin) for box in boxes]
        if getattr(pipeline, "batched", True):
            predictions = pipeline.classifier.classify(crops)
        else:
            predictions = [p for crop in crops for p in pipeline.classifier.classify([crop])]
        return self._decision_rows(predictions, pipeline)

    def _decision_rows(self, predictions: Sequence[Prediction], pipeline=None) -> np.ndarray:
        rows = np.array([[p.probs[name] for name in self.class_names] for p in predictions])
        return to_decision_space(rows, self.class_names, self._threshold(pipeline))

    def _threshold(self, pipeline=None) -> float | None:
        return getattr((pipeline or self.pipeline).classifier, "noncompliant_threshold", None)

    def _prediction(self, face: TrackedFace) -> Prediction:
        probs = from_decision_space(np.asarray(face.probs), self.class_names, self._threshold())
        named = dict(zip(self.class_names, (float(p) for p in probs), strict=True))
        return Prediction(face.label, named[face.label], named)

    def _face_result(self, face: Face, tracked: TrackedFace) -> FaceResult:
        return FaceResult(face, self._prediction(tracked), tracked.person, tracked.frame_label)

    def _coasted_result(self, tracked: TrackedFace, width: int, height: int) -> FaceResult:
        box = clip_box(*tracked.box, width, height)
        return FaceResult(Face(box, 0.0), self._prediction(tracked), tracked.person, None)


# --- the non-compliant threshold, kept by the smoothing ---------------------------------------------------
# The smoother shows the class that leads its running average (an argmax). A classifier with a
# non-compliant threshold t decides otherwise: non-compliant once P(non-compliant) >= t. So the tracker
# smooths probabilities reweighted so that their argmax is that decision, frame by frame: with_mask weighs
# t * P(with_mask), the likeliest non-compliant class (1 - t) * P(non-compliant), the other non-compliant
# classes in proportion to it. What is shown is mapped back (exact for two classes).


def to_decision_space(rows: np.ndarray, class_names: tuple[str, ...], threshold: float | None) -> np.ndarray:
    if threshold is None or COMPLIANT_LABEL not in class_names or len(rows) == 0:
        return rows
    compliant = class_names.index(COMPLIANT_LABEL)
    others = [i for i in range(len(class_names)) if i != compliant]
    out = np.empty_like(rows, dtype=np.float64)
    noncompliant = rows[:, others].sum(axis=1)
    leader = np.maximum(rows[:, others].max(axis=1), 1e-12)
    out[:, compliant] = threshold * rows[:, compliant]
    out[:, others] = (1 - threshold) * noncompliant[:, None] * rows[:, others] / leader[:, None]
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def from_decision_space(
    probs: np.ndarray, class_names: tuple[str, ...], threshold: float | None
) -> np.ndarray:
    if threshold is None or COMPLIANT_LABEL not in class_names or probs.size == 0:
        return probs
    compliant = class_names.index(COMPLIANT_LABEL)
    weights = np.full(len(class_names), 1 - threshold)
    weights[compliant] = threshold
    # A threshold of 0 or 1 zeroes a class in the decision space: it cannot be mapped back and stays 0.
    raw = np.divide(probs, weights, out=np.zeros(len(class_names)), where=weights > 0)
    return raw / max(raw.sum(), 1e-12)


# --- what the pages and the command line show about people -----------------------------------------------


def frame_entries(result: FrameResult) -> list[dict]:
    """The faces of one frame as `video --json` writes them in faces_by_frame: the shown label (a tracked
    person's smoothed verdict) and its probability, the person id (None: untracked, or not yet confirmed),
    this frame's own label as frame_label (None when a tracked face was not classified again this frame;
    untracked: the label itself), and predicted (True: shown at the track's predicted box, not detected)."""
    tracked = isinstance(result, TrackedResult)
    first_predicted = len(result.faces) - (result.predicted if tracked else 0)
    return [
        {
            "box": [int(v) for v in face.box],
            "label": face.label,
            "score": round(float(face.probability), 4),
            "person": face.person,
            "frame_label": face.frame_label if tracked else face.label,
            "predicted": index >= first_predicted,
        }
        for index, face in enumerate(result.faces)
    ]


@dataclass(frozen=True)
class PeopleCounts:
    """People (not face-frames) by verdict; compliance is the share whose verdict is compliant."""

    by_verdict: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, labels: Iterable[str | None]) -> PeopleCounts:
        counts = Counter(label for label in labels if label is not None)
        ordered = {name: counts.pop(name, 0) for name in CLASS_NAMES}
        return cls({**ordered, **counts})

    @classmethod
    def of_people(cls, people: Sequence[PersonSummary]) -> PeopleCounts:
        return cls.of(person.label for person in people)

    @property
    def total(self) -> int:
        return sum(self.by_verdict.values())

    @property
    def compliant(self) -> int:
        return sum(n for label, n in self.by_verdict.items() if is_compliant(label))

    @property
    def noncompliant(self) -> int:
        return self.total - self.compliant

    @property
    def compliance(self) -> float | None:
        return self.compliant / self.total if self.total else None

    def to_dict(self) -> dict:
        return {"people": self.total, "by_verdict": dict(self.by_verdict), "compliance": self.compliance}
