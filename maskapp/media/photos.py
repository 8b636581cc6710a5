"""Image files and folders of images through a pipeline (what `python -m maskapp detect` runs):
unreadable files are reported and skipped, never fatal; annotated copies are written on request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from maskapp.errors import ImageError, OutputError
from maskapp.media.images import IMAGE_SUFFIXES, list_images, read_image
from maskapp.vision.draw import annotate


@dataclass(frozen=True)
class DetectRun:
    results: dict[str, list[dict]]  # file name -> detect-JSON entries
    skipped: tuple[tuple[Path, str], ...]  # (file, why)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders as the images directly inside them; nothing to read is an ImageError."""
    files = []
    for path in paths:
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ImageError(f"folder {path} has no images; allowed suffixes: {' '.join(IMAGE_SUFFIXES)}")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ImageError(f"{path} does not exist; allowed: image files or folders of images")
    return files


def result_key(path: Path, taken: dict) -> str:
    """The file name, or the whole path when two inputs share a name."""
    return path.name if path.name not in taken else str(path)


def write_annotated(folder: Path, path: Path, image) -> None:
    target = folder / f"{path.stem}.png"
    if not cv2.imwrite(str(target), image):
        raise OutputError(f"cannot write the annotated image {target}; allowed: a writable folder")


def detect_files(pipeline, files: list[Path], annotate_dir: Path | None = None) -> DetectRun:
    """Run the pipeline on each file; unreadable files are reported and skipped, not fatal."""
    results, skipped = {}, []
    for path in tqdm(files, desc="detect", unit="image", disable=len(files) < 10):
        try:
            frame = read_image(path)
        except ImageError as error:
            skipped.append((path, str(error)))
            continue
        result = pipeline.process(frame)
        results[result_key(path, results)] = result.to_json()
        if annotate_dir is not None:
            write_annotated(annotate_dir, path, annotate(frame, result))
    return DetectRun(results, tuple(skipped))
