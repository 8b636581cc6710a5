"""Things that cover a mouth but are not a mask: pasted over unmasked faces so the classifier learns
that a hand, a phone, a cup, paper, a scarf, hair, a pole or a dark blur is not a mask.

Each occluder covers part of the lower face and keeps the `without_mask` label. They are drawn, not
cut from photos, so no extra data set (and no licence) is involved.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Occluder = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _skin_tone(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face's own skin colour (cheeks, upper middle), shifted a little: a hand of the same person."""
    size = image.shape[0]
    patch = image[size * 3 // 10 : size // 2, size * 3 // 10 : size * 7 // 10]
    return np.clip(patch.reshape(-1, 3).mean(axis=0) + rng.normal(0, 12, 3), 0, 255)


def _mouth_centre(size: int, rng: np.random.Generator) -> tuple[int, int]:
    return int(size * rng.uniform(0.38, 0.62)), int(size * rng.uniform(0.62, 0.78))


def _hand(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    out = image.copy()
    colour = _skin_tone(image, rng).tolist()
    cx, cy = _mouth_centre(size, rng)
    palm = (int(size * rng.uniform(0.14, 0.22)), int(size * rng.uniform(0.1, 0.16)))
    cv2.ellipse(out, (cx, cy), palm, rng.uniform(-40, 40), 0, 360, colour, cv2.FILLED, cv2.LINE_AA)
    finger_width = max(2, size // 22)
    for finger in range(4):  # fingers reach up and sideways, with dark creases between them
        x = cx - palm[0] + finger * palm[0] // 2 + int(rng.integers(-2, 3))
        tip = (x + int(rng.integers(-size // 10, size // 10)), cy - int(size * rng.uniform(0.12, 0.22)))
        cv2.line(out, (x, cy), tip, colour, finger_width, cv2.LINE_AA)
        crease = (np.array(colour) * 0.7).tolist()
        cv2.line(out, (x + finger_width // 2, cy), tip, crease, 1, cv2.LINE_AA)
    return out


def _phone(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    cx, cy = _mouth_centre(size, rng)
    width, height = size * rng.uniform(0.16, 0.26), size * rng.uniform(0.3, 0.45)
    corners = cv2.boxPoints(((cx, cy), (width, height), rng.uniform(-30, 30))).astype(np.int32)
    out = image.copy()
    body = rng.choice([[20, 20, 25], [200, 200, 205], [40, 60, 140], [150, 30, 40]])
    cv2.fillConvexPoly(out, corners, (body + rng.normal(0, 8, 3)).clip(0, 255).tolist(), cv2.LINE_AA)
    screen = cv2.boxPoints(((cx, cy), (width * 0.8, height * 0.8), 0)).astype(np.int32)
    if rng.random() < 0.5:
        cv2.fillConvexPoly(out, screen, rng.uniform(30, 230, 3).tolist(), cv2.LINE_AA)
    return out


def _paper(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    cx, cy = _mouth_centre(size, rng)
    width, height = size * rng.uniform(0.35, 0.6), size * rng.uniform(0.25, 0.4)
    angle = rng.uniform(-25, 25)
    sheet = np.zeros((size, size), np.uint8)
    corners = cv2.boxPoints(((cx, cy), (width, height), angle)).astype(np.int32)
    cv2.fillConvexPoly(sheet, corners, 255)
    out = image.copy()
    out[sheet > 0] = rng.uniform(200, 250, 3)
    for line in range(int(rng.integers(3, 7))):  # printed text: what a mask never has
        y = int(cy - height / 3 + line * height / 8)
        x1, x2 = int(cx - width / 3), int(cx + width * rng.uniform(0.0, 0.35))
        cv2.line(out, (x1, y), (x2, y), (40, 40, 40), max(1, size // 60))
    return out


def _cup(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    cx, cy = _mouth_centre(size, rng)
    half_w, height = int(size * rng.uniform(0.09, 0.14)), int(size * rng.uniform(0.25, 0.4))
    out = image.copy()
    colour = rng.uniform(0, 255, 3).tolist()
    cv2.rectangle(out, (cx - half_w, cy - height // 3), (cx + half_w, cy + height), colour, cv2.FILLED)
    cv2.ellipse(out, (cx, cy - height // 3), (half_w, max(2, half_w // 3)), 0, 0, 360, (230, 230, 230), -1)
    return out


def _scarf_or_hair(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A patterned band or dark strands across the mouth that leave the nose and much of the chin bare."""
    size = image.shape[0]
    out = image.copy()
    cx, cy = _mouth_centre(size, rng)
    colour = rng.uniform(0, 120, 3) if rng.random() < 0.5 else rng.uniform(0, 255, 3)
    for _ in range(int(rng.integers(6, 14))):
        x = cx + int(rng.integers(-size // 4, size // 4))
        end = (x + int(rng.integers(-size // 6, size // 6)), cy + int(size * rng.uniform(0.05, 0.2)))
        start = (x, cy - int(size * rng.uniform(0.05, 0.15)))
        shade = (colour + rng.normal(0, 20, 3)).clip(0, 255).tolist()
        cv2.line(out, start, end, shade, max(1, int(size * rng.uniform(0.01, 0.04))), cv2.LINE_AA)
    return out


def _pole(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    out = image.copy()
    x = int(size * rng.uniform(0.35, 0.65))
    width = int(size * rng.uniform(0.06, 0.14))
    tilt = int(rng.integers(-size // 8, size // 8))
    polygon = np.array([[x, 0], [x + width, 0], [x + width + tilt, size], [x + tilt, size]], np.int32)
    cv2.fillConvexPoly(out, polygon, rng.uniform(0, 255, 3).tolist(), cv2.LINE_AA)
    return out


def _dark_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark, blurred face: the lower half loses its detail, as in a dim or moving shot."""
    size = image.shape[0]
    darker = image.astype(np.float32) * rng.uniform(0.3, 0.7)
    blurred = cv2.GaussianBlur(darker, (0, 0), sigmaX=size * rng.uniform(0.03, 0.06))
    weight = np.clip((np.arange(size) / size - 0.45) * 5, 0, 1)[:, None, None]  # fades in below the nose
    return (image * (1 - weight) + blurred * weight).clip(0, 255).astype(np.uint8)


OCCLUDERS: dict[str, Occluder] = {
    "hand": _hand,
    "phone": _phone,
    "paper": _paper,
    "cup": _cup,
    "scarf_or_hair": _scarf_or_hair,
    "pole": _pole,
    "dark_blur": _dark_blur,
}


def occlude(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of a square RGB face with one random occluder over the mouth area."""
    name = list(OCCLUDERS)[int(rng.integers(len(OCCLUDERS)))]
    return OCCLUDERS[name](np.ascontiguousarray(image), rng)
