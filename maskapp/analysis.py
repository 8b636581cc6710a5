"""One uploaded image analysed for the Images page, and the text helpers the pages share.

No Streamlit here: the pages call these functions and draw the results.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from maskapp import PROJECT_ROOT
from maskapp.crops import crop_face
from maskapp.draw import annotate
from maskapp.images import decode_image, encode_png
from maskapp.pipeline import FrameResult, MaskPipeline

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")


# --- text ------------------------------------------------------------------------------------------
def plain(text: object) -> str:
    """Text from a file name, a path or an error message, shown literally in a markdown element."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def shown_path(path: str | Path) -> str:
    """A path relative to the project when it is inside it (shorter on screen), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def stem(name: str) -> str:
    """A safe download file name stem from an uploaded file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:80] or "image"


# --- images ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAnalysis:
    """One analysed image: the decoded frame, the pipeline result, the annotated copy, face crops."""

    name: str
    image: np.ndarray
    result: FrameResult
    annotated: np.ndarray
    crops: tuple[np.ndarray, ...] = field(default_factory=tuple)


def analyze_image(pipeline: MaskPipeline, data: bytes, name: str, *, one_face: bool = False) -> ImageAnalysis:
    """Decode uploaded bytes, run the pipeline (or classify the whole image as one face), annotate.

    Raises ImageError (a MaskappError) for bytes that are not a usable image.
    """
    image = decode_image(data, name=name)
    result = pipeline.classify_whole(image) if one_face else pipeline.process(image)
    crops = tuple(image if one_face else crop_face(image, face.box) for face in result.faces)
    return ImageAnalysis(name, image, result, annotate(image, result), crops)


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


def face_rows(analysis: ImageAnalysis) -> list[dict]:
    """One table row per face: thumbnail, label, probability, detector score, box."""
    rows = []
    for index, (face, crop) in enumerate(zip(analysis.result.faces, analysis.crops, strict=True), start=1):
        rows.append(
            {
                "face": index,
                "crop": png_data_url(crop),
                "label": face.label,
                "probability": round(float(face.probability), 4),
                "face score": round(float(face.face.score), 4),
                "box (x1, y1, x2, y2)": ", ".join(str(int(v)) for v in face.box),
            }
        )
    return rows


def detection_json(analysis: ImageAnalysis) -> dict:
    """The JSON of one image, in the schema of `python -m maskapp detect --json`."""
    return {"images": {analysis.name: analysis.result.to_json()}}
