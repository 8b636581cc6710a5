"""Annotated copies of frames: boxes, labels, counts and compliance.

One style per class (colour and words), in one table: the boxes, the summary line, the pages' colour
legend and the charts all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.results import FaceResult, FrameResult

WHITE = (255, 255, 255)
DARK = (30, 30, 30)
PANEL_COLOR = (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class LabelStyle:
    caption: str  # on a face's box
    short: str  # in the summary line
    color: tuple[int, int, int]  # BGR
    text_color: tuple[int, int, int] = WHITE  # readable on `color`

    @property
    def hex(self) -> str:
        """The colour as #rrggbb, for the pages and charts."""
        return hex_color(self.color)

    @property
    def text_hex(self) -> str:
        return hex_color(self.text_color)


def hex_color(bgr: tuple[int, int, int]) -> str:
    blue, green, red = bgr
    return f"#{red:02x}{green:02x}{blue:02x}"


LABEL_STYLES: dict[str, LabelStyle] = {
    WITH_MASK: LabelStyle("Mask", "Mask", (0, 200, 0)),  # green
    WORN_INCORRECTLY: LabelStyle("Mask worn incorrectly", "Incorrect", (0, 191, 255), DARK),  # amber
    WITHOUT_MASK: LabelStyle("No mask", "No mask", (0, 0, 255)),  # red
}
UNKNOWN_COLOR = (160, 160, 160)  # grey: a label outside CLASS_NAMES (a checkpoint with other classes)


def label_style(label: str) -> LabelStyle:
    """The style of a class; an unknown label is written as it is, on neutral grey."""
    return LABEL_STYLES.get(label) or LabelStyle(label, label, UNKNOWN_COLOR, DARK)


def face_caption(face: FaceResult) -> str:
    """'Mask 97%', 'Mask worn incorrectly 88%', 'No mask 91%'; a tracked face starts with '#id'."""
    person = "" if face.person is None else f"#{face.person} "
    return f"{person}{label_style(face.label).caption} {face.probability:.0%}"


def summary_parts(result: FrameResult) -> list[tuple[str, LabelStyle | None]]:
    """The summary's pieces: one count per class in the canonical order, then compliance (no style)."""
    counts = result.label_counts
    parts: list[tuple[str, LabelStyle | None]] = [
        (f"{label_style(name).short} {counts[name]}", label_style(name)) for name in CLASS_NAMES
    ]
    compliance = "-" if result.compliance is None else f"{result.compliance:.0%}"
    return [*parts, (f"Compliance {compliance}", None)]


def summary_caption(result: FrameResult) -> str:
    """'Mask 3 · Incorrect 1 · No mask 2 · Compliance 50%'."""
    return " · ".join(text for text, _ in summary_parts(result))


def _style(frame_height: int, frame_width: int) -> tuple[float, int]:
    """Font scale and line thickness that stay readable from 240p to 4K."""
    scale = max(0.4, min(frame_height, frame_width) / 720)
    return scale, max(1, round(scale * 2))


def _put_label(
    image: np.ndarray, text: str, x: int, y: int, color, scale: float, thickness: int, text_color=WHITE
) -> int:
    """Text on a filled box whose bottom-left is (x, y), moved inside the image when it would leave it;
    returns the box's right edge."""
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    height, width = image.shape[:2]
    x = min(max(x, 0), max(width - text_w - 4, 0))
    y = min(max(y, text_h + baseline + 4), height)
    cv2.rectangle(image, (x, y - text_h - baseline - 4), (x + text_w + 4, y), color, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - baseline - 2), FONT, scale, text_color, thickness, cv2.LINE_AA)
    return x + text_w + 4


def _draw_face(image: np.ndarray, face: FaceResult, scale: float, thickness: int):
    style = label_style(face.label)
    x1, y1, x2, y2 = face.box
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), style.color, thickness)
    caption_thickness = max(1, thickness - 1)
    _put_label(
        image, face_caption(face), x1, y1, style.color, scale * 0.8, caption_thickness, style.text_color
    )


def _draw_summary(image: np.ndarray, result: FrameResult, overlay: str | None, scale: float, thickness: int):
    """The counts as coloured chips (a legend too) from the top left, wrapped at the right edge; then
    `overlay` on its own line."""
    line_height = cv2.getTextSize("Ag", FONT, scale, thickness)[0][1] + 14
    gap = max(2, round(6 * scale))
    x, y = 0, line_height
    for text, style in summary_parts(result):
        text_w = cv2.getTextSize(text, FONT, scale, thickness)[0][0] + 4
        if x > 0 and x + text_w > image.shape[1]:
            x, y = 0, y + line_height
        color, text_color = (style.color, style.text_color) if style else (PANEL_COLOR, WHITE)
        x = _put_label(image, text, x, y, color, scale, thickness, text_color) + gap
    if overlay:
        _put_label(image, overlay, 0, y + line_height, PANEL_COLOR, scale, thickness)


def annotate(frame_bgr: np.ndarray, result: FrameResult, *, overlay: str | None = None) -> np.ndarray:
    """A new annotated image; `frame_bgr` is left untouched. `overlay` is an extra line (FPS, latency)."""
    image = frame_bgr.copy()
    scale, thickness = _style(*image.shape[:2])
    for face in result.faces:
        _draw_face(image, face, scale, thickness)
    _draw_summary(image, result, overlay, scale, thickness)
    return image
