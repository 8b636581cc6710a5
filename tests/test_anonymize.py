"""Anonymised images hold no face pixels: real street photos from face-mask-detection-dev, faces placed by
their VOC boxes, each hidden region compared with the original."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskapp import SHARED_DATASETS
from maskapp.errors import AnonymizeError, MaskappError
from maskapp.vision.anonymize import ANONYMIZE_MODES, FILL_BGR, SMOOTH_PX, anonymize, hidden_region

DEV = SHARED_DATASETS / "face-mask-detection-dev"

pytestmark = pytest.mark.skipif(not DEV.is_dir(), reason=f"needs the shared data set {DEV}")


def voc_faces(annotation: Path) -> tuple[str, list[tuple[str, list[int]]]]:
    root = ET.parse(annotation).getroot()
    faces = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        faces.append(
            (obj.findtext("name"), [int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")])
        )
    return root.findtext("filename"), faces


def largest_bare_face() -> tuple[np.ndarray, list[int]]:
    """The largest without_mask face of the set (a bare face has the most detail to hide)."""
    best: tuple[int, str, list[int]] | None = None
    for annotation in sorted((DEV / "annotations").glob("*.xml")):
        filename, faces = voc_faces(annotation)
        for label, (x1, y1, x2, y2) in faces:
            area = (x2 - x1) * (y2 - y1)
            if label == "without_mask" and (best is None or area > best[0]):
                best = (area, filename, [x1, y1, x2, y2])
    assert best is not None
    return cv2.imread(str(DEV / "images" / best[1])), best[2]


def big_bare_face() -> tuple[np.ndarray, list[int], float]:
    """largest_bare_face upscaled until the face is ~1000 px across, as in a phone photo: the photo, the
    face's box in it and the scale."""
    photo, box = largest_bare_face()
    scale = 1000 / max(box[2] - box[0], box[3] - box[1])
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return big, [round(v * scale) for v in box], scale


def crowd_photo() -> tuple[np.ndarray, list[list[int]]]:
    """maksssksksss0: three faces, one a few pixels from another."""
    filename, faces = voc_faces(DEV / "annotations" / "maksssksksss0.xml")
    return cv2.imread(str(DEV / "images" / filename)), [box for _, box in faces]


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def outside(mask_shape: tuple[int, ...], regions: list[tuple[int, int, int, int]]) -> np.ndarray:
    keep = np.ones(mask_shape[:2], bool)
    for x1, y1, x2, y2 in regions:
        keep[y1:y2, x1:x2] = False
    return keep


@pytest.mark.parametrize("mode", ["fill", "blur"])
def test_only_the_face_regions_change_and_the_input_is_untouched(mode):
    photo, boxes = crowd_photo()
    before = photo.copy()
    out = anonymize(photo, boxes, mode)
    assert out is not photo and out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(photo, before)
    regions = [hidden_region(box, photo.shape) for box in boxes]
    keep = outside(photo.shape, regions)
    assert np.array_equal(out[keep], photo[keep])
    for (x1, y1, x2, y2), (left, top, right, bottom) in zip(boxes, regions, strict=True):
        assert left < x1 and top < y1 and right > x2 and bottom > y2  # the margin goes beyond the box


def test_fill_leaves_no_original_face_pixel():
    photo, box = largest_bare_face()
    out = anonymize(photo, [box], "fill")
    left, top, right, bottom = hidden_region(box, photo.shape)
    assert (out[top:bottom, left:right] == FILL_BGR).all()
    x1, y1, x2, y2 = box
    face, hidden = photo[y1:y2, x1:x2], out[y1:y2, x1:x2]
    kept = (face == hidden).all(axis=2)
    assert np.array_equal(kept, (face == FILL_BGR).all(axis=2))  # equal only where the photo was that grey


