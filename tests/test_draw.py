"""Annotation draws on a copy: green boxes with a mask, red without, captions and counts."""

from __future__ import annotations

import numpy as np

from maskapp.results import Face, FaceResult, FrameResult, Prediction, StageTimings
from maskapp.vision.draw import MASK_COLOR, NO_MASK_COLOR, annotate, face_caption, summary_caption
from tests.conftest import dev_photo

TIMINGS = StageTimings(10.0, 5.0, 15.0)


def face_result(box, label: str, probability: float) -> FaceResult:
    other = "without_mask" if label == "with_mask" else "with_mask"
    prediction = Prediction(label, probability, {label: probability, other: 1 - probability})
    return FaceResult(Face(box, 0.9), prediction)


def street_result() -> FrameResult:
    """The three faces of the test photo at their annotated places and labels."""
    faces = (
        face_result((79, 105, 110, 143), "without_mask", 0.91),
        face_result((185, 100, 227, 145), "with_mask", 0.97),
        face_result((325, 90, 361, 142), "without_mask", 0.88),
    )
    return FrameResult(faces, TIMINGS, 512, 366)


def test_annotate_returns_a_new_image_and_leaves_the_input_alone():
    frame = dev_photo().copy()
    before = frame.copy()
    out = annotate(frame, street_result(), overlay="25 FPS")
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(frame, before)
    assert not np.array_equal(out, frame)


def test_boxes_are_green_with_a_mask_and_red_without():
    out = annotate(dev_photo(), street_result())
    for face in street_result().faces:
        x1, y1, _, y2 = face.box
        left_edge = out[(y1 + y2) // 2, x1]  # middle of the left side: no caption there
        expected = MASK_COLOR if face.masked else NO_MASK_COLOR
        np.testing.assert_array_equal(left_edge, expected)


def test_captions_and_counts():
    result = street_result()
    assert face_caption(result.faces[1]) == "Mask 97%"
    assert face_caption(result.faces[0]) == "No mask 91%"
    assert summary_caption(result) == "Masked 1  Unmasked 2  Compliance 33%"
    empty = FrameResult((), TIMINGS, 512, 366)
    assert summary_caption(empty) == "Masked 0  Unmasked 0  Compliance -"


def test_overlay_text_and_faces_at_the_border_are_drawn_inside_the_image():
    frame = dev_photo()
    faces = (
        face_result((0, 0, 40, 40), "with_mask", 0.6),
        face_result((470, 320, 512, 366), "without_mask", 0.7),
    )
    result = FrameResult(faces, TIMINGS, 512, 366)
    plain, with_overlay = annotate(frame, result), annotate(frame, result, overlay="31 FPS  32 ms")
    assert not np.array_equal(plain, with_overlay)
    np.testing.assert_array_equal(with_overlay[0, 20], MASK_COLOR)  # top edge of the corner face


def test_tiny_and_huge_frames():
    for shape in ((20, 30, 3), (2160, 3840, 3)):
        frame = np.zeros(shape, np.uint8)
        result = FrameResult((face_result((2, 2, 10, 10), "with_mask", 0.8),), TIMINGS, shape[1], shape[0])
        assert annotate(frame, result).shape == shape
