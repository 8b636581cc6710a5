"""maskapp.media.images on real files made from a dataset photo: every bad file refused with one clear
sentence, every odd-but-valid file decoded to the right BGR pixels."""

from __future__ import annotations

import importlib
import io
import os
import pkgutil
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import maskapp
from maskapp import SHARED_DATASETS
from maskapp.errors import ImageError
from maskapp.media.images import (
    DEFAULT_MAX_BYTES,
    IMAGE_SUFFIXES,
    decode_image,
    encode_png,
    list_images,
    read_image,
)
from tests.badfiles import (
    BAD_IMAGE_CASES,
    BAD_UPLOAD_CASES,
    EXIF_ORIENTATION,
    ODD_VALID_CASES,
    SOURCE_PHOTO,
    encoded,
    gray16_values,
    second_frame_rgb,
    source_image,
    source_rgb,
)

ALLOWED = "JPEG, PNG, WebP, BMP, GIF or TIFF"

# What each bad file's message must say after its name.
EXPECTED_MESSAGES = {
    "empty": "is empty (0 bytes)",
    "truncated_jpeg": "is truncated or damaged (a JPEG file, image file is truncated",
    "truncated_png": "is truncated or damaged (a PNG file",
    "truncated_gif": "is truncated or damaged (a GIF file, image file is truncated",
    "truncated_webp": "is truncated or damaged (a WebP file",
    "truncated_tiff": "is truncated or damaged (a TIFF file, image file is truncated",
    "jpeg_without_end": "is truncated or damaged (a JPEG file, image file is truncated",
    "jpeg_garbage_body": "is truncated or damaged (a JPEG file",
    "png_bad_checksum": "is truncated or damaged (a PNG file, broken PNG file (bad header checksum",
    "text_as_jpg": f"is not an image that can be read (it looks like a text file); allowed: {ALLOWED}.",
    "pdf_as_jpg": f"is not an image that can be read (it looks like a PDF document); allowed: {ALLOWED}.",
    "html_as_png": f"is not an image that can be read (it looks like an HTML page); allowed: {ALLOWED}.",
    "huge_pixels_png": "is 8000x7000 pixels (56 megapixels), over the limit of 50 megapixels; "
    "allowed: images up to 50 megapixels.",
    "huge_header_png": "is 8000x7000 pixels (56 megapixels), over the limit of 50 megapixels",
    "over_max_bytes": "is 25.3 MB, over the 25 MB upload limit; allowed: files up to 25 MB.",
}


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def gray_bgr(gray: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2BGR)


def source_gray() -> np.ndarray:
    return np.asarray(source_image().convert("L"))


