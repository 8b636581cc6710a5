"""Bad and valid-but-odd image files, written at test time from one real dataset photo.

No binary fixture is committed: every generator takes a folder, writes one file into it and returns
its path, so the library, CLI and page tests can all use the same cases:

    BAD_IMAGE_CASES   files every reader must refuse with an ImageError (read_image and decode_image)
    BAD_UPLOAD_CASES  BAD_IMAGE_CASES plus an upload over DEFAULT_MAX_BYTES (decode_image refuses it;
                      read_image has no byte limit and reads it)
    ODD_VALID_CASES   unusual but valid files that must decode to a BGR uint8 HxWx3 array

`source_rgb()` is the photo they are made from (a street photo with faces, 512x366, RGB).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from maskapp import SHARED_DATASETS
from maskapp.media.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

SOURCE_PHOTO = SHARED_DATASETS / "face-mask-detection-dev" / "images" / "maksssksksss0.png"
TEXT_FILE = SHARED_DATASETS / "face-mask-2class" / "manifest.csv"
HUGE_SIZE = (8000, 7000)  # 56 megapixels, over DEFAULT_MAX_PIXELS
EXIF_ORIENTATION = 0x0112

assert HUGE_SIZE[0] * HUGE_SIZE[1] > DEFAULT_MAX_PIXELS

Case = Callable[[Path], Path]


@cache
def source_rgb() -> np.ndarray:
    """The real photo every case is made from, as a read-only RGB uint8 array."""
    if not SOURCE_PHOTO.is_file():
        pytest.skip(f"dataset photo {SOURCE_PHOTO} is missing")
    with Image.open(SOURCE_PHOTO) as image:
        pixels = np.asarray(image.convert("RGB"))
    pixels.flags.writeable = False
    return pixels


def source_image() -> Image.Image:
    return Image.fromarray(source_rgb())


def second_frame_rgb() -> np.ndarray:
    """The second frame of the animated cases: the photo upside down, so frames are told apart."""
    return np.ascontiguousarray(source_rgb()[::-1])


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


# --- bad files: each must be refused with an ImageError --------------------------------------------


def empty(folder: Path) -> Path:
    return _write(folder, "empty.jpg", b"")


def truncated_jpeg(folder: Path) -> Path:
    data = encoded(source_image(), "JPEG", quality=90)
    return _write(folder, "truncated.jpg", data[: len(data) // 2])


def truncated_png(folder: Path) -> Path:
    data = encoded(source_image(), "PNG")
    return _write(folder, "truncated.png", data[: len(data) // 2])


def truncated_gif(folder: Path) -> Path:
    data = encoded(source_image(), "GIF")
    return _write(folder, "truncated.gif", data[: len(data) // 2])


def truncated_webp(folder: Path) -> Path:
    data = encoded(source_image(), "WEBP", quality=80)
    return _write(folder, "truncated.webp", data[: len(data) // 2])


def truncated_tiff(folder: Path) -> Path:
    data = encoded(source_image(), "TIFF")
    return _write(folder, "truncated.tif", data[: len(data) // 2])


def jpeg_without_end(folder: Path) -> Path:
    """All the scan data but the last two bytes (the EOI marker): truncated, if only just."""
    data = encoded(source_image(), "JPEG", quality=90)
    return _write(folder, "no_end_marker.jpg", data[:-2])


def jpeg_garbage_body(folder: Path) -> Path:
    """A real JPEG header followed by noise where the compressed data should be."""
    data = encoded(source_image(), "JPEG", quality=90)
    noise = np.random.default_rng(5).integers(0, 256, len(data) - 600, dtype=np.uint8).tobytes()
    return _write(folder, "garbage.jpg", data[:600] + noise)


def png_bad_checksum(folder: Path) -> Path:
    """One flipped bit inside the compressed pixel data: the chunk CRC no longer matches."""
    data = bytearray(encoded(source_image(), "PNG"))
    data[len(data) // 2] ^= 0x10
    return _write(folder, "bitflip.png", bytes(data))


def text_as_jpg(folder: Path) -> Path:
    if not TEXT_FILE.is_file():
        pytest.skip(f"dataset file {TEXT_FILE} is missing")
    return _write(folder, "notes.jpg", TEXT_FILE.read_bytes()[:4096])


def pdf_as_jpg(folder: Path) -> Path:
    """A real PDF (of the photo, written by Pillow) renamed .jpg."""
    return _write(folder, "document.jpg", encoded(source_image(), "PDF"))


def html_as_png(folder: Path) -> Path:
    """What a failed download often saves: an error page under the image's name."""
    page = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
    return _write(folder, "photo.png", page.encode())


