"""Face boxes clipped to the frame, and face crops for the classifier, cut the same way at training and
at serving time."""

from __future__ import annotations

import numpy as np

from maskapp.config import FACE_MARGIN


def clip_box(
    x1: float, y1: float, x2: float, y2: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Rounded to pixels and clipped to a width x height frame, at least one pixel wide and high."""
    left, top = min(max(round(x1), 0), width - 1), min(max(round(y1), 0), height - 1)
    right, bottom = min(max(round(x2), left + 1), width), min(max(round(y2), top + 1), height)
    return left, top, right, bottom


def expand_box(
    box: tuple[int, int, int, int], margin: float, frame_width: int, frame_height: int
) -> tuple[int, int, int, int]:
    """The box grown by `margin` of its size on each side, then squared on its long side, clipped.

    Squaring matters: the classifier's preprocessing center-crops a square, which would cut the chin
    (and the mask) off a tall face box.
    """
    x1, y1, x2, y2 = box
    center_x, center_y = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1) * (1 + 2 * margin) / 2
    return clip_box(
        center_x - half, center_y - half, center_x + half, center_y + half, frame_width, frame_height
    )


def crop_face(
    frame_bgr: np.ndarray, box: tuple[int, int, int, int], margin: float = FACE_MARGIN
) -> np.ndarray:
    """The face with its margin; a face cut by the frame border gives the part inside (never empty)."""
    height, width = frame_bgr.shape[:2]
    x1, y1, x2, y2 = expand_box(box, margin, width, height)
    return frame_bgr[y1:y2, x1:x2]
