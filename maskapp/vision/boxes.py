"""Box overlap and matching, one implementation for the tracker, the mirror-image merge, training's
face matching and the detection and tracking metrics. numpy only: metrics and light modules use it
without torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) x1y1x2y2 boxes -> (N, M)."""
    a, b = a[:, None, :], b[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def iou(box: Sequence[float] | np.ndarray, boxes: np.ndarray | Sequence) -> np.ndarray:
    """IoU of one box with each row of an Nx4 array; empty for no boxes."""
    one = np.asarray(box, dtype=np.float64).reshape(1, 4)
    return iou_matrix(one, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))[0]


def box_iou(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    return float(iou(a, b)[0])


def greedy_match(overlaps: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best IoU first, each row and column used once, IoU >= threshold.

    Faces rarely overlap, so greedy gives the same pairs as an optimal assignment here, without scipy.
    """
    rows, cols = np.nonzero(overlaps >= threshold)
    order = np.argsort(-overlaps[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            pairs.append((row, col))
    return pairs
