"""Annotated copies of frames: boxes, labels, counts and compliance."""

from __future__ import annotations

import cv2
import numpy as np

from maskapp.results import FaceResult, FrameResult

MASK_COLOR = (0, 200, 0)  # BGR green
NO_MASK_COLOR = (0, 0, 255)  # BGR red
TEXT_COLOR = (255, 255, 255)
PANEL_COLOR = (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def face_caption(face: FaceResult) -> str:
    return f"{'Mask' if face.masked else 'No mask'} {face.probability:.0%}"


def summary_caption(result: FrameResult) -> str:
    compliance = "-" if result.compliance is None else f"{result.compliance:.0%}"
    return f"Masked {result.masked_count}  Unmasked {result.unmasked_count}  Compliance {compliance}"


def _style(frame_height: int, frame_width: int) -> tuple[float, int]:
    """Font scale and line thickness that stay readable from 240p to 4K."""
    scale = max(0.4, min(frame_height, frame_width) / 720)
    return scale, max(1, round(scale * 2))


def _put_label(image: np.ndarray, text: str, x: int, y: int, color, scale: float, thickness: int):
    """Text on a filled box whose bottom-left is (x, y), moved inside the image when it would leave it."""
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    height, width = image.shape[:2]
    x = min(max(x, 0), max(width - text_w - 4, 0))
    y = min(max(y, text_h + baseline + 4), height)
    cv2.rectangle(image, (x, y - text_h - baseline - 4), (x + text_w + 4, y), color, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - baseline - 2), FONT, scale, TEXT_COLOR, thickness, cv2.LINE_AA)


def _draw_face(image: np.ndarray, face: FaceResult, scale: float, thickness: int):
    color = MASK_COLOR if face.masked else NO_MASK_COLOR
    x1, y1, x2, y2 = face.box
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, thickness)
    _put_label(image, face_caption(face), x1, y1, color, scale * 0.8, max(1, thickness - 1))


def annotate(frame_bgr: np.ndarray, result: FrameResult, *, overlay: str | None = None) -> np.ndarray:
    """A new annotated image; `frame_bgr` is left untouched. `overlay` is an extra line (FPS, latency)."""
    image = frame_bgr.copy()
    scale, thickness = _style(*image.shape[:2])
    for face in result.faces:
        _draw_face(image, face, scale, thickness)
    lines = [summary_caption(result)] + ([overlay] if overlay else [])
    line_height = cv2.getTextSize("Ag", FONT, scale, thickness)[0][1] + 14
    for row, line in enumerate(lines):
        _put_label(image, line, 0, line_height * (row + 1), PANEL_COLOR, scale, thickness)
    return image