def assert_no_face_detail(face: np.ndarray, blurred: np.ndarray) -> None:
    """`blurred` (gray) keeps none of the detail of `face` (gray, the same place in the original)."""
    energy = cv2.Laplacian(blurred, cv2.CV_64F).var() / cv2.Laplacian(face, cv2.CV_64F).var()
    assert energy < 0.10  # high-frequency energy down by more than 90%

    def detail(image: np.ndarray) -> np.ndarray:  # what is left after removing the broad shading
        return (image - cv2.GaussianBlur(image, (0, 0), 2)).ravel()

    assert abs(np.corrcoef(detail(face), detail(blurred))[0, 1]) < 0.1  # no eyes, mouth, edges left
    assert np.corrcoef(face.ravel(), blurred.ravel())[0, 1] < 0.8  # only the broad colour of the area


def test_blur_removes_the_detail_of_a_face():
    photo, box = largest_bare_face()
    out = anonymize(photo, [box], "blur")
    x1, y1, x2, y2 = box
    assert_no_face_detail(gray(photo[y1:y2, x1:x2]), gray(out[y1:y2, x1:x2]))


def test_blur_of_a_big_face_keeps_no_fine_detail():
    photo, box, scale = big_bare_face()
    out = anonymize(photo, [box], "blur")
    x1, y1, x2, y2 = box
    face, blurred = gray(photo[y1:y2, x1:x2]), gray(out[y1:y2, x1:x2])
    # Flat to within a grey level: rounding to uint8 alone leaves about that much.
    assert cv2.Laplacian(blurred, cv2.CV_64F).var() < 1.0
    assert cv2.Laplacian(face, cv2.CV_64F).var() > 1.0  # the upscaled face itself is not that flat

    def at_the_photos_scale(image: np.ndarray) -> np.ndarray:  # where the face's features are pixels
        return cv2.resize(image, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA)

    assert_no_face_detail(at_the_photos_scale(face), at_the_photos_scale(blurred))


def test_blur_smooths_a_big_face_at_a_small_fixed_size(monkeypatch):
    """What makes blur cheap on a big face: the Gaussian runs on a copy at most SMOOTH_PX across, not on
    the face (a 1000 px face took seconds). The real GaussianBlur runs; the spy records its input."""
    photo, box, _ = big_bare_face()
    smoothed: list[tuple[int, ...]] = []
    gaussian_blur = cv2.GaussianBlur

    def recording_blur(image, *args, **kwargs):
        smoothed.append(image.shape)
        return gaussian_blur(image, *args, **kwargs)

    monkeypatch.setattr(cv2, "GaussianBlur", recording_blur)
    anonymize(photo, [box], "blur")
    left, top, right, bottom = hidden_region(box, photo.shape)
    assert max(right - left, bottom - top) > 10 * SMOOTH_PX
    assert len(smoothed) == 1 and max(smoothed[0][:2]) <= SMOOTH_PX


def test_boxes_reaching_past_the_frame_are_clipped():
    photo, _ = crowd_photo()
    height, width = photo.shape[:2]
    boxes = [
        (-30, -30, 20, 25),
        (width - 10, height - 10, width + 50, height + 50),
        (width + 50, 0, width + 80, 9),
    ]
    out = anonymize(photo, boxes, "fill")
    assert (out[:25, :20] == FILL_BGR).all()
    assert (out[height - 10 :, width - 10 :] == FILL_BGR).all()
    regions = [hidden_region(box, photo.shape) for box in boxes]
    assert regions[2][0] == regions[2][2] == width  # wholly outside: an empty region, nothing changed
    assert np.array_equal(out[outside(photo.shape, regions)], photo[outside(photo.shape, regions)])


def test_none_returns_an_unchanged_copy():
    photo, boxes = crowd_photo()
    out = anonymize(photo, boxes, "none")
    assert out is not photo and np.array_equal(out, photo)


def test_a_bad_mode_names_the_allowed_ones():
    photo, boxes = crowd_photo()
    with pytest.raises(AnonymizeError, match="'pixelate'; allowed: none, blur, fill"):
        anonymize(photo, boxes, "pixelate")
    assert issubclass(AnonymizeError, MaskappError) and ANONYMIZE_MODES == ("none", "blur", "fill")


def test_a_box_of_unknown_place_is_refused_rather_than_left_visible():
    photo, _ = crowd_photo()
    with pytest.raises(ValueError, match="not finite"):
        anonymize(photo, [(float("nan"), 0, 10, 10)], "fill")
