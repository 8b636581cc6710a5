"""Annotated copies of frames: boxes, labels, counts and compliance.

One style per class (colour and words), in one table: the boxes, the summary line, the pages' colour
legend and the charts all read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from maskapp.labels import CLASS_NAMES, VERDICT_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.results import FaceResult, FrameResult

WHITE = (255, 255, 255)
DARK = (30, 30, 30)
PANEL_COLOR = (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class LabelStyle:
    caption: str  # on a face's box: labels.VERDICT_NAMES, the words of every page and the `events` summary
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
    WITH_MASK: LabelStyle(VERDICT_NAMES[WITH_MASK], "Mask", (0, 200, 0)),  # green
    WORN_INCORRECTLY: LabelStyle(VERDICT_NAMES[WORN_INCORRECTLY], "Incorrect", (0, 191, 255), DARK),  # amber
    WITHOUT_MASK: LabelStyle(VERDICT_NAMES[WITHOUT_MASK], "No mask", (0, 0, 255)),  # red
}
UNKNOWN_COLOR = (160, 160, 160)  # grey: a label outside CLASS_NAMES (a checkpoint with other classes)


def label_style(label: str) -> LabelStyle:
    """The style of a class; an unknown label is written as it is, on neutral grey."""
    return LABEL_STYLES.get(label) or LabelStyle(label, label, UNKNOWN_COLOR, DARK)


def face_caption(face: FaceResult, number: int | None = None) -> str:
    """'Mask 97%', 'Mask worn incorrectly 93%', 'No mask 96%': the verdict and how likely it is (P(with_mask),
    or P(non-compliant) = 1 - P(with_mask) for the others, see Prediction.verdict_probability); a
    tracked face starts with '#id', a `number`ed one with its row's number in a table, '4: No mask 96%'."""
    if number is not None:
        return f"{number}: {face_caption(face)}"
    person = "" if face.person is None else f"#{face.person} "
    return f"{person}{label_style(face.label).caption} {face.prediction.verdict_probability:.0%}"


def face_captions(faces: Sequence[FaceResult], numbered: bool = False) -> list[str]:
    """Every face's caption; `numbered` from 1 in the faces' order, the order of the Images page's face
    table, whose rows a reader could not match to boxes in a crowd."""
    return [face_caption(face, index if numbered else None) for index, face in enumerate(faces, start=1)]


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


Rect = tuple[int, int, int, int]  # left, top, right, bottom


def _label_rect(shape: tuple[int, ...], text: str, x: int, y: int, scale: float, thickness: int) -> Rect:
    """The filled box of `text` drawn with its bottom-left at (x, y), moved inside an image of `shape`."""
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    height, width = shape[:2]
    x = min(max(x, 0), max(width - text_w - 4, 0))
    y = min(max(y, text_h + baseline + 4), height)
    return x, y - text_h - baseline - 4, x + text_w + 4, y


def _put_label(
    image: np.ndarray, text: str, x: int, y: int, color, scale: float, thickness: int, text_color=WHITE
) -> int:
    """Text on a filled box whose bottom-left is (x, y), moved inside the image when it would leave it;
    returns the box's right edge."""
    left, top, right, bottom = _label_rect(image.shape, text, x, y, scale, thickness)
    baseline = cv2.getTextSize(text, FONT, scale, thickness)[1]
    cv2.rectangle(image, (left, top), (right, bottom), color, cv2.FILLED)
    cv2.putText(
        image, text, (left + 2, bottom - baseline - 2), FONT, scale, text_color, thickness, cv2.LINE_AA
    )
    return right