def huge_pixels_png(folder: Path) -> Path:
    """A valid 8000x7000 PNG (56 megapixels) that is only a few KB: one colour, 1 bit per pixel."""
    return _write(folder, "huge.png", encoded(Image.new("1", HUGE_SIZE, 1), "PNG"))


def huge_header_png(folder: Path) -> Path:
    """A PNG whose header says 8000x7000 RGB but whose pixel data is the 512x366 photo's.

    Decoding it would fail as truncated; refusing it for its size proves the header is checked first.
    """
    chunks = _png_chunks(encoded(source_image(), "PNG"))
    header = struct.pack(">IIBBBBB", *HUGE_SIZE, 8, 2, 0, 0, 0)
    body = b"".join(_png_chunk(kind, data) for kind, data in chunks if kind == b"IDAT")
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + body + _png_chunk(b"IEND", b"")
    return _write(folder, "huge_header.png", png)


def over_max_bytes(folder: Path) -> Path:
    """A valid, uncompressed 9-megapixel BMP of the tiled photo, just over DEFAULT_MAX_BYTES."""
    side = int((DEFAULT_MAX_BYTES / 3) ** 0.5) + 16
    reps = (side // source_rgb().shape[0] + 1, side // source_rgb().shape[1] + 1, 1)
    tiled = np.tile(source_rgb(), reps)[:side, :side]
    path = _write(folder, "large.bmp", encoded(Image.fromarray(tiled), "BMP"))
    assert path.stat().st_size > DEFAULT_MAX_BYTES
    return path


BAD_IMAGE_CASES: dict[str, Case] = {
    "empty": empty,
    "truncated_jpeg": truncated_jpeg,
    "truncated_png": truncated_png,
    "truncated_gif": truncated_gif,
    "truncated_webp": truncated_webp,
    "truncated_tiff": truncated_tiff,
    "jpeg_without_end": jpeg_without_end,
    "jpeg_garbage_body": jpeg_garbage_body,
    "png_bad_checksum": png_bad_checksum,
    "text_as_jpg": text_as_jpg,
    "pdf_as_jpg": pdf_as_jpg,
    "html_as_png": html_as_png,
    "huge_pixels_png": huge_pixels_png,
    "huge_header_png": huge_header_png,
}
BAD_UPLOAD_CASES: dict[str, Case] = {**BAD_IMAGE_CASES, "over_max_bytes": over_max_bytes}


# --- valid but odd: each must decode -----------------------------------------------------------------


def one_pixel_png(folder: Path) -> Path:
    return _write(folder, "one_pixel.png", encoded(source_image().crop((0, 0, 1, 1)), "PNG"))


def one_pixel_jpeg(folder: Path) -> Path:
    return _write(folder, "one_pixel.jpg", encoded(source_image().crop((0, 0, 1, 1)), "JPEG"))


def gray16_png(folder: Path) -> Path:
    """16-bit grayscale: value = 257 * gray + noise below 128, so rounding to 8 bit gives gray back."""
    return _write(folder, "gray16.png", encoded(Image.fromarray(gray16_values()), "PNG"))


def gray16_values() -> np.ndarray:
    gray = np.asarray(source_image().convert("L")).astype(np.uint16)
    rows, cols = np.indices(gray.shape)
    noise = ((rows * 37 + cols * 11) % 128).astype(np.uint16)
    return gray * 257 + np.where(gray < 255, noise, 0)  # 255 * 257 is already 65535


def rgb16_png(folder: Path) -> Path:
    """16-bit RGB (written by OpenCV, which stores BGR): each 8-bit value v becomes 257 * v."""
    wide = cv2.cvtColor(source_rgb(), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", wide)
    assert ok
    return _write(folder, "rgb16.png", data.tobytes())


def grayscale_jpeg(folder: Path) -> Path:
    return _write(folder, "gray.jpg", encoded(source_image().convert("L"), "JPEG", quality=95))


def palette_png(folder: Path) -> Path:
    return _write(folder, "palette.png", encoded(source_image().quantize(256), "PNG"))


def rgba_png(folder: Path) -> Path:
    """Left half fully transparent, right half opaque: decodes to white | photo."""
    return _write(folder, "rgba.png", encoded(Image.fromarray(_with_half_alpha(source_rgb())), "PNG"))


def gray_alpha_png(folder: Path) -> Path:
    gray = np.asarray(source_image().convert("L"))
    return _write(folder, "gray_alpha.png", encoded(Image.fromarray(_with_half_alpha(gray)), "PNG"))


def _with_half_alpha(pixels: np.ndarray) -> np.ndarray:
    alpha = np.full(pixels.shape[:2], 255, np.uint8)
    alpha[:, : pixels.shape[1] // 2] = 0
    channels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return np.ascontiguousarray(np.dstack([channels, alpha]))


def cmyk_jpeg(folder: Path) -> Path:
    return _write(folder, "cmyk.jpg", encoded(source_image().convert("CMYK"), "JPEG", quality=95))


def exif_rotated_jpeg(folder: Path) -> Path:
    """Stored 512 wide x 366 high, EXIF orientation 6: shown rotated 90° clockwise, 366 wide x 512 high."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return _write(folder, "rotated.jpg", encoded(source_image(), "JPEG", quality=95, exif=exif))


def animated_gif(folder: Path) -> Path:
    return _write(folder, "animated.gif", _animation("GIF"))


def animated_webp(folder: Path) -> Path:
    return _write(folder, "animated.webp", _animation("WEBP", lossless=True))


def _animation(fmt: str, **options) -> bytes:
    frames = [source_image(), Image.fromarray(second_frame_rgb())]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)


def progressive_jpeg(folder: Path) -> Path:
    return _write(folder, "progressive.jpg", encoded(source_image(), "JPEG", quality=95, progressive=True))


def mpo_jpeg(folder: Path) -> Path:
    """A multi-picture JPEG as phone cameras write (two pictures; the first is the photo)."""
    second = Image.fromarray(second_frame_rgb())
    return _write(folder, "camera.jpg", encoded(source_image(), "MPO", save_all=True, append_images=[second]))


def bmp(folder: Path) -> Path:
    return _write(folder, "photo.bmp", encoded(source_image(), "BMP"))


def tiff_lzw(folder: Path) -> Path:
    return _write(folder, "photo.tiff", encoded(source_image(), "TIFF", compression="tiff_lzw"))


def webp_lossless(folder: Path) -> Path:
    return _write(folder, "photo.webp", encoded(source_image(), "WEBP", lossless=True))


def png_named_jpg(folder: Path) -> Path:
    """The content decides, not the name: a PNG saved as .JPG (upper case, as cameras name files)."""
    return _write(folder, "PHOTO.JPG", encoded(source_image(), "PNG"))


ODD_VALID_CASES: dict[str, Case] = {
    "one_pixel_png": one_pixel_png,
    "one_pixel_jpeg": one_pixel_jpeg,
    "gray16_png": gray16_png,
    "rgb16_png": rgb16_png,
    "grayscale_jpeg": grayscale_jpeg,
    "palette_png": palette_png,
    "rgba_png": rgba_png,
    "gray_alpha_png": gray_alpha_png,
    "cmyk_jpeg": cmyk_jpeg,
    "exif_rotated_jpeg": exif_rotated_jpeg,
    "animated_gif": animated_gif,
    "animated_webp": animated_webp,
    "progressive_jpeg": progressive_jpeg,
    "mpo_jpeg": mpo_jpeg,
    "bmp": bmp,
    "tiff_lzw": tiff_lzw,
    "webp_lossless": webp_lossless,
    "png_named_jpg": png_named_jpg,
}