def white_left_half(pixels_bgr: np.ndarray) -> np.ndarray:
    out = pixels_bgr.copy()
    out[:, : out.shape[1] // 2] = 255
    return out


# Per odd case: the BGR image it must decode to, and the largest mean absolute error allowed
# (0 for lossless files; JPEG and GIF quantisation get a little).
EXPECTED_PIXELS = {
    "one_pixel_png": (lambda: bgr(source_rgb()[:1, :1]), 0),
    "one_pixel_jpeg": (lambda: bgr(source_rgb()[:1, :1]), 8),
    "gray16_png": (lambda: gray_bgr(source_gray()), 0),
    "rgb16_png": (lambda: bgr(source_rgb()), 0),
    "grayscale_jpeg": (lambda: gray_bgr(source_gray()), 1.5),
    "palette_png": (lambda: bgr(source_rgb()), 5),
    "rgba_png": (lambda: white_left_half(bgr(source_rgb())), 0),
    "gray_alpha_png": (lambda: white_left_half(gray_bgr(source_gray())), 0),
    "cmyk_jpeg": (lambda: bgr(source_rgb()), 1.5),
    "exif_rotated_jpeg": (lambda: bgr(np.rot90(source_rgb(), k=-1)), 1.5),
    "animated_gif": (lambda: bgr(source_rgb()), 5),
    "animated_webp": (lambda: bgr(source_rgb()), 0),
    "progressive_jpeg": (lambda: bgr(source_rgb()), 2),
    "mpo_jpeg": (lambda: bgr(source_rgb()), 5),
    "bmp": (lambda: bgr(source_rgb()), 0),
    "tiff_lzw": (lambda: bgr(source_rgb()), 0),
    "webp_lossless": (lambda: bgr(source_rgb()), 0),
    "png_named_jpg": (lambda: bgr(source_rgb()), 0),
}


def assert_bgr_image(image: np.ndarray) -> None:
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.flags.c_contiguous and image.flags.writeable


def assert_one_clear_sentence(message: str, name: str) -> None:
    assert message.startswith(name + " ")
    assert "\n" not in message and message.endswith(".")
    assert "allowed:" in message


# --- bad files ---------------------------------------------------------------------------------------


def test_every_bad_case_has_an_expected_message():
    assert set(EXPECTED_MESSAGES) == set(BAD_UPLOAD_CASES)


@pytest.mark.parametrize("case", sorted(BAD_UPLOAD_CASES))
def test_decode_image_refuses_bad_upload_with_one_clear_sentence(case, tmp_path):
    path = BAD_UPLOAD_CASES[case](tmp_path)
    with pytest.raises(ImageError) as refused:
        decode_image(path.read_bytes(), name=path.name)
    message = str(refused.value)
    assert_one_clear_sentence(message, path.name)
    assert message.startswith(f"{path.name} {EXPECTED_MESSAGES[case]}")


@pytest.mark.parametrize("case", sorted(BAD_IMAGE_CASES))
def test_read_image_refuses_bad_file_with_one_clear_sentence(case, tmp_path):
    path = BAD_IMAGE_CASES[case](tmp_path)
    with pytest.raises(ImageError) as refused:
        read_image(path)
    message = str(refused.value)
    assert_one_clear_sentence(message, str(path))
    assert message.startswith(f"{path} {EXPECTED_MESSAGES[case]}")


def test_read_image_has_no_byte_limit_so_reads_the_large_upload(tmp_path):
    path = BAD_UPLOAD_CASES["over_max_bytes"](tmp_path)
    assert path.stat().st_size > DEFAULT_MAX_BYTES
    image = read_image(path)
    assert_bgr_image(image)
    assert np.array_equal(image[: source_rgb().shape[0], : source_rgb().shape[1]], bgr(source_rgb()))


def test_huge_pixels_case_is_a_valid_image_refused_only_for_its_size(tmp_path):
    path = BAD_IMAGE_CASES["huge_pixels_png"](tmp_path)
    with Image.open(path) as image:
        assert image.size == (8000, 7000)
        image.verify()
    assert path.stat().st_size < 100_000


def test_huge_header_is_refused_before_decoding(tmp_path):
    """Its pixel data is short: decoding fails as truncated, so a size refusal came from the header."""
    path = BAD_IMAGE_CASES["huge_header_png"](tmp_path)
    with pytest.raises(ImageError, match="over the limit of 50 megapixels"):
        read_image(path)
    with pytest.raises(ImageError, match=r"truncated or damaged \(a PNG file"):
        read_image(path, max_pixels=8000 * 7000)


def test_pixel_limit_is_inclusive(tmp_path):
    height, width = source_rgb().shape[:2]
    path = ODD_VALID_CASES["bmp"](tmp_path)
    assert read_image(path, max_pixels=width * height).shape == (height, width, 3)
    with pytest.raises(ImageError, match=rf"is {width}x{height} pixels \(187,392 pixels\), over the limit"):
        read_image(path, max_pixels=width * height - 1)


def test_limits_just_exceeded_are_shown_exactly():
    with pytest.raises(ImageError, match=r"is 1,048,577 bytes, over the 1,048,576 bytes upload limit"):
        decode_image(b"x" * (2**20 + 1), name="upload.jpg", max_bytes=2**20)
    with pytest.raises(
        ImageError, match=r"is 1x2000001 pixels \(2,000,001 pixels\), over the limit of 2,000,000"
    ):
        decode_image(png_claiming(1, 2_000_001), name="tall.png", max_pixels=2_000_000)


def test_byte_limit_is_inclusive():
    data = SOURCE_PHOTO.read_bytes()
    assert decode_image(data, max_bytes=len(data)).shape == source_rgb().shape
    with pytest.raises(ImageError, match="upload limit"):
        decode_image(data, max_bytes=len(data) - 1)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for an RGB image of the given size, with no pixel data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_pillow_decompression_bomb_error_becomes_image_error():
    """Over twice Image.MAX_IMAGE_PIXELS Pillow itself refuses, even when our limit is raised."""
    assert 2 * Image.MAX_IMAGE_PIXELS < 20_000 * 10_000
    with pytest.raises(ImageError, match=r"^bomb\.png is too large to decode safely \(200 megapixels\)"):
        decode_image(png_claiming(20_000, 10_000), name="bomb.png", max_pixels=10**9)


def test_decompression_bomb_warning_is_refused_whether_or_not_warnings_are_errors():
    data = png_claiming(10_000, 10_000)  # 100 megapixels: Pillow warns, our 50 MP limit refuses
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 < 2 * Image.MAX_IMAGE_PIXELS
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageError, match="over the limit of 50"),
    ):
        decode_image(data, name="big.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match=r"^big\.png is too large to decode safely \(100 megapixels\)"):
            decode_image(data, name="big.png", max_pixels=10**9)


def test_another_format_pillow_can_read_is_refused_and_named(tmp_path):
    try:
        data = encoded(source_image().crop((0, 0, 64, 64)), "AVIF")
    except (KeyError, OSError):
        pytest.skip("this Pillow cannot write AVIF")
    with pytest.raises(
        ImageError, match=rf"^x\.avif is not an image .* \(it looks like an AVIF image\); allowed: {ALLOWED}"
    ):
        decode_image(data, name="x.avif")


def test_float_tiff_is_refused_as_not_a_photo_format(tmp_path):
    values = source_gray().astype(np.float32) / 255
    data = encoded(Image.fromarray(values), "TIFF")
    with pytest.raises(
        ImageError, match="has pixel format 32-bit floating point, which is not a photo format"
    ):
        decode_image(data, name="depth.tif")


def test_random_bytes_are_not_recognised():
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ImageError, match=r"^noise is not an image .* \(its format is not recognised\)"):
        decode_image(noise, name="noise")


