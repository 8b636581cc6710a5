"""Reading untrusted image files and uploads into BGR uint8 arrays, and writing PNG downloads.

Every failure is an ImageError with one sentence that names the file, what was wrong and what is
allowed; no Pillow error, OSError or ValueError escapes `decode_image` or `read_image` (the one
ValueError is a caller's bug: a limit below 1). Nothing here holds state, so threads may share it.

The order of checks is the point: the byte limit (uploads) and empty files before anything is parsed,
then the pixel limit from the header (Pillow's `Image.open` is lazy), then a structural check (PNG
chunk checksums), and only then the full decode. `ImageFile.LOAD_TRUNCATED_IMAGES` is left False, so
a truncated file is an error, never a half-grey picture.

Pillow's own decompression-bomb guard (`Image.MAX_IMAGE_PIXELS`, about 89 megapixels) is left as it
is: over it Pillow warns and we refuse from our own, lower limit; over twice it Pillow raises
DecompressionBombError, which becomes the same ImageError (so does the warning when warnings are
errors, as under `python -W error`).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskapp.errors import ImageError
from maskapp.outputs import path_text

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# The same as an uploader's types and the words a page prompt lists: one list, so they cannot differ.
IMAGE_FORMATS: tuple[str, ...] = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 25 * 1024 * 1024

ALLOWED_FORMATS = "JPEG, PNG, WebP, BMP, GIF or TIFF"
# Pillow plugins we let parse untrusted bytes (JPEG also opens MPO, the multi-picture JPEG of phones).
PICTURE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
_FORMAT_NAMES = {"MPO": "JPEG", "WEBP": "WebP"}  # Pillow names that users know by another name
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_MAX_NAME_CHARS = 120

# (magic bytes, offset, what the file is) in the order they are tried; allowed formats say "a ... file".
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "a JPEG file"),
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG file"),
    (b"GIF8", 0, "a GIF file"),
    (b"WEBP", 8, "a WebP file"),
    (b"II*\x00", 0, "a TIFF file"),
    (b"MM\x00*", 0, "a TIFF file"),
    (b"%PDF", 0, "a PDF document"),
    (b"ftypavif", 4, "an AVIF image"),
    (b"ftyphei", 4, "a HEIC image"),
    (b"ftypmif1", 4, "a HEIF image"),
    (b"ftyp", 4, "a video"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image"),
    (b"8BPS", 0, "a Photoshop document"),
    (b"PK\x03\x04", 0, "a ZIP archive or Office document"),
    (b"\x1a\x45\xdf\xa3", 0, "a video"),
    (b"\x00\x00\x01\x00", 0, "an icon file"),
)
_ALLOWED_KINDS = frozenset(f"a {name} file" for name in ("JPEG", "PNG", "GIF", "WebP", "TIFF", "BMP"))


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Uploaded bytes -> contiguous BGR uint8 HxWx3 (EXIF orientation applied, first frame only)."""
    _check_positive(max_pixels=max_pixels, max_bytes=max_bytes)
    shown = _shown(name)
    if len(data) == 0:
        raise ImageError(f"{shown} is empty (0 bytes); allowed: a {ALLOWED_FORMATS} image.")
    if len(data) > max_bytes:
        size, limit = _amounts(len(data), max_bytes, _size_text, "bytes")
        raise ImageError(f"{shown} is {size}, over the {limit} upload limit; allowed: files up to {limit}.")
    return _decode(bytes(data), shown, max_pixels)


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file -> contiguous BGR uint8 HxWx3. Only the header is read before the pixel check."""
    _check_positive(max_pixels=max_pixels)
    path = Path(path)
    shown = _shown(str(path))
    _check_file(path, shown)
    return _decode(path, shown, max_pixels)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder` (by suffix, any case; hidden files skipped), sorted."""
    folder = Path(folder)
    shown = _shown(str(folder))
    if not folder.exists():
        raise ImageError(f"{shown} does not exist; allowed: a folder of {ALLOWED_FORMATS} images.")
    if not folder.is_dir():
        raise ImageError(f"{shown} is not a folder; allowed: a folder of {ALLOWED_FORMATS} images.")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise ImageError(f"{shown} cannot be listed ({exc.strerror}); allowed: a readable folder.") from exc
    return sorted(p for p in entries if _is_image_name(p) and not p.is_dir())


