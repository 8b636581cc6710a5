"""Annotation draws on a copy: a box per face in its class colour (green mask, amber badly worn, red no
mask, grey for a label the app does not know), captions with the probability and the person's id, and
the three counts with compliance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maskapp.labels import CLASS_NAMES, WITH_MASK, WITHOUT_MASK, WORN_INCORRECTLY
from maskapp.results import Face, FaceResult, FrameResult, Prediction, StageTimings
from maskapp.vision.draw import (
    LABEL_STYLES,
    UNKNOWN_COLOR,
    annotate,
    caption_layout,
    caption_places,
    face_caption,
    face_captions,
    label_style,
    summary_caption,
)
from tests.conftest import dev_photo

TIMINGS = StageTimings(10.0, 5.0, 15.0)


def face_result(box, label: str, probability: float, person: int | None = None) -> FaceResult:
    others = [name for name in CLASS_NAMES if name != label]
    probs = {label: probability, **{name: (1 - probability) / len(others) for name in others}}
    return FaceResult(Face(box, 0.9), Prediction(label, probability, probs), person)


def street_result() -> FrameResult:
    """Three faces of the test photo at their annotated places, one of each class."""
    faces = (
        face_result((79, 105, 110, 143), WITHOUT_MASK, 0.91),
        face_result((185, 100, 227, 145), WITH_MASK, 0.97),
        face_result((325, 90, 361, 142), WORN_INCORRECTLY, 0.88),
    )
    return FrameResult(faces, TIMINGS, 512, 366)


def left_edge(image: np.ndarray, face: FaceResult) -> np.ndarray:
    """The middle of a box's left side: no caption there."""
    x1, y1, _, y2 = face.box
    return image[(y1 + y2) // 2, x1]


def test_annotate_returns_a_new_image_and_leaves_the_input_alone():
    frame = dev_photo().copy()
    before = frame.copy()
    out = annotate(frame, street_result(), overlay="25 FPS")
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(frame, before)
    assert not np.array_equal(out, frame)


def test_one_colour_per_class_green_amber_red():
    assert [LABEL_STYLES[name].hex for name in CLASS_NAMES] == ["#00c800", "#ffbf00", "#ff0000"]
    out = annotate(dev_photo(), street_result())
    for face in street_result().faces:
        np.testing.assert_array_equal(left_edge(out, face), LABEL_STYLES[face.label].color)


def test_a_label_the_app_does_not_know_is_grey_and_written_as_it_is():
    face = face_result((185, 100, 227, 145), "hat", 0.7)
    assert (
        label_style("hat").color == UNKNOWN_COLOR and face_caption(face) == "hat 90%"
    )  # not compliant: 1 - P(with_mask)
    out = annotate(dev_photo(), FrameResult((face,), TIMINGS, 512, 366))
    np.testing.assert_array_equal(left_edge(out, face), UNKNOWN_COLOR)


def test_captions_and_counts():
    result = street_result()
    # The verdict's probability: P(with_mask) on a masked face, 1 - P(with_mask) on the others.
    assert [face_caption(face) for face in result.faces] == [
        "No mask 96%",
        "Mask 97%",
        "Mask worn incorrectly 94%",
    ]
    assert summary_caption(result) == "Mask 1 · Incorrect 1 · No mask 1 · Compliance 33%"
    empty = FrameResult((), TIMINGS, 512, 366)
    assert summary_caption(empty) == "Mask 0 · Incorrect 0 · No mask 0 · Compliance -"


def test_a_face_flagged_by_the_threshold_shows_the_probability_its_verdict_rests_on():
    """A face with P(with_mask) 51% is non-compliant at the threshold 0.32, and its box read 'No mask 37%'
    (P(without_mask)): a contradiction to anyone reading the table's Mask 51% beside it. The caption's
    percentage is the verdict's, P(non-compliant) = 49%; a masked face's stays P(with_mask)."""
    probs = {WITH_MASK: 0.51, WORN_INCORRECTLY: 0.12, WITHOUT_MASK: 0.37}
    flagged = FaceResult(Face((0, 0, 40, 40), 0.9), Prediction(WITHOUT_MASK, 0.37, probs))
    assert face_caption(flagged) == "No mask 49%"
    kept = FaceResult(Face((0, 0, 40, 40), 0.9), Prediction(WITH_MASK, 0.51, probs))
    assert face_caption(kept) == "Mask 51%"
    two_class = {WITH_MASK: 0.2, WITHOUT_MASK: 0.8}  # two classes: P(without_mask) as before
    assert (
        face_caption(FaceResult(Face((0, 0, 9, 9), 0.9), Prediction(WITHOUT_MASK, 0.8, two_class)))
        == "No mask 80%"
    )


def test_a_tracked_face_shows_its_person_id():
    assert face_caption(face_result((0, 0, 40, 40), WITHOUT_MASK, 0.91, person=7)) == "#7 No mask 96%"
    assert face_caption(face_result((0, 0, 40, 40), WITH_MASK, 0.6, person=0)) == "#0 Mask 60%"


@pytest.mark.parametrize("shape", [(480, 640, 3), (240, 320, 3)])
def test_the_counts_are_chips_in_the_class_colours(shape):
    """The summary is a legend too: each count on its class colour, wrapped on narrow frames."""
    frame = np.zeros(shape, np.uint8)
    out = annotate(frame, FrameResult((), TIMINGS, shape[1], shape[0]), overlay="30 FPS  12 ms")
    band = out[: shape[0] // 3]
    for name in CLASS_NAMES:
        assert np.all(band == LABEL_STYLES[name].color, axis=-1).any(), name
    assert not out[shape[0] // 2 :].any()  # nothing drawn below the summary


def test_overlay_text_and_faces_at_the_border_are_drawn_inside_the_image():
    frame = dev_photo()
    faces = (
        face_result((0, 0, 40, 40), WITH_MASK, 0.6),
        face_result((470, 320, 512, 366), WITHOUT_MASK, 0.7),
    )
    result = FrameResult(faces, TIMINGS, 512, 366)
    plain, with_overlay = annotate(frame, result), annotate(frame, result, overlay="31 FPS  32 ms")
    assert not np.array_equal(plain, with_overlay)
    np.testing.assert_array_equal(with_overlay[365, 490], LABEL_STYLES[WITHOUT_MASK].color)  # bottom edge


def test_tiny_and_huge_frames():
    for shape in ((20, 30, 3), (2160, 3840, 3)):
        frame = np.zeros(shape, np.uint8)
        result = FrameResult((face_result((2, 2, 10, 10), WITH_MASK, 0.8),), TIMINGS, shape[1], shape[0])
        assert annotate(frame, result).shape == shape


# --- captions clear of each other -------------------------------------------------------------------
def covering(a, b) -> bool:
    return max(a[0], b[0]) < min(a[2], b[2]) and max(a[1], b[1]) < min(a[3], b[3])


def test_a_caption_that_would_cover_its_neighbours_goes_below_its_face():
    faces = [
        face_result((100, 100, 130, 140), WITHOUT_MASK, 0.97, 12),
        face_result((135, 100, 165, 140), WITH_MASK, 0.99, 13),
    ]
    first, second = caption_places((366, 512, 3), faces, 0.6, 1)
    assert first[3] == 100 and not covering(first, second)  # the first above its box
    assert second[1] >= 140 and not any(covering(second, face.box) for face in faces)  # the second below


def test_numbered_captions_start_with_the_faces_numbers_in_order():
    """The Images page's face table numbers its faces 1, 2, ... while the picture showed no number: in a
    crowd a row could not be matched to its box. Numbered, each caption starts with its row's number."""
    faces = street_result().faces
    assert face_captions(faces, numbered=True) == [
        "1: No mask 96%",
        "2: Mask 97%",
        "3: Mask worn incorrectly 94%",
    ]
    assert face_captions(faces) == [face_caption(face) for face in faces]  # video keeps its captions
    frame = dev_photo()
    numbered, plain = annotate(frame, street_result(), numbered=True), annotate(frame, street_result())
    assert (numbered != plain).any()


@pytest.mark.parametrize("numbered", [False, True])
def test_captions_in_a_real_crowd_cover_far_fewer_of_each_other(pipeline, numbered):
    """Faces side by side in a street photo, through the real pipeline: above every box, captions were
    drawn over their neighbours'; placed, they cover each other far less, and stay in the image; so do
    the Images page's captions, longer by the face's number."""
    photo = dev_photo("maksssksksss104")
    faces = list(pipeline.process(photo).faces)
    assert len(faces) >= 8
    # each on its own: above its box
    above = [
        caption_places(photo.shape, faces[i : i + 1], 0.8, 1, numbered=numbered)[0] for i in range(len(faces))
    ]
    placed = caption_places(photo.shape, faces, 0.8, 1, numbered=numbered)

    def pairs_covering(rects) -> int:
        return sum(covering(a, b) for a, b in itertools.combinations(rects, 2))

    assert pairs_covering(placed) * 2 < pairs_covering(above)
    height, width = photo.shape[:2]
    assert all(
        0 <= left < right <= width and 0 <= top < bottom <= height for left, top, right, bottom in placed
    )
    assert annotate(photo, pipeline.process(photo)).shape == photo.shape


def test_numbered_captions_in_a_real_crowd_keep_every_number_and_cover_no_more_than_plain_ones(pipeline):
    """The Images page numbers its captions ('4: No mask 96%'), longer than a video frame's: in a crowd
    they covered each other more often, numbers first. Where the whole caption fits nowhere, a shorter
    one ('4: 96%', '4') goes there: every number shows, and they cover each other no more than plain ones."""
    photo = dev_photo("maksssksksss104")
    faces = list(pipeline.process(photo).faces)
    numbered = caption_layout(photo.shape, faces, 0.8, 1, numbered=True)
    assert [caption.text.split(":")[0] for caption in numbered] == [str(i) for i in range(1, len(faces) + 1)]
    whole = face_captions(faces, numbered=True)
    assert any(caption.text == text for caption, text in zip(numbered, whole, strict=True))  # where room

    def pairs_covering(rects) -> int:
        return sum(covering(a, b) for a, b in itertools.combinations(rects, 2))

    plain = caption_places(photo.shape, faces, 0.8, 1)
    assert pairs_covering([caption.rect for caption in numbered]) <= pairs_covering(plain)


def test_a_caption_near_the_top_is_not_hidden_under_the_summary_chips():
    """Small faces at the top of a 400 px street photo (as in maksssksksss387): their captions went above
    their boxes, under the summary chips drawn afterwards, so nobody could read them; now they go where
    the chips leave them visible."""
    image = np.full((300, 400, 3), 128, np.uint8)
    faces = (
        face_result((155, 19, 169, 37), WITHOUT_MASK, 0.97),
        face_result((300, 150, 340, 200), WITH_MASK, 0.99),
    )
    out = annotate(image, FrameResult(faces, TIMINGS, 400, 300))
    green, red = label_style(WITH_MASK).color, label_style(WITHOUT_MASK).color
    chips_bottom = max(y for y in range(out.shape[0]) if (out[y, 0] == green).all())  # the first chip
    below_chips = out[chips_bottom + 1 :, :300]  # left of the second face: only the first one's caption
    filled = np.count_nonzero((below_chips == red).all(axis=2))
    box_outline = 2 * (37 - chips_bottom) + 14  # what remains of the box's own sides and bottom
    assert filled > box_outline + 100  # the caption's red fill shows below the chips
