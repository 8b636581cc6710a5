"""One uploaded image analysed for the Images page.

No Streamlit here: the page calls these functions and draws the results.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from maskapp.app.compliance_log import VERDICT_COLUMN
from maskapp.errors import ImageError
from maskapp.labels import is_compliant
from maskapp.media.images import decode_image, encode_png
from maskapp.results import FrameResult, combine_summaries
from maskapp.vision.anonymize import anonymize_faces
from maskapp.vision.crops import crop_face
from maskapp.vision.draw import annotate, label_style
from maskapp.vision.pipeline import MaskPipeline

logger = logging.getLogger(__name__)

# A picture shrunk to the page's 1,460 px keeps at least one row (with room for rounding).
MAX_WIDTH_PER_ROW = 1000


@dataclass(frozen=True)
class ImageAnalysis:
    """One analysed image: the decoded frame, the pipeline result, the annotated copy, face crops."""

    name: str
    image: np.ndarray
    result: FrameResult
    annotated: np.ndarray
    crops: tuple[np.ndarray, ...] = field(default_factory=tuple)
    classes: tuple[str, ...] = ()  # the classifier's classes
    noncompliant_threshold: float | None = None  # the rule the verdicts follow (None: the likeliest class)


def analyze_image(
    pipeline: MaskPipeline, data: bytes, name: str, *, one_face: bool = False, anonymize: str = "none"
) -> ImageAnalysis:
    """Decode uploaded bytes, run the pipeline (or classify the whole image as one face), annotate.
    `anonymize` (none, blur, fill) hides the faces in the annotated image and in the thumbnails.

    Raises ImageError (a MaskappError) for bytes that are not a usable image.
    """
    image = decode_image(data, name=name)
    _check_showable(image, name)
    result = pipeline.classify_whole(image) if one_face else pipeline.process(image)
    shown = anonymize_faces(image, result, anonymize)
    # The thumbnails are what the classifier saw (hidden as the picture is): cut with the pipeline's margin.
    crops = tuple(
        shown if one_face else crop_face(shown, face.face.classifier_box, pipeline.margin)
        for face in result.faces
    )
    classes = tuple(pipeline.classifier.class_names)
    threshold = pipeline.classifier.noncompliant_threshold
    logger.info("analysed %s: %d face(s) in %.0f ms", name, len(result.faces), result.timings.total_ms)
    # Numbered as the face table's rows: in a crowd a row could not be matched to its box.
    annotated = annotate(shown, result, numbered=True)
    return ImageAnalysis(name, image, result, annotated, crops, classes, threshold)


def _check_showable(image: np.ndarray, name: str) -> None:
    """The page shows a picture at most 1,460 px wide (Streamlit's limit): one far wider than tall would
    be shrunk to no rows at all, an error of the page's, not the reader's."""
    height, width = image.shape[:2]
    if width > MAX_WIDTH_PER_ROW * height:
        raise ImageError(
            f"{name} is {width}x{height} pixels, too wide to show; allowed: an image at most "
            f"{MAX_WIDTH_PER_ROW} times as wide as it is tall."
        )


# A picture on the Images page is drawn at most this tall (CSS pixels), with its table under it, and at
# most this many times its own size: a 400 px street photo, shown as it is, had captions too small to
# read; a phone's portrait photo, as wide as the page, was three screens tall.
MAX_PICTURE_HEIGHT = 720
MAX_PICTURE_ZOOM = 2.5


def page_picture(image_bgr: np.ndarray) -> np.ndarray:
    """The annotated picture resized for the Images page (the download keeps it as it is): Streamlit
    shows an image at its own width, shrunk to the page where wider, while a width asked for in pixels
    ran past the page's edge."""
    height, width = image_bgr.shape[:2]
    zoom = min(MAX_PICTURE_ZOOM, MAX_PICTURE_HEIGHT / max(height, 1))
    size = (max(1, round(width * zoom)), max(1, round(height * zoom)))
    if size == (width, height):
        return image_bgr
    interpolation = cv2.INTER_LINEAR if zoom > 1 else cv2.INTER_AREA
    return cv2.resize(image_bgr, size, interpolation=interpolation)


def png_data_url(image_bgr: np.ndarray, max_side: int = 96) -> str:
    """A small PNG thumbnail as a data: URL, for an image column of a table."""

    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width, 1))
    if scale < 1.0:
        image_bgr = cv2.resize(
            image_bgr,
            (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
    return "data:image/png;base64," + base64.b64encode(encode_png(image_bgr)).decode("ascii")


def probability_column(class_name: str) -> str:
    """The face table's column of one class's probability, in percent (0 to 100)."""
    return f"P({class_name})"


def face_rows(analysis: ImageAnalysis) -> list[dict]:
    """One table row per face: thumbnail, verdict, each class's probability, detector score, box. The
    verdict's column is named as the Compliance log's violations table names its own (it read "label"
    here and "verdict" there); the JSON keeps `label`."""
    rows = []
    for index, (face, crop) in enumerate(zip(analysis.result.faces, analysis.crops, strict=True), start=1):
        probs = face.prediction.probs
        rows.append(
            {
                "face": index,
                "crop": png_data_url(crop),
                VERDICT_COLUMN: label_style(face.label).caption,  # words, which wrap: 'Mask worn incorrectly'
                **{probability_column(name): round(100 * float(probs[name]), 2) for name in analysis.classes},
                "face score": score_text(face.face.score),
                "box": box_text(face.box),
            }
        )
    return rows


# The switch only for what it is made for: offered for any photo, it classified a street scene or a
# blank wall as one face and gave it a verdict that meant nothing.
NO_FACE_HINT = (
    "No face found. Lower the *Face confidence threshold* in the sidebar to find fainter faces. Only if the "
    "picture is a close-up crop of one face, switch on *This image is one face*: on any other its verdict "
    "means nothing."
)

WHOLE_IMAGE = "whole image"


def score_text(score: float | None) -> str:
    """The detector's score as '0.93', or 'whole image' where no detector ran ('This image is one face'):
    it read 1.00 there, a certainty no detector gave."""
    return WHOLE_IMAGE if score is None else f"{score:.2f}"


def noncompliant_sum(classes: tuple[str, ...]) -> str:
    """P(non-compliant) in the classes' own words: 'P(Mask worn incorrectly) + P(No mask)'."""
    return " + ".join(f"P({label_style(name).caption})" for name in classes if not is_compliant(name))


def verdict_notes(analysis: ImageAnalysis) -> list[str]:
    """Why, for each face whose verdict is not its likeliest class (the non-compliant threshold decided
    it): its row alone read as a contradiction, 'No mask' beside a Mask bar at 51%."""
    threshold, notes = analysis.noncompliant_threshold, []
    if threshold is None:
        return notes  # the likeliest class wins: nothing to explain
    for index, face in enumerate(analysis.result.faces, start=1):
        prediction = face.prediction
        likeliest = prediction.likeliest
        if prediction.label == likeliest:
            continue
        said = f"Face {index} is called {label_style(face.label).caption}"
        chance = prediction.probs[likeliest]
        though = f"though {label_style(likeliest).caption} is its likeliest class ({chance:.0%})"
        rule, its = noncompliant_sum(analysis.classes), prediction.verdict_probability
        if prediction.compliant:
            why = f"its {rule}, {1 - its:.0%}, is under the *Non-compliant threshold*, {threshold:.2f}"
        else:
            why = (
                f"a face is not compliant once {rule} reaches the *Non-compliant threshold*, "
                f"{threshold:.2f}, and this one's is {its:.0%}"
            )
        notes.append(f"{said} {though}: {why}.")
    return notes


def timing_text(analysis: ImageAnalysis) -> str:
    """How long the photo took, and its detection's share: '92 ms (detect 71 ms)'. A picture taken as one
    face says that no detector ran ('detect 0 ms' read as a detector that found its face in no time)."""
    timings = analysis.result.timings
    if any(face.face.score is None for face in analysis.result.faces):
        return f"{timings.total_ms:.0f} ms (no face detection: the whole image is the face)"
    return f"{timings.total_ms:.0f} ms (detect {timings.detect_ms:.0f} ms)"


def box_text(box) -> str:
    """A face box as 'x1,y1 x2,y2': short, and in a narrow column each corner takes a line."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return f"{x1},{y1} {x2},{y2}"


def detection_json(analyses: ImageAnalysis | list[ImageAnalysis]) -> dict:
    """The JSON of one image or several, in the schema of `python -m maskapp detect --json`."""
    analyses = analyses if isinstance(analyses, list) else [analyses]
    keys = upload_keys([analysis.name for analysis in analyses])
    return {
        "classes": list(analyses[0].classes),
        "images": {key: analysis.result.to_json() for key, analysis in zip(keys, analyses, strict=True)},
        "summary": {key: analysis.result.summary() for key, analysis in zip(keys, analyses, strict=True)},
        "total": photos_total(analyses),
    }


def upload_keys(names: list[str]) -> list[str]:
    """Each upload's key in the JSON: its name, and "NAME (2)", "NAME (3)"... for later uploads of the
    same name (two phones' IMG_0001.jpg): the JSON kept one of them while its total counted both. An
    upload has no folder to tell them apart by, as `detect` does with paths."""
    taken: set[str] = set()
    keys = []
    for name in names:
        key, copy = name, 1
        while key in taken:
            copy += 1
            key = f"{name} ({copy})"
        taken.add(key)
        keys.append(key)
    return keys


def photos_total(analyses: list[ImageAnalysis]) -> dict:
    """Every photo's faces together, the `total` of `detect --json`: images, faces, faces per class,
    compliance."""
    return combine_summaries([analysis.result.summary() for analysis in analyses])
