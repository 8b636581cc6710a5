"""Property-based fuzzing of maskapp.images.decode_image: whatever the bytes, it returns a BGR uint8
HxWx3 image within the pixel limit or raises ImageError, never anything else.

Run size (recorded for the README's reliability section): 100 + 200 + 300 = 600 examples per run:
100 of random bytes, 200 of random bytes behind a real format signature, 300 of mutated real files
(JPEG, progressive JPEG, PNG, 16-bit PNG, RGBA PNG, GIF, animated GIF, WebP, animated WebP, BMP, TIFF
and a JPEG with EXIF orientation). Examples are random each run; a failure prints its reproduction.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from maskapp.errors import ImageError
from maskapp.media.images import decode_image
from tests.badfiles import EXIF_ORIENTATION, encoded, second_frame_rgb, source_rgb

FUZZ_SETTINGS = {
    "deadline": None,
    "database": None,  # no .hypothesis/ folder in the working tree
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
# Pixel limits to fuzz under: mostly roomy (the mutated file decodes as far as it can), sometimes tiny
# (refusal from the header). Small enough that a mutated header never costs a large decode.
MAX_PIXELS = (4_000_000, 4_000_000, 4096, 1)
OVERWRITES = (b"\x00", b"\xff", b"\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff")

SIGNATURES = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\xff\xd8\xff\xe1",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"GIF89a",
    b"GIF87a",
    b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    b"RIFF\x00\x10\x00\x00WEBPVP8L",
    b"RIFF\x00\x10\x00\x00WEBPVP8X",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"%PDF-1.4\n",
)


@cache
def seed_files() -> tuple[bytes, ...]:
    """Small real files (a 48x40 crop of the dataset photo) in every format the decoder accepts."""
    crop = Image.fromarray(source_rgb()[100:140, 200:248])
    other = Image.fromarray(second_frame_rgb()[100:140, 200:248])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    wide = (np.asarray(crop.convert("L")).astype(np.uint16) * 257).astype(np.uint16)
    animation = {"save_all": True, "append_images": [other], "duration": 50, "loop": 0}
    return (
        encoded(crop, "JPEG", quality=80),
        encoded(crop, "JPEG", quality=80, progressive=True),
        encoded(crop, "JPEG", quality=80, exif=exif),
        encoded(crop, "PNG"),
        encoded(Image.fromarray(wide), "PNG"),
        encoded(crop.convert("RGBA"), "PNG"),
        encoded(crop, "GIF"),
        encoded(crop, "GIF", **animation),
        encoded(crop, "WEBP", quality=80),
        encoded(crop, "WEBP", lossless=True, **animation),
        encoded(crop, "BMP"),
        encoded(crop, "TIFF", compression="tiff_lzw"),
    )


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A real file with 1-4 edits: bit flips, overwrites, cuts, deletions, insertions, repeats.

    Half the edits land after the first 64 bytes, so pixel data is hit as often as headers.
    """
    data = bytearray(draw(st.sampled_from(seed_files())))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        low = draw(st.sampled_from([0, min(64, len(data) - 1)]))
        at = draw(st.integers(low, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "flip", "overwrite", "cut", "delete", "insert", "repeat"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "overwrite":
            value = draw(st.sampled_from(OVERWRITES))
            data[at : at + len(value)] = value
        elif edit == "cut":
            del data[at:]
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
    return bytes(data)


def check_decode(data: bytes, max_pixels: int) -> None:
    """The property: a well-formed image within the limits, or ImageError; anything else fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF etc.; warnings are not failures
            image = decode_image(data, name="fuzz.bin", max_pixels=max_pixels)
    except ImageError as exc:
        event("refused: " + str(exc).split(" (")[0].removeprefix("fuzz.bin "))
        message = str(exc)
        assert message.startswith("fuzz.bin ") and "\n" not in message and "allowed:" in message
        return
    event("decoded")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.flags.c_contiguous and 1 <= image.shape[0] * image.shape[1] <= max_pixels


@pytest.fixture(scope="module", autouse=True)
def _seeds_decode():
    """The seeds are valid images (or the mutation test would only ever test broken files)."""
    for data in seed_files():
        assert decode_image(data).shape[:2] in {(40, 48), (48, 40)}


@settings(max_examples=100, **FUZZ_SETTINGS)
@given(data=st.binary(max_size=4096), max_pixels=st.sampled_from(MAX_PIXELS))
def test_random_bytes_never_escape_image_error(data, max_pixels):
    check_decode(data, max_pixels)


@settings(max_examples=200, **FUZZ_SETTINGS)
@given(
    prefix=st.sampled_from(SIGNATURES),
    body=st.binary(max_size=2048),
    max_pixels=st.sampled_from(MAX_PIXELS),
)
def test_random_bytes_behind_a_format_signature_never_escape_image_error(prefix, body, max_pixels):
    check_decode(prefix + body, max_pixels)


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(data=mutated_files(), max_pixels=st.sampled_from(MAX_PIXELS))
def test_mutated_real_files_never_escape_image_error(data, max_pixels):
    check_decode(data, max_pixels)
