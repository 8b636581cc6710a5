"""Tracking figures on synthetic camera clips built from real photos with known face boxes.

A clip is several scenes one after another. Each scene is one held-out photo of
`face-mask-detection-dev` seen through a 640x480 camera window that drifts and zooms slowly (the photo is
upscaled so its faces are of a usable size). The annotated boxes follow the same warp, so every frame has
its ground truth, and every annotated face is a person with a stable id and its label.

Figures (`TrackingReport`), from per-frame predictions (box, person id, shown label):
- coverage: share of person-frames matched (IoU >= 0.5) by a box that carries a person id;
- ids per person and ID switches; label agreement with the person's majority shown label (flicker);
- per-person verdicts right (compliant or not); false people (tracks whose boxes are near no annotated
  face, IoU < 0.3, in most of their frames).

Faces with a short side under 32 px, or less than 70% inside the frame, are "ignored" (like VOC
'difficult'): they count neither as a miss nor, when a prediction matches them, as a false detection.
A person seen scored in fewer than `min_person_frames` frames is ignored throughout.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path

import cv2
import numpy as np

from maskapp import DEV_DATASET
from maskapp.errors import DataError, ImageError
from maskapp.labels import COMPLIANT_LABELS
from maskapp.media.opencv_paths import read_bgr
from maskapp.metrics.voc import ImageAnnotation, load_annotations
from maskapp.vision.boxes import greedy_match, iou_matrix

logger = logging.getLogger(__name__)

DATASET_LAYOUT = "a folder with annotations/*.xml (PASCAL VOC, with <size>) and images/"
MATCH_IOU = 0.5
# A track is a false person when most of its boxes are near no annotated face at all. Looser than
# MATCH_IOU: CenterFace boxes sit ~0.13 face heights above the VOC boxes, and a real face with an offset
# box is already counted as not covered; it should not also count as a person who does not exist.
FALSE_PERSON_IOU = 0.3
MIN_VISIBLE_FRACTION = 0.7  # a face cut by the frame edge more than this is "ignored"

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


# ---------------------------------------------------------------- the clip


@dataclass(frozen=True)
class ClipSpec:
    scenes: int = 10  # the hidden clips: several scenes one after another
    scene_frames: int = 90  # 6 s at 15 fps: 10 scenes make the 900-frame default
    people: int = 45  # counted people over the whole clip
    width: int = 640  # the live page's and the bench's frame size
    height: int = 480
    fps: float = 15.0  # a typical entrance camera; 900 frames are the one minute
    seed: int = 0  # which photos and camera paths; --clip-seed picks others
    min_face_px: int = 32  # short side below this: the face is ignored in the figures
    min_person_frames: int = 15  # a person must be scored in at least this many frames (1 s) to count
    max_people_per_scene: int = 8  # a doorway's crowd; more and one photo would fill the clip
    face_px: float = 56.0  # photos are upscaled so that their median face has about this short side
    max_upscale: float = 4.0  # beyond this an upscaled photo is too blurred to stand for a camera
    drift: float = 0.25  # camera travel over a scene, as a fraction of the frame width
    zoom: float = 0.2  # scale change over a scene (zoom in or out, chosen per scene)

    @property
    def frames(self) -> int:
        return self.scenes * self.scene_frames


@dataclass(frozen=True)
class PhotoFace:
    box: Box  # photo pixels
    label: str  # one of the model's class names (labels.CLASS_NAMES)


@dataclass(frozen=True)
class Photo:
    image: Path
    width: int
    height: int
    faces: tuple[PhotoFace, ...]


@dataclass(frozen=True)
class CameraPath:
    """The camera window over a scene: scale (frame px per photo px) and centre (photo px), eased in time."""

    start_scale: float
    end_scale: float
    start_center: tuple[float, float]
    end_center: tuple[float, float]

    def affine(self, t: float, width: int, height: int) -> np.ndarray:
        """2x3 matrix mapping photo pixels to frame pixels at time t in [0, 1]."""
        ease = t * t * (3 - 2 * t)  # a camera pan starts and stops smoothly
        scale = self.start_scale + (self.end_scale - self.start_scale) * ease
        cx = self.start_center[0] + (self.end_center[0] - self.start_center[0]) * ease
        cy = self.start_center[1] + (self.end_center[1] - self.start_center[1]) * ease
        return np.array([[scale, 0, width / 2 - scale * cx], [0, scale, height / 2 - scale * cy]])


@dataclass(frozen=True)
class GroundTruthFace:
    person: int
    box: Box  # frame pixels, clipped to the frame
    label: str
    scored: bool  # False: ignored (small, cut by the frame edge, or a person seen too briefly)


@dataclass(frozen=True)
class GroundTruthPerson:
    id: int
    label: str
    scene: int
    image: str
    scored_frames: int


@dataclass(frozen=True)
class Scene:
    photo: Photo
    path: CameraPath
    first_frame: int
    frames: int


def photo_of(annotation: ImageAnnotation, images: Path) -> Photo:
    """One annotated photo with its faces (labels already the model's names)."""
    if annotation.size is None:
        raise DataError(
            f"annotation of {annotation.filename} has no <size> width and height; allowed: {DATASET_LAYOUT}"
        )
    faces = tuple(PhotoFace(obj.box, obj.label) for obj in annotation.objects)
    return Photo(images / annotation.filename, *annotation.size, faces)


def load_photos(dataset: Path = DEV_DATASET) -> list[Photo]:
    """The dataset's photos that exist and hold at least one annotated face."""
    folder = dataset / "annotations"
    if not any(folder.glob("*.xml")):  # a missing folder globs to nothing too
        raise DataError(f"no PASCAL VOC annotations in {folder}; allowed: {DATASET_LAYOUT}")
    photos = [photo_of(annotation, dataset / "images") for annotation in load_annotations(folder)]
    return [p for p in photos if p.faces and p.image.is_file()]


def camera_path(photo: Photo, spec: ClipSpec, rng: np.random.Generator) -> CameraPath:
    """A slow drift and zoom that starts near the photo's faces and keeps the window inside the photo."""
    short_sides = [min(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in photo.faces]
    cover = max(spec.width / photo.width, spec.height / photo.height)  # the window fits inside the photo
    start = float(np.clip(spec.face_px / max(np.median(short_sides), 1.0), cover * 1.05, spec.max_upscale))
    start = max(start, cover * (1 + spec.zoom) * 1.05)  # room for zooming out and for the drift
    end = start * (1 + spec.zoom) if rng.random() < 0.5 else start / (1 + spec.zoom)
    centroid = np.mean([((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in photo.faces], axis=0)
    angle = rng.uniform(0, 2 * math.pi)
    travel = spec.drift * spec.width / min(start, end)  # photo pixels
    offset = 0.5 * travel * np.array([math.cos(angle), math.sin(angle)])
    return CameraPath(
        start,
        end,
        _inside(centroid - offset + rng.normal(0, 0.05, 2) * [photo.width, photo.height], start, photo, spec),
        _inside(centroid + offset, end, photo, spec),
    )


def _inside(center: np.ndarray, scale: float, photo: Photo, spec: ClipSpec) -> tuple[float, float]:
    half_w, half_h = spec.width / (2 * scale), spec.height / (2 * scale)
    x = float(np.clip(center[0], half_w, photo.width - half_w))
    y = float(np.clip(center[1], half_h, photo.height - half_h))
    return x, y


def warp_box(box: Box, affine: np.ndarray) -> np.ndarray:
    """A box in photo pixel-edge coordinates through the affine warpAffine renders the frame with.

    warpAffine maps pixel centres (integer coordinates); box edges sit half a pixel off the centres, so
    an edge e lands at scale * (e - 0.5) + offset + 0.5: 1.5 frame pixels off at 4x otherwise.
    """
    scale = affine[0, 0]
    edges = np.array([box[0], box[1], box[2], box[3]], dtype=np.float64)
    return (edges - 0.5) * scale + np.tile(affine[:, 2], 2) + 0.5


@dataclass(frozen=True)
class _FaceInView:
    index: int  # in the photo's faces
    box: np.ndarray = field(compare=False)  # frame pixels, clipped to the frame
    scored: bool  # big enough and visible enough (before the per-person frame count)


def _place_face(index: int, box: Box, affine: np.ndarray, spec: ClipSpec) -> _FaceInView | None:
    """The face in the frame, clipped; None when wholly out of view."""
    full = warp_box(box, affine)
    clipped = np.clip(full, 0, [spec.width, spec.height, spec.width, spec.height])
    clipped_area = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
    if clipped_area <= 0:
        return None
    visible = clipped_area / max((full[2] - full[0]) * (full[3] - full[1]), 1e-9)
    short_side = min(clipped[2] - clipped[0], clipped[3] - clipped[1])
    return _FaceInView(
        index, clipped, bool(visible >= MIN_VISIBLE_FRACTION and short_side >= spec.min_face_px)
    )


def _scene_faces(photo: Photo, path: CameraPath, frames: int, spec: ClipSpec) -> list[list[_FaceInView]]:
    """Per frame of the scene, the photo's faces in view."""
    per_frame = []
    for i in range(frames):
        affine = path.affine(i / max(frames - 1, 1), spec.width, spec.height)
        placed = (_place_face(index, face.box, affine, spec) for index, face in enumerate(photo.faces))
        per_frame.append([face for face in placed if face is not None])
    return per_frame


def _scored_frames(per_frame: list[list[_FaceInView]]) -> Counter:
    """Face index -> frames in which it is scored."""
    return Counter(face.index for frame in per_frame for face in frame if face.scored)


@dataclass(frozen=True)
class _Candidate:
    """A photo with its camera path: a possible scene."""

    photo: Photo
    path: CameraPath
    per_frame: list[list[_FaceInView]] = field(compare=False, repr=False)
    scored_frames: Counter = field(compare=False, repr=False)
    counted: frozenset[int]  # faces scored in enough frames to count as people


@dataclass(frozen=True)
class ClipTruth:
    """What the figures are computed against: the people, and the faces in view in each frame."""

    people: tuple[GroundTruthPerson, ...]
    faces_by_frame: tuple[tuple[GroundTruthFace, ...], ...]

    def __len__(self) -> int:
        return len(self.faces_by_frame)


class SyntheticClip:
    """Frames are rendered on demand (900 frames at 640x480 would hold 830 MB)."""

    def __init__(self, spec: ClipSpec, candidates: Sequence[_Candidate]):
        self.spec = spec
        self.scenes: tuple[Scene, ...] = tuple(
            Scene(c.photo, c.path, i * spec.scene_frames, spec.scene_frames) for i, c in enumerate(candidates)
        )
        self.truth = _ground_truth(candidates)

    def __len__(self) -> int:
        return len(self.truth)

    @property
    def people(self) -> tuple[GroundTruthPerson, ...]:
        return self.truth.people

    def ground_truth(self, frame_index: int) -> tuple[GroundTruthFace, ...]:
        return self.truth.faces_by_frame[frame_index]

    def scene_of(self, frame_index: int) -> Scene:
        return self.scenes[frame_index // self.spec.scene_frames]

    def affine(self, frame_index: int) -> np.ndarray:
        scene = self.scene_of(frame_index)
        t = (frame_index - scene.first_frame) / max(scene.frames - 1, 1)
        return scene.path.affine(t, self.spec.width, self.spec.height)

    def frame(self, frame_index: int) -> np.ndarray:
        """The BGR frame: the scene's photo through the camera window."""
        photo = _read_photo(self.scene_of(frame_index).photo.image)
        size = (self.spec.width, self.spec.height)
        return cv2.warpAffine(photo, self.affine(frame_index), size, flags=cv2.INTER_LINEAR)

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for index in range(len(self)):
            yield index, self.frame(index)

    def save(self, path: Path) -> None:
        """Write the clip as a video file (.avi: MJPG, .mp4), for `video` to time end to end on it."""
        from maskapp.media.video import VideoFileWriter  # OpenCV video I/O: only when saving

        writer = VideoFileWriter(Path(path), self.spec.fps)
        try:
            for _, frame in self.frames():
                writer.write(frame)
        finally:
            writer.close()


@lru_cache(maxsize=2)
def _read_photo(path: Path) -> np.ndarray:
    image = read_bgr(path)
    if image is None:
        raise ImageError(f"cannot read photo {path}; allowed: an image file OpenCV can decode")
    return image


def _ground_truth(candidates: Sequence[_Candidate]) -> ClipTruth:
    """Every annotated face gets a person id; only faces scored long enough count as people."""
    people, faces_by_frame, first_id = [], [], 1
    for scene_index, candidate in enumerate(candidates):
        faces = candidate.photo.faces
        people += [
            GroundTruthPerson(
                first_id + i,
                faces[i].label,
                scene_index,
                candidate.photo.image.name,
                candidate.scored_frames[i],
            )
            for i in sorted(candidate.counted)
        ]
        faces_by_frame += [
            tuple(
                GroundTruthFace(
                    first_id + f.index,
                    tuple(float(v) for v in f.box),
                    faces[f.index].label,
                    f.scored and f.index in candidate.counted,
                )
                for f in frame
            )
            for frame in candidate.per_frame
        ]
        first_id += len(faces)
    return ClipTruth(tuple(people), tuple(faces_by_frame))


def build_clip(spec: ClipSpec | None = None, dataset: Path | None = None) -> SyntheticClip:
    """Scenes from seeded, shuffled photos, chosen so that the clip holds `spec.people` counted people.
    `dataset` defaults to DEV_DATASET, read at call time (tests point the command line elsewhere)."""
    spec = spec or ClipSpec()
    photos = load_photos(dataset or DEV_DATASET)
    order = np.random.default_rng(spec.seed).permutation(len(photos))
    candidates = (_candidate(photos[i], int(i), spec) for i in order)
    chosen = _choose_scenes(candidates, spec)
    clip = SyntheticClip(spec, chosen)
    logger.info("clip: %d scenes, %d frames, %d people", len(clip.scenes), len(clip), len(clip.people))
    return clip


def _candidate(photo: Photo, photo_index: int, spec: ClipSpec) -> _Candidate:
    rng = np.random.default_rng([spec.seed, photo_index])  # a photo's path does not depend on the others
    path = camera_path(photo, spec, rng)
    per_frame = _scene_faces(photo, path, spec.scene_frames, spec)
    scored = _scored_frames(per_frame)
    counted = frozenset(i for i, frames in scored.items() if frames >= spec.min_person_frames)
    return _Candidate(photo, path, per_frame, scored, counted)


def _choose_scenes(candidates: Iterator[_Candidate], spec: ClipSpec) -> list[_Candidate]:
    """Greedy: each scene takes the next photo whose people count keeps the total reachable."""
    chosen: list[_Candidate] = []
    remaining = spec.people
    for candidate in candidates:
        scenes_left = spec.scenes - len(chosen)
        if scenes_left == 0:
            break
        low = max(1, remaining - (scenes_left - 1) * spec.max_people_per_scene)
        high = min(spec.max_people_per_scene, remaining - (scenes_left - 1))
        if low <= len(candidate.counted) <= high:
            chosen.append(candidate)
            remaining -= len(candidate.counted)
    if len(chosen) < spec.scenes:
        raise DataError(
            f"not enough photos for {spec.scenes} scenes with {spec.people} people in all; allowed: "
            f"{DATASET_LAYOUT} holding enough photos with faces, or a clip of fewer scenes or people"
        )
    return chosen


# ---------------------------------------------------------------- noisy ground truth as a detector


@dataclass(frozen=True)
class DetectionNoise:
    """A stand-in detector for tracker tests: the ground-truth boxes, jittered, with misses."""

    jitter: float = 0.05  # std of each box edge, as a fraction of the box side
    miss_rate: float = 0.05  # a face is missed in a frame
    gap_rate: float = 0.01  # a face starts a longer miss (turned away, occluded) ...
    gap_frames: int = 8  # ... of this many frames (under the tracker's allowed gap)
    dropped_frame_rate: float = 0.02  # a whole frame without detections (a decoding hiccup)
    seed: int = 0  # the noise's own draws, apart from the clip's


def noisy_detections(clip: SyntheticClip, noise: DetectionNoise | None = None) -> list[np.ndarray]:
    """Per frame, an (N, 4) array of detected boxes: every ground-truth face in view, ignored ones too."""
    noise = noise or DetectionNoise()
    rng = np.random.default_rng(noise.seed)
    gap_until: dict[int, int] = {}
    detections = []
    for index in range(len(clip)):
        dropped = rng.random() < noise.dropped_frame_rate
        boxes = []
        for face in clip.ground_truth(index):
            if rng.random() < noise.gap_rate:
                gap_until[face.person] = index + noise.gap_frames
            if dropped or gap_until.get(face.person, -1) > index or rng.random() < noise.miss_rate:
                continue
            boxes.append(_jittered(face.box, noise.jitter, rng))
        detections.append(np.array(boxes, dtype=np.float64).reshape(-1, 4))
    return detections


def _jittered(box: Box, jitter: float, rng: np.random.Generator) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array(box) + rng.normal(0, jitter, 4) * [w, h, w, h]


# ---------------------------------------------------------------- the figures


@dataclass(frozen=True)
class PredictedFace:
    box: Box
    person: int | None  # None: shown but not (yet) tracked, left out of every figure
    label: str | None  # the shown label

    @classmethod
    def coerce(cls, item: PredictedFace | Sequence) -> PredictedFace:
        """Accepts (box, person, label) triples from callers that have no access to this class."""
        if isinstance(item, PredictedFace):
            return item
        box, person, label = item
        return cls(tuple(float(v) for v in box), None if person is None else int(person), label)


@dataclass(frozen=True)
class PersonFigures:
    id: int
    label: str  # ground truth
    scored_frames: int
    covered_frames: int
    track_ids: tuple[int, ...]  # distinct, in order of first match
    id_switches: int
    shown_label: str | None  # majority of the labels shown on this person's matched frames
    agreeing_frames: int  # matched frames whose shown label is the majority one
    verdict_right: bool  # compliant or not, as the ground truth; False if never covered

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "scored_frames": self.scored_frames,
            "covered_frames": self.covered_frames,
            "track_ids": list(self.track_ids),
            "id_switches": self.id_switches,
            "shown_label": self.shown_label,
            "agreeing_frames": self.agreeing_frames,
            "verdict_right": self.verdict_right,
        }


TARGETS = {  # issue 9: figure -> (target, True when higher is better)
    "coverage": (0.90, True),
    "ids_per_person": (1.1, False),
    "label_agreement": (0.98, True),
    "verdict_accuracy": (0.90, True),
    "false_people_per_45": (2.0, False),
}


@dataclass(frozen=True)
class TrackingReport:
    frames: int
    people: int
    person_frames: int
    covered_person_frames: int
    people_never_covered: int
    ids_per_person: float  # distinct track ids per covered person
    id_switches: int
    label_agreement: float  # frame-weighted over covered people
    verdicts_right: int
    false_people: int
    merged_tracks: int  # track ids matched to more than one person (two people counted as one)
    tracks: int  # distinct track ids in the predictions
    per_person: tuple[PersonFigures, ...]
    false_track_ids: tuple[int, ...]
    analyze_seconds: float | None = None  # wall time of the analyze callable, when run by run_evaluation

    @property
    def coverage(self) -> float:
        return self.covered_person_frames / self.person_frames if self.person_frames else 0.0

    @property
    def verdict_accuracy(self) -> float:
        return self.verdicts_right / self.people if self.people else 0.0

    @property
    def false_people_per_45(self) -> float:
        return 45 * self.false_people / self.people if self.people else float(self.false_people)

    @property
    def fps(self) -> float | None:
        return self.frames / self.analyze_seconds if self.analyze_seconds else None

    def checks(self) -> dict[str, bool]:
        """Each issue-9 target: met or not."""
        return {
            name: (getattr(self, name) >= target if higher else getattr(self, name) <= target)
            for name, (target, higher) in TARGETS.items()
        }

    def to_dict(self) -> dict:
        summary = {
            name: getattr(self, name)
            for name in (
                "frames",
                "people",
                "person_frames",
                "covered_person_frames",
                "coverage",
                "people_never_covered",
                "ids_per_person",
                "id_switches",
                "label_agreement",
                "verdicts_right",
                "verdict_accuracy",
                "false_people",
                "false_people_per_45",
                "merged_tracks",
                "tracks",
                "analyze_seconds",
                "fps",
            )
        }
        return {
            **summary,
            "targets": {
                name: {"target": t, "met": met}
                for (name, (t, _)), met in zip(TARGETS.items(), self.checks().values(), strict=True)
            },
            "false_track_ids": list(self.false_track_ids),
            "per_person": [p.to_dict() for p in self.per_person],
        }


def pool(reports: Sequence[TrackingReport]) -> TrackingReport:
    """Several clips' figures as one clip's: counts add up, ids per person and label agreement are taken
    over all covered people and frames, so every person counts alike whichever clip holds them. Person
    and track ids are per clip, so the pooled report lists neither."""
    if not reports:
        raise ValueError("pooling needs at least one tracking report")
    covered = [figures for report in reports for figures in report.per_person if figures.covered_frames]
    seconds = [report.analyze_seconds for report in reports]
    return TrackingReport(
        frames=sum(r.frames for r in reports),
        people=sum(r.people for r in reports),
        person_frames=sum(r.person_frames for r in reports),
        covered_person_frames=sum(r.covered_person_frames for r in reports),
        people_never_covered=sum(r.people_never_covered for r in reports),
        ids_per_person=float(np.mean([len(f.track_ids) for f in covered])) if covered else 0.0,
        id_switches=sum(r.id_switches for r in reports),
        label_agreement=sum(f.agreeing_frames for f in covered)
        / max(sum(f.covered_frames for f in covered), 1),
        verdicts_right=sum(r.verdicts_right for r in reports),
        false_people=sum(r.false_people for r in reports),
        merged_tracks=sum(r.merged_tracks for r in reports),
        tracks=sum(r.tracks for r in reports),
        per_person=(),
        false_track_ids=(),
        analyze_seconds=None if None in seconds else sum(seconds),
    )


@dataclass
class _PersonLog:
    track_ids: list[int] = field(default_factory=list)  # per covered frame
    labels: list[str | None] = field(default_factory=list)
    scored_frames: int = 0


@dataclass
class _TrackLog:
    frames: int = 0
    off_faces: int = 0  # frames whose box is near no annotated face (IoU < FALSE_PERSON_IOU)
    people: set[int] = field(default_factory=set)  # ground-truth people this track id was matched to


def evaluate_tracks(
    truth: ClipTruth | SyntheticClip,
    predictions: Sequence[Sequence[PredictedFace | Sequence]],
    compliant_labels: Sequence[str] = COMPLIANT_LABELS,
    match_iou: float = MATCH_IOU,
) -> TrackingReport:
    """Figures of per-frame predictions against the ground truth (see the module docstring)."""
    truth = truth.truth if isinstance(truth, SyntheticClip) else truth
    if len(predictions) != len(truth):
        raise ValueError(f"predictions must have one list per frame ({len(truth)}), got {len(predictions)}")
    people = {p.id: _PersonLog() for p in truth.people}
    tracks: dict[int, _TrackLog] = {}
    for faces_in_view, frame_predictions in zip(truth.faces_by_frame, predictions, strict=True):
        faces = [PredictedFace.coerce(item) for item in frame_predictions]
        tracked = [f for f in faces if f.person is not None]
        _score_frame(faces_in_view, tracked, people, tracks, match_iou)
    return _report(truth, people, tracks, set(compliant_labels))


def _score_frame(
    in_view: Sequence[GroundTruthFace], faces: list[PredictedFace], people, tracks, match_iou: float
) -> None:
    gt_boxes = np.array([g.box for g in in_view], dtype=np.float64).reshape(-1, 4)
    boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
    iou = iou_matrix(gt_boxes, boxes)
    matched = {f: in_view[g] for g, f in greedy_match(iou, match_iou)}  # ignored faces match too
    near_a_face = iou.max(axis=0) >= FALSE_PERSON_IOU if len(in_view) else np.zeros(len(faces), bool)
    for gt in in_view:
        if gt.scored and gt.person in people:
            people[gt.person].scored_frames += 1
    for f, face in enumerate(faces):
        log = tracks.setdefault(face.person, _TrackLog())
        log.frames += 1
        log.off_faces += not near_a_face[f]
        gt = matched.get(f)
        if gt is not None and gt.scored and gt.person in people:
            log.people.add(gt.person)
            people[gt.person].track_ids.append(face.person)
            people[gt.person].labels.append(face.label)


def _person_figures(person: GroundTruthPerson, log: _PersonLog, compliant: set[str]) -> PersonFigures:
    switches = sum(1 for a, b in zip(log.track_ids, log.track_ids[1:], strict=False) if a != b)
    shown = [label for label in log.labels if label is not None]
    majority = Counter(shown).most_common(1)[0][0] if shown else None
    return PersonFigures(
        id=person.id,
        label=person.label,
        scored_frames=log.scored_frames,
        covered_frames=len(log.track_ids),
        track_ids=tuple(dict.fromkeys(log.track_ids)),
        id_switches=switches,
        shown_label=majority,
        agreeing_frames=sum(1 for label in log.labels if label == majority) if majority else 0,
        verdict_right=majority is not None and (majority in compliant) == (person.label in compliant),
    )


def _report(truth: ClipTruth, people: dict, tracks: dict, compliant: set[str]) -> TrackingReport:
    figures = tuple(_person_figures(p, people[p.id], compliant) for p in truth.people)
    covered = [f for f in figures if f.covered_frames]
    false_ids = tuple(sorted(t for t, log in tracks.items() if log.off_faces * 2 > log.frames))
    return TrackingReport(
        frames=len(truth),
        people=len(figures),
        person_frames=sum(f.scored_frames for f in figures),
        covered_person_frames=sum(f.covered_frames for f in figures),
        people_never_covered=len(figures) - len(covered),
        ids_per_person=float(np.mean([len(f.track_ids) for f in covered])) if covered else 0.0,
        id_switches=sum(f.id_switches for f in figures),
        label_agreement=(
            sum(f.agreeing_frames for f in covered) / max(sum(f.covered_frames for f in covered), 1)
        ),
        verdicts_right=sum(f.verdict_right for f in figures),
        false_people=len(false_ids),
        merged_tracks=sum(1 for log in tracks.values() if len(log.people) > 1),
        tracks=len(tracks),
        per_person=figures,
        false_track_ids=false_ids,
    )


Analyze = Callable[[np.ndarray, int], Sequence[PredictedFace | Sequence]]


def run_evaluation(
    analyze: Analyze,
    clip: SyntheticClip | None = None,
    compliant_labels: Sequence[str] = COMPLIANT_LABELS,
) -> TrackingReport:
    """Feed every frame of the clip to `analyze(frame_bgr, frame_index) -> [(box, person, label), ...]`
    (the detector + classifier + tracker under test) and score what it returns."""
    clip = clip or build_clip()
    predictions, seconds = [], 0.0
    for index, frame in clip.frames():
        start = time.perf_counter()
        predictions.append(list(analyze(frame, index)))
        seconds += time.perf_counter() - start
    return replace(evaluate_tracks(clip, predictions, compliant_labels), analyze_seconds=seconds)


# ---------------------------------------------------------------- the real pipeline, tracked


@dataclass(frozen=True)
class PipelineTrackingReport:
    """`evaluate-tracking`: the tracking figures of the real detector + classifier + tracker on a clip."""

    tracking: TrackingReport
    detector: str
    faces_detected: int
    faces_classified: int  # crops the tracked pipeline classified (an untracked one classifies them all)
    settings: dict
    second_looks: int = 0  # frames also detected on their mirror image (a face was in doubt)

    @property
    def classified_share(self) -> float | None:
        return self.faces_classified / self.faces_detected if self.faces_detected else None

    def to_dict(self) -> dict:
        return {
            "detector": self.detector,
            "faces_detected": self.faces_detected,
            "faces_classified": self.faces_classified,
            "classified_share": self.classified_share,
            "second_looks": self.second_looks,
            "settings": self.settings,
            **self.tracking.to_dict(),
        }


@dataclass(frozen=True)
class ClipsTrackingReport:
    """`evaluate-tracking --clip-seed A B ...`: each clip's figures, and all of them pooled (`pool`)."""

    clips: tuple[PipelineTrackingReport, ...]

    @cached_property  # read by the text report and by the JSON alike
    def pooled(self) -> TrackingReport:
        return pool([clip.tracking for clip in self.clips])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(clip.settings["clip_seed"] for clip in self.clips)

    def to_dict(self) -> dict:
        pooled = self.pooled.to_dict()
        for per_clip in ("per_person", "false_track_ids"):
            pooled.pop(per_clip)
        return {"clip_seeds": list(self.seeds), "pooled": pooled, "clips": [c.to_dict() for c in self.clips]}


def evaluate_tracked_pipeline(pipeline, clip: SyntheticClip | None = None, **tracked_settings):
    """Every frame of the clip through `TrackedPipeline(pipeline, clip fps, **tracked_settings)`; the
    figures of what it shows (predicted, coasted boxes included: they are on screen)."""
    from maskapp.vision.tracked import TrackedPipeline  # OpenCV and the tracker: only when measuring

    clip = clip or build_clip()
    tracked = TrackedPipeline(pipeline, clip.spec.fps, **tracked_settings)

    def analyze(frame: np.ndarray, index: int) -> list[PredictedFace]:
        result = tracked.process(frame, index)
        return [PredictedFace(tuple(float(v) for v in f.box), f.person, f.label) for f in result.faces]

    report = run_evaluation(analyze, clip)
    tracked.close()
    settings = {
        "clip_seed": clip.spec.seed,
        "fps": clip.spec.fps,
        "frames": len(clip),
        "coast_frames": tracked.coast_frames,
        **{k: v for k, v in tracked_settings.items() if isinstance(v, int | float | bool | str)},
    }
    return PipelineTrackingReport(
        report,
        pipeline.detector.name,
        tracked.detected_faces,
        tracked.classified_faces,
        settings,
        tracked.second_looks,
    )
