"""What the pipeline gives: faces, predictions, per-face and per-frame results, stage timings.

Plain data (numpy at most): drawing, the pages, metrics and the command line read results without
importing the model stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

MASK_LABEL = "with_mask"
NO_MASK_LABEL = "without_mask"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, clipped to the frame
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float  # probability of `label`, the most likely class
    probs: dict[str, float]

    @property
    def masked(self) -> bool:
        return self.label == MASK_LABEL


@dataclass(frozen=True)
class StageTimings:
    detect_ms: float
    classify_ms: float  # cropping, preprocessing and the batched forward pass
    total_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"detect_ms": self.detect_ms, "classify_ms": self.classify_ms, "total_ms": self.total_ms}


@dataclass(frozen=True)
class FaceResult:
    face: Face
    prediction: Prediction

    # The face's box and its prediction's label, probability and verdict, read through.
    box = property(attrgetter("face.box"))
    label = property(attrgetter("prediction.label"))
    probability = property(attrgetter("prediction.probability"))
    masked = property(attrgetter("prediction.masked"))

    @property
    def score(self) -> float:
        """Ranks detections for average precision: a sure face with a sure label ranks first."""
        return self.face.score * self.prediction.probability

    def to_dict(self) -> dict:
        """One entry of the `detect --json` output."""
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "score": float(self.score),
            "face_score": float(self.face.score),
            "probs": {name: float(p) for name, p in self.prediction.probs.items()},
        }


@dataclass(frozen=True)
class FrameResult:
    faces: tuple[FaceResult, ...]
    timings: StageTimings
    frame_width: int
    frame_height: int

    @property
    def masked_count(self) -> int:
        return sum(1 for face in self.faces if face.masked)

    @property
    def unmasked_count(self) -> int:
        return len(self.faces) - self.masked_count

    @property
    def compliance(self) -> float | None:
        """Fraction of faces wearing a mask; None when there is no face to judge."""
        return self.masked_count / len(self.faces) if self.faces else None

    def to_json(self) -> list[dict]:
        return [face.to_dict() for face in self.faces]
