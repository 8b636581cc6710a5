"""Face crops for the classifier, cut the same way at training and at serving time."""

from __future__ import annotations

import numpy as np

# Fraction of the face box added on each side. Detector boxes run from brows to chin; the training
# crops show the whole head, so the classifier sees the mask edges and some context either way.
FACE_MARGIN = 0.15


def expand_box(
    box: tuple[int, int, int, int], margin: float, frame_width: int, frame_height: int
) -> tuple[int, int, int, int]:
    """The box grown by `margin` of its size on each side, then squared on its long side, clipped.

    Squaring matters: the classifier's preprocessing center-crops a square, which would cut the chin
    (and the mask) off a tall face box.
    """
    x1, y1, x2, y2 = box
    center_x, center_y = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    left = min(max(round(center_x - side / 2), 0), frame_width - 1)
    top = min(max(round(center_y - side / 2), 0), frame_height - 1)
    right = min(max(round(center_x + side / 2), left + 1), frame_width)
    bottom = min(max(round(center_y + side / 2), top + 1), frame_height)
    return left, top, right, bottom


def crop_face(
    frame_bgr: np.ndarray, box: tuple[int, int, int, int], margin: float = FACE_MARGIN
) -> np.ndarray:
    """The face with its margin; a face cut by the frame border gives the part inside (never empty)."""
    height, width = frame_bgr.shape[:2]
    x1, y1, x2, y2 = expand_box(box, margin, width, height)
    return frame_bgr[y1:y2, x1:x2]