def encode_png(image_bgr: np.ndarray) -> bytes:
    """BGR (HxWx3), BGRA (HxWx4) or gray (HxW) uint8 -> PNG bytes. A wrong array is a bug: ValueError."""
    if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8:
        raise ValueError(f"encode_png needs a uint8 numpy array, got {type(image_bgr).__name__}")
    shape = image_bgr.shape
    if image_bgr.size == 0 or not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (3, 4))):
        raise ValueError(f"encode_png needs a non-empty HxW, HxWx3 or HxWx4 array, got shape {shape}")
    if len(shape) == 2:
        pixels = np.ascontiguousarray(image_bgr)
    else:
        pixels = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB if shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- decoding --------------------------------------------------------------------------------------


def _decode(source: bytes | Path, shown: str, max_pixels: int) -> np.ndarray:
    with _open(source, shown, max_pixels) as image:
        fmt = image.format or "image"
        _check_pixels(image.size, shown, max_pixels)  # from the header: nothing is decoded yet
        if fmt == "PNG":
            _verify_png(source, shown, max_pixels)
        _load_first_frame(image, shown, fmt, max_pixels)
        _apply_exif_orientation(image, shown)
        bgr = _to_bgr(image, shown)
    log.debug("decoded %s: %s %dx%d", shown, fmt, bgr.shape[1], bgr.shape[0])
    return bgr


