"""`python -m maskapp detect PATH...`: faces and mask labels in image files or folders of images."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from maskapp import DEFAULT_WEIGHTS
from maskapp.detect import DEFAULT_DETECTOR, DETECTOR_NAMES, check_threshold
from maskapp.errors import ImageError, MaskappError
from maskapp.images import IMAGE_SUFFIXES, list_images, read_image

logger = logging.getLogger(__name__)


class OutputError(MaskappError):
    """A result file or folder that cannot be written."""


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
    from maskapp.draw import annotate

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


def make_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create folder {folder} ({error.strerror}); allowed: a writable path"
        ) from None
    return folder


def write_json(path: Path, run_result: DetectRun) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"images": run_result.results}, indent=2))
    except OSError as error:
        raise OutputError(f"cannot write {path} ({error.strerror}); allowed: a writable file path") from None


def summary_line(name: str, entries: list[dict]) -> str:
    masked = sum(1 for entry in entries if entry["label"] == "with_mask")
    return f"{name}: {len(entries)} faces, {masked} with mask, {len(entries) - masked} without"


def register(subparsers) -> None:
    parser = subparsers.add_parser("detect", help="find faces and mask labels in images", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--json", type=Path, help="write the detections to this JSON file")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated copies (PNG) here")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR, help="face detector")
    parser.add_argument("--face-threshold", type=float, default=None, help="face score threshold, 0 to 1")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="classifier checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maskapp.pipeline import load_pipeline

    if args.face_threshold is not None:
        check_threshold(args.face_threshold)  # before the slow model loading
    files = expand_paths(args.paths)
    annotate_dir = make_folder(args.annotate) if args.annotate else None
    pipeline = load_pipeline(args.weights, args.detector, args.face_threshold)
    result = detect_files(pipeline, files, annotate_dir)
    for path, why in result.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not result.results:
        raise ImageError(f"none of the {len(files)} files could be read as an image")
    for name, entries in result.results.items():
        print(summary_line(name, entries))
    if args.json:
        write_json(args.json, result)
    return 0
