"""Hide faces in a frame before it is shown, saved or shared: `anonymize(frame, boxes, mode)`.

- fill (the safe default for sharing): a solid colour; nothing of the face is left to recover.
- blur: the face reduced to a few colour samples, then smoothed; no recognisable detail remains, but blur
  and mosaic can be partly undone by recognition models (McPherson et al., arXiv:1609.00408), so prefer
  fill for anything that leaves the machine.
- none: an unchanged copy.

Every box is grown by a margin (detector boxes are tight: hair, ears and jaw identify people too) and
clipped to the frame. The input frame is never changed. numpy and OpenCV only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from maskapp.config import ANONYMIZE_MODES
from maskapp.errors import AnonymizeError

logger = logging.getLogger(__name__)

DEFAULT_MODE = "fill"
FILL_BGR = (128, 128, 128)  # mid grey: stands out on dark and light scenes; a coloured box stays readable
MARGIN = 0.15  # of the box's width / height, on each side
MIN_MARGIN_PX = 2  # faces here are often ~20 px: a fraction alone would add nothing
BLUR_SAMPLES = 3  # colour samples across the longer side of a blurred face: less than any facial feature
# The blur's smoothing runs at most this size and is stretched up after: enough pixels to smooth three
# samples without a visible step, and a cost that no longer grows with the face's area.
SMOOTH_PX = 64

Box = Sequence[float]


def check_mode(mode: str) -> str:
    """The mode, or AnonymizeError naming the allowed ones."""
    if mode not in ANONYMIZE_MODES:
        raise AnonymizeError(f"invalid anonymise mode {mode!r}; allowed: {', '.join(ANONYMIZE_MODES)}")
    return mode


def anonymize(
    frame_bgr: np.ndarray,
    boxes: Iterable[Box],
    mode: str = DEFAULT_MODE,
    *,
    margin: float = MARGIN,
    fill_bgr: tuple[int, int, int] = FILL_BGR,
) -> np.ndarray:
    """A new H×W×3 uint8 image with every face box (x1, y1, x2, y2 in pixels) hidden by `mode`."""
    check_mode(mode)
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"anonymize needs an H×W×3 BGR image, got shape {frame_bgr.shape}")
    out = frame_bgr.copy()
    if mode == "none":
        return out
    for box in boxes:
        x1, y1, x2, y2 = hidden_region(box, out.shape, margin)
        if x2 <= x1 or y2 <= y1:
            continue  # entirely outside the frame
        region = out[y1:y2, x1:x2]
        region[...] = fill_bgr if mode == "fill" else _smear(region)
    return out


def hidden_region(box: Box, shape: tuple[int, ...], margin: float = MARGIN) -> tuple[int, int, int, int]:
    """The pixel rectangle [x1, x2) × [y1, y2) that anonymize hides for `box`: the box grown by `margin`
    (at least MIN_MARGIN_PX) on each side, rounded outwards, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.isfinite([x1, y1, x2, y2]).all():
        # A face whose place is unknown cannot be hidden; failing loudly beats leaking it.
        raise ValueError(f"face box {tuple(box)} is not finite")
    grow_x = max(MIN_MARGIN_PX, margin * (x2 - x1))
    grow_y = max(MIN_MARGIN_PX, margin * (y2 - y1))
    height, width = shape[:2]
    left = int(np.clip(np.floor(x1 - grow_x), 0, width))
    top = int(np.clip(np.floor(y1 - grow_y), 0, height))
    right = int(np.clip(np.ceil(x2 + grow_x), 0, width))
    bottom = int(np.clip(np.ceil(y2 + grow_y), 0, height))
    return left, top, right, bottom


def _smear(region: np.ndarray) -> np.ndarray:
    """Down to BLUR_SAMPLES colour samples across the longer side, then smoothed to hide the sampling grid:
    only the broad colour of the area is left. The output is made from those few samples alone, whatever
    the face's size. Smoothing them at SMOOTH_PX and stretching the result gives what smoothing at full
    size gave, without a Gaussian as wide as the face (that took seconds on a 1000 px face)."""
    height, width = region.shape[:2]
    samples = cv2.resize(
        region,
        _size_across(height, width, BLUR_SAMPLES),
        interpolation=cv2.INTER_AREA,  # an average over each cell, not a sample of one pixel
    )
    work = cv2.resize(samples, _size_across(height, width, SMOOTH_PX), interpolation=cv2.INTER_LINEAR)
    sigma = max(work.shape[:2]) / 4
    smooth = cv2.GaussianBlur(work, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    # Cubic, not linear: stretching 64 px over a 1000 px face, linear leaves a crease at every source pixel.
    return cv2.resize(smooth, (width, height), interpolation=cv2.INTER_CUBIC)


def _size_across(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(width, height) of a height×width region scaled to at most `long_side` pixels across its longer side
    (never up: a small face is smoothed at its own size), as cv2.resize takes it."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def anonymize_faces(frame_bgr: np.ndarray, result, mode: str) -> np.ndarray:
    """`anonymize` over every face of a FrameResult (predicted boxes of tracked people included): the
    frame to draw the annotations on. Mode none returns the frame itself, uncopied (drawing copies it)."""
    if check_mode(mode) == "none":
        return frame_bgr
    return anonymize(frame_bgr, [face.box for face in result.faces], mode)