def _open(source: bytes | Path, shown: str, max_pixels: int) -> Image.Image:
    """Image.open (header only) restricted to the allowed formats; every failure becomes ImageError."""
    stream = source if isinstance(source, Path) else io.BytesIO(source)
    try:
        return Image.open(stream, formats=PICTURE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(shown, exc, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise _unreadable_error(shown, _head(source), exc) from exc
    except Exception as exc:  # Pillow's parsers raise many types on malformed input (struct.error, ...)
        raise _damaged_error(shown, _kind_from_head(_head(source)), exc) from exc


def _verify_png(source: bytes | Path, shown: str, max_pixels: int) -> None:
    """Check every chunk's CRC (a flipped bit in IDAT can otherwise decode to wrong pixels).

    Only PngImagePlugin implements verify(), and it spends the image it checks: hence its own open.
    """
    with _open(source, shown, max_pixels) as image:
        try:
            image.verify()
        except Exception as exc:  # SyntaxError for a bad checksum, OSError, struct.error, ...
            raise _damaged_error(shown, "a PNG file", exc) from exc


def _load_first_frame(image: Image.Image, shown: str, fmt: str, max_pixels: int) -> None:
    try:
        image.load()  # an animated GIF/WebP/PNG or multi-page TIFF loads its first frame
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(shown, exc, max_pixels) from exc
    except Exception as exc:  # "image file is truncated", "broken data stream", decoder errors, ...
        raise _damaged_error(shown, _kind_from_format(fmt), exc) from exc


def _apply_exif_orientation(image: Image.Image, shown: str) -> None:
    """Rotate/flip in place as the EXIF orientation tag says; broken EXIF keeps the pixels as stored."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:  # malformed EXIF: the pixels are fine, only the orientation is unknown
        log.info("%s: EXIF orientation ignored (%s)", shown, exc)


def _to_bgr(image: Image.Image, shown: str) -> np.ndarray:
    """Any photo pixel mode -> a new, writable, contiguous BGR uint8 array (cv2 copies)."""
    if image.mode in _WIDE_GRAY_MODES:
        return cv2.cvtColor(_wide_gray_to_uint8(np.asarray(image)), cv2.COLOR_GRAY2BGR)
    if image.mode == "F":
        raise _mode_error(shown, "32-bit floating point")
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            image = _flatten_on_white(image)
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise _mode_error(shown, image.mode) from exc
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)


def _flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite a transparent image on white, as a browser shows it (transparent pixels are not black)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _wide_gray_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit gray (mode I;16*, or I holding 16-bit values) -> 0..255 rounded (65535 -> 255), not clipped."""
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    return ((wide + 128) // 257).astype(np.uint8)


# --- checks and messages ---------------------------------------------------------------------------


def _check_positive(**limits: int) -> None:
    for key, value in limits.items():
        if value < 1:
            raise ValueError(f"{key} must be positive, got {value}")


def _check_file(path: Path, shown: str) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise ImageError(f"{shown} does not exist; allowed: an existing {ALLOWED_FORMATS} file.") from exc
    except OSError as exc:
        raise ImageError(f"{shown} cannot be read ({exc.strerror}); allowed: a readable image file.") from exc
    if not path.is_file():
        raise ImageError(f"{shown} is not a regular file; allowed: a {ALLOWED_FORMATS} image file.")
    if size == 0:
        raise ImageError(f"{shown} is empty (0 bytes); allowed: a {ALLOWED_FORMATS} image.")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ImageError(f"{shown} cannot be read ({exc.strerror}); allowed: a readable image file.") from exc


def _check_pixels(size: tuple[int, int], shown: str, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{shown} has no pixels ({width}x{height}); allowed: an image at least 1x1 pixel.")
    if width * height > max_pixels:
        count, limit = _amounts(width * height, max_pixels, _pixels_text, "pixels")
        raise ImageError(
            f"{shown} is {width}x{height} pixels ({count}), over the limit of {limit}; "
            f"allowed: images up to {limit}."
        )


def _bomb_error(shown: str, exc: Exception, max_pixels: int) -> ImageError:
    """Pillow's own guard fired (over Image.MAX_IMAGE_PIXELS): the same refusal as our pixel limit."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({_pixels_text(int(found.group(1)))})" if found else ""
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    return ImageError(
        f"{shown} is too large to decode safely{size}, over the limit of {_pixels_text(limit)}; "
        f"allowed: images up to {_pixels_text(limit)}."
    )


def _unreadable_error(shown: str, head: bytes, exc: Exception) -> ImageError:
    kind = _kind_from_head(head)
    if kind in _ALLOWED_KINDS:  # right signature, broken header
        return _damaged_error(shown, kind, exc, detail="its header cannot be parsed")
    looks = f"it looks like {kind}" if kind else "its format is not recognised"
    return ImageError(f"{shown} is not an image that can be read ({looks}); allowed: {ALLOWED_FORMATS}.")


def _damaged_error(shown: str, kind: str | None, exc: Exception, detail: str = "") -> ImageError:
    log.debug("cannot decode %s", shown, exc_info=exc)
    what = kind or "an image file"
    detail = detail or _shown(str(exc) or type(exc).__name__, limit=80)
    return ImageError(
        f"{shown} is truncated or damaged ({what}, {detail}); allowed: a complete {ALLOWED_FORMATS} image."
    )


def _mode_error(shown: str, mode: str) -> ImageError:
    return ImageError(
        f"{shown} has pixel format {mode}, which is not a photo format; "
        "allowed: 8- or 16-bit grayscale, palette, RGB, RGBA or CMYK images."
    )


def _kind_from_format(fmt: str) -> str:
    return f"a {_FORMAT_NAMES.get(fmt, fmt)} file"


def _kind_from_head(head: bytes) -> str | None:
    """What the first bytes say the file is, for messages only (decoding never trusts it)."""
    for magic, offset, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if _looks_like_text(head):
        lowered = head.lstrip().lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            return "an HTML page"
        if lowered.startswith((b"<svg", b"<?xml")):
            return "an SVG or XML document"
        return "a text file"
    return "a BMP file" if head.startswith(b"BM") else None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the head is still text
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def _head(source: bytes | Path, count: int = 512) -> bytes:
    if not isinstance(source, Path):
        return source[:count]
    try:
        with source.open("rb") as handle:
            return handle.read(count)
    except OSError:
        return b""


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _shown(name: str, limit: int = _MAX_NAME_CHARS) -> str:
    """A name safe for a one-line message: bytes that are not UTF-8 as \\xNN (as `ls -b` and the JSON
    show them, not as ?), no control characters, the end kept when it is long."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in path_text(name)) or "image"
    return clean if len(clean) <= limit else "…" + clean[-(limit - 1) :]


def _amounts(count: int, limit: int, text: Callable[[int], str], unit: str) -> tuple[str, str]:
    """Both amounts rounded for reading, or exact where rounding would make them look equal."""
    if text(count) == text(limit):
        return f"{count:,} {unit}", f"{limit:,} {unit}"
    return text(count), text(limit)


def _size_text(count: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


def _pixels_text(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}".removesuffix(".0") + " megapixels"
    return f"{count:,} pixels"