def _overlap_area(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


@dataclass(frozen=True)
class Caption:
    text: str
    rect: Rect


def caption_texts(face: FaceResult, number: int | None = None) -> list[str]:
    """A face's caption, longest first: its full caption, then, `number`ed, shorter ones for a crowd,
    '4: 96%' (the box's colour says the verdict) and '4', so that the number shows where the full
    caption would cover a neighbour's (numbered captions, longer, covered each other more often)."""
    full = face_caption(face, number)
    if number is None:
        return [full]
    return [full, f"{number}: {face.prediction.verdict_probability:.0%}", str(number)]


def _caption_spots(
    shape: tuple[int, ...], box: tuple[int, int, int, int], text: str, scale: float, thickness: int
) -> list[Rect]:
    """Where a caption may go, in order of preference: above the box, below it (left-aligned, right-aligned,
    centred), beside it, inside its top."""
    x1, y1, x2, y2 = box
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    tall = text_h + baseline + 4
    below, right_aligned, centred = y2 + tall, x2 - text_w - 4, (x1 + x2 - text_w - 4) // 2
    spots = [
        (x1, y1),
        (right_aligned, y1),
        (x1, below),
        (right_aligned, below),
        (centred, y1),
        (centred, below),
        (x2, y1 + tall),
        (x1 - text_w - 4, y1 + tall),
        (x1, y1 + tall),
    ]
    return [_label_rect(shape, text, x, y, scale, thickness) for x, y in spots]


def caption_layout(
    shape: tuple[int, ...],
    faces: list[FaceResult],
    scale: float,
    thickness: int,
    reserved: Sequence[Rect] = (),
    *,
    numbered: bool = False,
) -> list[Caption]:
    """Each face's caption and its box: the first spot (see _caption_spots) that covers neither the
    captions placed before, another face nor a `reserved` area (the summary chips, drawn over it), or
    the one covering least of them (in a crowd, a caption was drawn over its neighbour's). `numbered`:
    captions start with the faces' numbers, shortened (caption_texts) where the whole one fits nowhere."""
    placed: list[Caption] = []
    for index, face in enumerate(faces):
        others = [other.box for other in faces[:index] + faces[index + 1 :]]
        obstacles = [*reserved, *(caption.rect for caption in placed), *others]
        best: tuple[int, Caption] | None = None
        for text in caption_texts(face, index + 1 if numbered else None):
            for rect in _caption_spots(shape, face.box, text, scale, thickness):
                covered = sum(_overlap_area(rect, obstacle) for obstacle in obstacles)
                if best is None or covered < best[0]:
                    best = (covered, Caption(text, rect))
                if covered == 0:
                    break  # spots come in order of preference: the first clear one is taken
            if best[0] == 0:
                break  # the longest text that covers nothing
        placed.append(best[1])
    return placed


def caption_places(
    shape: tuple[int, ...],
    faces: list[FaceResult],
    scale: float,
    thickness: int,
    reserved: Sequence[Rect] = (),
    *,
    numbered: bool = False,
) -> list[Rect]:
    """The boxes of caption_layout's captions."""
    layout = caption_layout(shape, faces, scale, thickness, reserved, numbered=numbered)
    return [caption.rect for caption in layout]


def _draw_faces(
    image: np.ndarray,
    faces: list[FaceResult],
    scale: float,
    thickness: int,
    reserved: Sequence[Rect] = (),
    numbered: bool = False,
):
    """Every box first, then the captions, placed clear of each other and of `reserved` where they can be."""
    for face in faces:
        x1, y1, x2, y2 = face.box
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), label_style(face.label).color, thickness)
    caption_scale, caption_thickness = scale * 0.8, max(1, thickness - 1)
    layout = caption_layout(image.shape, faces, caption_scale, caption_thickness, reserved, numbered=numbered)
    for face, caption in zip(faces, layout, strict=True):
        style = label_style(face.label)
        _put_label(
            image,
            caption.text,
            caption.rect[0],
            caption.rect[3],
            style.color,
            caption_scale,
            caption_thickness,
            style.text_color,
        )


@dataclass(frozen=True)
class SummaryChip:
    text: str
    style: LabelStyle | None  # None: the neutral panel (compliance, the overlay line)
    rect: Rect


def summary_places(
    shape: tuple[int, ...], result: FrameResult, overlay: str | None, scale: float, thickness: int
) -> list[SummaryChip]:
    """The summary's chips (text, style, box) from the top left, wrapped at the right edge; then
    `overlay` on its own line."""
    line_height = cv2.getTextSize("Ag", FONT, scale, thickness)[0][1] + 14
    gap = max(2, round(6 * scale))
    x, y = 0, line_height
    chips = []
    for text, style in summary_parts(result):
        text_w = cv2.getTextSize(text, FONT, scale, thickness)[0][0] + 4
        if x > 0 and x + text_w > shape[1]:
            x, y = 0, y + line_height
        rect = _label_rect(shape, text, x, y, scale, thickness)
        chips.append(SummaryChip(text, style, rect))
        x = rect[2] + gap
    if overlay:
        chips.append(
            SummaryChip(overlay, None, _label_rect(shape, overlay, 0, y + line_height, scale, thickness))
        )
    return chips


def _draw_summary(image: np.ndarray, chips: list[SummaryChip], scale: float, thickness: int):
    """The counts as coloured chips (a legend too), where summary_places put them."""
    for chip in chips:
        style = chip.style
        color, text_color = (style.color, style.text_color) if style else (PANEL_COLOR, WHITE)
        _put_label(image, chip.text, chip.rect[0], chip.rect[3], color, scale, thickness, text_color)


def annotate(
    frame_bgr: np.ndarray, result: FrameResult, *, overlay: str | None = None, numbered: bool = False
) -> np.ndarray:
    """A new annotated image; `frame_bgr` is left untouched. `overlay` is an extra line (FPS, latency).
    `numbered`: each caption starts with its face's number, for a picture shown beside a table of its
    faces (not for video, whose faces have no table)."""
    image = frame_bgr.copy()
    scale, thickness = _style(*image.shape[:2])
    chips = summary_places(image.shape, result, overlay, scale, thickness)
    _draw_faces(image, list(result.faces), scale, thickness, [chip.rect for chip in chips], numbered)
    _draw_summary(image, chips, scale, thickness)
    return image
