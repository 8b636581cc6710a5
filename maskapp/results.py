"""What the pipeline gives: faces, predictions, per-face and per-frame results, stage timings.

Plain data (numpy at most): drawing, the pages, metrics and the command line read results without
importing the model stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from maskapp.labels import CLASS_NAMES, COMPLIANT_LABEL, WITH_MASK, WITHOUT_MASK, is_compliant

# The 2-class names, kept for the 2-class compliance view of detection metrics.
MASK_LABEL = WITH_MASK
NO_MASK_LABEL = WITHOUT_MASK


@dataclass(frozen=True)
class Face:
    # x1, y1, x2, y2 in pixels, clipped to the frame: the face as people box it (what is drawn and reported)
    box: tuple[int, int, int, int]
    # the detector's confidence; None where no detector ran (the whole image classified as one face)
    score: float | None
    landmarks: tuple[tuple[float, float], ...] | None = None
    # The detector's own box where it differs from `box`: the classifier's crop is cut there, as its
    # training crops were. None: `box`.
    crop_box: tuple[int, int, int, int] | None = None

    @property
    def classifier_box(self) -> tuple[int, int, int, int]:
        """Where the classifier's crop is cut."""
        return self.box if self.crop_box is None else self.crop_box

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
    label: str  # the decided class (the likeliest, or non-compliant once P(non-compliant) >= threshold)
    probability: float  # probability of `label`
    probs: dict[str, float]

    @property
    def compliant(self) -> bool:
        """Only a mask worn over nose and mouth is compliant."""
        return is_compliant(self.label)

    @property
    def verdict_probability(self) -> float:
        """How likely the verdict is: P(with_mask) for a compliant face, P(non-compliant) = 1 - P(with_mask)
        for the others, the figure the non-compliant threshold is read against. P(label) alone read as a
        contradiction: 'No mask 37%' on a face whose P(with_mask) was 51% (flagged, rightly, at 0.32).
        A model without with_mask: P(label)."""
        if COMPLIANT_LABEL not in self.probs:
            return self.probability
        masked = self.probs[COMPLIANT_LABEL]
        return masked if self.compliant else 1.0 - masked

    @property
    def likeliest(self) -> str:
        """The class the model finds likeliest, which the verdict need not be (a threshold decides it)."""
        return max(self.probs, key=self.probs.get)


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
    prediction: Prediction  # for a tracked face: the person's smoothed verdict
    person: int | None = None  # the tracked person's id; None untracked or not yet confirmed
    frame_label: str | None = None  # tracked: this frame's own label when it was classified

    # The face's box and its prediction's label, probability and verdict, read through.
    box = property(attrgetter("face.box"))
    label = property(attrgetter("prediction.label"))
    probability = property(attrgetter("prediction.probability"))
    compliant = property(attrgetter("prediction.compliant"))

    @property
    def score(self) -> float:
        """Ranks detections for average precision: a sure face with a sure label ranks first (the label's
        alone where no detector ran)."""
        if self.face.score is None:
            return self.prediction.probability
        return self.face.score * self.prediction.probability

    def to_dict(self) -> dict:
        """One entry of the `detect --json` output; `face_score` is null where no detector ran."""
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "score": float(self.score),
            "face_score": None if self.face.score is None else float(self.face.score),
            "probs": {name: float(p) for name, p in self.prediction.probs.items()},
            "compliant": self.compliant,
        }


@dataclass(frozen=True)
class FrameResult:
    faces: tuple[FaceResult, ...]
    timings: StageTimings
    frame_width: int
    frame_height: int

    @property
    def label_counts(self) -> dict[str, int]:
        """Faces per class, every class of the three named (0 when absent), in the canonical order."""
        counts = dict.fromkeys(CLASS_NAMES, 0)
        for face in self.faces:
            counts[face.label] = counts.get(face.label, 0) + 1
        return counts

    @property
    def masked_count(self) -> int:
        """Faces wearing a mask properly (compliant)."""
        return sum(1 for face in self.faces if face.compliant)

    @property
    def unmasked_count(self) -> int:
        """Faces not compliant: no mask or a badly worn one."""
        return len(self.faces) - self.masked_count

    @property
    def compliance(self) -> float | None:
        """Masked faces / faces; None when there is no face to judge."""
        return self.masked_count / len(self.faces) if self.faces else None

    def to_json(self) -> list[dict]:
        return [face.to_dict() for face in self.faces]

    def summary(self) -> dict:
        """Faces, faces per class (every class of the three, 0 when absent) and compliance: one entry of
        the `summary` of `detect --json`."""
        return {"faces": len(self.faces), **self.label_counts, "compliance": self.compliance}


def combine_summaries(summaries: list[dict]) -> dict:
    """Several images' `summary()` as one, the `total` of `detect --json`: images, faces, faces per
    class, compliance (masked faces / faces)."""
    faces = sum(summary["faces"] for summary in summaries)
    counts = {name: sum(summary[name] for summary in summaries) for name in CLASS_NAMES}
    masked = sum(count for name, count in counts.items() if is_compliant(name))
    compliance = masked / faces if faces else None
    return {"images": len(summaries), "faces": faces, **counts, "compliance": compliance}