def test_name_with_control_characters_stays_one_line():
    with pytest.raises(ImageError) as refused:
        decode_image(b"", name="evil\nname\r.jpg")
    assert str(refused.value).startswith("evil?name?.jpg is empty")


def test_long_name_is_shortened_keeping_its_end():
    with pytest.raises(ImageError) as refused:
        decode_image(b"", name="x" * 500 + "_end.jpg")
    name = str(refused.value).split(" ")[0]
    assert len(name) == 120 and name.startswith("…") and name.endswith("_end.jpg")


def test_read_image_refuses_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageError, match=r"missing\.jpg does not exist; allowed: an existing JPEG"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is not a regular file"):
        read_image(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_read_image_refuses_unreadable_file(tmp_path):
    path = ODD_VALID_CASES["bmp"](tmp_path)
    path.chmod(0)
    with pytest.raises(ImageError, match="cannot be read"):
        read_image(path)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_pixels must be positive"):
        decode_image(b"x", max_pixels=0)
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        decode_image(b"x", max_bytes=0)


@pytest.mark.slow  # imports torch, streamlit, ...
def test_truncated_images_stay_errors_after_importing_every_maskapp_module():
    """Someone setting ImageFile.LOAD_TRUNCATED_IMAGES = True would turn truncation into grey pixels."""
    for module in pkgutil.walk_packages(maskapp.__path__, "maskapp."):
        importlib.import_module(module.name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- valid but odd files -----------------------------------------------------------------------------


def test_every_odd_case_has_expected_pixels():
    assert set(EXPECTED_PIXELS) == set(ODD_VALID_CASES)


@pytest.mark.parametrize("case", sorted(ODD_VALID_CASES))
def test_odd_valid_file_decodes_to_the_right_bgr_pixels(case, tmp_path):
    path = ODD_VALID_CASES[case](tmp_path)
    from_file = read_image(path)
    from_upload = decode_image(path.read_bytes(), name=path.name)
    expected, tolerance = EXPECTED_PIXELS[case]
    assert_bgr_image(from_file)
    assert np.array_equal(from_file, from_upload)
    assert mean_error(from_file, expected()) <= tolerance


def test_channel_order_is_bgr():
    red = Image.new("RGB", (3, 2), (255, 0, 0))
    assert decode_image(encoded(red, "PNG")).tolist() == [[[0, 0, 255]] * 3] * 2


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    """Rounded 16 -> 8 bit maps 257*v (+ up to 127) to v; clipping would make nearly all of it 255."""
    decoded = read_image(ODD_VALID_CASES["gray16_png"](tmp_path))[:, :, 0]
    assert np.array_equal(decoded, source_gray())
    assert gray16_values().max() > 255 and np.median(decoded) < 200


def test_exif_rotation_turns_the_photo_clockwise_not_anticlockwise(tmp_path):
    decoded = read_image(ODD_VALID_CASES["exif_rotated_jpeg"](tmp_path))
    height, width = source_rgb().shape[:2]
    assert decoded.shape == (width, height, 3)
    assert mean_error(decoded, bgr(np.rot90(source_rgb(), k=1))) > 20


# Orientation tag -> what a viewer shows, on RGB numpy arrays (rows, columns).
ORIENTATIONS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_every_exif_orientation_is_applied_exactly(orientation):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = encoded(source_image(), "PNG", exif=exif)  # lossless, so the comparison is exact
    assert np.array_equal(decode_image(data), bgr(ORIENTATIONS[orientation](source_rgb())))


def test_broken_exif_block_keeps_the_pixels():
    jpeg = encoded(source_image(), "JPEG", quality=95)
    broken = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05" + b"\xff" * 9  # IFD says 5 entries, has none
    segment = b"\xff\xe1" + (len(broken) + 2).to_bytes(2, "big") + broken
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns "Corrupt EXIF data"
        decoded = decode_image(jpeg[:2] + segment + jpeg[2:])
    assert np.array_equal(decoded, decode_image(jpeg))


@pytest.mark.parametrize("case", ["animated_gif", "animated_webp", "mpo_jpeg"])
def test_multi_frame_files_give_the_first_frame(case, tmp_path):
    decoded = read_image(ODD_VALID_CASES[case](tmp_path))
    assert mean_error(decoded, bgr(source_rgb())) < 5
    assert mean_error(decoded, bgr(second_frame_rgb())) > 20


def test_decoding_from_threads_gives_the_sequential_results(tmp_path):
    paths = [make(tmp_path) for make in ODD_VALID_CASES.values()]
    sequential = [read_image(p) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(read_image, paths * 3))
    assert all(np.array_equal(a, b) for a, b in zip(sequential * 3, threaded, strict=True))


def test_real_dataset_photos_decode_like_opencv():
    photos = sorted((SHARED_DATASETS / "face-mask-2class" / "with_mask").glob("*.jpg"))[:20]
    assert len(photos) == 20
    for photo in photos:
        assert np.array_equal(read_image(photo), cv2.imread(str(photo)))


# --- listing, batches, PNG downloads -----------------------------------------------------------------


def test_list_images_filters_by_suffix_any_case_and_sorts(tmp_path):
    for name in ["b.png", "a.JPG", "c.txt", "d.Tiff", ".hidden.jpg", "e.jpeg", "f.webp", "g.gif", "h.bmp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "deep.jpg").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b.png", "d.Tiff", "e.jpeg", "f.webp", "g.gif", "h.bmp"]
    assert {Path(n).suffix.lower() for n in names} <= set(IMAGE_SUFFIXES)


def test_list_images_of_a_dataset_class_folder():
    folder = SHARED_DATASETS / "face-mask-2class" / "with_mask"
    listed = list_images(folder)
    assert len(listed) == 2114  # as ../shared/datasets/README.md says
    assert listed == sorted(listed) and all(p.parent == folder for p in listed)


def test_list_images_refuses_missing_folder_and_file(tmp_path):
    with pytest.raises(ImageError, match=rf"^{tmp_path}/nope does not exist; allowed: a folder of {ALLOWED}"):
        list_images(tmp_path / "nope")
    path = ODD_VALID_CASES["bmp"](tmp_path)
    with pytest.raises(ImageError, match=r"photo\.bmp is not a folder"):
        list_images(path)


def test_a_mixed_list_of_files_gives_the_good_images_and_a_reason_for_each_bad_one(tmp_path):
    good = [ODD_VALID_CASES[c](tmp_path) for c in ("bmp", "cmyk_jpeg", "one_pixel_png")]
    bad = [BAD_IMAGE_CASES[c](tmp_path) for c in ("empty", "truncated_png", "pdf_as_jpg")]
    missing = tmp_path / "gone.jpg"
    images, reasons = {}, {}
    for path in [good[0], bad[0], good[1], bad[1], missing, bad[2], good[2]]:
        try:
            images[path] = read_image(path)
        except ImageError as error:
            reasons[path] = str(error)
    assert list(images) == good
    assert [img.shape for img in images.values()] == [(366, 512, 3), (366, 512, 3), (1, 1, 3)]
    assert list(reasons) == [bad[0], bad[1], missing, bad[2]]
    assert "is empty" in reasons[bad[0]] and "truncated" in reasons[bad[1]]
    assert "does not exist" in reasons[missing] and "PDF" in reasons[bad[2]]


def test_encode_png_round_trips_exactly():
    photo = bgr(source_rgb())
    assert np.array_equal(decode_image(encode_png(photo)), photo)
    gray = source_gray()
    assert np.array_equal(decode_image(encode_png(gray)), gray_bgr(gray))
    bgra = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    with Image.open(io.BytesIO(encode_png(bgra))) as image:
        assert image.mode == "RGBA"
        assert np.array_equal(np.asarray(image)[:, :, :3], source_rgb())


def test_encode_png_accepts_a_non_contiguous_view():
    view = bgr(source_rgb())[::2, ::3]
    assert np.array_equal(decode_image(encode_png(view)), view)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), [[0]]],
    ids=["float", "empty", "two-channel", "list"],
)
def test_encode_png_refuses_arrays_that_are_not_images(array):
    with pytest.raises(ValueError, match="encode_png needs"):
        encode_png(array)
